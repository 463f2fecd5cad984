#include "daemon/common/error.h"

#include <cstring>

namespace ebb {

std::string Error::to_string() const {
  std::string out = message;
  if (!cgroup.empty()) out += " [cgroup " + cgroup + "]";
  if (!path.empty()) out += " [" + path + "]";
  if (errno_value != 0) out += std::string(": ") + std::strerror(errno_value);
  return out;
}

Error system_error(std::string message, std::string path, int errno_value, std::string cgroup) {
  return Error{std::move(message), std::move(path), std::move(cgroup), errno_value};
}

}  // namespace ebb
