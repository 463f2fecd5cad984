#pragma once
// What the manager persists (groups, the cluster cap, nodes and their last allocations) and the
// interface it persists through. The state file is the one implementation today; an etcd store
// (issue 9) implements the same two calls.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/error.h"
#include "daemon/policy/policy.h"

namespace ebb::manager {

struct GroupSpec {
  std::string name;
  double cpu_cores = 0;
  std::uint64_t memory_bytes = 0;
  policy::PriorityClass priority = policy::PriorityClass::burstable;
  double floor_cpu_cores = 0;
  bool operator==(const GroupSpec&) const = default;
};

struct NodeInfo {
  std::string id;
  double cpu_cores = 0;
  std::uint64_t memory_bytes = 0;
  std::map<std::string, std::string> labels;
  bool operator==(const NodeInfo&) const = default;
};

struct NodeShare {
  std::string group;
  double cpu_cores = 0;
  std::uint64_t memory_bytes = 0;
  bool operator==(const NodeShare&) const = default;
};

struct PersistentState {
  std::vector<GroupSpec> groups;
  std::optional<double> cluster_cap_cpu_cores;
  std::map<std::string, NodeInfo> nodes;
  std::map<std::string, std::vector<NodeShare>> allocations;  // by node id
  std::uint64_t round = 0;
  bool operator==(const PersistentState&) const = default;
};

class StateStorage {
 public:
  virtual ~StateStorage() = default;
  // nullopt: nothing saved yet (first start).
  virtual Result<std::optional<PersistentState>> load() = 0;
  virtual Status save(const PersistentState& state) = 0;
};

std::string to_json(const PersistentState& state);
Result<PersistentState> parse_state_json(std::string_view text, std::string_view source);

// A JSON file, replaced atomically (write, fsync, rename) on every save.
class FileStateStorage : public StateStorage {
 public:
  explicit FileStateStorage(std::filesystem::path file) : file_(std::move(file)) {}
  Result<std::optional<PersistentState>> load() override;
  Status save(const PersistentState& state) override;

 private:
  std::filesystem::path file_;
};

// Keeps the state in memory: for tests and for runs without a state file.
class MemoryStateStorage : public StateStorage {
 public:
  Result<std::optional<PersistentState>> load() override { return saved_; }
  Status save(const PersistentState& state) override;
  int saves() const { return saves_; }

 private:
  std::optional<PersistentState> saved_;
  int saves_ = 0;
};

}  // namespace ebb::manager
