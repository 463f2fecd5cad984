#pragma once
// Between ManagerService messages and the manager core's structs.
#include <vector>

#include "ebb/v1/manager.pb.h"
#include "manager/core/manager.h"

namespace ebb::manager {

policy::PriorityClass from_proto(v1::PriorityClass p);  // unspecified: burstable
v1::PriorityClass to_proto(policy::PriorityClass p);

std::vector<GroupReport> from_proto(const google::protobuf::RepeatedPtrField<v1::GroupUsage>& groups);
GroupSpec from_proto(const v1::Group& group);
v1::Group to_proto(const GroupView& view);
v1::NodeStatus to_proto(const NodeView& view);
v1::NodeAllocation to_proto(const NodeAllocation& allocation);

}  // namespace ebb::manager
