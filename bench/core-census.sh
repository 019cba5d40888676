#!/usr/bin/env bash
# Benchmark the object census of a Node core (v8core::census, through its `census` example):
# wall time and peak RSS.
#
# usage: bench/core-census.sh [--mb MB] [CORE...]
#
# Without CORE, takes bench/data/core-census-MB.core once (and reuses it afterwards): starts
# `node --max-old-space-size=4096 bench/core-census-app.js MB` (MB of class instances, strings,
# arrays and numbers; default 700, which gcore writes as a ~1.7 GB core, ~830 MB of it V8's
# zero-filled reservations), waits until it blocks in execSync, runs `gcore`, and ends the
# process. A core names the node binary that wrote it: delete the file after changing node.
# Needs gdb (gcore) and ptrace rights on the process (root, or kernel.yama.ptrace_scope=0).
#
# For each core it reads the file once (so the runs start from the page cache), then runs the
# census three times under GNU time and prints each run's phases (open and parse, metadata,
# census), the heap scanned and the objects counted, and one Markdown table row per run:
# core size, heap scanned, objects, wall time, peak RSS. Most of the peak RSS is the core's
# own pages, mapped read-only (page cache, shared and reclaimable); `anon` is the memory the
# census holds when it is done (RssAnon).
#
# Environment:
#   NODE=PATH      the node binary for the generated core (default: node on PATH)
#   CENSUS=PATH    the census example to run (default: target/release/examples/census, built)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

mb=700
cores=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mb) mb=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
    *) cores+=("$1"); shift ;;
  esac
done

[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is required: apt-get install time" >&2; exit 1; }

if [ -z "${CENSUS:-}" ]; then
  cargo build --release -p v8core --example census >&2
  CENSUS=target/release/examples/census
fi

# Ends a process and everything it started (execSync's shell and its sleep), by pid.
kill_tree() {
  local child
  for child in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}

if [ ${#cores[@]} -eq 0 ]; then
  core=bench/data/core-census-$mb.core
  if [ ! -s "$core" ]; then
    command -v gcore >/dev/null || { echo "gcore (gdb) is required: apt-get install gdb" >&2; exit 1; }
    mkdir -p bench/data
    out=$(mktemp)
    "${NODE:-node}" --max-old-space-size=4096 bench/core-census-app.js "$mb" >"$out" &
    app=$!
    # shellcheck disable=SC2064
    trap "kill_tree $app; rm -f '$out'" EXIT
    until grep -q '^ready' "$out"; do
      kill -0 "$app" 2>/dev/null || { echo "the app exited" >&2; exit 1; }
      sleep 1
    done
    # execSync's child is there once the app waits in native code.
    until [ -n "$(cat "/proc/$app/task/$app/children" 2>/dev/null)" ]; do sleep 0.2; done
    echo "app: $(cat "$out") (heapUsed bytes, items); taking the core" >&2
    start=$(date +%s.%N)
    gcore -o "bench/data/core-census-$mb" "$app" >/dev/null
    mv "bench/data/core-census-$mb.$app" "$core"
    chmod 600 "$core"
    echo "gcore: $(echo "$(date +%s.%N) - $start" | bc) s" >&2
    kill_tree "$app"
    wait "$app" 2>/dev/null || true
    rm -f "$out"
    trap - EXIT
  fi
  cores=("$core")
fi

echo "| core | heap scanned | objects | wall | peak RSS | anon |"
echo "|---:|---:|---:|---:|---:|---:|"
for core in "${cores[@]}"; do
  cat "$core" >/dev/null
  for run in 1 2 3; do
    log=$(mktemp)
    /usr/bin/time -f 'TIME %e %M' -o "$log.time" "$CENSUS" "$core" --top 0 >"$log"
    sed 's/^/  /' "$log" >&2
    read -r _ wall rss <"$log.time"
    size=$(stat -c %s "$core")
    scanned=$(sed -n 's/.*heap scanned \([0-9]*\) bytes.*/\1/p' "$log")
    objects=$(sed -n 's/.*scanned [0-9]* bytes, \([0-9]*\) objects.*/\1/p' "$log")
    anon=$(sed -n 's/^RssAnon: *\([0-9]*\) kB/\1/p' "$log")
    printf '| %.2f GB | %.0f MB | %.1fM | %s s | %.0f MB | %s MB |\n' \
      "$(echo "$size / 1000000000" | bc -l)" "$(echo "$scanned / 1000000" | bc -l)" \
      "$(echo "$objects / 1000000" | bc -l)" "$wall" "$(echo "$rss / 1024" | bc -l)" \
      "$(( ${anon:-0} / 1024 ))"
    rm -f "$log" "$log.time"
  done
done
