// The node API's request validation (daemon/api/convert.h): the first byte picks a request
// message, the rest is its wire encoding, as a client could send it over the socket. Whatever
// the validators accept must be what the server then relies on: settings within the documented
// ranges and consistent, every event kind known, a filter that can be evaluated.
#include <cmath>
#include <cstdlib>

#include "daemon/api/convert.h"
#include "tests/fuzz/fuzz.h"

using namespace ebb;

namespace {

void require(bool holds) {
  if (!holds) std::abort();
}

void check_settings(const config::ContainerSettings& s) {
  require(api::check_consistent(s).ok());
  for (const auto& value : {s.cpu_min_cores, s.cpu_max_cores, s.throttle_target, s.runq_latency_p99_target_us, s.weight}) {
    require(!value || std::isfinite(*value));
  }
  if (s.throttle_target) require(*s.throttle_target >= 0 && *s.throttle_target <= 1);
  if (s.memory_min_bytes) require(*s.memory_min_bytes >= (1u << 20));
  // What the server stores is what it returns, and reading it back gives the same settings.
  const auto again = api::settings_from_proto(api::to_proto(s));
  require(again.ok() && api::to_proto(*again).SerializeAsString() == api::to_proto(s).SerializeAsString());
}

// Every accepted filter can be evaluated on a path and a name.
void check_filter(const api::ContainerFilter& filter) {
  (void)filter.matches("ebb.slice/web.service", "web");
  (void)filter.matches("", "");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto* body = data + 1;
  const int length = static_cast<int>(size - 1);
  switch (data[0] % 4) {
    case 0: {
      v1::SetPolicyRequest request;
      if (!request.ParseFromArray(body, length)) return 0;
      auto valid = api::validate(request);
      if (!valid) {
        require(!valid.error().message.empty());
        return 0;
      }
      require(valid->container ? !valid->container->empty() : discovery::Selector::parse(valid->select).ok());
      check_settings(valid->settings);
      break;
    }
    case 1: {
      v1::ListContainersRequest request;
      if (!request.ParseFromArray(body, length)) return 0;
      if (auto filter = api::ContainerFilter::from(request)) check_filter(*filter);
      break;
    }
    case 2: {
      v1::WatchEventsRequest request;
      if (!request.ParseFromArray(body, length)) return 0;
      auto valid = api::validate(request);
      if (!valid) return 0;
      check_filter(valid->filter);
      for (int kind : valid->kinds) require(kind != v1::EVENT_KIND_UNSPECIFIED && v1::EventKind_IsValid(kind));
      break;
    }
    case 3: {
      v1::GetContainerRequest request;
      if (!request.ParseFromArray(body, length)) return 0;
      require(api::validate(request).ok() == !request.name().empty());
      break;
    }
  }
  return 0;
}
