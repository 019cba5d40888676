#!/usr/bin/env bash
# Benchmark `leakhound summary` (and optionally the DevTools oracle) on heap snapshots.
#
# usage: bench/run.sh [--oracle] [FILE.heapsnapshot ...]
#
# Without FILE, uses bench/data/big-$BENCH_SIZE.heapsnapshot, generating it first with
# `node bench/gen-big.js ... $BENCH_SIZE` if it is missing (default 1g: 1.04 GB, 13.1M nodes,
# about a minute and ~6 GB of memory; see bench/gen-big.js for other sizes).
# For each file it runs `leakhound summary FILE --json --timings > /dev/null` once (after reading
# the file once so both tools start from the page cache) and prints a Markdown table: file size,
# node and edge counts, wall time, peak RSS, the parse phase time and parse throughput.
# With --oracle it also runs the DevTools oracle (crates/leakhound/tests/conformance/oracle.mjs)
# on the same file; that takes minutes per GB.
#
# Environment:
#   LEAKHOUND=PATH    benchmark this binary instead of building target/release/leakhound
#   ORACLE_DIR=DIR    folder with package.json, polyfill.mjs and oracle.mjs
#                     (default crates/leakhound/tests/conformance)
#   PARSE_PHASE=NAME  the --timings phase that counts as parsing (default: parse)
#   BENCH_SIZE=HINT   SIZE_HINT for bench/gen-big.js when no FILE is given (default: 1g)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

oracle=0
files=()
for arg in "$@"; do
  case "$arg" in
    --oracle) oracle=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $arg (try --help)" >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done

[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is required: apt-get install time" >&2; exit 1; }

if [ -z "${LEAKHOUND:-}" ]; then
  cargo build --release -p leakhound >&2
  LEAKHOUND=target/release/leakhound
fi
ORACLE_DIR=${ORACLE_DIR:-crates/leakhound/tests/conformance}
PARSE_PHASE=${PARSE_PHASE:-parse}

if [ ${#files[@]} -eq 0 ]; then
  size=${BENCH_SIZE:-1g}
  big=bench/data/big-$size.heapsnapshot
  if [ ! -s "$big" ]; then
    mkdir -p bench/data
    echo "generating $big" >&2
    /usr/bin/time -f 'generated in %e s, peak RSS %M KB' node bench/gen-big.js "$big.tmp" "$size" >/dev/null
    mv "$big.tmp" "$big"
  fi
  files=("$big")
fi

if [ "$oracle" = 1 ]; then
  if [ ! -d "$ORACLE_DIR/node_modules" ]; then
    echo "installing the oracle's dependencies in $ORACLE_DIR" >&2
    PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix "$ORACLE_DIR" --no-audit --no-fund >&2
  fi
  # `node --import` takes a module specifier: give it an absolute path.
  oracle_dir=$(cd "$ORACLE_DIR" && pwd)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure NAME CMD...: runs CMD with stdout discarded; sets wall (s), rss_kb, and leaves its
# stderr in $tmp/NAME.err. Returns CMD's exit status.
measure() {
  local name=$1; shift
  local status=0
  /usr/bin/time -f '%e %M' -o "$tmp/$name.time" "$@" >/dev/null 2>"$tmp/$name.err" || status=$?
  read -r wall rss_kb < <(tail -n 1 "$tmp/$name.time")
  return "$status"
}

gb() { awk -v b="$1" 'BEGIN { printf (b >= 1e9 ? "%.2f GB" : "%.1f MB"), (b >= 1e9 ? b / 1e9 : b / 1e6) }'; }
rss() { awk -v k="$1" 'BEGIN { printf (k >= 1048576 ? "%.2f GB" : "%.0f MB"), (k >= 1048576 ? k / 1048576 : k / 1024) }'; }
count() { awk -v n="${1:-0}" 'BEGIN { if (n >= 1e6) printf "%.2fM", n / 1e6; else printf "%d", n }'; }
header_count() { head -c 4096 "$1" | grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2; }

rows=()
for file in "${files[@]}"; do
  [ -r "$file" ] || { echo "cannot read $file" >&2; exit 1; }
  bytes=$(stat -c %s "$file")
  row="| $(basename "$file") | $(gb "$bytes") | $(count "$(header_count "$file" node_count)") | $(count "$(header_count "$file" edge_count)")"
  cat "$file" >/dev/null # start both tools from the page cache

  echo "== leakhound summary $file" >&2
  lh_wall=
  if measure leakhound "$LEAKHOUND" summary "$file" --json --timings; then
    lh_wall=$wall
    grep '^timing:' "$tmp/leakhound.err" >&2 || true
    parse=$(awk -v p="$PARSE_PHASE" '$1 == "timing:" && $2 == p { sub(/s$/, "", $3); print $3; exit }' "$tmp/leakhound.err")
    if [ -n "$parse" ]; then
      row+=" | $wall s | $(rss "$rss_kb") | $(awk -v s="$parse" -v b="$bytes" 'BEGIN { printf "%.2f s | ", s; printf (s > 0 ? "%.0f MB/s" : "-"), b / 1e6 / s }')"
    else
      row+=" | $wall s | $(rss "$rss_kb") | - | -"
    fi
  else
    st=$?
    cat "$tmp/leakhound.err" >&2
    row+=" | failed (exit $st) | | | -"
  fi

  if [ "$oracle" = 1 ]; then
    echo "== DevTools oracle $file (minutes per GB)" >&2
    if measure oracle node --import "$oracle_dir/polyfill.mjs" "$oracle_dir/oracle.mjs" "$file"; then
      speedup=-
      [ -n "$lh_wall" ] && speedup=$(awk -v a="$wall" -v b="$lh_wall" 'BEGIN { printf (b > 0 ? "%.0fx" : "-"), a / b }')
      row+=" | $wall s | $(rss "$rss_kb") | $speedup"
    else
      st=$?
      cat "$tmp/oracle.err" >&2
      row+=" | failed (exit $st) | | -"
    fi
  fi
  rows+=("$row |")
done

echo
if [ "$oracle" = 1 ]; then
  echo "| snapshot | size | nodes | edges | leakhound wall | leakhound peak RSS | parse | parse throughput | DevTools wall | DevTools peak RSS | speed-up |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
else
  echo "| snapshot | size | nodes | edges | leakhound wall | leakhound peak RSS | parse | parse throughput |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
fi
printf '%s\n' "${rows[@]}"
echo
echo "$(uname -m), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo); node $(node --version); $("$LEAKHOUND" --version 2>/dev/null | head -n 1 || echo leakhound); file in page cache"
