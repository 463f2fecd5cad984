// The real gRPC server (unix socket) over an Engine on a fake cgroup tree, driven by the real
// event loop on its own thread: every RPC, bad input, cancelled and slow streams, persistence.
#include <catch2/catch.hpp>
#include <httplib.h>

#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/credentials.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstring>
#include <cctype>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "daemon/api/api.h"
#include "daemon/control/event_loop.h"
#include "daemon/policy/heuristic.h"
#include "ebb/v1/node.grpc.pb.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb;
using namespace std::chrono_literals;

namespace {

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// One running ebbd minus main: engine, loop thread, API.
class Daemon {
 public:
  Daemon(const config::Config& cfg, std::size_t event_queue) : fs(cfg.cgroup_root) {
    auto opened = control::StateStore::open(cfg.state_dir);
    REQUIRE(opened.ok());
    store = std::make_unique<control::StateStore>(std::move(*opened));
    engine = std::make_unique<control::Engine>(cfg, control::NodeCapacity{4, 8ull << 30}, fs, fs, store.get(),
                                               policy::heuristic_factory());
    auto started = api::Api::start(io, *engine, cfg, api::NodeInfo{"test"}, event_queue);
    REQUIRE(started.ok());
    served = std::move(*started);
    control::LoopHooks hooks;
    hooks.after_tick = [this] { served->after_tick(); };
    loop = std::make_unique<control::EventLoop>(io, *engine, nullptr, hooks);
    thread = std::thread([this] { (void)loop->run(); });
  }
  ~Daemon() {
    loop->stop();
    thread.join();
    served.reset();
  }

  cgroup::CgroupFs fs;
  std::unique_ptr<control::StateStore> store;
  std::unique_ptr<control::Engine> engine;
  boost::asio::io_context io;
  std::unique_ptr<api::Api> served;
  std::unique_ptr<control::EventLoop> loop;
  std::thread thread;
};

class ApiFixture {
 public:
  ApiFixture() {
    tree.add_cgroup("ebb.slice");
    tree.write("ebb.slice/cgroup.subtree_control", "cpu memory\n");
    for (const char* cg : {"ebb.slice/web", "ebb.slice/db"}) add(cg);
    dir = tree.root().parent_path() / (tree.root().filename().string() + "-api");
    cfg.cgroup_root = tree.root();
    cfg.state_dir = dir / "state";
    cfg.socket = dir / "run" / "ebbd.sock";
    cfg.metrics_listen = "127.0.0.1:0";
    cfg.select = {"ebb.slice/*"};
    cfg.policy = config::PolicyKind::heuristic;
    cfg.tick = 50ms;
  }
  ~ApiFixture() {
    daemon.reset();
    std::filesystem::remove_all(dir);
  }

  // Without PSI files, as on a kernel built without PSI: a pressure trigger opened on a fake
  // tree's regular file would overwrite it. Built aside and renamed into place, so that it
  // appears whole, as a real cgroup does: the daemon never reads a half-written file.
  void add(const std::string& cg) {
    const std::string staged = "staging/" + std::filesystem::path(cg).filename().string();
    tree.add_cgroup(staged);
    for (const char* f : {"/cpu.pressure", "/memory.pressure", "/io.pressure"}) std::filesystem::remove(tree.root() / (staged + f));
    std::filesystem::rename(tree.root() / staged, tree.root() / cg);
  }

  void start(std::size_t event_queue = api::Subscription::kDefaultCapacity) {
    daemon = std::make_unique<Daemon>(cfg, event_queue);
    channel = grpc::CreateChannel("unix:" + cfg.socket.string(), grpc::InsecureChannelCredentials());
    stub = v1::NodeService::NewStub(channel);
    REQUIRE(eventually([&] { return list().containers_size() == 2; }));
  }
  void stop() { daemon.reset(); }

  // An API started beside the fixture's daemon (its own engine and state) that must fail: the message.
  std::string start_error(const std::string& state) {
    auto opened = control::StateStore::open(cfg.state_dir / state);
    REQUIRE(opened.ok());
    cgroup::CgroupFs fs(cfg.cgroup_root);
    control::Engine engine(cfg, {}, fs, fs, &*opened, policy::heuristic_factory());
    boost::asio::io_context io;
    auto started = api::Api::start(io, engine, cfg, {});
    REQUIRE_FALSE(started.ok());
    return started.error().message;
  }

