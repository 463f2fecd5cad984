#pragma once
// Internal to discovery: cgroup paths as lists of components, and listing a cgroup's children.
#include <filesystem>
#include <string_view>
#include <vector>

namespace ebb::discovery {

// "a/b/c" -> {"a", "b", "c"}; leading, trailing and repeated slashes yield no empty component.
inline std::vector<std::string_view> path_components(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const auto component = path.substr(0, slash);
    if (!component.empty()) out.push_back(component);
    path.remove_prefix(slash == std::string_view::npos ? path.size() : slash + 1);
  }
  return out;
}

// Calls visit(name) for each subdirectory of `dir`. The tree changes under us (containers come
// and go), so a directory that cannot be listed, or vanishes while listed, just ends the list.
template <typename Visit>
void for_each_subdirectory(const std::filesystem::path& dir, Visit visit) {
  std::error_code listing;
  std::filesystem::directory_iterator it(dir, listing);
  for (const std::filesystem::directory_iterator end; !listing && it != end; it.increment(listing)) {
    std::error_code entry;
    if (!it->is_symlink(entry) && it->is_directory(entry)) visit(it->path().filename().string());
  }
}

}  // namespace ebb::discovery
