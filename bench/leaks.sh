#!/usr/bin/env bash
# Benchmark three-snapshot leak detection: `leakhound leaks` (and optionally memlab find-leaks).
#
# usage: bench/leaks.sh [--memlab] [DIR]
#
# DIR holds s1.heapsnapshot (baseline), s2.heapsnapshot (target) and s3.heapsnapshot (final) of
# one process. Without DIR, uses bench/data/series-$LEAK_SERIES_SIZE, generating it first with
# `node bench/gen-leak-series.js DIR $LEAK_SERIES_SIZE` if it is missing (default 1.3g: three
# files of 1.21 / 1.30 / 1.38 GB, about 3.5 minutes and ~8.5 GB of memory).
# It reads the three files right before each tool (so it starts from the page cache), runs
# `leakhound leaks DIR/s1.heapsnapshot DIR/s2.heapsnapshot DIR/s3.heapsnapshot --json > /dev/null`
# once and prints a Markdown table: tool, wall time, peak RSS, and peak RSS / largest file.
# If `leakhound leaks --help` fails (the command is missing), the leakhound row is skipped.
# With --memlab it also runs memlab's find-leaks on the same files, as in
# ../shared/reference/memlab.md section 5.2:
#   timeout $MEMLAB_TIMEOUT node --expose-gc --max-old-space-size=$MEMLAB_HEAP_MB \
#     $MEMLAB_DIR/node_modules/@memlab/cli/bin/memlab.js find-leaks --baseline s1 --target s2 \
#     --final s3 --trace-all-objects --work-dir $(mktemp -d)
# and prints memlab's summary (leak count, cluster sizes, trace sampling) to stderr. memlab
# samples at most 5000 traces, so its counts and sizes cover only a sample. It takes many minutes
# and several times the file size in memory on a 1.3 GB series.
#
# Environment:
#   LEAKHOUND=PATH          benchmark this binary instead of building target/release/leakhound
#   MEMLAB_DIR=DIR          scratch install of memlab 2.0.5 (default /tmp/memlab-bench), made with
#                           mkdir -p DIR && cd DIR && npm init -y &&
#                           PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund memlab@2.0.5
#   MEMLAB_HEAP_MB=N        memlab's --max-old-space-size (default 16384)
#   MEMLAB_TIMEOUT=SECONDS  cap on memlab's run (default 1800)
#   LEAK_SERIES_SIZE=HINT   SIZE_HINT for bench/gen-leak-series.js when no DIR is given (default 1.3g)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

memlab=0
dirs=()
for arg in "$@"; do
  case "$arg" in
    --memlab) memlab=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $arg (try --help)" >&2; exit 2 ;;
    *) dirs+=("$arg") ;;
  esac
