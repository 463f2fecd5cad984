#include "manager/etcd/client.h"

#include <algorithm>
#include <array>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace ebb::manager::etcd {
namespace {

using nlohmann::json;

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The gateway writes int64 as strings and leaves out fields at their zero value.
std::int64_t number(const json& object, const char* field) {
  if (!object.contains(field)) return 0;
  const auto& v = object[field];
  return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<std::int64_t>();
}

Result<KeyValue> key_value(const json& kv) {
  auto key = base64_decode(kv.value("key", ""));
  auto value = base64_decode(kv.value("value", ""));
  if (!key || !value) return Error{"etcd: a key or value is not base64"};
  return KeyValue{*key, *value, number(kv, "create_revision"), number(kv, "mod_revision"), number(kv, "lease")};
}

Result<std::optional<KeyValue>> first_kv(const json& range) {
  if (!range.contains("kvs") || range["kvs"].empty()) return std::optional<KeyValue>{};
  auto kv = key_value(range["kvs"][0]);
  if (!kv) return kv.error();
  return std::optional<KeyValue>(std::move(*kv));
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t chunk = 0;
    for (std::size_t k = 0; k < 3; ++k)
      chunk = (chunk << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    out += kAlphabet[(chunk >> 18) & 63];
    out += kAlphabet[(chunk >> 12) & 63];
    out += n > 1 ? kAlphabet[(chunk >> 6) & 63] : '=';
    out += n > 2 ? kAlphabet[chunk & 63] : '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::array<int, 256> index;
  index.fill(-1);
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) index[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int>(i);
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    const int v = index[static_cast<unsigned char>(c)];
    if (v < 0) return Error{"not base64"};
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

Client::Client(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {}

Client::~Client() = default;

Result<json> Client::post(const std::string& path, const json& body) {
  std::lock_guard lock(mu_);
  const std::string payload = body.dump();
  std::string failures;
  for (std::size_t attempt = 0; attempt < endpoints_.size(); ++attempt) {
    if (!http_) {
      http_ = std::make_unique<httplib::Client>("http://" + endpoints_[current_]);
      http_->set_connection_timeout(timeout_);
      http_->set_read_timeout(timeout_);
      http_->set_write_timeout(timeout_);
    }
    auto response = http_->Post(path, payload, "application/json");
    if (response && response->status == 200) {
      json doc = json::parse(response->body, nullptr, false);
      if (doc.is_discarded()) return Error{"etcd " + endpoints_[current_] + path + ": the answer is not JSON"};
      return doc;
    }
    // An answer other than 200 is etcd refusing the request: another endpoint would too.
    if (response)
      return Error{"etcd " + endpoints_[current_] + path + ": HTTP " + std::to_string(response->status) + " " +
                   response->body};
    failures += (failures.empty() ? "" : "; ") + endpoints_[current_] + ": " + httplib::to_string(response.error());
    http_.reset();
    current_ = (current_ + 1) % endpoints_.size();
  }
  return Error{"etcd unreachable (" + failures + ")"};
}

Result<std::optional<KeyValue>> Client::get(const std::string& key) {
  auto doc = post("/v3/kv/range", {{"key", base64_encode(key)}});
  if (!doc) return doc.error();
  return first_kv(*doc);
}

Result<std::vector<KeyValue>> Client::get_prefix(const std::string& prefix) {
  // The range end is the prefix with its last byte incremented (a prefix of 0xff bytes is not
  // supported: the manager's prefixes end in '/').
  std::string end = prefix;
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return Error{"etcd: cannot range over the prefix " + prefix};
  end.back() = static_cast<char>(end.back() + 1);
  auto doc = post("/v3/kv/range", {{"key", base64_encode(prefix)}, {"range_end", base64_encode(end)}});
  if (!doc) return doc.error();
  std::vector<KeyValue> out;
  for (const auto& kv : doc->value("kvs", json::array())) {
    auto one = key_value(kv);
    if (!one) return one.error();
    out.push_back(std::move(*one));
  }
  return out;
}

Status Client::put(const std::string& key, const std::string& value, std::int64_t lease) {
  json body = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  auto doc = post("/v3/kv/put", body);
  if (!doc) return doc.error();
  return ok_status();
}

Result<TxnResult> Client::put_if_created(const std::string& guard, std::int64_t guard_created, const std::string& key,
                                         const std::string& value, std::int64_t lease) {
  json put = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  const json body = {
      {"compare", json::array({{{"target", "CREATE"}, {"key", base64_encode(guard)},
                                {"create_revision", std::to_string(guard_created)}}})},
      {"success", json::array({{{"request_put", put}}})},
      {"failure", json::array({{{"request_range", {{"key", base64_encode(guard)}}}}})}};
  auto doc = post("/v3/kv/txn", body);
  if (!doc) return doc.error();
  TxnResult result;
  result.succeeded = doc->value("succeeded", false);
  result.revision = number(doc->value("header", json::object()), "revision");
  if (!result.succeeded) {
    const auto& responses = doc->value("responses", json::array());
    if (!responses.empty()) {
      auto guard_kv = first_kv(responses[0].value("response_range", json::object()));
      if (!guard_kv) return guard_kv.error();
      result.guard = std::move(*guard_kv);
    }
  }
  return result;
}

Result<Client::Lease> Client::grant_lease(std::chrono::seconds ttl) {
  auto doc = post("/v3/lease/grant", {{"TTL", std::to_string(ttl.count())}});
  if (!doc) return doc.error();
  if (doc->contains("error") && !doc->value("error", "").empty()) return Error{"etcd: lease grant: " + doc->value("error", "")};
  Lease lease{number(*doc, "ID"), number(*doc, "TTL")};
  if (lease.id == 0) return Error{"etcd: lease grant returned no lease"};
  return lease;
}

Result<std::int64_t> Client::keep_alive(std::int64_t lease) {
  auto doc = post("/v3/lease/keepalive", {{"ID", std::to_string(lease)}});
  if (!doc) return doc.error();
  if (!doc->contains("result")) return Error{"etcd: lease keepalive: " + doc->dump()};
  return number((*doc)["result"], "TTL");
}

Status Client::revoke_lease(std::int64_t lease) {
  auto doc = post("/v3/lease/revoke", {{"ID", std::to_string(lease)}});
  if (!doc) return doc.error();
  return ok_status();
}

Status Client::compact(std::int64_t revision) {
  auto doc = post("/v3/kv/compaction", {{"revision", std::to_string(revision)}});
  if (!doc) return doc.error();
  return ok_status();
}

}  // namespace ebb::manager::etcd
