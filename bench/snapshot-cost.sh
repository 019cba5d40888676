#!/usr/bin/env bash
# Measure the extra memory a Node app needs while V8 builds and streams a heap snapshot to
# `leakhound capture --pid`, as a multiple of its heap, for several Node binaries and heap shapes.
#
# usage: sudo bench/snapshot-cost.sh [--shapes LIST] [--mb LIST] [--runs N] [--raw FILE] [NODE...]
#
# NODE... are the node binaries to test (default: $NODES, a space-separated list, else `node`).
#   --shapes LIST  comma-separated heap shapes (default sessions,tiny,strings,bigstrings):
#                    sessions      bench/capture-app.js (class instances with two short strings, a
#                                  number and a small array, in a Map), --objects sized for the MB
#                    tiny          one array of `{a: i, b: i}`
#                    strings       distinct 1-4 KB strings in an array
#                    bigstrings    distinct 1 MB strings (few objects, big bytes, in the large
#                                  object space)
#                  and, not in the default list:
#                    buffers       1 MB Buffers: MB of memory outside the heap, heapUsed ~4 MB
#                    points        one array of `{x, y}` objects with double values
#                    numbers       one array of boxed doubles (the worst ordinary shape, ~60x)
#                    chunks        boxed doubles in arrays of 1,000 (no long array)
#                    shortstrings  one array of distinct `s<i>` strings
#                    refs          one array of references to 16 objects (the pathological case,
#                                  ~150x its heap: keep its MB small)
#                  all but sessions are bench/snapshot-cost-app.js --shape SHAPE --mb MB
#   --mb LIST      comma-separated heapUsed targets in MiB (default 50,200)
#   --runs N       runs of each (node, shape, MB) (default 2)
#   --raw FILE     also append one JSON object per run to FILE (every number below, plus the
#                  app's process.memoryUsage(), v8.getHeapStatistics() and per-space used sizes)
#
# Each run starts the app, with `--expose-gc --inspect-port=0` (no inspector until SIGUSR1, and
# no clash with anything on 9229) and bench/snapshot-cost-stats.js preloaded, alone in a fresh
# memory cgroup (cgroup v1: a child of this script's own memory cgroup, no limit). leakhound stays
# outside it, so the page cache of the snapshot file it writes is not charged to the app. Once the
# app is `ready`, SIGUSR2 makes it run a full GC and print its heap statistics; then the script
# reads the cgroup's memory.usage_in_bytes and the app's VmRSS, resets the cgroup's peak
# (memory.max_usage_in_bytes, what the OOM killer compares with memory.limit_in_bytes) and the
# app's VmHWM, runs `leakhound capture --pid PID -o FILE --json --force`, and reads both peaks
# again.
# One Markdown table row per run on stdout (MiB = 2^20 bytes):
#   heapUsed     after the app's GC, before the capture
#   RSS before   the app's VmRSS before the capture
#   extra        cgroup peak during the capture - cgroup usage before it
#   HWM extra    the app's VmHWM during the capture - its VmRSS before it (the same, seen by ps)
#   kept         cgroup usage after the capture - before it (what the app keeps afterwards:
#                mostly memory glibc's malloc keeps on its free lists)
#   snapshot     the file leakhound wrote (MB = 1e6 bytes), nodes from its header
#   extra/heap, extra/snapshot, extra per snapshot node
# Progress goes to stderr. One app at a time; every app, cgroup and snapshot this script makes is
# removed on exit. Memory: up to ~30x the heap during a snapshot of tiny objects (6 GB at 200 MB),
# ~60x for numbers and shortstrings, ~150x for refs; a run is skipped when MemAvailable is below
# 40x its heap target (60x for numbers and shortstrings, 160x for refs). Needs root (cgroups).
#
# Environment:
#   LEAKHOUND=PATH   the leakhound binary (default target/release/leakhound, built if missing)
#   NODES="N1 N2"    the node binaries, when none are given as arguments
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

shapes=sessions,tiny,strings,bigstrings
mbs=50,200
runs=2
raw=""
nodes=()
while [ $# -gt 0 ]; do
  case "$1" in
    --shapes) shapes=$2; shift ;;
    --mb) mbs=$2; shift ;;
    --runs) runs=$2; shift ;;
    --raw) raw=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
    *) nodes+=("$1") ;;
  esac
  shift
