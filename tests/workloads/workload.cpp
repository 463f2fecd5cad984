// ebb-workload: the bundled workloads of the demo and the VM tests.
//   cpu    --cores C [--seconds S]                 burn C cores (fractions by duty cycle)
//   bursty --low L --high H --period P [--seconds S]  alternate between L and H cores
//   memory --from MB --to MB --over S [--hold S]   grow resident memory linearly, then hold
//   idle   [--seconds S]                            sleep
// Work is done in 10 ms slices so a CPU cap shows up as throttling, not as a changed pattern.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::atomic<bool> stop{false};

void spin_for(std::chrono::nanoseconds d) {
  const auto end = Clock::now() + d;
  volatile std::uint64_t sink = 0;
  while (Clock::now() < end) {
    for (int i = 0; i < 1000; ++i) sink = sink + static_cast<std::uint64_t>(i);
  }
}

// One thread burning `share` (0..1) of a core, with `share_of(t)` re-read every slice.
template <typename ShareFn>
void burner(ShareFn share_of, Clock::time_point deadline) {
  constexpr auto slice = 10ms;
  auto next = Clock::now();
  while (!stop && Clock::now() < deadline) {
    const double share = std::clamp(share_of(Clock::now()), 0.0, 1.0);
    spin_for(std::chrono::duration_cast<std::chrono::nanoseconds>(slice * share));
    next += slice;
    // Demand not served in its slice (throttled) is not made up: the next slice starts on time.
    if (next < Clock::now()) next = Clock::now();
    std::this_thread::sleep_until(next);
  }
}

template <typename CoresFn>
void burn(CoresFn cores_of, double max_cores, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const int threads = std::max(1, static_cast<int>(std::ceil(max_cores)));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      burner([&](Clock::time_point t) { return cores_of(t) - i; }, deadline);
    });
  }
  for (auto& t : pool) t.join();
}

void grow_memory(double from_mb, double to_mb, double over_s, double hold_s) {
  constexpr std::size_t chunk = 1 << 20;
  std::vector<char*> blocks;
  const auto start = Clock::now();
  const auto touch = [&](std::size_t target_mb) {
    while (blocks.size() < target_mb) {
      auto* p = static_cast<char*>(std::malloc(chunk));
      if (!p) {
        std::fprintf(stderr, "ebb-workload: malloc failed at %zu MB\n", blocks.size());
        std::exit(1);
      }
      std::memset(p, 0x5a, chunk);  // resident, not just reserved
      blocks.push_back(p);
    }
  };
  touch(static_cast<std::size_t>(from_mb));
  while (!stop) {
    const double t = std::chrono::duration<double>(Clock::now() - start).count();
    if (t >= over_s) break;
    touch(static_cast<std::size_t>(from_mb + (to_mb - from_mb) * t / over_s));
    std::this_thread::sleep_for(20ms);
  }
  touch(static_cast<std::size_t>(to_mb));
  std::printf("reached %zu MB\n", blocks.size());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::duration<double>(hold_s));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ebb-workload: CPU and memory workloads for ebb's demo and tests", "ebb-workload"};
  app.require_subcommand(1);
  double seconds = 3600, cores = 1, low = 0.1, high = 1, period = 2, from = 50, to = 300, over = 5, hold = 3600;

  auto* cpu = app.add_subcommand("cpu", "burn a steady number of cores");
  cpu->add_option("--cores", cores, "cores to burn")->check(CLI::Range(0.0, 64.0));
  cpu->add_option("--seconds", seconds, "how long");

  auto* bursty = app.add_subcommand("bursty", "alternate between a low and a high load");
  bursty->add_option("--low", low, "cores in the quiet half")->check(CLI::Range(0.0, 64.0));
  bursty->add_option("--high", high, "cores in the busy half")->check(CLI::Range(0.0, 64.0));
  bursty->add_option("--period", period, "seconds per quiet+busy cycle")->check(CLI::PositiveNumber);
  bursty->add_option("--seconds", seconds, "how long");
  std::string jump_log;
  bursty->add_option("--log", jump_log, "append 'high <epoch ms>' at every quiet-to-busy jump to this file");

  auto* memory = app.add_subcommand("memory", "grow resident memory linearly, then hold it");
  memory->add_option("--from", from, "MB at start")->check(CLI::NonNegativeNumber);
  memory->add_option("--to", to, "MB at the end")->check(CLI::NonNegativeNumber);
  memory->add_option("--over", over, "seconds of growth")->check(CLI::PositiveNumber);
  memory->add_option("--hold", hold, "seconds to hold the memory afterwards");

  auto* idle = app.add_subcommand("idle", "do nothing");
  idle->add_option("--seconds", seconds, "how long");
  CLI11_PARSE(app, argc, argv);

  if (*cpu) burn([&](Clock::time_point) { return cores; }, cores, seconds);
  if (*bursty) {
    const auto start = Clock::now();
    std::FILE* log = jump_log.empty() ? nullptr : std::fopen(jump_log.c_str(), "a");
    std::atomic<long> last_cycle{-1};
    burn([&](Clock::time_point t) {
      const double elapsed = std::chrono::duration<double>(t - start).count();
      const bool busy = std::fmod(elapsed, period) / period >= 0.5;
      const long cycle = static_cast<long>(elapsed / period);
      if (busy && log && last_cycle.exchange(cycle) != cycle) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch()).count();
        std::fprintf(log, "high %lld\n", static_cast<long long>(ms));
        std::fflush(log);
      }
      return busy ? high : low;
    }, std::max(low, high), seconds);
    if (log) std::fclose(log);
  }
  if (*memory) grow_memory(from, to, over, hold);
  if (*idle) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return 0;
}
