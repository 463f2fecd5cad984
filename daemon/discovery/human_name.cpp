// Human names for the cgroup layouts of systemd, Docker, containerd/CRI-O and Kubernetes, with
// either the systemd or the cgroupfs cgroup driver. Anything else is named by its last component,
// which for systemd units is the unit name itself.
#include <algorithm>
#include <array>
#include <optional>

#include "daemon/discovery/discovery.h"
#include "daemon/discovery/internal.h"

namespace ebb::discovery {
namespace {

// Container ids are 64 hex digits; like `docker ps`, names show the first 12.
constexpr std::size_t kShortId = 12;

bool is_container_id(std::string_view s) {
  return s.size() >= kShortId && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_pod_uid(std::string_view s) {
  return s.size() >= 8 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-' || c == '_';
         });
}

// systemd driver scopes: "<prefix><id>.scope".
struct RuntimeScope {
  std::string_view prefix;
  std::string_view runtime;
};
constexpr std::array<RuntimeScope, 4> kScopes{{
    {"docker-", "docker"},
    {"cri-containerd-", "containerd"},
    {"crio-", "crio"},
    {"libpod-", "podman"},
}};

// "docker-<id>.scope" -> "docker:<id12>"; for the cgroupfs driver a bare id, named
// "<parent>:<id12>" under a runtime's directory ("docker/<id>") or just "<id12>" in a pod.
std::optional<std::string> container_name(std::string_view component, std::string_view parent, bool in_pod) {
  constexpr std::string_view kScope = ".scope";
  if (component.ends_with(kScope)) {
    const auto stem = component.substr(0, component.size() - kScope.size());
    for (const auto& scope : kScopes) {
      if (!stem.starts_with(scope.prefix)) continue;
      const auto id = stem.substr(scope.prefix.size());
      if (is_container_id(id)) return std::string(scope.runtime) + ":" + std::string(id.substr(0, kShortId));
    }
    return std::nullopt;
  }
  if (!is_container_id(component)) return std::nullopt;
  const auto id = std::string(component.substr(0, kShortId));
  if (in_pod) return id;
  if (parent == "docker") return "docker:" + id;
  return std::nullopt;
}

// The pod uid in a pod's cgroup: "kubepods-burstable-pod<uid with '_'>.slice" (systemd driver,
// also under "kubelet-kubepods-...") or "pod<uid>" below a "kubepods" directory (cgroupfs).
std::optional<std::string> pod_uid(std::string_view component, bool below_kubepods) {
  constexpr std::string_view kSlice = ".slice";
  constexpr std::string_view kPod = "pod";
  std::string_view uid;
  if (component.ends_with(kSlice) && component.find("kubepods") != std::string_view::npos) {
    const auto stem = component.substr(0, component.size() - kSlice.size());
    const auto at = stem.rfind("-pod");
    if (at == std::string_view::npos) return std::nullopt;
    uid = stem.substr(at + 1 + kPod.size());
  } else if (below_kubepods && component.starts_with(kPod)) {
    uid = component.substr(kPod.size());
  }
  if (!is_pod_uid(uid)) return std::nullopt;
  std::string out(uid);
  // The systemd driver writes the uid's '-' as '_', since '-' separates the levels of slice names.
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

}  // namespace

std::string human_name(std::string_view relative_path) {
  const auto components = path_components(relative_path);
  if (components.empty()) return "/";
  bool below_kubepods = false;
  for (std::size_t i = 0; i < components.size(); ++i) {
    if (auto uid = pod_uid(components[i], below_kubepods)) {
      std::string name = "pod:" + *uid;
      if (i + 1 < components.size()) {
        const auto container = components[i + 1];
        name += "/" + container_name(container, components[i], true).value_or(std::string(container));
      }
      return name;
    }
    below_kubepods = below_kubepods || components[i] == "kubepods";
  }
  const auto parent = components.size() > 1 ? components[components.size() - 2] : std::string_view();
  if (auto container = container_name(components.back(), parent, false)) return *container;
  return std::string(components.back());
}

}  // namespace ebb::discovery
