// scan(): the cgroups below the root that a selector matches, with whether ebbd may manage
// them. A cgroup that disappears midway is skipped rather than failing the scan.
#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "daemon/discovery/discovery.h"
#include "daemon/discovery/internal.h"

namespace ebb::discovery {
namespace {

// The controllers ebbd writes limits for; the parent must enable both for its children.
constexpr std::array<std::string_view, 2> kNeededControllers{"cpu", "memory"};

// Calls visit(relative path) for every directory below `root`, parents before children.
void walk(const std::filesystem::path& root, const std::string& relative,
          const std::function<void(const std::string&)>& visit) {
  for_each_subdirectory(relative.empty() ? root : root / relative, [&](const std::string& name) {
    const auto child = relative.empty() ? name : relative + "/" + name;
    visit(child);
    walk(root, child, visit);
  });
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// Why a cgroup under `parent` cannot be managed, or nullopt if it can.
std::optional<std::string> unmanageable_reason(const std::string& parent, const Result<std::set<std::string>>& delegated) {
  const std::string parent_name = parent.empty() ? "/ (the cgroup root)" : parent;
  if (!delegated) return "cannot read cgroup.subtree_control of parent " + parent_name + ": " + delegated.error().to_string();
  std::vector<std::string_view> missing;
  for (const auto controller : kNeededControllers) {
    if (!delegated->contains(std::string(controller))) missing.push_back(controller);
  }
  if (missing.empty()) return std::nullopt;
  std::string what = missing.size() == 1 ? "the " + std::string(missing[0]) + " controller"
                                         : "the " + std::string(missing[0]) + " and " + std::string(missing[1]) + " controllers";
  return "parent " + parent_name + " does not delegate " + what;
}

}  // namespace

Result<std::vector<Candidate>> scan(const cgroup::CgroupFs& fs, const std::vector<Selector>& selectors) {
  std::error_code ec;
  if (!std::filesystem::is_directory(fs.root(), ec))
    return system_error("cgroup root is not a directory", fs.root().string(), ec ? ec.value() : ENOTDIR);

  std::vector<Candidate> out;
  std::map<std::string, Result<std::set<std::string>>> delegated_by_parent;
  walk(fs.root(), "", [&](const std::string& path) {
    if (std::none_of(selectors.begin(), selectors.end(), [&](const Selector& s) { return s.matches(path); })) return;
    const auto id = fs.cgroup_id(path);
    if (!id) return;  // gone since it was listed
    const auto parent = parent_of(path);
    auto delegated = delegated_by_parent.find(parent);
    if (delegated == delegated_by_parent.end())
      delegated = delegated_by_parent.emplace(parent, fs.subtree_control(parent)).first;
    if (!delegated->second && delegated->second.error().vanished()) return;
    Candidate c;
    c.path = path;
    c.name = human_name(path);
    c.id = *id;
    if (auto reason = unmanageable_reason(parent, delegated->second)) {
      c.manageable = false;
      c.unmanageable_reason = std::move(*reason);
    }
    out.push_back(std::move(c));
  });
  std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) { return a.path < b.path; });
  return out;
}

}  // namespace ebb::discovery
