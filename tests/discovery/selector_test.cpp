#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "daemon/discovery/discovery.h"

using ebb::discovery::human_name;
using ebb::discovery::Selector;

namespace {

struct MatchCase {
  std::string pattern;
  std::string path;
  bool matches;
};

const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kUid = "1234abcd-5678-90ef-aaaa-bbbbccccdddd";
const std::string kSystemdUid = "1234abcd_5678_90ef_aaaa_bbbbccccdddd";

}  // namespace

TEST_CASE("selectors match globs component by component") {
  const std::vector<MatchCase> table{
      {"ebb.slice/*", "ebb.slice/web.service", true},
      {"ebb.slice/*", "ebb.slice", false},
      {"ebb.slice/*", "ebb.slice/web.service/child", false},
      {"ebb.slice/*", "/ebb.slice/web.service", true},
      {"*", "a/b", false},
      {"system.slice/docker-*.scope", "system.slice/docker-" + kId + ".scope", true},
      {"system.slice/docker-*.scope", "system.slice/docker-abc.service", false},
      {"kubepods.slice/**/cri-containerd-*.scope", "kubepods.slice/cri-containerd-1.scope", true},
      {"kubepods.slice/**/cri-containerd-*.scope",
       "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kSystemdUid + ".slice/cri-containerd-" + kId + ".scope",
       true},
      {"kubepods.slice/**/cri-containerd-*.scope", "other.slice/x/cri-containerd-1.scope", false},
      {"kubepods.slice/**/cri-containerd-*.scope", "kubepods.slice/a/cri-containerd-1.scope/sub", false},
      {"**", "a", true},
      {"**", "a/b/c", true},
      {"**/*.service", "x.service", true},
      {"**/*.service", "a/b/x.service", true},
      {"**/*.service", "a/b/x.scope", false},
      {"a/**", "a", true},
      {"a/**", "a/b/c", true},
      {"a/**", "b/a", false},
      {"a/**/**/b", "a/b", true},
      {"a/**/b/**/c", "a/x/b/y/z/c", true},
      {"a/**/b/**/c", "a/x/c", false},
      {"web?.service", "web1.service", true},
      {"web?.service", "web10.service", false},
      {"[abc]*.slice", "b1.slice", true},
      {"[abc]*.slice", "d.slice", false},
      {"[!a]x", "bx", true},
      {"[!a]x", "ax", false},
      {"[a-c]", "b", true},
      {"[]]x", "]x", true},
      {"a\\*", "a*", true},
      {"a\\*", "ab", false},
  };
  for (const auto& row : table) {
    CAPTURE(row.pattern, row.path);
    const auto selector = Selector::parse(row.pattern);
    REQUIRE(selector.ok());
    CHECK(selector->pattern() == row.pattern);
    CHECK(selector->matches(row.path) == row.matches);
  }
}

TEST_CASE("invalid selectors are refused with the reason") {
  const std::vector<std::pair<std::string, std::string>> table{
      {"", "empty"},
      {"/ebb.slice/*", "relative to the cgroup root"},
      {"ebb.slice/[abc", "unterminated '['"},
      {"ebb.slice/[]", "unterminated '['"},
      {"ebb.slice/[!", "unterminated '['"},
      {"a//b", "empty path component"},
      {"a/", "empty path component"},
      {"a/../b", "'..'"},
      {"./a", "'.'"},
      {"a**b", "whole path component"},
      {"**.scope", "whole path component"},
      {"x\\", "lone '\\'"},
  };
  for (const auto& [pattern, reason] : table) {
    CAPTURE(pattern);
    const auto selector = Selector::parse(pattern);
    REQUIRE_FALSE(selector.ok());
    CHECK_THAT(selector.error().message, Catch::Contains("invalid selector '" + pattern + "'") && Catch::Contains(reason));
  }
}

TEST_CASE("human names for systemd units, Docker, containerd, CRI-O and Kubernetes pods") {
  const std::string short_id = kId.substr(0, 12);
  const std::vector<std::pair<std::string, std::string>> table{
      {"system.slice/nginx.service", "nginx.service"},
      {"ebb.slice/web.service", "web.service"},
      {"user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox.scope", "app-firefox.scope"},
      {"system.slice/docker-" + kId + ".scope", "docker:" + short_id},
      {"docker/" + kId, "docker:" + short_id},
      {"system.slice/cri-containerd-" + kId + ".scope", "containerd:" + short_id},
      {"system.slice/crio-" + kId + ".scope", "crio:" + short_id},
      {"machine.slice/libpod-" + kId + ".scope", "podman:" + short_id},
      // Kubernetes, systemd cgroup driver.
      {"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kSystemdUid + ".slice/cri-containerd-" + kId + ".scope",
       "pod:" + kUid + "/containerd:" + short_id},
      {"kubepods.slice/kubepods-pod" + kSystemdUid + ".slice/crio-" + kId + ".scope", "pod:" + kUid + "/crio:" + short_id},
      {"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kSystemdUid + ".slice", "pod:" + kUid},
      {"kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" +
           kSystemdUid + ".slice/cri-containerd-" + kId + ".scope",
       "pod:" + kUid + "/containerd:" + short_id},
      {"kubepods.slice/kubepods-burstable.slice", "kubepods-burstable.slice"},
      // Kubernetes, cgroupfs cgroup driver.
      {"kubepods/burstable/pod" + kUid + "/" + kId, "pod:" + kUid + "/" + short_id},
      {"kubepods/pod" + kUid + "/" + kId, "pod:" + kUid + "/" + short_id},
      {"kubepods/besteffort/pod" + kUid, "pod:" + kUid},
      {"kubepods/burstable", "burstable"},
      // Look-alikes keep their own names.
      {"podcast.slice/podcasts", "podcasts"},
      {"system.slice/docker-notanid.scope", "docker-notanid.scope"},
      {"system.slice/docker.service", "docker.service"},
      {"docker/not-hex", "not-hex"},
      {"", "/"},
  };
  for (const auto& [path, name] : table) {
    CAPTURE(path);
    CHECK(human_name(path) == name);
  }
}
