#pragma once
// Between ManagerService messages and the manager core's structs.
#include <vector>

#include "ebb/v1/manager.pb.h"
#include "manager/core/manager.h"
#include "proto/priority_class.h"

namespace ebb::manager {

using ebb::priority_from_proto;  // proto/priority_class.h
using ebb::to_proto;

std::vector<GroupReport> from_proto(const google::protobuf::RepeatedPtrField<v1::GroupUsage>& groups);
GroupSpec from_proto(const v1::Group& group);
v1::Group to_proto(const GroupView& view);
v1::NodeStatus to_proto(const NodeView& view);
v1::NodeAllocation to_proto(const NodeAllocation& allocation);

}  // namespace ebb::manager
