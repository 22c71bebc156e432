// gRPC server for the agent API on a Unix socket readable by root only.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace grpc {
class Server;
}

namespace sluice {

class Agent;
class AgentService;

class ApiServer {
 public:
  explicit ApiServer(Agent& agent);
  ~ApiServer();
  Status start(const std::string& socket_path);
  void shutdown();

 private:
  Agent& agent_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace sluice
