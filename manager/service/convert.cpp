#include "manager/service/convert.h"

namespace ebb::manager {

std::vector<GroupReport> from_proto(const google::protobuf::RepeatedPtrField<v1::GroupUsage>& groups) {
  std::vector<GroupReport> out;
  out.reserve(groups.size());
  for (const auto& g : groups)
    out.push_back({g.group(), g.wanted_cpu_cores(), g.used_cpu_cores(), g.memory_bytes(), g.containers()});
  return out;
}

GroupSpec from_proto(const v1::Group& g) {
  // A manager older or newer than the node may send a class unknown here: burstable, the default.
  const auto priority = priority_from_proto(g.priority()).value_or(policy::PriorityClass::burstable);
  return {g.name(), g.cpu_cores(), g.memory_bytes(), priority, g.floor_cpu_cores()};
}

v1::Group to_proto(const GroupView& view) {
  v1::Group g;
  g.set_name(view.spec.name);
  g.set_cpu_cores(view.spec.cpu_cores);
  g.set_memory_bytes(view.spec.memory_bytes);
  g.set_priority(to_proto(view.spec.priority));
  g.set_floor_cpu_cores(view.spec.floor_cpu_cores);
  g.set_allocated_cpu_cores(view.allocated_cpu_cores);
  g.set_allocated_memory_bytes(view.allocated_memory_bytes);
  g.set_wanted_cpu_cores(view.wanted_cpu_cores);
  return g;
}

namespace {

void add_shares(const std::vector<NodeShare>& shares, google::protobuf::RepeatedPtrField<v1::GroupAllocation>& out) {
  for (const auto& s : shares) {
    auto* a = out.Add();
    a->set_group(s.group);
    a->set_cpu_cores(s.cpu_cores);
    a->set_memory_bytes(s.memory_bytes);
  }
}

}  // namespace

v1::NodeStatus to_proto(const NodeView& view) {
  v1::NodeStatus n;
  n.set_node_id(view.info.id);
  n.set_cpu_cores(view.info.cpu_cores);
  n.set_memory_bytes(view.info.memory_bytes);
  n.mutable_labels()->insert(view.info.labels.begin(), view.info.labels.end());
  n.set_connected(view.connected);
  n.set_lease_left_ms(static_cast<std::uint32_t>(view.lease_left.count()));
  n.set_replica(view.via);
  for (const auto& r : view.reported) {
    auto* u = n.add_reported();
    u->set_group(r.group);
    u->set_wanted_cpu_cores(r.wanted_cpu_cores);
    u->set_used_cpu_cores(r.used_cpu_cores);
    u->set_memory_bytes(r.memory_bytes);
    u->set_containers(r.containers);
  }
  add_shares(view.allocated, *n.mutable_allocated());
  return n;
}

v1::NodeAllocation to_proto(const NodeAllocation& allocation) {
  v1::NodeAllocation a;
  a.set_round(allocation.round);
  a.set_node_cpu_cores(allocation.node_cpu_cores);
  add_shares(allocation.groups, *a.mutable_groups());
  return a;
}

}  // namespace ebb::manager
