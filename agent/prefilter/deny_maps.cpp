#include "prefilter/deny_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "sluice/abi.h"

namespace sluice {
namespace {

const char* trie_name(int family) {
  return family == AF_INET ? SLUICE_MAP_PF_V4 : SLUICE_MAP_PF_V6;
}

// An LPM key is prefixlen followed by the address bytes.
std::vector<uint8_t> lpm_key(const Cidr& c) {
  std::vector<uint8_t> k(4 + c.addr.size());
  uint32_t plen = c.prefixlen;
  std::memcpy(k.data(), &plen, 4);
  std::memcpy(k.data() + 4, c.addr.bytes.data(), c.addr.size());
  return k;
}

}  // namespace

DenyMaps::DenyMaps(DenyMapFds fds)
    : fds_(fds), bm4_(AF_INET, fds.v4_bitmap), bm6_(AF_INET6, fds.v6_bitmap) {}

Result<std::unique_ptr<DenyMaps>> DenyMaps::open(DenyMapFds fds) {
  auto d = std::make_unique<DenyMaps>(fds);
  if (auto s = d->bm4_.map(); !s) return Error{s.error()};
  if (auto s = d->bm6_.map(); !s) return Error{s.error()};
  return d;
}

Status DenyMaps::trie_write(const Cidr& c) {
  auto k = lpm_key(c);
  sluice_prefilter_value v{};
  const int fd = c.addr.family == AF_INET ? fds_.v4_trie : fds_.v6_trie;
  if (bpf_map_update_elem(fd, k.data(), &v, BPF_ANY))
    return err(std::string("map ") + trie_name(c.addr.family) + ": add " +
               c.str() + ": " + errno_str(errno));
  return {};
}

Status DenyMaps::trie_delete(const Cidr& c) {
  auto k = lpm_key(c);
  const int fd = c.addr.family == AF_INET ? fds_.v4_trie : fds_.v6_trie;
  if (bpf_map_delete_elem(fd, k.data()) && errno != ENOENT)
    return err(std::string("map ") + trie_name(c.addr.family) + ": delete " +
               c.str() + ": " + errno_str(errno));
  return {};
}

Result<std::set<Cidr>> DenyMaps::trie_read(int family) const {
  const int fd = family == AF_INET ? fds_.v4_trie : fds_.v6_trie;
  const size_t alen = family == AF_INET ? 4 : 16;
  std::vector<uint8_t> key(4 + alen), next(4 + alen);
  std::set<Cidr> out;
  void* prev = nullptr;
  int rc;
  while ((rc = bpf_map_get_next_key(fd, prev, next.data())) == 0) {
    key = next;
    prev = key.data();
    Cidr c;
    c.addr.family = family;
    uint32_t plen;
    std::memcpy(&plen, key.data(), 4);
    c.prefixlen = uint8_t(plen);
    std::memcpy(c.addr.bytes.data(), key.data() + 4, alen);
    out.insert(c);
  }
  if (errno != ENOENT)
    return err(std::string("map ") + trie_name(family) + ": iterate: " +
               errno_str(errno));
  return out;
}

// Large inserts (a restore, a big list) go to the kernel in batches of
// 64k keys per syscall; small ones one by one.
Status DenyMaps::trie_write_many(int family, const std::vector<Cidr>& cidrs) {
  if (cidrs.size() < 64) {
    for (const auto& c : cidrs)
      if (auto s = trie_write(c); !s) return s;
    return {};
  }
  const size_t ksize = family == AF_INET ? 8 : 20;
  std::vector<uint8_t> keys;
  keys.reserve(cidrs.size() * ksize);
  for (const auto& c : cidrs) {
    auto k = lpm_key(c);
    keys.insert(keys.end(), k.begin(), k.end());
  }
  std::vector<sluice_prefilter_value> vals(cidrs.size());
  const int fd = family == AF_INET ? fds_.v4_trie : fds_.v6_trie;
  for (size_t done = 0; done < cidrs.size();) {
    __u32 n = __u32(std::min<size_t>(1 << 16, cidrs.size() - done));
    LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = BPF_ANY);
    if (bpf_map_update_batch(fd, keys.data() + done * ksize, &vals[done], &n,
                             &o)) {
      // Kernels without batch ops for this map type: one by one.
      for (; done < cidrs.size(); done++)
        if (auto s = trie_write(cidrs[done]); !s) return s;
      return {};
    }
    done += n;
  }
  return {};
}

Status DenyMaps::insert(const std::vector<Cidr>& cidrs) {
  for (int fam : {AF_INET, AF_INET6}) {
    std::vector<Cidr> mine;
    for (const auto& c : cidrs)
      if (c.addr.family == fam) mine.push_back(c);
    auto s = trie_write_many(fam, mine);
    // Bits for what reached the trie, even on a partial failure, so the
    // datapath never holds a trie entry hidden behind a clear bit.
    for (const auto& c : mine) bitmap(fam).add(c);
    bitmap(fam).sync();
    if (!s) return s;
  }
  return {};
}

Status DenyMaps::erase(const std::vector<Cidr>& cidrs) {
  Status result;
  for (const auto& c : cidrs) {
    if (auto s = trie_delete(c); !s) {
      result = s;
      break;
    }
    bitmap(c.addr.family).remove(c);
  }
  bm4_.sync();
  bm6_.sync();
  return result;
}

Status DenyMaps::reconcile(const std::set<Cidr>& want, size_t* added,
                           size_t* removed) {
  std::set<Cidr> have;
  for (int fam : {AF_INET, AF_INET6}) {
    auto m = trie_read(fam);
    if (!m) return Error{m.error()};
    have.insert(m->begin(), m->end());
  }
  *added = *removed = 0;
  std::vector<Cidr> missing;
  for (const auto& c : want)
    if (!have.count(c)) missing.push_back(c);
  for (int fam : {AF_INET, AF_INET6}) {
    std::vector<Cidr> mine;
    for (const auto& c : missing)
      if (c.addr.family == fam) mine.push_back(c);
    if (auto s = trie_write_many(fam, mine); !s) return s;
  }
  *added = missing.size();
  // Bitmaps from scratch: every wanted prefix has its bits from here on.
  bm4_.clear();
  bm6_.clear();
  for (const auto& c : want) bitmap(c.addr.family).add(c);
  bm4_.sync();
  bm6_.sync();
  for (const auto& c : have)
    if (!want.count(c)) {
      if (auto s = trie_delete(c); !s) return s;
      ++*removed;
    }
  return {};
}

bool DenyMaps::bucket_set(const IpAddr& a) const {
  return a.family == AF_INET ? bm4_.test(a) : bm6_.test(a);
}

}  // namespace sluice
