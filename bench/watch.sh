#!/usr/bin/env bash
# Benchmark the sampling cost of `leakhound watch` on a ~1 GB Node process with thousands of
# mappings (issue 5: "under 1 % of one core at the default interval").
#
# usage: bench/watch.sh [--duration SECONDS] [--reads N]
#
# Starts `node --expose-gc --max-old-space-size=4096 --trace-gc bench/watch-app.js` (about 1 GB
# RSS, ~3,000 mappings: V8 heap pages, mapped Buffers, 3 worker threads with malloc arenas; see
# the app), waits for its `ready` line and for V8's memory reducer to be done, then measures:
#   raw reads      N (default 20) reads in a row each of /proc/PID/status, /proc/PID/smaps and
#                  /proc/PID/smaps_rollup by python3 (open + read to the end, time.perf_counter),
#                  then 10 reads of status and smaps spaced 2 s apart, as the watcher reads them
#                  (here a read after a pause costs about twice one in a loop); median, min and
#                  max in ms, and the mapping count (lines of /proc/PID/maps)
#   idle           the app's own CPU over those ~20 s with nobody watching (its baseline; the
#                  kernel's work for a /proc read is charged to the reader)
#   default        leakhound watch --pid PID --duration 60s --json at the defaults (--interval 2s;
#                  --smaps-every follows the interval, so smaps is due at every sample and only
#                  the "at most once per 150x its own cost" rule spaces the reads)
#   smaps 1s       the same with --interval 1s
#   smaps 10s      --smaps-every 10s (the default before issue 11)
#   status only    --smaps-every 1h: smaps is read at the first sample only, so the steady
#                  figure is the cost of a sample without smaps
#   inspector      the default case on a second app started with --inspect=127.0.0.1:0: the
#                  watcher also asks V8 for process.memoryUsage() at every sample
# Each watch also writes its samples (--out FILE.jsonl) to count the samples that carry an smaps
# breakdown. From the watcher's --json report: samples, cpu_per_sample_ms, share_of_one_core,
# peak_rss (its own CPU from /proc/self/stat, 10 ms ticks, startup excluded). From
# /usr/bin/time -v: user+sys and max RSS of the whole leakhound process. And, from outside, in
# ns (sum of /proc/PID/task/*/schedstat): leakhound's CPU from 1 s after its start to 1 s before
# its end ("steady", per sample over the samples in that window), and the app's CPU in the same
# window (to compare with its idle baseline) and its GCs there (the app runs with --trace-gc).
# MB are MiB. Before measuring, the script waits until the app is 60 s old and its CPU has calmed
# down (V8's memory reducer GCs after the build). Prints Markdown tables on stdout; progress goes
# to stderr. One app at a time (the first is killed before the second starts); every app this
# script started is killed at the end. About 8 minutes.
#
# Environment:
#   LEAKHOUND=PATH   benchmark this binary instead of building target/release/leakhound
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

duration=60
reads=20
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift ;;
    --reads) reads=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$duration" -ge 10 ] || { echo "--duration must be at least 10 (seconds)" >&2; exit 2; }

