// ebb-workload: the bundled workloads of the demo and the VM tests.
//   cpu    --cores C [--seconds S]                 burn C cores (fractions by duty cycle)
//   bursty --low L --high H --period P [--seconds S]  alternate between L and H cores
//   memory --from MB --to MB --over S [--hold S]   grow resident memory linearly, then hold
//   idle   [--seconds S]                            sleep
//   serve  --quiet-cores Q --burst-cores B ...         a request service with bursty arrivals
//          that measures its own request latency (see serve() below)
// Work is done in 10 ms slices so a CPU cap shows up as throttling, not as a changed pattern.
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
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

struct ServeParams {
  double quiet_cores = 0.2, burst_cores = 1.5;  // demand: arrival rate x work per request
  double quiet_s = 6, burst_s = 2;              // mean phase lengths (exponential)
  double work_ms = 5;                           // CPU time each request needs
  int workers = 4;
  double seconds = 60;   // arrivals stop after this; the queue is then drained
  double drain_s = 30;   // requests still unserved after this count at their age then
  unsigned seed = 1;
  std::string latency_log;
};

// Arrival times (seconds from start): phases alternate quiet and burst with exponential lengths,
// Poisson arrivals inside each at the phase's rate. A pure function of the parameters, so two
// runs with one seed serve the very same requests.
std::vector<double> arrival_schedule(const ServeParams& p) {
  std::mt19937_64 rng(p.seed);
  const double work_s = p.work_ms / 1000;
  std::vector<double> arrivals;
  double t = 0;
  for (bool burst = false; t < p.seconds; burst = !burst) {
    const double end = std::min(p.seconds, t + std::exponential_distribution<double>(1 / (burst ? p.burst_s : p.quiet_s))(rng));
    const double rate = (burst ? p.burst_cores : p.quiet_cores) / work_s;
    if (rate > 0) {
      std::exponential_distribution<double> gap(rate);
      for (double a = t + gap(rng); a < end; a += gap(rng)) arrivals.push_back(a);
    }
    t = end;
  }
  return arrivals;
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Burns `seconds` of this thread's CPU time: a throttled worker takes longer in wall time, which
// is exactly the latency a CPU limit adds. The clock is read often: under software emulation on
// a loaded host a long burst of arithmetic between reads can take milliseconds of guest time,
// and each request would overshoot its work by that much.
void work_for(double seconds) {
  const double end = thread_cpu_s() + seconds;
  volatile std::uint64_t sink = 0;
  while (thread_cpu_s() < end) {
    for (int i = 0; i < 100; ++i) sink = sink + static_cast<std::uint64_t>(i);
  }
}

double percentile(std::vector<double> sorted, double q) {  // nearest rank; sorted ascending
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// A CPU-bound request service: a dispatcher releases each request at its arrival time into a
// FIFO queue; workers take them in order and burn work_ms of CPU each. Latency is from the
// scheduled arrival (not from the dispatch, which a throttled dispatcher could delay) to the end
// of the work. Prints one summary line; --latency-log gets "arrival_s latency_ms" per request.
int serve(const ServeParams& p) {
  const std::vector<double> arrivals = arrival_schedule(p);
  const auto start = Clock::now();
  const auto at = [&](double s) { return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::size_t> queue;
  bool dispatched_all = false;
  std::vector<double> latency_ms(arrivals.size(), -1);

  std::vector<std::thread> workers;
  for (int w = 0; w < p.workers; ++w) {
    workers.emplace_back([&] {
      for (;;) {
        std::unique_lock lock(mutex);
        ready.wait(lock, [&] { return !queue.empty() || dispatched_all || stop; });
        if (queue.empty() || stop) return;
        const std::size_t i = queue.front();
        queue.pop_front();
        lock.unlock();
        work_for(p.work_ms / 1000);
        latency_ms[i] = std::chrono::duration<double, std::milli>(Clock::now() - at(arrivals[i])).count();
      }
    });
  }
  for (std::size_t i = 0; i < arrivals.size(); ++i) {
    std::this_thread::sleep_until(at(arrivals[i]));
    {
      std::lock_guard lock(mutex);
      queue.push_back(i);
    }
    ready.notify_one();
  }
  {
    std::lock_guard lock(mutex);
    dispatched_all = true;
  }
  ready.notify_all();
  const auto drain_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(p.drain_s));
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (queue.empty()) break;
      if (Clock::now() >= drain_deadline) {
        stop = true;
        break;
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  ready.notify_all();
  for (auto& t : workers) t.join();

  // Requests never served count at their age when the run ended: a lower bound of their latency.
  const double end_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::size_t unserved = 0;
  for (std::size_t i = 0; i < arrivals.size(); ++i) {
    if (latency_ms[i] < 0) {
      latency_ms[i] = (end_s - arrivals[i]) * 1000;
      ++unserved;
    }
  }
  if (!p.latency_log.empty()) {
    std::FILE* log = std::fopen(p.latency_log.c_str(), "w");
    if (!log) {
      std::fprintf(stderr, "ebb-workload: cannot write %s: %s\n", p.latency_log.c_str(), std::strerror(errno));
      return 1;
    }
    for (std::size_t i = 0; i < arrivals.size(); ++i) std::fprintf(log, "%.4f %.3f\n", arrivals[i], latency_ms[i]);
    std::fclose(log);
  }
  std::vector<double> sorted = latency_ms;
  std::sort(sorted.begin(), sorted.end());
  std::printf("requests %zu unserved %zu p50_ms %.1f p90_ms %.1f p99_ms %.1f max_ms %.1f\n", arrivals.size(), unserved,
              percentile(sorted, 0.5), percentile(sorted, 0.9), percentile(sorted, 0.99), sorted.empty() ? 0.0 : sorted.back());
  std::fflush(stdout);
  return 0;
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
  ServeParams serve_params;
  auto* serve_cmd = app.add_subcommand("serve", "a request service with bursty random arrivals that logs its request latency");
  serve_cmd->add_option("--quiet-cores", serve_params.quiet_cores, "demand between bursts, in cores")->check(CLI::Range(0.0, 64.0));
  serve_cmd->add_option("--burst-cores", serve_params.burst_cores, "demand in bursts, in cores")->check(CLI::Range(0.0, 64.0));
  serve_cmd->add_option("--quiet-s", serve_params.quiet_s, "mean seconds between bursts")->check(CLI::PositiveNumber);
  serve_cmd->add_option("--burst-s", serve_params.burst_s, "mean seconds of a burst")->check(CLI::PositiveNumber);
  serve_cmd->add_option("--work-ms", serve_params.work_ms, "CPU milliseconds per request")->check(CLI::PositiveNumber);
  serve_cmd->add_option("--workers", serve_params.workers, "worker threads")->check(CLI::Range(1, 256));
  serve_cmd->add_option("--seconds", serve_params.seconds, "how long requests arrive")->check(CLI::PositiveNumber);
  serve_cmd->add_option("--drain", serve_params.drain_s, "seconds to finish queued requests afterwards")->check(CLI::NonNegativeNumber);
  serve_cmd->add_option("--seed", serve_params.seed, "seed of the arrival schedule");
  serve_cmd->add_option("--latency-log", serve_params.latency_log, "write 'arrival_s latency_ms' per request to this file");
  CLI11_PARSE(app, argc, argv);

  if (*serve_cmd) return serve(serve_params);

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