  v1::ListContainersResponse list(const std::string& select = "") {
    v1::ListContainersRequest request;
    request.set_select(select);
    v1::ListContainersResponse response;
    grpc::ClientContext ctx;
    REQUIRE(stub->ListContainers(&ctx, request, &response).ok());
    return response;
  }

  grpc::Status set_policy(const v1::SetPolicyRequest& request, v1::SetPolicyResponse* response = nullptr) {
    v1::SetPolicyResponse ignored;
    grpc::ClientContext ctx;
    return stub->SetPolicy(&ctx, request, response ? response : &ignored);
  }

  // A number from the metrics page: `name` is a series without labels.
  double metric(const std::string& name) {
    const auto text = metrics();
    const auto at = text.find("\n" + name + " ");
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + name.size() + 2));
  }

  std::string metrics() {
    httplib::Client http("127.0.0.1", daemon->served->metrics_port());
    auto result = http.Get("/metrics");
    REQUIRE(result);
    REQUIRE(result->status == 200);
    return result->body;
  }

  // Keeps CPU use moving so that the controller has something to decide on.
  void burn(const std::string& cg, std::uint64_t usage_usec) {
    tree.write(cg + "/cpu.stat", "usage_usec " + std::to_string(usage_usec) +
                                     "\nuser_usec 0\nsystem_usec 0\nnr_periods 100\nnr_throttled 50\nthrottled_usec 100\n");
  }

  testing::FakeCgroupTree tree;
  std::filesystem::path dir;
  config::Config cfg;
  std::unique_ptr<Daemon> daemon;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::NodeService::Stub> stub;
};

}  // namespace

TEST_CASE_METHOD(ApiFixture, "GetNode reports the node, the engine's settings and the version") {
  start();
  v1::Node node;
  grpc::ClientContext ctx;
  REQUIRE(stub->GetNode(&ctx, {}, &node).ok());
  CHECK(node.version() == "test");
  CHECK(node.cpu_cores() == 4);
  CHECK(node.memory_bytes() == 8ull << 30);
  CHECK(node.cpu_budget_cores() == 4);
  CHECK(node.containers() == 2);
  CHECK(node.policy() == "heuristic");
  CHECK(node.cgroup_root() == tree.root().string());
  CHECK(node.probes_size() == 0);
  CHECK(node.tick_seconds() == Approx(0.05));
  CHECK(node.ticks() > 0);
}

TEST_CASE_METHOD(ApiFixture, "the socket is 0660 and the health service answers SERVING") {
  start();
  struct stat st {};
  REQUIRE(::stat(cfg.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
  grpc::ClientContext ctx;
  grpc::ByteBuffer ignored;
  // Health: the standard service answers SERVING for ebb.v1.NodeService.
  auto health = grpc::CreateChannel("unix:" + cfg.socket.string(), grpc::InsecureChannelCredentials());
  grpc::GenericStub generic(health);
  // A raw grpc.health.v1.HealthCheckRequest {service: "ebb.v1.NodeService"}.
  const std::string service = "ebb.v1.NodeService";
  std::string request = std::string(1, '\x0a') + char(service.size()) + service;
  grpc::Slice slice(request);
  grpc::ByteBuffer buffer(&slice, 1);
  grpc::ByteBuffer reply;
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", {}, &buffer, &reply, [&](grpc::Status s) {
    std::lock_guard lock(m);
    status = s;
    done = true;
    cv.notify_one();
  });
  std::unique_lock lock(m);
  REQUIRE(cv.wait_for(lock, 5s, [&] { return done; }));
  REQUIRE(status.ok());
  std::vector<grpc::Slice> slices;
  REQUIRE(reply.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes += std::string(reinterpret_cast<const char*>(s.begin()), s.size());
  CHECK(bytes == std::string("\x08\x01", 2));  // status: SERVING
}

TEST_CASE_METHOD(ApiFixture, "ListContainers filters by glob over path or name and by mode and a bad glob is named") {
  start();
  CHECK(list().containers_size() == 2);
  auto web = list("ebb.slice/w*");
  REQUIRE(web.containers_size() == 1);
  CHECK(web.containers(0).name() == "web");
  CHECK(web.containers(0).mode() == v1::MODE_AUTO);
  CHECK(list("db").containers_size() == 1);
  CHECK(list("nothing*").containers_size() == 0);

  v1::ListContainersRequest request;
  request.set_mode(v1::MODE_OFF);
  v1::ListContainersResponse response;
  {
    grpc::ClientContext ctx;
    REQUIRE(stub->ListContainers(&ctx, request, &response).ok());
    CHECK(response.containers_size() == 0);
  }
  request.set_mode(v1::MODE_UNSPECIFIED);
  request.set_select("ebb.slice/[");
  grpc::ClientContext ctx;
  auto status = stub->ListContainers(&ctx, request, &response);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::StartsWith("select:"));
}