done
if [ ${#nodes[@]} -eq 0 ]; then
  read -r -a nodes <<<"${NODES:-node}"
fi

cgroot=/sys/fs/cgroup/memory
grep -q "^cgroup $cgroot cgroup .*memory" /proc/mounts ||
  { echo "needs the cgroup v1 memory controller mounted at $cgroot" >&2; exit 1; }
cgbase=$cgroot$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
[ -w "$cgbase" ] || { echo "cannot create cgroups under $cgbase (run as root)" >&2; exit 1; }

if [ -z "${LEAKHOUND:-}" ]; then
  LEAKHOUND=target/release/leakhound
  [ -x "$LEAKHOUND" ] || cargo build --release -p leakhound >&2
fi

tmp=$(mktemp -d /tmp/leakhound-snapshot-cost.XXXXXX)
app=""
cg=""
stop_app() {
  if [ -n "$app" ]; then
    kill "$app" 2>/dev/null || true
    wait "$app" 2>/dev/null || true
    app=""
  fi
  if [ -n "$cg" ]; then
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.2; done
    [ -d "$cg" ] && echo "could not remove the cgroup $cg" >&2
    cg=""
  fi
}
cleanup() { stop_app; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else printf "–" }'; }
# proc_bytes PID FIELD: VmRSS / VmHWM of PID in bytes.
proc_bytes() { awk -v f="$2:" '$1 == f { printf "%.0f\n", $2 * 1024 }' "/proc/$1/status"; }
# stat_of KEY: a number from the app's `stats` JSON line.
stat_of() { grep -o "\"$1\":[0-9]*" "$tmp/stats" | head -n 1 | cut -d: -f2; }

# run NODE SHAPE MB RUN: one row.
run() {
  local node=$1 shape=$2 mb=$3 n=$4 version
  version=$("$node" --version)
  local avail_kb need=40
  case "$shape" in numbers|shortstrings) need=60 ;; refs) need=160 ;; esac
  avail_kb=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
  if [ "$avail_kb" -lt $((mb * need * 1024)) ]; then
    echo "skipping $version $shape $mb MiB: only $((avail_kb / 1024)) MiB available" >&2
    return
  fi
  local app_args
  case "$shape" in
    # capture-app.js: ~300 bytes of heap per Session on Node 20-26.
    sessions) app_args=(bench/capture-app.js --objects $((mb * 3400))) ;;
    *) app_args=(bench/snapshot-cost-app.js --shape "$shape" --mb "$mb") ;;
  esac
  cg=$cgbase/snapcost-$$-$n-$RANDOM
  mkdir "$cg"
  : >"$tmp/app.out"
  # The shell moves itself into the cgroup, then becomes node: same PID, nothing else inside.
  sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" \
    "$node" --expose-gc --inspect-port=0 --require ./bench/snapshot-cost-stats.js "${app_args[@]}" \
    >"$tmp/app.out" 2>"$tmp/app.err" &
  app=$!
  local i
  for i in $(seq 1500); do
    grep -q '^ready$' "$tmp/app.out" && break
    kill -0 "$app" 2>/dev/null || break
    sleep 0.2
  done
  if ! grep -q '^ready$' "$tmp/app.out"; then
    tail -n 5 "$tmp/app.err" >&2
    echo "the app ($version $shape $mb MiB) died or was not ready after 300 s" >&2
    stop_app
    return
  fi
  kill -USR2 "$app"
  for i in $(seq 300); do grep -q '^stats ' "$tmp/app.out" && break; sleep 0.1; done
  if ! grep '^stats ' "$tmp/app.out" | cut -d' ' -f2- >"$tmp/stats"; then
    echo "the app ($version $shape $mb MiB) printed no stats after SIGUSR2" >&2
    stop_app
    return
  fi
  sleep 1
  local before rss_before peak hwm after status=0
  before=$(cat "$cg/memory.usage_in_bytes")
  rss_before=$(proc_bytes "$app" VmRSS)
  echo 0 >"$cg/memory.max_usage_in_bytes"
  echo 5 >"/proc/$app/clear_refs" # resets VmHWM to VmRSS
  # --force: the memory check would refuse the costliest shapes; this script measures them (and
  # skips a run when the machine has too little memory for it, above).
  "$LEAKHOUND" capture --pid "$app" -o "$tmp/x.heapsnapshot" --json --timeout 300s --force \
    >"$tmp/capture.json" 2>"$tmp/capture.err" || status=$?
  peak=$(cat "$cg/memory.max_usage_in_bytes")
  hwm=$(proc_bytes "$app" VmHWM)
  after=$(cat "$cg/memory.usage_in_bytes")
  local heap snap=0 node_count=0 edge_count=0 seconds=0 header
  heap=$(stat_of heapUsed)
  if [ "$status" = 0 ]; then
    snap=$(stat -c %s "$tmp/x.heapsnapshot" 2>/dev/null || echo 0)
    header=$(head -c 4096 "$tmp/x.heapsnapshot")
    node_count=$(grep -o '"node_count":[0-9]*' <<<"$header" | cut -d: -f2 || true)
    edge_count=$(grep -o '"edge_count":[0-9]*' <<<"$header" | cut -d: -f2 || true)
    seconds=$(grep -o '"seconds": *[0-9.]*' "$tmp/capture.json" | grep -o '[0-9.]*$' || true)
  else
    tail -n 5 "$tmp/capture.err" >&2
    echo "capture failed (exit $status)" >&2
  fi
  rm -f "$tmp/x.heapsnapshot"
  node_count=${node_count:-0} edge_count=${edge_count:-0} seconds=${seconds:-0}
  local extra=$((peak - before))
  echo "$version $shape $mb MiB #$n: heapUsed $(mib "$heap") MiB," \
    "extra $(mib "$extra") MiB ($(ratio "$extra" "$heap")x), $seconds s" >&2
  local per_node="–"
  [ "$node_count" -gt 0 ] && per_node=$((extra / node_count))
  local cells=(
    "$version" "$shape" "$(mib "$heap")" "$(mib "$rss_before")" "$(mib "$before")" "$(mib "$extra")"
    "$(mib $((hwm - rss_before)))" "$(mib $((after - before)))"
    "$(awk -v b="$snap" 'BEGIN { printf "%.0f", b / 1e6 }')" "$node_count"
    "$(ratio "$extra" "$heap")" "$(ratio "$extra" "$snap")" "$per_node"
    "$(awk -v s="$seconds" 'BEGIN { printf "%.1f", s }')"
  )
  printf '| %s ' "${cells[@]}"
  printf '|\n'
  if [ -n "$raw" ]; then
    printf '{"node":"%s","shape":"%s","target_mib":%s,"run":%s,"status":%s,' \
      "$version" "$shape" "$mb" "$n" "$status" >>"$raw"
    printf '"cgroup_before":%s,"cgroup_peak":%s,"cgroup_after":%s,"rss_before":%s,"hwm":%s,' \
      "$before" "$peak" "$after" "$rss_before" "$hwm" >>"$raw"
    printf '"snapshot_bytes":%s,"nodes":%s,"edges":%s,"seconds":%s,"app":%s}\n' \
      "$snap" "$node_count" "$edge_count" "$seconds" "$(cat "$tmp/stats")" >>"$raw"
  fi
  stop_app
}

echo "| node | shape | heapUsed MiB | RSS before MiB | cgroup before MiB | extra MiB | HWM extra MiB |" \
  "kept MiB | snapshot MB | nodes | extra/heapUsed | extra/snapshot | extra B/node | capture s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
IFS=, read -r -a shape_list <<<"$shapes"
IFS=, read -r -a mb_list <<<"$mbs"
for node in "${nodes[@]}"; do
  for shape in "${shape_list[@]}"; do
    for mb in "${mb_list[@]}"; do
      for n in $(seq "$runs"); do run "$node" "$shape" "$mb" "$n"; done
    done
  done
done
echo
version=$("$LEAKHOUND" --version 2>/dev/null | head -n 1) || version=leakhound
cpu=$(grep -m 1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
mem=$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)
echo "$cpu, $(nproc) cores, $mem; Linux $(uname -r); ${version:-leakhound};" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
