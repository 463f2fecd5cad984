#pragma once
#include <catch2/catch.hpp>

#include <poll.h>

#include <memory>

#include "daemon/discovery/discovery.h"

namespace ebb::testing {

// Waits (bounded) for the fd to become readable, as the daemon's event loop would, then drains.
inline bool changed_after_wait(discovery::TreeWatcher& watcher) {
  pollfd pfd{watcher.fd(), POLLIN, 0};
  ::poll(&pfd, 1, 2000);
  return watcher.drain();
}

inline std::unique_ptr<discovery::TreeWatcher> open_watcher(const std::filesystem::path& root) {
  auto watcher = discovery::TreeWatcher::open(root);
  if (!watcher) FAIL(watcher.error().to_string());
  return std::move(watcher).value();
}

}  // namespace ebb::testing