TEST_CASE_METHOD(ApiFixture, "GetContainer by name or path returns limits, policy and recent decisions") {
  tree.write("ebb.slice/web/cpu.max", "max 100000\n");
  start();
  std::uint64_t usage = 0;
  v1::ContainerDetail detail;
  REQUIRE(eventually([&] {
    usage += 40000;  // 0.8 cores over 50 ms, throttled: the heuristic must act
    burn("ebb.slice/web", usage);
    v1::GetContainerRequest request;
    request.set_name("web");
    grpc::ClientContext ctx;
    return stub->GetContainer(&ctx, request, &detail).ok() && detail.decisions_size() > 0;
  }));
  CHECK(detail.container().path() == "ebb.slice/web");
  CHECK(detail.policy().mode() == v1::MODE_AUTO);
  CHECK(detail.controller() == "heuristic");
  CHECK(detail.decisions(0).source() == "heuristic");
  CHECK_FALSE(detail.decisions(0).reason().empty());
  CHECK(detail.decisions(0).writes_size() > 0);

  v1::GetContainerRequest by_path;
  by_path.set_name("ebb.slice/db");
  grpc::ClientContext ctx;
  REQUIRE(stub->GetContainer(&ctx, by_path, &detail).ok());
  CHECK(detail.container().name() == "db");

  for (auto [name, code] : {std::pair<std::string, grpc::StatusCode>{"missing", grpc::StatusCode::NOT_FOUND},
                            {"", grpc::StatusCode::INVALID_ARGUMENT}}) {
    v1::GetContainerRequest bad;
    bad.set_name(name);
    grpc::ClientContext bad_ctx;
    CHECK(stub->GetContainer(&bad_ctx, bad, &detail).error_code() == code);
  }
}

TEST_CASE_METHOD(ApiFixture, "SetPolicy applies to the cgroup and persists and is loaded again after a restart") {
  start();
  v1::SetPolicyRequest request;
  request.set_container("web");
  request.mutable_settings()->set_cpu_max_cores(0.25);
  v1::SetPolicyResponse response;
  REQUIRE(set_policy(request, &response).ok());
  CHECK(response.select() == "ebb.slice/web");
  REQUIRE(response.matched_size() == 1);
  CHECK(response.stored().cpu_max_cores() == 0.25);
  // The controller now stays at or below 0.25 cores: cpu.max is written accordingly.
  std::uint64_t usage = 0;
  CHECK(eventually([&] {
    usage += 100000;  // two cores' worth: it wants more than the cap
    burn("ebb.slice/web", usage);
    const auto text = tree.read("ebb.slice/web/cpu.max");
    // A read may race with the daemon rewriting the file: empty text is not a quota.
    return !text.empty() && std::isdigit(static_cast<unsigned char>(text[0])) && std::strtoull(text.c_str(), nullptr, 10) <= 25000;
  }));
  std::ifstream file(cfg.state_dir / "policies.json");
  std::stringstream json;
  json << file.rdbuf();
  CHECK_THAT(json.str(), Catch::Contains("\"select\": \"ebb.slice/web\""));
  CHECK_THAT(json.str(), Catch::Contains("\"cpuMaxCores\": 0.25"));

  v1::SetPolicyRequest off;
  off.set_select("ebb.slice/d*");
  off.mutable_settings()->set_mode(v1::MODE_OFF);
  REQUIRE(set_policy(off).ok());

  stop();
  start();
  v1::ListContainersRequest only_off;
  only_off.set_mode(v1::MODE_OFF);
  v1::ListContainersResponse listed;
  grpc::ClientContext ctx;
  REQUIRE(stub->ListContainers(&ctx, only_off, &listed).ok());
  REQUIRE(listed.containers_size() == 1);
  CHECK(listed.containers(0).name() == "db");
  v1::GetContainerRequest get;
  get.set_name("web");
  v1::ContainerDetail detail;
  grpc::ClientContext get_ctx;
  REQUIRE(stub->GetContainer(&get_ctx, get, &detail).ok());
  CHECK(detail.policy().cpu_max_cores() == 0.25);
}