done
[ ${#dirs[@]} -le 1 ] || { echo "at most one DIR (try --help)" >&2; exit 2; }

[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is required: apt-get install time" >&2; exit 1; }

MEMLAB_DIR=${MEMLAB_DIR:-/tmp/memlab-bench}
MEMLAB_HEAP_MB=${MEMLAB_HEAP_MB:-16384}
MEMLAB_TIMEOUT=${MEMLAB_TIMEOUT:-1800}
memlab_js=$MEMLAB_DIR/node_modules/@memlab/cli/bin/memlab.js
if [ "$memlab" = 1 ] && [ ! -f "$memlab_js" ]; then
  echo "memlab not found at $memlab_js; install it (see --help) or set MEMLAB_DIR" >&2
  exit 1
fi

if [ ${#dirs[@]} -eq 0 ]; then
  size=${LEAK_SERIES_SIZE:-1.3g}
  dir=bench/data/series-$size
  if [ ! -s "$dir/s3.heapsnapshot" ]; then
    echo "generating $dir (node bench/gen-leak-series.js $dir $size)" >&2
    rm -rf "$dir.tmp"
    mkdir -p bench/data
    /usr/bin/time -f 'generated in %e s, peak RSS %M KB' node bench/gen-leak-series.js "$dir.tmp" "$size" >/dev/null
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
  fi
else
  dir=${dirs[0]%/}
fi
snaps=("$dir/s1.heapsnapshot" "$dir/s2.heapsnapshot" "$dir/s3.heapsnapshot")
largest=0
for f in "${snaps[@]}"; do
  [ -r "$f" ] || { echo "cannot read $f (DIR must hold s1/s2/s3.heapsnapshot)" >&2; exit 1; }
  b=$(stat -c %s "$f")
  if [ "$b" -gt "$largest" ]; then largest=$b; fi
done

if [ -z "${LEAKHOUND:-}" ]; then
  cargo build --release -p leakhound >&2
  LEAKHOUND=target/release/leakhound
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure NAME CMD...: runs CMD with stdout in $tmp/NAME.out and stderr in $tmp/NAME.err; sets
# wall (s) and rss_kb. Returns CMD's exit status.
measure() {
  local name=$1; shift
  local status=0
  /usr/bin/time -f '%e %M' -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || status=$?
  read -r wall rss_kb < <(tail -n 1 "$tmp/$name.time")
  return "$status"
}

gb() { awk -v b="$1" 'BEGIN { printf (b >= 1e9 ? "%.2f GB" : "%.1f MB"), (b >= 1e9 ? b / 1e9 : b / 1e6) }'; }
rss() { awk -v k="$1" 'BEGIN { printf (k >= 1048576 ? "%.2f GB" : "%.0f MB"), (k >= 1048576 ? k / 1048576 : k / 1024) }'; }
ratio() { awk -v k="$1" -v b="$largest" 'BEGIN { printf "%.2fx", k * 1024 / b }'; }
header_count() { head -c 4096 "$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2; }
# memlab draws progress with \r and ESC[K; keep the last state of every line.
clean() { tr '\r' '\n' <"$1" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

for f in "${snaps[@]}"; do
  echo "$f: $(gb "$(stat -c %s "$f")"), $(header_count "$f" node_count) nodes, $(header_count "$f" edge_count) edges" >&2
done
# Read the files right before each tool so it starts from the page cache (on this project's VM
# the kernel gives cached pages back within seconds, so warm up as late as possible).
warm() { cat "${snaps[@]}" >/dev/null; }

rows=()
if "$LEAKHOUND" leaks --help >/dev/null 2>&1; then
  echo "== leakhound leaks $dir" >&2
  warm
  if measure leakhound "$LEAKHOUND" leaks "${snaps[@]}" --json; then
    rows+=("| leakhound leaks | $wall s | $(rss "$rss_kb") | $(ratio "$rss_kb") |")
  else
    st=$?
    tail -n 20 "$tmp/leakhound.err" >&2
    rows+=("| leakhound leaks | failed (exit $st) after $wall s | $(rss "$rss_kb") | $(ratio "$rss_kb") |")
  fi
else
  echo "skipping leakhound: \`$LEAKHOUND leaks --help\` failed (no \`leaks\` command in this build?)" >&2
fi

if [ "$memlab" = 1 ]; then
  echo "== memlab find-leaks --trace-all-objects $dir (up to ${MEMLAB_TIMEOUT}s)" >&2
  warm
  if measure memlab timeout "$MEMLAB_TIMEOUT" node --expose-gc --max-old-space-size="$MEMLAB_HEAP_MB" "$memlab_js" \
    find-leaks --baseline "${snaps[0]}" --target "${snaps[1]}" --final "${snaps[2]}" --trace-all-objects \
    --work-dir "$(mktemp -d -p "$tmp")"; then
    rows+=("| memlab find-leaks --trace-all-objects | $wall s | $(rss "$rss_kb") | $(ratio "$rss_kb") |")
    { clean "$tmp/memlab.out"; clean "$tmp/memlab.err"; } |
      grep -E 'Number of Traces|Sampling Ratio|MemLab found|Similar leaks in this run|Retained size of leaked objects' |
      head -n 23 >&2 || true
  else
    st=$?
    why="exit $st"
    [ "$st" = 124 ] && why="timed out after ${MEMLAB_TIMEOUT}s"
    echo "memlab failed ($why); its last lines:" >&2
    clean "$tmp/memlab.err" | grep -v '^[[:space:]]*$' | tail -n 15 >&2
    rows+=("| memlab find-leaks --trace-all-objects | failed ($why) after $wall s | $(rss "$rss_kb") | $(ratio "$rss_kb") |")
  fi
fi

echo
echo "| tool | wall | peak RSS | peak RSS / largest file |"
echo "|---|---:|---:|---:|"
[ ${#rows[@]} -eq 0 ] || printf '%s\n' "${rows[@]}"
echo
version=$("$LEAKHOUND" --version 2>/dev/null | head -n 1) || version=leakhound
echo "$dir: largest file $(gb "$largest"); $(uname -m), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo); node $(node --version); ${version:-leakhound}; files in page cache"
