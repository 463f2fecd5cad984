// The API's pure parts: settings validation, the policy file, the fan-out queue, metrics
// addresses and ebbctl's words.
#include <catch2/catch.hpp>

#include <fstream>

#include "cli/format.h"
#include "daemon/api/event_hub.h"
#include "daemon/api/metrics.h"
#include "daemon/api/node_service.h"
#include "daemon/api/policy_store.h"
#include "daemon/api/server.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb;

TEST_CASE("settings_from_proto keeps what is set and names the first bad field") {
  v1::PolicySettings in;
  in.set_mode(v1::MODE_RECOMMEND);
  in.set_cpu_max_cores(2);
  in.set_memory_max_bytes(512ull << 20);
  in.set_priority(v1::PRIORITY_CLASS_GUARANTEED);
  auto out = api::settings_from_proto(in);
  REQUIRE(out.ok());
  CHECK(out->mode == config::Mode::recommend);
  CHECK(out->cpu_max_cores == 2.0);
  CHECK_FALSE(out->cpu_min_cores);
  CHECK(out->memory_max_bytes == 512ull << 20);
  CHECK(out->priority == policy::PriorityClass::guaranteed);
  CHECK(api::to_proto(*out).SerializeAsString() == in.SerializeAsString());

  v1::PolicySettings nan;
  nan.set_weight(std::nan(""));
  CHECK_THAT(api::settings_from_proto(nan).error().message, Catch::StartsWith("settings.weight: must be between"));
  v1::PolicySettings runq;
  runq.set_runq_latency_p99_target_us(0);
  CHECK_THAT(api::settings_from_proto(runq).error().message, Catch::StartsWith("settings.runq_latency_p99_target_us"));
}

TEST_CASE("request validation names the field and keeps what the handlers need") {
  v1::SetPolicyRequest set;
  CHECK_THAT(api::validate(set).error().message, Catch::StartsWith("target: set either container"));
  set.set_container("");
  CHECK(api::validate(set).error().message == "container: must not be empty");
  set.set_select("ebb.slice/[");
  CHECK_THAT(api::validate(set).error().message, Catch::StartsWith("select: "));
  set.set_select("ebb.slice/*");
  set.set_reset(true);
  set.mutable_settings()->set_cpu_min_cores(2);
  set.mutable_settings()->set_cpu_max_cores(1);
  CHECK_THAT(api::validate(set).error().message, Catch::StartsWith("settings.cpu_min_cores: above cpu_max_cores"));
  set.mutable_settings()->set_cpu_max_cores(3);
  auto valid = api::validate(set);
  REQUIRE(valid.ok());
  CHECK_FALSE(valid->container);
  CHECK(valid->select == "ebb.slice/*");
  CHECK(valid->reset);
  CHECK(valid->settings.cpu_max_cores == 3.0);
  set.set_container("web");
  REQUIRE(api::validate(set).ok());
  CHECK(api::validate(set)->container == "web");

  v1::WatchEventsRequest watch;
  watch.set_select("db");
  watch.add_kinds(v1::EVENT_KIND_DECISION);
  auto events = api::validate(watch);
  REQUIRE(events.ok());
  CHECK(events->kinds == std::set<int>{v1::EVENT_KIND_DECISION});
  CHECK(events->filter.matches("ebb.slice/db", "db"));
  CHECK_FALSE(events->filter.matches("ebb.slice/web", "web"));
  watch.add_kinds(v1::EVENT_KIND_UNSPECIFIED);
  CHECK(api::validate(watch).error().message == "kinds[1]: unknown event kind 0");

  CHECK(api::validate(v1::GetContainerRequest{}).error().message == "name: required (a container's name or path)");
}

TEST_CASE("the TCP listener is refused on anything but loopback") {
  for (const char* address : {"127.0.0.1:50051", "127.1.2.3:0", "[::1]:50051", "localhost:50051"}) {
    INFO(address);
    CHECK(api::check_loopback(address).ok());
  }
  for (const char* address : {"0.0.0.0:50051", "[::]:50051", ":50051", "50051", "10.0.0.5:50051", "example.com:50051",
                              "[::ffff:10.0.0.5]:1", "128.0.0.1:1"}) {
    INFO(address);
    auto refused = api::check_loopback(address);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error().message, Catch::Contains("is not a loopback address") && Catch::Contains("no authentication"));
  }
}

