#include "e2e_util.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace sluice::e2e {

CmdResult sh(const std::string& cmd, int timeout_s) {
  CmdResult r;
  const std::string full =
      "timeout -k 2 " + std::to_string(timeout_s) + " sh -c '" + [&] {
        std::string q;
        for (char c : cmd) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return q;
      }() + "' 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string bin(const std::string& name) {
  return std::string(SLUICE_BIN_DIR) + "/" + name;
}

Netns::Netns(std::string name) : name_(std::move(name)) {
  sh("ip netns del " + name_ + " 2>/dev/null");
  sh("ip netns add " + name_);
  exec("ip link set lo up");
}

Netns::~Netns() { sh("ip netns del " + name_); }

CmdResult Netns::exec(const std::string& cmd, int timeout_s) const {
  return sh("ip netns exec " + name_ + " " + cmd, timeout_s);
}

void ensure_blackhole_routes() {
  for (const char* r : {"198.18.0.0/15", "10.200.0.0/16", "10.96.0.0/12"})
    sh(std::string("ip route replace blackhole ") + r + " metric 4294967295");
  for (const char* r : {"fd10:200::/64", "fd10:96::/108"})
    sh(std::string("ip -6 route replace blackhole ") + r + " metric 4294967295");
}

AgentProc::AgentProc(std::string netns, std::vector<std::string> args,
                     std::string log_path) {
  std::vector<std::string> argv = {"ip", "netns", "exec", netns,
                                   bin("sluice-agent")};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
}

bool AgentProc::running() {
  if (pid_ <= 0) return false;
  int st;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int AgentProc::wait_exit(std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    int st;
    if (pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

bool AgentProc::wait_ready(const std::string& socket,
                           const std::string& log_path, std::string* why) {
  for (int i = 0; i < 100; i++) {
    if (sh(bin("sluicectl") + " --socket " + socket + " status").rc == 0)
      return true;
    if (!running()) {
      *why = "agent exited:\n" + read_file(log_path);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  *why = "agent not ready after 10 s:\n" + read_file(log_path);
  return false;
}

void AgentProc::kill9() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(5));
  }
}

AgentProc::~AgentProc() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  if (wait_exit(std::chrono::seconds(5)) < 0) kill9();
}

std::string unique_suffix() {
  static int n = 0;
  return std::to_string(::getpid() % 100000) + "x" + std::to_string(n++);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string run_in_netns(const std::string& netns_path,
                         const std::function<void()>& fn) {
  std::string why;
  std::thread t([&] {
    int fd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      why = "open " + netns_path + ": " + std::strerror(errno);
      return;
    }
    // Only this thread changes namespace; it ends right after `fn`.
    if (::setns(fd, CLONE_NEWNET) != 0) {
      why = "setns " + netns_path + ": " + std::strerror(errno);
      ::close(fd);
      return;
    }
    ::close(fd);
    fn();
  });
  t.join();
  return why;
}

int socket_in_netns(const std::string& netns_path, int domain, int type,
                    int protocol) {
  int rc = -EINVAL;
  auto why = run_in_netns(netns_path, [&] {
    rc = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    if (rc < 0) rc = -errno;
  });
  return why.empty() ? rc : -ENOENT;
}

}  // namespace sluice::e2e
