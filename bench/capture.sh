#!/usr/bin/env bash
# Benchmark live capture: `leakhound capture` against Node's in-process v8.writeHeapSnapshot, and
# the time of `leakhound hunt` on the bundled example.
#
# usage: bench/capture.sh [--objects N] [--no-hunt]
#
# Each method runs on a fresh `node bench/capture-app.js --objects N` (default N = 1,000,000:
# about 300 MB of heapUsed and a ~550 MB snapshot on Node 20), one app at a time:
#   in-process            the app calls v8.writeHeapSnapshot(FILE) itself (the anchor); wall time of
#                         the call, VmRSS before it and VmHWM right after, read by the app
#   capture --pid         `leakhound capture --pid PID` on an app started without inspector
#                         (leakhound opens it with SIGUSR1 and closes it again)
#   capture --inspect     `leakhound capture --inspect 127.0.0.1:PORT` on an app started with
#                         --inspect=127.0.0.1:0 (the script reads PORT from the app's stderr)
#   capture --pid --no-gc as capture --pid, without the full GC before the snapshot
# For the leakhound rows: wall time and peak RSS of the leakhound command (/usr/bin/time), and
# the app's VmRSS and VmHWM (peak RSS) from /proc/PID/status before and after the capture.
# Every snapshot must load with `leakhound summary FILE --top 1` (its node count is printed) and
# leakhound's files must have mode 0600; after `--pid`, the app must no longer listen on any port.
# Then, unless --no-hunt, it times the README's hunt (exit code 1, "leak suspected", is expected):
#   leakhound hunt --url '/status?test=1' --url /report --out DIR -- node examples/leaky-server/server.js 0
# Prints a Markdown table on stdout; progress and checks go to stderr. Snapshots go to a temp dir
# under /tmp, removed at the end with every app this script started. Peaks (N = 1M): about 3.8 GB
# of memory in the app during its snapshot, and one ~550 MB file at a time on disk.
# If another process holds port 9229 (where SIGUSR1 opens the inspector by default), the `--pid`
# apps get `--inspect-port=0` (still no inspector until SIGUSR1) and their rows say so.
#
# Environment:
#   LEAKHOUND=PATH   benchmark this binary instead of building target/release/leakhound
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

objects=1000000
hunt=1
while [ $# -gt 0 ]; do
  case "$1" in
    --objects) objects=$2; shift ;;
    --no-hunt) hunt=0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is required: apt-get install time" >&2; exit 1; }
command -v ss >/dev/null || { echo "ss (iproute2) is required" >&2; exit 1; }

if [ -z "${LEAKHOUND:-}" ]; then
  cargo build --release -p leakhound >&2
  LEAKHOUND=target/release/leakhound
fi

