// ebb-sim's trace inputs: the documented CSV and a GCD_VMs series, on the same bytes.
#include "sim/traces.h"
#include "tests/fuzz/fuzz.h"

using namespace ebb;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  (void)sim::parse_trace_csv(text, "fuzz.csv");
  (void)sim::parse_gcd_series(text, "fuzz.gcd", sim::GcdScale{});
  return 0;
}
