#include "daemon/api/node_service.h"

#include <set>

#include "daemon/api/loop_call.h"

namespace ebb::api {

namespace {

grpc::Status invalid(const std::string& message) { return {grpc::StatusCode::INVALID_ARGUMENT, message}; }

// The container a GetContainer or SetPolicy names: its path, or its human name when that is
// unique.
grpc::Status find_container(const control::Engine& engine, const std::string& name, const control::Container*& out) {
  if (auto it = engine.containers().find(name); it != engine.containers().end()) {
    out = &it->second;
    return grpc::Status::OK;
  }
  std::vector<const control::Container*> found;
  for (const auto& [path, c] : engine.containers()) {
    if (c.name == name) found.push_back(&c);
  }
  if (found.empty()) return {grpc::StatusCode::NOT_FOUND, "no managed container named '" + name + "'"};
  if (found.size() > 1) {
    std::string paths;
    for (const auto* c : found) paths += (paths.empty() ? "" : ", ") + c->path;
    return invalid("name: '" + name + "' names several containers (" + paths + "); give the path");
  }
  out = found.front();
  return grpc::Status::OK;
}

}  // namespace

std::string literal_selector(const std::string& path) {
  std::string out;
  for (char ch : path) {
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

NodeService::NodeService(boost::asio::io_context& io, control::Engine& engine, PolicyStore& policies, EventHub& hub,
                         NodeInfo info)
    : io_(io), engine_(engine), policies_(policies), hub_(hub), info_(std::move(info)) {}

template <typename Response, typename Fn>
grpc::Status NodeService::on_loop(Response* out, Fn fn) {
  auto result = call_on_loop(io_, [this, fn = std::move(fn)]() {
    std::pair<grpc::Status, Response> r;
    r.first = fn(engine_, r.second);
    return r;
  });
  if (!result) return {grpc::StatusCode::UNAVAILABLE, "ebbd's control loop did not answer in time"};
  *out = std::move(result->second);
  return result->first;
}

grpc::Status NodeService::GetNode(grpc::ServerContext*, const v1::GetNodeRequest*, v1::Node* out) {
  return on_loop(out, [this](const control::Engine& engine, v1::Node& node) {
    fill_node(engine, info_, node);
    return grpc::Status::OK;
  });
}

grpc::Status NodeService::ListContainers(grpc::ServerContext*, const v1::ListContainersRequest* request,
                                         v1::ListContainersResponse* out) {
  auto filter = ContainerFilter::from(*request);
  if (!filter) return invalid(filter.error().message);
  return on_loop(out, [filter = std::move(*filter)](const control::Engine& engine, v1::ListContainersResponse& list) {
    for (const auto& [path, c] : engine.containers()) {
      if (filter.matches(c)) fill_container(c, *list.add_containers());
    }
    return grpc::Status::OK;
  });
}

grpc::Status NodeService::GetContainer(grpc::ServerContext*, const v1::GetContainerRequest* request,
                                       v1::ContainerDetail* out) {
  if (auto valid = validate(*request); !valid) return invalid(valid.error().message);
  const std::size_t decisions = request->decisions() ? request->decisions() : 10;
  return on_loop(out, [name = request->name(), decisions](const control::Engine& engine, v1::ContainerDetail& detail) {
    const control::Container* c = nullptr;
    auto status = find_container(engine, name, c);
    if (status.ok()) fill_detail(*c, decisions, detail);
    return status;
  });
}

grpc::Status NodeService::WatchEvents(grpc::ServerContext* context, const v1::WatchEventsRequest* request,
                                      grpc::ServerWriter<v1::Event>* writer) {
  auto valid = validate(*request);
  if (!valid) return invalid(valid.error().message);
  auto subscription =
      std::make_shared<Subscription>(std::move(valid->filter), std::move(valid->kinds), [context] { context->TryCancel(); },
                                     hub_.queue());
  hub_.subscribe(subscription);
  // Headers now, so that a client knows its subscription is live before the first event.
  writer->SendInitialMetadata();
  grpc::Status status = grpc::Status::OK;
  const grpc::Status behind{grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "dropped: this reader fell more than " + std::to_string(hub_.queue()) +
                                " events behind"};
  for (bool open = true; open;) {
    v1::Event event;
    switch (subscription->next(event, std::chrono::milliseconds(100))) {
      case Subscription::Next::timeout:
        // The only way to notice a client that went away while nothing happens.
        if (context->IsCancelled()) {
          status = grpc::Status::CANCELLED;
          open = false;
        }
        break;
      case Subscription::Next::closed: open = false; break;
      case Subscription::Next::overflow:
        status = behind;
        open = false;
        break;
      case Subscription::Next::event:
        // A failed write is a reader gone, or one aborted for falling behind: next() says which.
        if (subscription->begin_write()) {
          const bool written = writer->Write(event);
          subscription->end_write();
          if (written) break;
        }
        switch (subscription->next(event, std::chrono::milliseconds(0))) {
          case Subscription::Next::overflow: status = behind; break;
          case Subscription::Next::closed: break;
          default: status = grpc::Status::CANCELLED;
        }
        open = false;
        break;
    }
  }
  hub_.unsubscribe(subscription);
  return status;
}

grpc::Status NodeService::SetPolicy(grpc::ServerContext*, const v1::SetPolicyRequest* request,
                                    v1::SetPolicyResponse* out) {
  auto valid = validate(*request);
  if (!valid) return invalid(valid.error().message);
  return on_loop(out, [this, request = std::move(*valid)](control::Engine& engine, v1::SetPolicyResponse& response) {
    std::string select = request.select;
    if (request.container) {
      const control::Container* c = nullptr;
      if (auto status = find_container(engine, *request.container, c); !status.ok()) return status;
      select = literal_selector(c->path);
    }
    auto stored = policies_.set(select, request.settings, request.reset);
    if (!stored) {
      const auto& e = stored.error();
      // A setting at odds with what is already stored is the caller's; a failed write is ours.
      if (e.path.empty() && e.errno_value == 0) return invalid(e.message);
      return grpc::Status(grpc::StatusCode::INTERNAL, "cannot persist the policy: " + e.to_string());
    }
    engine.set_api_overrides(policies_.overrides());
    response.set_select(select);
    *response.mutable_stored() = to_proto(*stored);
    auto selector = discovery::Selector::parse(select);
    for (const auto& [path, c] : engine.containers()) {
      if (selector && selector->matches(path)) response.add_matched(path);
    }
    return grpc::Status::OK;
  });
}

}  // namespace ebb::api