TEST_CASE("the policy store merges per selector and persists and reloads and refuses a malformed file") {
  testing::FakeCgroupTree tree;
  const auto dir = tree.root() / "state";
  {
    auto store = api::PolicyStore::open(dir);
    REQUIRE(store.ok());
    CHECK(store->overrides().empty());
    config::ContainerSettings a;
    a.cpu_max_cores = 1;
    REQUIRE(store->set("ebb.slice/web", a, false).ok());
    config::ContainerSettings b;
    b.mode = config::Mode::off;
    auto merged = store->set("ebb.slice/web", b, false);
    REQUIRE(merged.ok());
    CHECK(merged->cpu_max_cores == 1.0);
    CHECK(merged->mode == config::Mode::off);
    auto reset = store->set("ebb.slice/*", b, true);
    REQUIRE(reset.ok());
    CHECK(store->overrides().size() == 2);
  }
  auto reopened = api::PolicyStore::open(dir);
  REQUIRE(reopened.ok());
  REQUIRE(reopened->overrides().size() == 2);
  CHECK(reopened->overrides()[0].select == "ebb.slice/web");
  CHECK(reopened->overrides()[0].settings.cpu_max_cores == 1.0);
  CHECK(reopened->overrides()[1].settings.mode == config::Mode::off);

  for (const char* bad : {"{", "{\"policies\": 3}", "{\"policies\": [{\"select\": \"/x\", \"settings\": {}}]}",
                          "{\"policies\": [{\"select\": \"a\", \"settings\": {\"cpuMinCores\": -1}}]}",
                          "{\"policies\": [{\"select\": \"a\", \"settings\": {\"bogus\": 1}}]}"}) {
    INFO(bad);
    std::ofstream(dir / "policies.json") << bad;
    auto opened = api::PolicyStore::open(dir);
    REQUIRE_FALSE(opened.ok());
    CHECK_THAT(opened.error().message, Catch::StartsWith("malformed API policies"));
  }
}

TEST_CASE("a subscription that falls behind is dropped and another is not affected") {
  int aborted = 0;
  auto slow = std::make_shared<api::Subscription>(*api::ContainerFilter::from_glob("", "select"), std::set<int>{},
                                                  [&] { ++aborted; }, 4);
  auto fast = std::make_shared<api::Subscription>(*api::ContainerFilter::from_glob("ebb.slice/a", "select"),
                                                  std::set<int>{v1::EVENT_KIND_ADOPTED}, [] {}, 4);
  api::EventHub hub(4);
  hub.subscribe(slow);
  hub.subscribe(fast);
  control::Container c;
  c.path = "ebb.slice/a";
  c.name = "a";
  v1::Event out;
  for (int i = 0; i < 5; ++i) {
    hub.on_adopted(c);
    CHECK(fast->next(out, std::chrono::milliseconds(0)) == api::Subscription::Next::event);
  }
  CHECK(hub.subscribers() == 1);
  CHECK(hub.dropped() == 1);
  CHECK(slow->next(out, std::chrono::milliseconds(0)) == api::Subscription::Next::overflow);
  CHECK(aborted == 0);  // it was not in a write
  CHECK_FALSE(slow->begin_write());
  // Filters: another path and another kind do not reach `fast`.
  control::Container other;
  other.path = "ebb.slice/b";
  hub.on_adopted(other);
  hub.on_dropped("ebb.slice/a", "removed");
  CHECK(fast->next(out, std::chrono::milliseconds(0)) == api::Subscription::Next::timeout);
  hub.close_all();
  CHECK(fast->next(out, std::chrono::milliseconds(0)) == api::Subscription::Next::closed);
}

TEST_CASE("metrics addresses are host and port with an optional path and bad ports are named") {
  auto a = api::parse_metrics_address("127.0.0.1:9464");
  REQUIRE(a.ok());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9464);
  CHECK(a->path == "/metrics");
  auto b = api::parse_metrics_address("[::1]:0/prom");
  REQUIRE(b.ok());
  CHECK(b->host == "::1");
  CHECK(b->path == "/prom");
  CHECK_FALSE(api::parse_metrics_address("9464").ok());
  CHECK_THAT(api::parse_metrics_address("h:99999").error().message, Catch::Contains("port '99999'"));
}

TEST_CASE("a container path becomes a selector that matches only it") {
  CHECK(api::literal_selector("ebb.slice/a[1]*") == "ebb.slice/a\\[1\\]\\*");
  auto s = discovery::Selector::parse(api::literal_selector("ebb.slice/a[1]*"));
  REQUIRE(s.ok());
  CHECK(s->matches("ebb.slice/a[1]*"));
  CHECK_FALSE(s->matches("ebb.slice/a1x"));
}

TEST_CASE("ebbctl explains a decision in words") {
  v1::Decision d;
  d.set_source("learner");
  d.set_reason("forecast 0.6 + headroom 0.15");
  d.mutable_previous()->set_cpu_cores(0.5);
  d.mutable_limits()->set_cpu_cores(0.75);
  d.mutable_limits()->set_memory_high_bytes(256ull << 20);
  d.mutable_observed()->set_cpu_usage_cores(0.6);
  d.mutable_observed()->set_cpu_throttled_fraction(0.2);
  d.set_applied(true);
  const auto text = cli::explain(d);
  CHECK_THAT(text, Catch::Contains("the learner raised the CPU limit from 0.50 to 0.75 cores and set memory.high from max to 256.0M"));
  CHECK_THAT(text, Catch::Contains("because forecast 0.6 + headroom 0.15"));
  CHECK_THAT(text, Catch::Contains("throttled in 20.0% of periods"));
  CHECK_THAT(text, Catch::EndsWith("Applied."));
  d.set_applied(false);
  d.set_event_driven(true);
  CHECK_THAT(cli::explain(d), Catch::Contains("at once, on a starvation event"));
  CHECK_THAT(cli::explain(d), Catch::EndsWith("Not applied (recommend mode or dry run)."));
}