TEST_CASE_METHOD(ApiFixture, "SetPolicy refuses bad input with INVALID_ARGUMENT naming the field") {
  start();
  struct Case {
    const char* what;
    std::function<void(v1::SetPolicyRequest&)> build;
    grpc::StatusCode code;
    const char* prefix;
  };
  const std::vector<Case> cases = {
      {"no target", [](auto&) {}, grpc::StatusCode::INVALID_ARGUMENT, "target:"},
      {"empty container", [](auto& r) { r.set_container(""); }, grpc::StatusCode::INVALID_ARGUMENT, "container:"},
      {"bad glob", [](auto& r) { r.set_select("/abs"); }, grpc::StatusCode::INVALID_ARGUMENT, "select:"},
      {"negative cpu_min",
       [](auto& r) {
         r.set_container("web");
         r.mutable_settings()->set_cpu_min_cores(-1);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "settings.cpu_min_cores: must be between"},
      {"throttle target above 1",
       [](auto& r) {
         r.set_container("web");
         r.mutable_settings()->set_throttle_target(2);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "settings.throttle_target:"},
      {"min above max",
       [](auto& r) {
         r.set_container("web");
         r.mutable_settings()->set_cpu_min_cores(2);
         r.mutable_settings()->set_cpu_max_cores(1);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "settings.cpu_min_cores: above cpu_max_cores"},
      {"tiny memory",
       [](auto& r) {
         r.set_container("web");
         r.mutable_settings()->set_memory_max_bytes(10);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "settings.memory_max_bytes:"},
      {"unknown mode",
       [](auto& r) {
         r.set_container("web");
         r.mutable_settings()->set_mode(static_cast<v1::Mode>(42));
       },
       grpc::StatusCode::INVALID_ARGUMENT, "settings.mode:"},
      {"unknown container",
       [](auto& r) {
         r.set_container("nope");
         r.mutable_settings()->set_mode(v1::MODE_OFF);
       },
       grpc::StatusCode::NOT_FOUND, "no managed container named 'nope'"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    v1::SetPolicyRequest request;
    c.build(request);
    auto status = set_policy(request);
    CHECK(status.error_code() == c.code);
    CHECK_THAT(status.error_message(), Catch::StartsWith(c.prefix));
  }
  // Stored settings conflict with a later one: the merged result is checked too.
  v1::SetPolicyRequest max;
  max.set_container("web");
  max.mutable_settings()->set_cpu_max_cores(1);
  REQUIRE(set_policy(max).ok());
  v1::SetPolicyRequest min;
  min.set_container("web");
  min.mutable_settings()->set_cpu_min_cores(2);
  auto status = set_policy(min);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::StartsWith("settings.cpu_min_cores: above cpu_max_cores"));
  CHECK_FALSE(std::filesystem::exists(cfg.state_dir / "policies.json.tmp"));
}

TEST_CASE_METHOD(ApiFixture, "WatchEvents streams adoptions and decisions and drops filtered by kind and glob") {
  start();
  v1::WatchEventsRequest request;
  request.set_select("ebb.slice/new*");
  grpc::ClientContext ctx;
  // A missing event must fail the test, not hang it.
  ctx.set_deadline(std::chrono::system_clock::now() + 90s);
  auto reader = stub->WatchEvents(&ctx, request);
  reader->WaitForInitialMetadata();
  add("ebb.slice/new1");
  v1::Event event;
  REQUIRE(reader->Read(&event));
  CHECK(event.kind() == v1::EVENT_KIND_ADOPTED);
  CHECK(event.path() == "ebb.slice/new1");
  std::uint64_t usage = 0;
  // The cgroup's usage keeps moving until a decision comes, then it goes away.
  std::thread churn([&] {
    for (int i = 0; i < 1200 && !std::filesystem::exists(tree.root() / "stop"); ++i) {  // 60 s on a loaded machine
      usage += 45000;
      burn("ebb.slice/new1", usage);
      std::this_thread::sleep_for(50ms);
    }
  });
  bool decided = false;
  while (!decided && reader->Read(&event)) decided = event.kind() == v1::EVENT_KIND_DECISION;
  tree.write("stop", "");
  churn.join();
  CHECK(decided);
  CHECK(event.decision().writes_size() > 0);
  tree.remove_cgroup("ebb.slice/new1");
  bool dropped = false;
  while (!dropped && reader->Read(&event)) dropped = event.kind() == v1::EVENT_KIND_DROPPED;
  CHECK(dropped);
  CHECK(event.path() == "ebb.slice/new1");
  ctx.TryCancel();

  v1::WatchEventsRequest bad;
  bad.add_kinds(static_cast<v1::EventKind>(99));
  grpc::ClientContext bad_ctx;
  auto bad_reader = stub->WatchEvents(&bad_ctx, bad);
  while (bad_reader->Read(&event)) {
  }
  auto status = bad_reader->Finish();
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK_THAT(status.error_message(), Catch::StartsWith("kinds[0]: unknown event kind 99"));
}

TEST_CASE_METHOD(ApiFixture, "a cancelled stream is cleaned up") {
  start();
  auto subscribers = [&] { return metric("ebbd_event_subscribers"); };
  {
    grpc::ClientContext ctx;
    auto reader = stub->WatchEvents(&ctx, {});
    reader->WaitForInitialMetadata();
    CHECK(subscribers() == 1);
    ctx.TryCancel();
    CHECK(eventually([&] { return subscribers() == 0; }));
  }

}

TEST_CASE_METHOD(ApiFixture, "the metrics endpoint serves per-container series and ebbd's health") {
  start();
  REQUIRE(eventually([&] { return metrics().find("ebbd_tick_duration_seconds_count 0\n") == std::string::npos; }));
  const auto text = metrics();
  CHECK_THAT(text, Catch::Contains("# TYPE ebb_container_cpu_limit_cores gauge"));
  CHECK_THAT(text, Catch::Contains("ebb_container_memory_current_bytes{container=\"ebb.slice/web\",name=\"web\"}"));
  CHECK_THAT(text, Catch::Contains("# TYPE ebbd_tick_duration_seconds histogram"));
  CHECK_THAT(text, Catch::Contains("ebbd_containers 2\n"));
  CHECK_THAT(text, Catch::Contains("ebbd_probes_loaded 0\n"));
}

TEST_CASE_METHOD(ApiFixture, "a second daemon on a live socket is refused and a stale socket is replaced") {
  start();
  CHECK_THAT(start_error("second"), Catch::Contains("another server is listening"));
  stop();
  // A socket file left behind (as by a crash) does not keep the next ebbd from starting.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, cfg.socket.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);
  REQUIRE(std::filesystem::is_socket(cfg.socket));
  start();
  CHECK(list().containers_size() == 2);
}

// Events big enough that a reader that does not read fills gRPC's flow-control window (64 KiB
// per stream, BDP probing off) within a round; then its writes block, its queue (16 here) fills
// and the hub drops it. Meanwhile the loop must go on ticking and another reader must go on
// receiving.
TEST_CASE_METHOD(ApiFixture, "a reader that stops reading is dropped without holding up the loop or other readers") {
  start(16);
  v1::WatchEventsRequest lifecycle;
  lifecycle.add_kinds(v1::EVENT_KIND_ADOPTED);
  lifecycle.add_kinds(v1::EVENT_KIND_DROPPED);

  grpc::ChannelArguments slow_args;
  slow_args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto slow_stub = v1::NodeService::NewStub(
      grpc::CreateCustomChannel("unix:" + cfg.socket.string(), grpc::InsecureChannelCredentials(), slow_args));
  grpc::ClientContext slow_ctx;
  slow_ctx.set_deadline(std::chrono::system_clock::now() + 240s);  // a drop that never comes fails the test
  auto slow = slow_stub->WatchEvents(&slow_ctx, lifecycle);
  slow->WaitForInitialMetadata();

  grpc::ClientContext fast_ctx;
  fast_ctx.set_deadline(std::chrono::system_clock::now() + 240s);
  auto fast = stub->WatchEvents(&fast_ctx, lifecycle);
  fast->WaitForInitialMetadata();
  std::mutex seen_mutex;
  std::set<std::string> fast_adopted;
  std::size_t fast_events = 0;
  std::thread reading([&] {
    v1::Event e;
    while (fast->Read(&e)) {
      std::lock_guard lock(seen_mutex);
      ++fast_events;
      if (e.kind() == v1::EVENT_KIND_ADOPTED) fast_adopted.insert(e.path());
    }
  });
  REQUIRE(eventually([&] { return metric("ebbd_event_subscribers") == 2; }));

  const std::string padding(200, 'x');
  int rounds = 0;
  for (; rounds < 20 && metric("ebbd_event_streams_dropped_total") == 0; ++rounds) {
    const double ticks = metric("ebbd_tick_duration_seconds_count");
    for (int i = 0; i < 100; ++i) add("ebb.slice/c" + std::to_string(i) + "-" + padding);
    REQUIRE(eventually([&] { return metric("ebbd_containers") == 102; }, 60s));
    for (int i = 0; i < 100; ++i) tree.remove_cgroup("ebb.slice/c" + std::to_string(i) + "-" + padding);
    REQUIRE(eventually([&] { return metric("ebbd_containers") == 2; }, 60s));
    // The loop kept ticking through the round.
    CHECK(metric("ebbd_tick_duration_seconds_count") > ticks);
  }
  INFO("rounds of 100 cgroups until the drop: " << rounds);
  CHECK(metric("ebbd_event_streams_dropped_total") == 1);
  CHECK(eventually([&] { return metric("ebbd_event_subscribers") == 1; }));

  // The other reader got every event so far and still gets new ones.
  add("ebb.slice/after");
  CHECK(eventually([&] {
    std::lock_guard lock(seen_mutex);
    return fast_adopted.count("ebb.slice/after") == 1;
  }, 60s));
  {
    std::lock_guard lock(seen_mutex);
    CHECK(fast_events == std::size_t(rounds) * 200 + 1);
  }
  fast_ctx.TryCancel();
  reading.join();

  // The slow reader finds what was buffered for it, then the end of the stream, not OK.
  v1::Event e;
  std::size_t buffered = 0;
  while (slow->Read(&e)) ++buffered;
  const auto status = slow->Finish();
  INFO("events the slow reader still found buffered: " << buffered << "; status " << status.error_code() << " "
                                                       << status.error_message());
  CHECK((status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         status.error_code() == grpc::StatusCode::CANCELLED));
  CHECK(buffered < std::size_t(rounds) * 200);
}

TEST_CASE_METHOD(ApiFixture, "the API is served on a loopback TCP address and refused on any other") {
  cfg.tcp_listen = "127.0.0.1:0";
  start();
  const int port = daemon->served->tcp_port();
  REQUIRE(port > 0);
  auto tcp = v1::NodeService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::Node node;
  REQUIRE(tcp->GetNode(&ctx, {}, &node).ok());
  CHECK(node.version() == "test");
  stop();

  cfg.tcp_listen = "0.0.0.0:0";
  CHECK_THAT(start_error("open"), Catch::StartsWith("tcp_listen: '0.0.0.0:0' is not a loopback address"));
  CHECK_FALSE(std::filesystem::exists(cfg.socket));  // refused before anything was served
}
