// sluice-events-bench: can the agent's event reader keep up?
//
// A producer thread (pinned to --producer-cpu) runs a BPF program that
// emits one drop event per run (events_bench.bpf.c) through
// BPF_PROG_TEST_RUN, paced to --rate events/s in batches of --batch runs.
// The agent's own Observer (agent/observe/observer.h: ring buffer drain,
// bounded history, subscriber fan-out) reads them on one core
// (--reader-cpu), optionally with --subscribers observe-like clients that
// drain their queues. Reported per rate: events produced, received by the
// reader, lost in the datapath (ring buffer full, counted by the BPF side),
// and the reader core's CPU use. Nothing is asserted: it measures; the
// exit status is non-zero only if the bench cannot run.
//
//   sluice-events-bench                         # 1M/s, 2M/s, max; 5 s each
//   sluice-events-bench --rates 1000000 --seconds 10 --json out.json
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "observe/observer.h"
#include "sluice/abi.h"
#include "sluice_events_bench.skel.h"

namespace {

using Clock = std::chrono::steady_clock;

void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

double thread_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}

double process_cpu_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Ethernet + IPv4 + UDP, 64 bytes.
std::vector<uint8_t> frame() {
  std::vector<uint8_t> f(64, 0);
  f[12] = 0x08;  // IPv4
  f[14] = 0x45;
  f[16] = 0;
  f[17] = 50;  // total length
  f[22] = 64;
  f[23] = 17;  // UDP
  const uint8_t s[4] = {198, 51, 100, 7}, d[4] = {10, 200, 0, 5};
  std::memcpy(&f[26], s, 4);
  std::memcpy(&f[30], d, 4);
  return f;
}

uint64_t lost_counter(int fd) {
  const int n = libbpf_num_possible_cpus();
  std::vector<sluice_counter> v(n);
  uint32_t idx = SLUICE_COUNTER_EVENTS_LOST;
  if (bpf_map_lookup_elem(fd, &idx, v.data())) return 0;
  uint64_t s = 0;
  for (auto& c : v) s += c.packets;
  return s;
}

struct Row {
  double target = 0;  // events/s, 0 = as fast as possible
  uint64_t produced = 0, received = 0, lost = 0, sub_lost = 0;
  double seconds = 0, produce_rate = 0, reader_cpu = 0, producer_cpu = 0;
  double kernel_ns = 0;  // BPF_PROG_TEST_RUN's average ns per run
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluice-events-bench: agent event reader throughput and loss"};
  std::vector<double> rates{1000000, 2000000, 0};
  double seconds = 5;
  uint32_t batch = 10000;
  int reader_cpu = 0, producer_cpu = 1, subscribers = 1;
  std::string json_out;
  bool fifo = false;
  uint32_t ring_mb = 0;
  app.add_option("--ring-mb", ring_mb,
                 "ring buffer size in MiB (default: the agent's, SLUICE_EVENTS_BYTES)");
  app.add_flag("--reader-fifo", fifo,
               "run the reader (and subscribers) SCHED_FIFO: an uncontended "
               "core on a machine busy with other work");
  app.add_option("--rates", rates, "events/s to drive (0 = as fast as possible)")
      ->delimiter(',');
  app.add_option("--seconds", seconds, "duration per rate");
  app.add_option("--batch", batch, "runs per BPF_PROG_TEST_RUN call");
  app.add_option("--reader-cpu", reader_cpu, "CPU of the agent's reader thread");
  app.add_option("--producer-cpu", producer_cpu, "CPU of the producer");
  app.add_option("--subscribers", subscribers,
                 "observe-like clients draining their own queues");
  app.add_option("--json", json_out, "also write the results as JSON");
  CLI11_PARSE(app, argc, argv);
  if (geteuid() != 0) {
    std::fprintf(stderr, "sluice-events-bench: must run as root\n");
    return 2;
  }
  libbpf_set_print([](libbpf_print_level l, const char* f, va_list a) {
    return l == LIBBPF_DEBUG ? 0 : std::vfprintf(stderr, f, a);
  });

