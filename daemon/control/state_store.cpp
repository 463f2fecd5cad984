#include "daemon/control/state_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace ebb::control {

using nlohmann::json;

StateStore::StateStore(std::filesystem::path dir) : dir_(std::move(dir)), file_(dir_ / "originals.json") {}

Result<StateStore> StateStore::open(std::filesystem::path dir) {
  StateStore store(std::move(dir));
  std::ifstream in(store.file_);
  if (!in) {
    if (errno == ENOENT) return store;
    return system_error("cannot read state", store.file_.string(), errno);
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    const json doc = json::parse(text.str());
    if (doc.value("version", 0) != 1) return Error{"unsupported state version", store.file_.string()};
    for (const auto& [path, entry] : doc.at("cgroups").items()) {
      OriginalLimits limits;
      limits.cgroup_id = entry.at("id").get<std::uint64_t>();
      auto cpu_max = cgroup::parse_cpu_max(entry.at("cpu_max").get<std::string>());
      auto high = cgroup::parse_memory_value(entry.at("memory_high").get<std::string>());
      auto max = cgroup::parse_memory_value(entry.at("memory_max").get<std::string>());
      if (!cpu_max || !high || !max) return Error{"malformed limits for " + path, store.file_.string()};
      limits.cpu_max = *cpu_max;
      limits.memory_high = *high;
      limits.memory_max = *max;
      store.originals_[path] = limits;
    }
  } catch (const json::exception& e) {
    return Error{std::string("corrupt state: ") + e.what(), store.file_.string()};
  }
  return store;
}

const OriginalLimits* StateStore::find(const std::string& cgroup) const {
  auto it = originals_.find(cgroup);
  return it == originals_.end() ? nullptr : &it->second;
}

Status StateStore::remember(const std::string& cgroup, const OriginalLimits& limits) {
  auto it = originals_.find(cgroup);
  if (it != originals_.end() && it->second.cgroup_id == limits.cgroup_id) return ok_status();
  originals_[cgroup] = limits;
  return persist();
}

Status StateStore::forget(const std::string& cgroup) {
  if (!originals_.erase(cgroup)) return ok_status();
  return persist();
}

Status StateStore::persist() const {
  json cgroups = json::object();
  for (const auto& [path, limits] : originals_) {
    cgroups[path] = {{"id", limits.cgroup_id},
                     {"cpu_max", cgroup::format_cpu_max(limits.cpu_max)},
                     {"memory_high", cgroup::format_memory_value(limits.memory_high)},
                     {"memory_max", cgroup::format_memory_value(limits.memory_max)}};
  }
  const json doc = {{"version", 1}, {"cgroups", cgroups}};
  return write_file_atomically(file_, doc.dump(2) + "\n");
}

Status write_file_atomically(const std::filesystem::path& file, const std::string& content) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) return system_error("cannot create state directory", file.parent_path().string(), ec.value());
  const std::string temp = file.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return system_error("cannot write state", temp, errno);
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      return system_error("cannot write state", temp, err);
    }
    written += static_cast<std::size_t>(n);
  }
  const int synced = ::fsync(fd) == 0 ? 0 : errno;
  const int closed = ::close(fd) == 0 ? 0 : errno;
  if (synced != 0 || closed != 0) {
    const int err = synced != 0 ? synced : closed;
    ::unlink(temp.c_str());
    return system_error("cannot flush state", temp, err);
  }
  if (::rename(temp.c_str(), file.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    return system_error("cannot replace state", file.string(), err);
  }
  return ok_status();
}

}  // namespace ebb::control
