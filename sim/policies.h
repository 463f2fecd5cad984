#pragma once
// The policies ebb-sim knows, by the names used on the command line and in results.csv.
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/error.h"
#include "sim/engine.h"

namespace ebb::sim {

// Every policy, baselines first, then ebb's own, then the oracle.
const std::vector<SimPolicy>& all_policies();

// A comma-separated list of names, or "all".
Result<std::vector<SimPolicy>> select_policies(std::string_view list);

}  // namespace ebb::sim
