// Selector: a glob over cgroup paths. Within one component fnmatch(3) does the work ('*', '?',
// '[...]', '\' escapes); '**' components are matched here because they span components.
#include <fnmatch.h>

#include <optional>
#include <span>

#include "daemon/discovery/discovery.h"
#include "daemon/discovery/internal.h"

namespace ebb::discovery {
namespace {

constexpr std::string_view kAnyDepth = "**";

// What is wrong with one component of a pattern, if anything. fnmatch(3) would silently treat
// an unterminated '[' as a literal; a selector that can never match what its author meant is
// better refused.
std::optional<std::string> component_problem(std::string_view c) {
  if (c == "." || c == "..") return "'.' and '..' are not allowed";
  if (c != kAnyDepth && c.find(kAnyDepth) != std::string_view::npos)
    return "'**' must be a whole path component, as in 'a/**/b'";
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (c[i] == '\\') {
      if (++i == c.size()) return "it ends with a lone '\\'";
    } else if (c[i] == '[') {
      std::size_t j = i + 1;
      if (j < c.size() && (c[j] == '!' || c[j] == '^')) ++j;
      if (j < c.size() && c[j] == ']') ++j;  // a ']' first in the class is a literal
      j = c.find(']', j);
      if (j == std::string_view::npos) return "unterminated '[' in '" + std::string(c) + "'";
      i = j;
    }
  }
  return std::nullopt;
}

bool match_from(std::span<const std::string> pattern, std::span<const std::string_view> path) {
  if (pattern.empty()) return path.empty();
  if (pattern.front() == kAnyDepth) {
    for (std::size_t skip = 0; skip <= path.size(); ++skip) {
      if (match_from(pattern.subspan(1), path.subspan(skip))) return true;
    }
    return false;
  }
  if (path.empty()) return false;
  const std::string component(path.front());  // fnmatch wants NUL-terminated strings
  return ::fnmatch(pattern.front().c_str(), component.c_str(), 0) == 0 &&
         match_from(pattern.subspan(1), path.subspan(1));
}

Error invalid(const std::string& pattern, const std::string& why) {
  Error e;
  e.message = "invalid selector '" + pattern + "': " + why;
  return e;
}

}  // namespace

Result<Selector> Selector::parse(std::string pattern) {
  if (pattern.empty()) return invalid(pattern, "it is empty");
  if (pattern.front() == '/')
    return invalid(pattern, "selectors are relative to the cgroup root; drop the leading '/'");
  Selector selector(pattern);
  for (std::string_view rest = pattern;;) {
    const auto slash = rest.find('/');
    const auto component = rest.substr(0, slash);
    if (component.empty()) return invalid(pattern, "it has an empty path component");
    if (auto problem = component_problem(component)) return invalid(pattern, *problem);
    // Consecutive '**' match exactly what one does.
    if (component != kAnyDepth || selector.components_.empty() || selector.components_.back() != kAnyDepth)
      selector.components_.emplace_back(component);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return selector;
}

bool Selector::matches(std::string_view relative_path) const {
  const auto path = path_components(relative_path);
  return match_from(components_, path);
}

}  // namespace ebb::discovery
