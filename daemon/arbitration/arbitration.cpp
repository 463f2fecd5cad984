#include "daemon/arbitration/arbitration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

namespace ebb::arbitration {
namespace {

using policy::PriorityClass;

// Raises grants[i] (i in members) toward targets[i], weighted max-min fair, spending at most
// `available`; returns what it spent. The fill level L gives each member clamp(w L, grant,
// target); the sum is piecewise linear in L with a kink where a member starts (grant / w) or
// stops (target / w) rising, so a sweep over the sorted kinks finds the L that spends it all.
double water_fill(std::span<const std::size_t> members, std::span<const double> targets,
                  std::span<const Claim> claims, std::span<double> grants, double available) {
  double wanted = 0;
  for (auto i : members) wanted += targets[i] - grants[i];
  if (wanted <= available) {
    for (auto i : members) grants[i] = targets[i];
    return wanted;
  }
  if (available <= 0) return 0;

  struct Kink {
    double level;
    double slope_change;
  };
  std::vector<Kink> kinks;
  kinks.reserve(2 * members.size());
  for (auto i : members) {
    if (targets[i] <= grants[i]) continue;
    kinks.push_back({grants[i] / claims[i].weight, claims[i].weight});
    kinks.push_back({targets[i] / claims[i].weight, -claims[i].weight});
  }
  std::sort(kinks.begin(), kinks.end(), [](const Kink& a, const Kink& b) { return a.level < b.level; });

  double level = kinks.front().level, spent = 0, slope = 0;
  for (const auto& k : kinks) {
    const double next = spent + slope * (k.level - level);
    if (next >= available) break;
    spent = next;
    level = k.level;
    slope += k.slope_change;
  }
  if (slope > 0) level += (available - spent) / slope;

  auto raised = [&](std::size_t i) {
    return std::clamp(claims[i].weight * level, grants[i], std::max(grants[i], targets[i]));
  };
  double total = 0;
  for (auto i : members) total += raised(i) - grants[i];
  // Rounding in the sweep may overshoot by an ulp or so; the capacity is a hard bound.
  const double scale = total > available ? available / total : 1.0;
  for (auto i : members) grants[i] = scale < 1 ? grants[i] + scale * (raised(i) - grants[i]) : raised(i);
  return std::min(total, available);
}

}  // namespace

Result<std::vector<double>> arbitrate(std::span<const Claim> claims, double capacity_cores) {
  if (!std::isfinite(capacity_cores) || capacity_cores < 0)
    return Error{"arbitration: capacity must be a finite non-negative number of cores"};
  for (std::size_t i = 0; i < claims.size(); ++i) {
    const auto& c = claims[i];
    if (!std::isfinite(c.wanted_cores) || c.wanted_cores < 0 || !std::isfinite(c.floor_cores) ||
        c.floor_cores < 0 || !std::isfinite(c.weight) || c.weight <= 0)
      return Error{"arbitration: claim " + std::to_string(i) + " has a negative, non-finite or zero-weight value"};
  }
  std::vector<double> grants(claims.size(), 0.0);
  std::vector<double> floors(claims.size()), wants(claims.size());
  for (std::size_t i = 0; i < claims.size(); ++i) {
    wants[i] = claims[i].wanted_cores;
    floors[i] = std::min(claims[i].floor_cores, claims[i].wanted_cores);
  }
  constexpr std::array classes{PriorityClass::guaranteed, PriorityClass::burstable, PriorityClass::best_effort};
  std::array<std::vector<std::size_t>, classes.size()> members;
  for (std::size_t i = 0; i < claims.size(); ++i)
    members[static_cast<std::size_t>(std::find(classes.begin(), classes.end(), claims[i].priority) - classes.begin())]
        .push_back(i);

  // Grants are summed again by the caller in its own order; a relative margin far above the
  // rounding of any such sum (n x epsilon) keeps that sum within the capacity too.
  double available = capacity_cores * (1 - 1e-9);
  for (const auto* targets : {&floors, &wants})
    for (const auto& m : members) available -= water_fill(m, *targets, claims, grants, available);
  // The fill's arithmetic can land an ulp above a want; the contract is grant <= want exactly.
  for (std::size_t i = 0; i < claims.size(); ++i) grants[i] = std::min(grants[i], wants[i]);
  return grants;
}

}  // namespace ebb::arbitration
