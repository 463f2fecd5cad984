#pragma once
// The few etcd v3 calls the manager replicas need, over etcd's JSON gateway (HTTP POST to
// /v3/..., keys and values in base64, 64-bit numbers as strings). Endpoints are tried in turn
// until one answers. One request at a time per client (calls are serialised); use one client
// per thread that must not wait for another's request.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "daemon/common/error.h"

namespace httplib {
class Client;
}

namespace ebb::manager::etcd {

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0;
};

struct TxnResult {
  bool succeeded = false;
  std::int64_t revision = 0;              // the store's revision after the txn
  std::optional<KeyValue> guard;          // on failure: the guard key as it is now (nullopt: absent)
};

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

class Client {
 public:
  // endpoints: "host:port" each.
  Client(std::vector<std::string> endpoints, std::chrono::milliseconds timeout);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<std::optional<KeyValue>> get(const std::string& key);
  // Every key that starts with `prefix`, in key order.
  Result<std::vector<KeyValue>> get_prefix(const std::string& prefix);
  // Puts `value` at `key`, bound to `lease` unless 0.
  Status put(const std::string& key, const std::string& value, std::int64_t lease = 0);
  // Puts `value` at `key` (bound to `lease` unless 0) only if `guard`'s create revision is
  // `guard_created` (0: `guard` must be absent). The election and the fenced save are both this.
  Result<TxnResult> put_if_created(const std::string& guard, std::int64_t guard_created, const std::string& key,
                                   const std::string& value, std::int64_t lease = 0);
  struct Lease {
    std::int64_t id = 0;
    std::int64_t ttl_seconds = 0;
  };
  Result<Lease> grant_lease(std::chrono::seconds ttl);
  // The lease's TTL after the refresh; 0: the lease is gone (expired or revoked).
  Result<std::int64_t> keep_alive(std::int64_t lease);
  Status revoke_lease(std::int64_t lease);
  // Drops the history before `revision` (the latest value of every key stays).
  Status compact(std::int64_t revision);

 private:
  Result<nlohmann::json> post(const std::string& path, const nlohmann::json& body);

  std::mutex mu_;
  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  std::size_t current_ = 0;
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace ebb::manager::etcd
