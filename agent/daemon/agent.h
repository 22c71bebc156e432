// The agent: owns the datapath objects, the desired state and the API
// server for one node (one bpffs root, one state directory, one socket).
#pragma once

#include <memory>

#include "config/config.h"
#include "datapath/bpffs.h"
#include "datapath/xdp_datapath.h"
#include "observe/event_reader.h"
#include "prefilter/prefilter.h"
#include "state/file_store.h"

namespace sluice {

class ApiServer;

class Agent {
 public:
  explicit Agent(AgentConfig cfg);
  ~Agent();

  // Mounts/validates bpffs, loads and pins, restores desired state,
  // attaches, starts the event reader and the API. Nothing is attached
  // unless every configured device exists.
  Status start();
  // Blocks until SIGTERM/SIGINT; the datapath stays attached on return.
  void wait_for_signal();

  // `sluice-agent --cleanup`: detach and unpin everything under the bpffs
  // root and remove the socket. State is kept (see docs/architecture.md).
  static Status cleanup(const AgentConfig& cfg);

  const AgentConfig& config() const { return cfg_; }
  XdpDatapath& xdp() { return *xdp_; }
  Prefilter& prefilter() { return *prefilter_; }
  EventReader& events() { return *events_; }
  const BpffsLayout& layout() const { return layout_; }

 private:
  AgentConfig cfg_;
  BpffsLayout layout_;
  std::unique_ptr<FileStore> store_;
  std::unique_ptr<XdpDatapath> xdp_;
  std::unique_ptr<DenyMaps> deny_maps_;
  std::unique_ptr<Prefilter> prefilter_;
  std::unique_ptr<EventReader> events_;
  std::unique_ptr<ApiServer> api_;
};

}  // namespace sluice
