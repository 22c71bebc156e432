#!/usr/bin/env bash
# Loads every BPF object of the build and prints the verifier's view of each
# program (translated instructions, JITed bytes). Nothing is pinned: the
# programs are loaded into a throwaway bpffs directory and removed at once.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /sys/fs/bpf/sluice-verifier-XXXXXX 2>/dev/null) || { echo "verifier-report: bpffs not mounted"; exit 0; }
trap 'rm -rf "$dir"' EXIT
printf '%-28s %-10s %8s %8s\n' OBJECT PROGRAM XLATED JITED
for obj in build/bpf/*.bpf.o; do
  name=$(basename "$obj" .bpf.o)
  if ! bpftool prog loadall "$obj" "$dir/$name" >/dev/null 2>&1; then
    printf '%-28s %s\n' "$name" "LOAD FAILED"; continue
  fi
  for p in "$dir/$name"/*; do
    bpftool -j prog show pinned "$p" | python3 -c '
import json,sys; p=json.load(sys.stdin)
print("%-28s %-10s %8d %8d" % (sys.argv[1], p["name"], p["bytes_xlated"]//8, p["bytes_jited"]))' "$name"
  done
  rm -rf "$dir/$name"
done