tmp=$(mktemp -d /tmp/leakhound-capture-bench.XXXXXX)
apps=()
cleanup() {
  local p
  for p in "${apps[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${apps[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
file_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f", b / 1e6 }'; }
# proc_kb PID FIELD: VmRSS / VmHWM of PID in kB.
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# start_app NAME NODE_ARGS...: starts the app in the background (pid in $app), waits until it has
# built its heap.
start_app() {
  local name=$1; shift
  node "$@" bench/capture-app.js --objects "$objects" >"$tmp/$name.app.out" 2>"$tmp/$name.app.err" &
  app=$!
  apps+=("$app")
  local i
  for i in $(seq 600); do
    grep -q '^ready$' "$tmp/$name.app.out" && break
    kill -0 "$app" 2>/dev/null || { cat "$tmp/$name.app.err" >&2; echo "the app ($name) died" >&2; exit 1; }
    sleep 0.2
  done
  grep -q '^ready$' "$tmp/$name.app.out" || { echo "the app ($name) was not ready after 120 s" >&2; exit 1; }
  echo "$name: app PID $app, $(grep '^heapUsed' "$tmp/$name.app.out" | awk '{ printf "heapUsed %.0f MB", $2 / 1e6 }')" >&2
}

stop_app() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# check FILE LEAKHOUND_MADE_IT: loads FILE with `leakhound summary`, sets $nodes; checks the mode.
check() {
  local mode
  mode=$(stat -c %a "$1")
  if ! "$LEAKHOUND" summary "$1" --top 1 >"$tmp/summary.out" 2>"$tmp/summary.err"; then
    cat "$tmp/summary.err" >&2
    echo "FAIL: $1 does not load" >&2
    nodes=failed
  else
    nodes=$(head -n 1 "$tmp/summary.out" | grep -o '[0-9,]* nodes' | cut -d' ' -f1)
  fi
  echo "  $(basename "$1"): $(file_mb "$1") MB, $nodes nodes, mode $mode" >&2
  if [ "$2" = 1 ] && [ "$mode" != 600 ]; then echo "FAIL: mode $mode, not 600" >&2; fi
}

rows=()

# (a) the anchor: v8.writeHeapSnapshot in the app itself.
echo "== in-process v8.writeHeapSnapshot" >&2
node bench/capture-app.js --objects "$objects" --self-snapshot "$tmp/self.heapsnapshot" >"$tmp/self.out"
val() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/self.out"; }
check "$tmp/self.heapsnapshot" 0
rows+=("| in-process \`v8.writeHeapSnapshot\` | $(val snapshot_seconds) | $(mb "$(val hwm_kb)") | $(mb "$(val rss_before_kb)") | – | $(file_mb "$tmp/self.heapsnapshot") | $nodes |")
rm -f "$tmp/self.heapsnapshot"

# capture NAME LABEL APP_NODE_ARGS -- LEAKHOUND_ARGS...: one leakhound capture row. In the
# leakhound arguments, @PID@ and @PORT@ stand for the app's pid and inspector port.
capture() {
  local name=$1 label=$2; shift 2
  local node_args=()
  while [ "$1" != -- ]; do node_args+=("$1"); shift; done
  shift
  # Another process on 9229 (the default port SIGUSR1 opens) makes `--pid` fail on a plain app;
  # then give the app `--inspect-port=0`, which opens nothing until SIGUSR1 either.
  if [ ${#node_args[@]} -eq 0 ] && ss -ltnH | awk '{ print $4 }' | grep -q ':9229$'; then
    echo "port 9229 is taken ($(ss -ltnpH | grep ':9229 ' | grep -o 'pid=[0-9]*' | head -n 1)): starting the app with --inspect-port=0" >&2
    node_args=(--inspect-port=0)
    label="$label, app with \`--inspect-port=0\`"
  fi
  echo "== $label" >&2
  start_app "$name" ${node_args[@]+"${node_args[@]}"}
  local port=""
  if grep -q 'Debugger listening' "$tmp/$name.app.err"; then
    port=$(grep -o 'ws://127.0.0.1:[0-9]*' "$tmp/$name.app.err" | head -n 1 | cut -d: -f3)
  fi
  local args=() a
  for a in "$@"; do a=${a//@PID@/$app}; args+=("${a//@PORT@/$port}"); done
  local rss_before hwm_before hwm_after status=0
  rss_before=$(proc_kb "$app" VmRSS)
  hwm_before=$(proc_kb "$app" VmHWM)
  /usr/bin/time -f '%e %M %U %S' -o "$tmp/$name.time" "$LEAKHOUND" capture "${args[@]}" -o "$tmp/$name.heapsnapshot" --json \
    >"$tmp/$name.json" 2>"$tmp/$name.err" || status=$?
  hwm_after=$(proc_kb "$app" VmHWM)
  local wall rss_kb user sys
  read -r wall rss_kb user sys < <(tail -n 1 "$tmp/$name.time")
  if [ "$status" != 0 ]; then
    tail -n 20 "$tmp/$name.err" >&2
    rows+=("| $label | failed (exit $status) after $wall | $(mb "$hwm_after") | $(mb "$rss_before") | $(mb "$rss_kb") | – | – |")
    stop_app "$app"
    return
  fi
  echo "  leakhound's own time for the snapshot: $(grep -o '"seconds": [0-9.]*' "$tmp/$name.json" | awk '{ printf "%.1f s", $2 }');" \
    "leakhound's CPU time $user s user + $sys s system; app peak RSS before the capture $(mb "$hwm_before") MB" >&2
  if [ -z "$port" ]; then
    # leakhound opened the inspector with SIGUSR1: it must have closed it again.
    if ss -ltnpH | grep -q "pid=$app,"; then
      echo "FAIL: the app still listens after the capture: $(ss -ltnpH | grep "pid=$app,")" >&2
    else
      echo "  the app listens on no port after the capture (inspector closed)" >&2
    fi
  fi
  check "$tmp/$name.heapsnapshot" 1
  rows+=("| $label | $wall | $(mb "$hwm_after") | $(mb "$rss_before") | $(mb "$rss_kb") | $(file_mb "$tmp/$name.heapsnapshot") | $nodes |")
  rm -f "$tmp/$name.heapsnapshot"
  stop_app "$app"
}

capture pid "\`leakhound capture --pid\` (SIGUSR1)" -- --pid @PID@
capture inspect "\`leakhound capture --inspect\`" --inspect=127.0.0.1:0 -- --inspect 127.0.0.1:@PORT@
capture nogc "\`leakhound capture --pid --no-gc\`" -- --pid @PID@ --no-gc

hunt_line=""
if [ "$hunt" = 1 ]; then
  echo "== leakhound hunt on examples/leaky-server" >&2
  before=$(pgrep -f 'examples/leaky-server/server.js' || true)
  status=0
  /usr/bin/time -f '%e %M' -o "$tmp/hunt.time" "$LEAKHOUND" hunt --url '/status?test=1' --url /report --out "$tmp/hunt" \
    -- node examples/leaky-server/server.js 0 >"$tmp/hunt.out" 2>"$tmp/hunt.err" || status=$?
  read -r wall rss_kb < <(tail -n 1 "$tmp/hunt.time")
  case "$status" in
    1) verdict="leak suspected (exit 1, expected)" ;;
    0) verdict="no leak suspected (exit 0, NOT expected)" ;;
    *) verdict="error (exit $status)"; tail -n 20 "$tmp/hunt.err" >&2 ;;
  esac
  grep -m 3 -iE 'leak|cluster' "$tmp/hunt.out" | sed 's/^/  /' >&2 || true
  # The app hunt started must be gone; stop (by pid) any it left behind.
  for p in $(pgrep -f 'examples/leaky-server/server.js' || true); do
    if ! grep -qx "$p" <<<"$before"; then
      echo "FAIL: hunt left its app running (PID $p); stopping it" >&2
      kill "$p" 2>/dev/null || true
    fi
  done
  hunt_line="leakhound hunt on examples/leaky-server: $wall s wall, leakhound peak RSS $(mb "$rss_kb") MB, $verdict"
fi

echo
echo "| method | wall s | app peak RSS (MB) | app RSS before (MB) | leakhound peak RSS (MB) | snapshot MB | nodes |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
[ -z "$hunt_line" ] || { echo "$hunt_line"; echo; }
version=$("$LEAKHOUND" --version 2>/dev/null | head -n 1) || version=leakhound
echo "$objects objects; $(uname -m), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo); node $(node --version); ${version:-leakhound}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
