#pragma once
// policy::PriorityClass <-> ebb.v1.PriorityClass, shared by the node API (daemon/api) and the
// manager's service (manager/service): both speak the same enum of common.proto.
#include <optional>

#include "daemon/policy/policy.h"
#include "ebb/v1/common.pb.h"

namespace ebb {

inline v1::PriorityClass to_proto(policy::PriorityClass priority) {
  switch (priority) {
    case policy::PriorityClass::guaranteed: return v1::PRIORITY_CLASS_GUARANTEED;
    case policy::PriorityClass::burstable: return v1::PRIORITY_CLASS_BURSTABLE;
    case policy::PriorityClass::best_effort: return v1::PRIORITY_CLASS_BEST_EFFORT;
  }
  return v1::PRIORITY_CLASS_UNSPECIFIED;
}

// nullopt for UNSPECIFIED and for values this build does not know; each caller decides what
// that means (the node API refuses it, the manager takes burstable).
inline std::optional<policy::PriorityClass> priority_from_proto(v1::PriorityClass priority) {
  switch (priority) {
    case v1::PRIORITY_CLASS_GUARANTEED: return policy::PriorityClass::guaranteed;
    case v1::PRIORITY_CLASS_BURSTABLE: return policy::PriorityClass::burstable;
    case v1::PRIORITY_CLASS_BEST_EFFORT: return policy::PriorityClass::best_effort;
    default: return std::nullopt;
  }
}

}  // namespace ebb
