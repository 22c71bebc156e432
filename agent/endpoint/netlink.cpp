#include "endpoint/netlink.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "common/fd.h"

namespace sluice {
namespace {

std::string nl_err(int e) { return std::string(nl_geterror(e)); }

template <typename T, void (*F)(T*)>
struct NlDel {
  void operator()(T* p) const {
    if (p) F(p);
  }
};
using LinkPtr = std::unique_ptr<rtnl_link, NlDel<rtnl_link, rtnl_link_put>>;
using AddrPtr = std::unique_ptr<nl_addr, NlDel<nl_addr, nl_addr_put>>;

AddrPtr to_nl(const IpAddr& a, int prefixlen) {
  AddrPtr p(nl_addr_build(a.family, a.bytes.data(), a.size()));
  if (p) nl_addr_set_prefixlen(p.get(), prefixlen);
  return p;
}

}  // namespace

std::string mac_str(const Mac& m) {
  char b[18];
  std::snprintf(b, sizeof(b), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1],
                m[2], m[3], m[4], m[5]);
  return b;
}

Result<Netlink> Netlink::open() {
  nl_sock* s = nl_socket_alloc();
  if (!s) return err("netlink: socket alloc failed");
  if (int e = nl_connect(s, NETLINK_ROUTE); e < 0) {
    nl_socket_free(s);
    return err("netlink: connect: " + nl_err(e));
  }
  return Netlink(s);
}

Netlink::~Netlink() {
  if (sk_) nl_socket_free(sk_);
}

Netlink::Netlink(Netlink&& o) noexcept : sk_(o.sk_) { o.sk_ = nullptr; }

Status Netlink::create_veth(const std::string& host, const std::string& peer,
                            int netns_fd) {
  LinkPtr link(rtnl_link_veth_alloc());
  if (!link) return err("veth " + host + ": alloc failed");
  rtnl_link_set_name(link.get(), host.c_str());
  rtnl_link* p = rtnl_link_veth_get_peer(link.get());
  rtnl_link_set_name(p, peer.c_str());
  rtnl_link_set_ns_fd(p, netns_fd);
  int e = rtnl_link_add(sk_, link.get(), NLM_F_CREATE | NLM_F_EXCL);
  rtnl_link_put(p);
  if (e < 0) return err("veth " + host + "/" + peer + ": create: " + nl_err(e));
  return {};
}

Status Netlink::delete_link(const std::string& name) {
  LinkPtr l(rtnl_link_alloc());
  rtnl_link_set_name(l.get(), name.c_str());
  int e = rtnl_link_delete(sk_, l.get());
  if (e < 0 && e != -NLE_NODEV && e != -NLE_OBJ_NOTFOUND)
    return err("link " + name + ": delete: " + nl_err(e));
  return {};
}

Result<unsigned> Netlink::ifindex(const std::string& name) {
  rtnl_link* l = nullptr;
  if (int e = rtnl_link_get_kernel(sk_, 0, name.c_str(), &l); e < 0)
    return err("link " + name + ": " + nl_err(e));
  LinkPtr lp(l);
  return unsigned(rtnl_link_get_ifindex(l));
}

Result<Mac> Netlink::mac(const std::string& name) {
  rtnl_link* l = nullptr;
  if (int e = rtnl_link_get_kernel(sk_, 0, name.c_str(), &l); e < 0)
    return err("link " + name + ": " + nl_err(e));
  LinkPtr lp(l);
  nl_addr* a = rtnl_link_get_addr(l);
  if (!a || nl_addr_get_len(a) != 6) return err("link " + name + ": no MAC");
  Mac m;
  std::memcpy(m.data(), nl_addr_get_binary_addr(a), 6);
  return m;
}

Status Netlink::set_up(const std::string& name) {
  rtnl_link* l = nullptr;
  if (int e = rtnl_link_get_kernel(sk_, 0, name.c_str(), &l); e < 0)
    return err("link " + name + ": " + nl_err(e));
  LinkPtr lp(l);
  LinkPtr change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (int e = rtnl_link_change(sk_, l, change.get(), 0); e < 0)
    return err("link " + name + ": set up: " + nl_err(e));
  return {};
}

