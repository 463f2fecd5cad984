// ebbd's TOML config: parse and validate arbitrary text. An accepted config must pass
// validate() again (what main does after layering flags) and keep the tick within bounds.
#include <cstdlib>

#include "daemon/config/config.h"
#include "tests/fuzz/fuzz.h"

using namespace ebb;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parsed = config::parse_config(fuzz::as_text(data, size), "fuzz.toml");
  if (!parsed) return 0;
  if (!config::validate(*parsed)) std::abort();
  if (parsed->tick < config::kMinTick || parsed->tick > config::kMaxTick) std::abort();
  (void)config::resolve_settings(*parsed, "ebb.slice/a.service");
  return 0;
}
