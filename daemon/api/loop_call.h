#pragma once
// Runs a function on the control loop's thread and waits for its result: the way every API
// and metrics thread reads or changes the Engine, which is single-threaded.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <type_traits>

namespace ebb::api {

// How long a caller waits for the loop; a loop stuck longer than this (or stopped) makes the
// call fail rather than hang the API thread.
inline constexpr std::chrono::milliseconds kLoopTimeout{3000};

// nullopt when the loop did not run `fn` within `timeout`. `fn` may still run later, so it must
// own everything it captures except objects that outlive the io_context (the Engine).
template <typename Fn>
std::optional<std::invoke_result_t<Fn>> call_on_loop(boost::asio::io_context& io, Fn fn,
                                                     std::chrono::milliseconds timeout = kLoopTimeout) {
  using R = std::invoke_result_t<Fn>;
  auto promise = std::make_shared<std::promise<R>>();
  auto future = promise->get_future();
  boost::asio::post(io, [promise, fn = std::move(fn)]() mutable { promise->set_value(fn()); });
  if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

}  // namespace ebb::api
