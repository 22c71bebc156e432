// Python programs the service end-to-end suite runs inside pod network
// namespaces: a backend server that names itself, and a client that opens
// many connections and counts who answered.
#pragma once

namespace sluice::e2e {

// argv: NAME PORT SECONDS. TCP on [::]:PORT (dual stack): sends "NAME\n" on
// accept, then echoes until the peer closes. Exits after SECONDS.
inline constexpr const char* kLbServer = R"PY(
import socket, sys, threading, time
name, port, life = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", port)); s.listen(512)
def serve(c):
    try:
        c.sendall((name + "\n").encode())
        while True:
            d = c.recv(4096)
            if not d: break
            c.sendall(d)
    except OSError: pass
    finally: c.close()
threading.Thread(target=lambda: (time.sleep(life), __import__("os")._exit(0)), daemon=True).start()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
)PY";

// argv: ADDR PORT COUNT [SPORT_BASE]. COUNT sequential connections, each
// reads the server's name and closes; with SPORT_BASE, connection i binds
// source port SPORT_BASE+i. Prints JSON {"counts": {name: n}, "fail": n,
// "by_sport": {sport: name}}.
inline constexpr const char* kLbClient = R"PY(
import json, socket, sys
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = int(sys.argv[4]) if len(sys.argv) > 4 else 0
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
counts, by_sport, fail = {}, {}, 0
for i in range(n):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        if base:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", base + i))
        s.connect((addr, port))
        f = s.makefile()
        name = f.readline().strip()
        counts[name] = counts.get(name, 0) + 1
        if base: by_sport[str(base + i)] = name
    except OSError:
        fail += 1
    finally:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
print(json.dumps({"counts": counts, "fail": fail, "by_sport": by_sport}))
)PY";

// argv: ADDR PORT SECONDS. One connection held open: prints the server's
// name, then every 0.2 s sends "ping" and expects it back; prints "ok N"
// (N round trips) or "broken N" at the end.
inline constexpr const char* kLbHold = R"PY(
import socket, sys, time
addr, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.create_connection((addr, port), timeout=2)
f = s.makefile("rb")
print(f.readline().decode().strip(), flush=True)
n, end = 0, time.time() + secs
try:
    while time.time() < end:
        s.sendall(b"ping\n")
        if f.readline() != b"ping\n": raise OSError("bad echo")
        n += 1
        time.sleep(0.2)
    print("ok", n, flush=True)
except OSError:
    print("broken", n, flush=True)
)PY";

// argv: NAME PORT SECONDS. UDP on [::]:PORT (dual stack): answers every
// datagram with "NAME <datagram>" to its sender. Exits after SECONDS.
inline constexpr const char* kLbUdpServer = R"PY(
import os, socket, sys, threading, time
name, port, life = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", port))
threading.Thread(target=lambda: (time.sleep(life), os._exit(0)), daemon=True).start()
while True:
    d, peer = s.recvfrom(2048)
    s.sendto(name.encode() + b" " + d, peer)
)PY";

// argv: MODE ADDR PORT COUNT. What the application sees of COUNT exchanges
// with ADDR:PORT. MODE tcp: a connection each (reads the server's name,
// getpeername); udp: one unconnected socket, sendto/recvfrom COUNT times;
// udp-each: a new unconnected socket per datagram; udp-connected: a
// connected socket each (recvfrom and getpeername). Prints JSON {"counts":
// {name: n}, "peers": [every "addr:port" the application was told], "fail": n}.
inline constexpr const char* kSockProbe = R"PY(
import json, socket, sys
mode, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
counts, peers, fail = {}, set(), 0
def udp():
    u = socket.socket(fam, socket.SOCK_DGRAM); u.settimeout(2); return u
one = udp() if mode == "udp" else None
for i in range(n):
    try:
        if mode == "tcp":
            s = socket.create_connection((addr, port), timeout=2)
            name = s.makefile().readline().strip()
            peers.add("%s:%d" % s.getpeername()[:2]); s.close()
        elif mode in ("udp", "udp-each"):
            u = one or udp()
            u.sendto(b"hi %d" % i, (addr, port))
            d, src = u.recvfrom(2048)
            name = d.decode().split()[0]; peers.add("%s:%d" % src[:2])
            if not one: u.close()
        else:
            u = udp(); u.connect((addr, port)); u.send(b"hi")
            d, src = u.recvfrom(2048)
            name = d.decode().split()[0]
            peers.add("%s:%d" % src[:2]); peers.add("%s:%d" % u.getpeername()[:2]); u.close()
        counts[name] = counts.get(name, 0) + 1
    except OSError:
        fail += 1
print(json.dumps({"counts": counts, "peers": sorted(peers), "fail": fail}))
)PY";

}  // namespace sluice::e2e
