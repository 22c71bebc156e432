// sluice-cni: the CNI plugin (spec 1.0.0). ADD/DEL/CHECK become
// EndpointAdd/Del/Check calls to the agent over its Unix socket (network
// config "socket", default /run/sluice/sluice.sock), each bounded by a
// 30 s deadline. The logic, error codes and decisions are in cni/cni.h.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cni/cni.h"
#include "sluice.grpc.pb.h"

namespace cni = sluice::cni;
namespace v1 = sluice::v1;

int main() {
  cni::Getenv getenv = [](const std::string& k) -> std::optional<std::string> {
    const char* v = std::getenv(k.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  cni::ReadStdin read_stdin = []() -> std::optional<std::string> {
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) s.append(buf, n);
    if (std::ferror(stdin)) return std::nullopt;
    return s;
  };
  cni::AgentCall agent = [](const std::string& cmd, const std::string& socket,
                            const v1::EndpointRequest& req,
                            v1::EndpointReply* reply) {
    auto stub = v1::Agent::NewStub(grpc::CreateChannel(
        "unix:" + socket, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(cni::kRpcTimeoutSeconds));
    if (cmd == "ADD") return stub->EndpointAdd(&ctx, req, reply);
    if (cmd == "DEL") return stub->EndpointDel(&ctx, req, reply);
    return stub->EndpointCheck(&ctx, req, reply);
  };

  if (!std::getenv("CNI_COMMAND"))
    std::cerr << "sluice-cni: CNI plugin of Sluice; CNI protocol versions "
                 "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0\n";
  const cni::Output out = cni::run(getenv, read_stdin, agent);
  std::cout << out.stdout_text << std::flush;
  return out.exit_code;
}
