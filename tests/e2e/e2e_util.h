// End-to-end helpers: network namespaces, veths, the real agent as a child
// process, sluicectl, bpftool. Every resource is owned by an RAII object so a
// failing test still removes its namespaces, pins and processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace sluice::e2e {

struct CmdResult {
  int rc = -1;
  std::string out;  // stdout and stderr, interleaved
};

// Runs a shell command line (bounded by `timeout_s`), capturing output.
CmdResult sh(const std::string& cmd, int timeout_s = 30);
std::string bin(const std::string& name);  // build/bin/<name>

// A network namespace, deleted (with its links) on destruction.
class Netns {
 public:
  explicit Netns(std::string name);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  const std::string& name() const { return name_; }
  CmdResult exec(const std::string& cmd, int timeout_s = 30) const;

 private:
  std::string name_;
};

// Adds a high-metric blackhole route for the test ranges in the current
// namespace, so a bug can never send test traffic off the machine.
void ensure_blackhole_routes();

// A sluice-agent process started inside a namespace.
class AgentProc {
 public:
  AgentProc(std::string netns, std::vector<std::string> args,
            std::string log_path);
  ~AgentProc();  // SIGTERM, then SIGKILL after 5 s
  AgentProc(const AgentProc&) = delete;
  AgentProc& operator=(const AgentProc&) = delete;
  pid_t pid() const { return pid_; }
  void kill9();
  // Waits for exit (bounded); returns the exit status or -1 on timeout.
  int wait_exit(std::chrono::milliseconds limit);
  bool running();
  // Polls `sluicectl --socket SOCKET status` (bounded, 10 s) until the
  // agent answers; false (with the agent log in `why`) if it exits or
  // never does.
  bool wait_ready(const std::string& socket, const std::string& log_path,
                  std::string* why);

 private:
  pid_t pid_ = -1;
};

// A unique short suffix for names (pid-based; interface names are <=15).
std::string unique_suffix();
std::string read_file(const std::string& path);

// Runs `fn` on a helper thread that has entered the network namespace at
// `netns_path` (e.g. /var/run/netns/NAME); the calling thread never moves.
// Sockets `fn` creates stay in that namespace for their whole life, so one
// process can talk from many namespaces without `ip netns exec`. Returns
// "" or why the namespace could not be entered (then `fn` did not run).
std::string run_in_netns(const std::string& netns_path,
                         const std::function<void()>& fn);
// socket(2) inside a namespace (see run_in_netns): the fd, or -errno.
int socket_in_netns(const std::string& netns_path, int domain, int type,
                    int protocol = 0);

}  // namespace sluice::e2e