Status Netlink::add_address(const std::string& dev, const Cidr& c) {
  auto idx = ifindex(dev);
  if (!idx) return Error{idx.error()};
  std::unique_ptr<rtnl_addr, NlDel<rtnl_addr, rtnl_addr_put>> a(
      rtnl_addr_alloc());
  rtnl_addr_set_ifindex(a.get(), int(*idx));
  auto local = to_nl(c.addr, c.prefixlen);
  rtnl_addr_set_local(a.get(), local.get());
  // No duplicate address detection: the address is ours by allocation,
  // and DAD would delay a pod's first packet by a second or more.
  if (c.addr.family == AF_INET6) rtnl_addr_set_flags(a.get(), IFA_F_NODAD);
  if (int e = rtnl_addr_add(sk_, a.get(), NLM_F_CREATE | NLM_F_REPLACE); e < 0)
    return err("link " + dev + ": add address " + c.str() + ": " + nl_err(e));
  return {};
}

Status Netlink::add_route(const std::string& dev, const Cidr& dst,
                          const IpAddr* gateway) {
  auto idx = ifindex(dev);
  if (!idx) return Error{idx.error()};
  std::unique_ptr<rtnl_route, NlDel<rtnl_route, rtnl_route_put>> r(
      rtnl_route_alloc());
  rtnl_route_set_family(r.get(), uint8_t(dst.addr.family));
  auto d = to_nl(dst.addr, dst.prefixlen);
  rtnl_route_set_dst(r.get(), d.get());
  rtnl_route_set_scope(r.get(), gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  rtnl_route_nh_set_ifindex(nh, int(*idx));
  AddrPtr gw;
  if (gateway) {
    gw = to_nl(*gateway, gateway->family == AF_INET ? 32 : 128);
    rtnl_route_nh_set_gateway(nh, gw.get());
    rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
  }
  rtnl_route_add_nexthop(r.get(), nh);  // the route owns nh now
  if (int e = rtnl_route_add(sk_, r.get(), NLM_F_CREATE | NLM_F_REPLACE); e < 0)
    return err("link " + dev + ": add route " + dst.str() + ": " + nl_err(e));
  return {};
}

Status Netlink::add_permanent_neighbour(const std::string& dev,
                                        const IpAddr& ip, const Mac& mac) {
  auto idx = ifindex(dev);
  if (!idx) return Error{idx.error()};
  std::unique_ptr<rtnl_neigh, NlDel<rtnl_neigh, rtnl_neigh_put>> n(
      rtnl_neigh_alloc());
  rtnl_neigh_set_ifindex(n.get(), int(*idx));
  auto dst = to_nl(ip, ip.family == AF_INET ? 32 : 128);
  rtnl_neigh_set_dst(n.get(), dst.get());
  AddrPtr ll(nl_addr_build(AF_LLC, mac.data(), 6));
  rtnl_neigh_set_lladdr(n.get(), ll.get());
  rtnl_neigh_set_state(n.get(), NUD_PERMANENT);
  if (int e = rtnl_neigh_add(sk_, n.get(), NLM_F_CREATE | NLM_F_REPLACE); e < 0)
    return err("link " + dev + ": add neighbour " + ip.str() + ": " +
               nl_err(e));
  return {};
}

Status Netlink::add_managed_neighbour(unsigned ifindex, const IpAddr& ip) {
  // libnl has no setter for NDA_FLAGS_EXT: the message is built here.
  std::unique_ptr<nl_msg, NlDel<nl_msg, nlmsg_free>> m(nlmsg_alloc_simple(
      RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE));
  if (!m) return err("netlink: message alloc failed");
  ndmsg nd{};
  nd.ndm_family = uint8_t(ip.family);
  nd.ndm_ifindex = int(ifindex);
  nd.ndm_state = NUD_NONE;
  if (nlmsg_append(m.get(), &nd, sizeof(nd), NLMSG_ALIGNTO) < 0 ||
      nla_put(m.get(), NDA_DST, int(ip.size()), ip.bytes.data()) < 0 ||
      nla_put_u32(m.get(), NDA_FLAGS_EXT, NTF_EXT_MANAGED) < 0)
    return err("netlink: neighbour message too large");
  // nl_send_sync frees the message and waits for the kernel's answer.
  if (int e = nl_send_sync(sk_, m.release()); e < 0)
    return err("ifindex " + std::to_string(ifindex) +
               ": add managed neighbour " + ip.str() + ": " + nl_err(e));
  return {};
}

Status in_netns(const std::string& netns_path,
                const std::function<Status(Netlink&)>& fn) {
  UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid())
    return err("netns " + netns_path + ": " + errno_str(errno));
  Status result = err("netns " + netns_path + ": worker did not run");
  std::thread t([&] {
    if (::setns(ns.get(), CLONE_NEWNET)) {
      result = err("netns " + netns_path + ": setns: " + errno_str(errno));
      return;
    }
    auto nl = Netlink::open();
    if (!nl) {
      result = Error{nl.error()};
      return;
    }
    result = fn(*nl);
  });
  t.join();
  return result;
}

}  // namespace sluice