[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is required: apt-get install time" >&2; exit 1; }
for tool in python3 jq; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

if [ -z "${LEAKHOUND:-}" ]; then
  cargo build --release -p leakhound >&2
  LEAKHOUND=target/release/leakhound
fi

tmp=$(mktemp -d /tmp/leakhound-watch-bench.XXXXXX)
apps=()
cleanup() {
  local p
  for p in "${apps[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${apps[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# cpu_ns PID: CPU time of all live threads of PID, in ns (schedstat's first field).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
now() { echo "$EPOCHREALTIME"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# start_app NAME NODE_ARGS...: starts the app in the background (pid in $app), waits for `ready`.
start_app() {
  local name=$1; shift
  node --expose-gc --max-old-space-size=4096 --trace-gc "$@" bench/watch-app.js \
    >"$tmp/$name.app.out" 2>"$tmp/$name.app.err" &
  app=$!
  app_started=$(now)
  app_out="$tmp/$name.app.out"
  apps+=("$app")
  local i
  for i in $(seq 600); do
    grep -q '^ready' "$tmp/$name.app.out" && break
    kill -0 "$app" 2>/dev/null || { cat "$tmp/$name.app.err" >&2; echo "the app exited" >&2; exit 1; }
    sleep 0.5
  done
  grep -q '^ready' "$tmp/$name.app.out" || { echo "the app did not get ready in 300 s" >&2; exit 1; }
  echo "app $name (pid $app): $(grep '^ready' "$tmp/$name.app.out")" >&2
  quiet "$app"
}

# quiet PID: waits (at most 180 s) until the app is 60 s old and used under 1 % of a core in
# each of six 2 s windows in a row: V8's memory reducer runs full GCs (~0.4 s of CPU each, and
# fewer V8 pages after) some 10, 20 and 43 s after the app's start here; they would count in the
# app's CPU and change its mappings.
quiet() {
  local calm=0 i a b age
  for i in $(seq 90); do
    a=$(cpu_ns "$1"); sleep 2; b=$(cpu_ns "$1")
    if [ $((b - a)) -lt 20000000 ]; then calm=$((calm + 1)); else calm=0; fi
    age=$(awk -v a="$(now)" -v b="$app_started" 'BEGIN { printf "%.0f", a - b }')
    [ "$calm" -ge 6 ] && [ "$age" -ge 60 ] && { echo "  quiet after $((2 * i)) s" >&2; return; }
  done
  echo "  the app is still busy after 180 s; measuring anyway" >&2
}

stop_app() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local p rest=()
  for p in "${apps[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
  apps=("${rest[@]}")
}

# app_facts PID: "RSS_MB MAPS"
app_facts() {
  local rss maps
  rss=$(awk '$1 == "VmRSS:" { printf "%.0f", $2 / 1024 }' "/proc/$1/status")
  maps=$(wc -l <"/proc/$1/maps")
  echo "$rss $maps"
}

# raw_reads PID: Markdown rows: $reads reads in a row of each file, then 10 reads of status and
# smaps spaced 2 s apart (as the watcher reads them).
raw_reads() {
  python3 - "$1" "$reads" <<'EOF'
import statistics, sys, time
pid, n = sys.argv[1], int(sys.argv[2])

def read(name):
    t0 = time.perf_counter()
    with open(f"/proc/{pid}/{name}", "rb", buffering=0) as f:
        data = f.read()
    return (time.perf_counter() - t0) * 1000, len(data)

def row(name, how, results):
    ms = [t for t, _ in results]
    print(f"| /proc/PID/{name} | {how} | {results[-1][1]:,} | {statistics.median(ms):.2f} | {min(ms):.2f} | {max(ms):.2f} |")

for name in ("status", "smaps", "smaps_rollup"):
    row(name, f"{n} in a row", [read(name) for _ in range(n)])
spaced = {"status": [], "smaps": []}
for i in range(10):
    for name in spaced:
        spaced[name].append(read(name))
    if i < 9:
        time.sleep(2)
for name, results in spaced.items():
    row(name, "10, one every 2 s", results)
EOF
}

rows=()
# watch_case LABEL APP_PID WATCH_ARGS...: one watch, appends a row to $rows.
watch_case() {
  local label=$1 pid=$2; shift 2
  local name="case${#rows[@]}"
  echo "watch: $label (load average $(load); the app started $(awk -v a="$(now)" -v b="$app_started" 'BEGIN { printf "%.0f", a - b }') s ago)" >&2
  /usr/bin/time -v -o "$tmp/$name.time" "$LEAKHOUND" watch --pid "$pid" --duration "${duration}s" \
    --json --out "$tmp/$name.jsonl" "$@" >"$tmp/$name.json" 2>"$tmp/$name.err" &
  local tpid=$! lh="" i
  for i in $(seq 500); do
    lh=$(pgrep -P "$tpid" || true)
    [ -n "$lh" ] && break
    sleep 0.01
  done
  [ -n "$lh" ] || { echo "leakhound did not start" >&2; exit 1; }
  local t_start; t_start=$(now)
  sleep 1
  local t0 lh0 app0 gc0; t0=$(now); lh0=$(cpu_ns "$lh"); app0=$(cpu_ns "$pid"); gc0=$(wc -l <"$app_out")
  sleep "$(awk -v s="$t_start" -v t="$t0" -v d="$duration" 'BEGIN { printf "%.3f", s + d - 1 - t }')"
  local t1 lh1 app1 gc1; t1=$(now); lh1=$(cpu_ns "$lh"); app1=$(cpu_ns "$pid"); gc1=$(wc -l <"$app_out")
  local gcs; gcs=$(sed -n "$((gc0 + 1)),${gc1}p" "$app_out" | grep -c 'Mark-Compact\|Scavenge' || true)
  sed -n "$((gc0 + 1)),${gc1}p" "$app_out" | grep 'Mark-Compact\|Scavenge' | cut -c1-140 | sed 's/^/  app GC: /' >&2 || true
  if ! wait "$tpid"; then
    cat "$tmp/$name.err" >&2
    echo "leakhound watch failed" >&2
    exit 1
  fi
  local w0 w1 in_window smaps_reads v8
  w0=$(awk -v a="$t0" -v b="$t_start" 'BEGIN { print a - b }')
  w1=$(awk -v a="$t1" -v b="$t_start" 'BEGIN { print a - b }')
  in_window=$(jq -s --argjson a "$w0" --argjson b "$w1" 'map(select(.t >= $a and .t <= $b)) | length' "$tmp/$name.jsonl")
  smaps_reads=$(jq -s 'map(select(.breakdown != null)) | length' "$tmp/$name.jsonl")
  v8=$(jq -r '.processes[0].latest.v8 // empty | "yes"' "$tmp/$name.json")
  local samples cps share peak
  read -r samples cps share peak < <(jq -r '.watcher | "\(.samples) \(.cpu_per_sample_ms) \(.share_of_one_core) \(.peak_rss)"' "$tmp/$name.json")
  local tu ts tmax
  tu=$(awk -F': ' '/User time \(seconds\)/ { print $2 }' "$tmp/$name.time")
  ts=$(awk -F': ' '/System time \(seconds\)/ { print $2 }' "$tmp/$name.time")
  tmax=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tmp/$name.time")
  rows+=("$(awk -v label="$label" -v samples="$samples" -v sm="$smaps_reads" -v v8="${v8:-no}" \
    -v cps="$cps" -v share="$share" -v peak="$peak" -v tu="$tu" -v ts="$ts" -v tmax="$tmax" \
    -v lh="$((lh1 - lh0))" -v app="$((app1 - app0))" -v win="$in_window" -v t0="$t0" -v t1="$t1" \
    -v idle="$idle_share" -v gcs="$gcs" -v load="$(load)" 'BEGIN {
      span = t1 - t0
      printf "| %s | %d | %d | %s | %.2f | %.3f | %.1f | %.2f + %.2f s | %.1f | %.2f / %.3f %% | %.3f %% (idle %.3f %%), %d GCs | %s |",
        label, samples, sm, v8, cps, 100 * share, peak / 1048576, tu, ts, tmax / 1024,
        lh / 1e6 / (win > 0 ? win : 1), 100 * lh / 1e9 / span, 100 * app / 1e9 / span, idle, gcs, load
    }')")
  echo "  ${rows[-1]}" >&2
}

echo "node $(node --version), $(nproc) CPUs, kernel $(uname -r), THP $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')" >&2

# The app without inspector: raw reads, its idle CPU, the default and the smaps-every-second cases.
start_app plain
plain=$app
read -r plain_rss plain_maps < <(app_facts "$plain")
a0=$(cpu_ns "$plain"); t0=$(now)
raw=$(raw_reads "$plain") # ~20 s; its reads cost the reader, not the app
a1=$(cpu_ns "$plain"); t1=$(now)
idle_share=$(awk -v a="$((a1 - a0))" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", 100 * a / 1e9 / (t1 - t0) }')
watch_case "default (\`--interval 2s\`, smaps due at every sample)" "$plain"
watch_case "\`--interval 1s\` (smaps due at every sample)" "$plain" --interval 1s
watch_case "\`--smaps-every 10s\` (the default before issue 11)" "$plain" --smaps-every 10s
watch_case "status only (\`--smaps-every 1h\`: smaps at the first sample only)" "$plain" --smaps-every 1h
read -r plain_rss2 plain_maps2 < <(app_facts "$plain")
stop_app "$plain"

# The app with an inspector open: the watcher reads V8's figures too.
start_app inspect --inspect=127.0.0.1:0
insp=$app
read -r insp_rss insp_maps < <(app_facts "$insp")
a0=$(cpu_ns "$insp"); t0=$(now)
sleep 20
a1=$(cpu_ns "$insp"); t1=$(now)
idle_share=$(awk -v a="$((a1 - a0))" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", 100 * a / 1e9 / (t1 - t0) }')
watch_case "app with \`--inspect\` (defaults; V8 figures each sample)" "$insp"
stop_app "$insp"

echo "The app: RSS $plain_rss MB, $plain_maps mappings before the watches ($plain_rss2 MB, $plain_maps2 after); with --inspect: RSS $insp_rss MB, $insp_maps mappings."
echo
echo "Raw reads of the plain app's files (python3 open + read to the end, wall ms):"
echo
echo "| file | reads | bytes | median | min | max |"
echo "|---|---|---:|---:|---:|---:|"
echo "$raw"
echo
echo "| case (${duration} s each) | samples | with smaps | V8 figures | CPU per sample (ms) | share of one core (%) | leakhound peak RSS (MB) | /usr/bin/time user + sys | /usr/bin/time max RSS (MB) | steady, schedstat: ms per sample / share | app CPU in the window | load average |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