  std::vector<Row> rows;
  const auto pkt = frame();
  for (double rate : rates) {
    auto* skel = sluice_events_bench::open();
    if (skel && ring_mb)
      bpf_map__set_max_entries(skel->maps.sluice_events, ring_mb << 20);
    if (skel && sluice_events_bench::load(skel)) {
      sluice_events_bench::destroy(skel);
      skel = nullptr;
    }
    if (!skel) {
      std::perror("sluice-events-bench: load");
      return 2;
    }
    const uint32_t zero = 0;
    sluice_config cfg{};
    cfg.event_level = SLUICE_EVENTS_DROPS;
    bpf_map__update_elem(skel->maps.sluice_config, &zero, sizeof(zero), &cfg,
                         sizeof(cfg), 0);
    const int prog = bpf_program__fd(skel->progs.sluice_events_bench);
    const int counters = bpf_map__fd(skel->maps.sluice_counters);

    // The reader thread inherits this thread's affinity (one core) and,
    // with --reader-fifo, its scheduling policy.
    pin(reader_cpu);
    if (fifo) {
      sched_param sp{};
      sp.sched_priority = 10;
      if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
        std::fprintf(stderr, "sluice-events-bench: SCHED_FIFO refused\n");
    }
    sluice::Observer obs(bpf_map__fd(skel->maps.sluice_events), counters,
                         {4096, 65536});
    if (auto s = obs.start(); !s) {
      std::fprintf(stderr, "observer: %s\n", s.error().c_str());
      return 2;
    }
    std::atomic<bool> stop_subs{false};
    std::vector<std::thread> subs;
    for (int i = 0; i < subscribers; i++)
      subs.emplace_back([&] {
        std::vector<sluice_event> got;
        auto sub = obs.subscribe(nullptr);
        while (!stop_subs) {
          got.clear();
          sub->next(got, std::chrono::milliseconds(50));
        }
        obs.unsubscribe(sub);
      });
    if (fifo) {  // back to normal for the producer and the bookkeeping
      sched_param sp{};
      pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

    const double cpu0 = process_cpu_s();
    double producer_cpu_s = 0, kernel_sum = 0;
    uint64_t produced = 0;
    const auto t0 = Clock::now();
    std::thread prod([&] {
      pin(producer_cpu);
      const double c0 = thread_cpu_s();
      LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(),
                  .data_size_in = uint32_t(pkt.size()), .repeat = int(batch));
      const auto end = t0 + std::chrono::duration<double>(seconds);
      while (Clock::now() < end) {
        if (rate > 0) {  // pace: never ahead of rate * elapsed
          const auto due = t0 + std::chrono::duration<double>(double(produced) / rate);
          if (due > Clock::now()) std::this_thread::sleep_until(due);
        }
        if (bpf_prog_test_run_opts(prog, &o)) {
          std::perror("BPF_PROG_TEST_RUN");
          break;
        }
        produced += batch;
        kernel_sum += double(o.duration) * batch;
      }
      producer_cpu_s = thread_cpu_s() - c0;
    });
    prod.join();
    const double elapsed =
        std::chrono::duration<double>(Clock::now() - t0).count();
    // Let the reader finish what is in the ring.
    const uint64_t lost = lost_counter(counters);
    for (int i = 0; i < 100 && obs.received() + lost < produced; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const double cpu1 = process_cpu_s();
    stop_subs = true;
    for (auto& t : subs) t.join();
    Row r;
    r.target = rate;
    r.produced = produced;
    r.received = obs.received();
    r.lost = lost_counter(counters);
    r.sub_lost = obs.lost_by_subscribers();
    r.seconds = elapsed;
    r.produce_rate = double(produced) / elapsed;
    // The process's CPU minus the producer's: the reader (plus the idle
    // main thread and the subscribers, which run on the reader's core).
    r.reader_cpu = (cpu1 - cpu0 - producer_cpu_s) / elapsed;
    r.producer_cpu = producer_cpu_s / elapsed;
    r.kernel_ns = produced ? kernel_sum / double(produced) : 0;
    obs.stop();
    sluice_events_bench::destroy(skel);
    rows.push_back(r);
  }

  std::printf("%-10s %11s %11s %11s %9s %9s %10s %12s %9s\n", "target/s",
              "produced/s", "produced", "received", "lost", "sub-lost",
              "reader-cpu", "producer-cpu", "ns/event");
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : rows) {
    char target[32];
    if (r.target > 0)
      std::snprintf(target, sizeof(target), "%.0f", r.target);
    else
      std::snprintf(target, sizeof(target), "max");
    std::printf("%-10s %11.0f %11llu %11llu %9llu %9llu %9.0f%% %11.0f%% %9.0f\n",
                target, r.produce_rate, (unsigned long long)r.produced,
                (unsigned long long)r.received, (unsigned long long)r.lost,
                (unsigned long long)r.sub_lost, r.reader_cpu * 100,
                r.producer_cpu * 100, r.kernel_ns);
    j.push_back({{"target_per_s", r.target},
                 {"produced_per_s", r.produce_rate},
                 {"produced", r.produced},
                 {"received", r.received},
                 {"lost_ringbuf", r.lost},
                 {"lost_subscribers", r.sub_lost},
                 {"reader_cpu", r.reader_cpu},
                 {"producer_cpu", r.producer_cpu},
                 {"kernel_ns_per_event", r.kernel_ns},
                 {"seconds", r.seconds}});
  }
  if (!json_out.empty()) std::ofstream(json_out) << j.dump(2) << "\n";
  return 0;
}
