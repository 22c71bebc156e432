#!/usr/bin/env bash
# Installs every Debian package Sluice needs, makes sure bpffs is mounted,
# and configures + builds into build/. Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (installs packages, loads BPF programs)" >&2
  exit 1
fi

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config clang llvm
  # BPF: loader library, ELF/BTF, skeleton generator, UAPI headers
  libbpf-dev libelf-dev zlib1g-dev bpftool linux-libc-dev
  # agent libraries
  libspdlog-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libnl-3-dev libnl-route-3-dev
  # API: gRPC over a Unix socket
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # test topology tools (namespaces, veths, probes) and baselines
  iproute2 iputils-ping netcat-openbsd iptables procps python3 ethtool
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# bpffs: the agent mounts it itself when missing; mounting here too lets
# bpftool and the tests see pins from the first run.
if ! mount | grep -q 'type bpf '; then
  mount -t bpf bpf /sys/fs/bpf
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build build -j"$(nproc)"
echo "setup.sh: built into build/ (binaries in build/bin, BPF objects in build/bpf)"
