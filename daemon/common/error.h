#pragma once
// Errors are values: each carries what failed, where (file, cgroup) and the errno, so a log
// line or an API response can say exactly which cgroup and file misbehaved.
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace ebb {

struct Error {
  std::string message;   // what went wrong, in words
  std::string path;      // file involved, if any
  std::string cgroup;    // cgroup (relative to the root) involved, if any
  int errno_value = 0;   // 0 when not a system error

  // ENOENT/ENODEV/ESRCH on a cgroup file mean the cgroup was removed under us: a normal state.
  bool vanished() const { return errno_value == ENOENT || errno_value == ENODEV || errno_value == ESRCH; }
  std::string to_string() const;
};

Error system_error(std::string message, std::string path, int errno_value, std::string cgroup = {});

// Result<T>: either a T or an Error. A minimal stand-in for C++23 std::expected.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}      // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<T>(state_); }
  T& value() & { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }
  const Error& error() const { return std::get<Error>(state_); }
  T value_or(T fallback) const { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> state_;
};

// Result<void> equivalent.
struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace ebb
