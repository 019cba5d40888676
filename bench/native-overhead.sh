#!/usr/bin/env bash
# The native tracker's cost and accuracy, with heaptrack measured beside it in the same run.
#
#   bench/native-overhead.sh [RUNS]        (default 5 runs of each configuration, interleaved)
#
# Prints Markdown tables (paste them into BENCHMARKS.md):
#   1. a malloc-heavy script (bench/native-alloc.js): wall time and peak RSS, plain node, the
#      tracker at 512 KiB (its always-on default), at 64 KiB (hunt's and `native`'s default),
#      tracking every allocation, `leakhound native` as a user runs it (flags, tracker, analysis),
#      and heaptrack (Debian package `heaptrack`; left out when missing);
#   2. an HTTP service under the built-in load driver (`leakhound hunt`, $REQUESTS = 30,000
#      requests per round, each configuration paired with an untracked hunt): request rate and p99 latency without tracking, with node's naming flags only,
#      with the tracker at 512 KiB and 64 KiB (hunt's default), and with `--exact-js` (V8's
#      inlining off); the tracker's own memory;
#   3. startup: `node -e 0` with and without the tracker;
#   4. attribution: hunts of examples/native-leak (4 KB leaked per /login), the estimated
#      growth of the top suspect against the truth.
# Medians over RUNS; ratios are against plain node in the same run. BENCH_PARTS=2,4 runs only
# those parts. Needs node, g++, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
cargo build --release --quiet
LH=$PWD/target/release/leakhound
PRELOAD=$PWD/target/release/libleakhound_preload.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
HEAPTRACK=$(command -v heaptrack || true)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run NAME CMD…: one timed run, "wall_s peak_kb" appended to $tmp/NAME.
run() {
  local name=$1
  shift
  rm -rf "$tmp/rec" && mkdir -p "$tmp/rec"
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >/dev/null 2>"$tmp/err" || {
    echo "$name failed:" >&2
    cat "$tmp/err" >&2
    exit 1
  }
  cat "$tmp/time" >>"$tmp/$name"
}
# The environment that puts a command under the tracker; append LEAKHOUND_NATIVE_INTERVAL=….
track=(env "LD_PRELOAD=$PRELOAD" "LEAKHOUND_NATIVE_DIR=$tmp/rec")

# BENCH_PARTS=2,4 runs only those parts.
PARTS=${BENCH_PARTS:-1,2,3,4}
part() { [[ ",$PARTS," == *",$1,"* ]]; }

if part 1; then
echo "== 1. malloc-heavy script ($RUNS runs each, interleaved)" >&2
ALLOC="node bench/native-alloc.js"
configs=(plain t512k t64k every native)
[ -n "$HEAPTRACK" ] && configs+=(heaptrack)
for i in $(seq "$RUNS"); do
  for c in "${configs[@]}"; do
    case $c in
    plain) run plain $ALLOC ;;
    t512k) run t512k "${track[@]}" LEAKHOUND_NATIVE_INTERVAL=524288 $ALLOC ;;
    t64k) run t64k "${track[@]}" LEAKHOUND_NATIVE_INTERVAL=65536 $ALLOC ;;
    every) run every "${track[@]}" LEAKHOUND_NATIVE_INTERVAL=1 $ALLOC ;;
    native) run native "$LH" native --out "$tmp/rec/native" -- $ALLOC ;;
    heaptrack) run heaptrack "$HEAPTRACK" -o "$tmp/rec/ht" $ALLOC ;;
    esac
  done
  echo "  run $i done" >&2
done
# Allocator calls of one run: every allocation is a sample in every-allocation mode.
rm -rf "$tmp/rec" && mkdir -p "$tmp/rec"
"${track[@]}" LEAKHOUND_NATIVE_INTERVAL=1 $ALLOC
calls=$(awk '/^stacks /{ n = $2; next } n > 0 { s += $7; n-- } END { print s }' "$tmp"/rec/*/dump-*.txt | sort -g | tail -1)
plain_wall=$(cut -d' ' -f1 "$tmp/plain" | median)
plain_rss=$(cut -d' ' -f2 "$tmp/plain" | median)
echo
echo "Malloc-heavy script \`bench/native-alloc.js\`: $(printf "%'d" "$calls") allocations (malloc, calloc, new…), $(awk -v c="$calls" -v w="$plain_wall" 'BEGIN { printf "%.1f", c / w / 1e6 }') M per second of plain runtime; median of $RUNS runs"
echo
echo "| configuration | wall | × plain | peak RSS | × plain |"
echo "|---|---:|---:|---:|---:|"
for c in "${configs[@]}"; do
  label=$(case $c in
    plain) echo "node, plain" ;;
    t512k) echo "tracker, 512 KiB (always-on default)" ;;
    t64k) echo "tracker, 64 KiB (hunt / native default)" ;;
    every) echo "tracker, every allocation" ;;
    native) echo "\`leakhound native\` (flags, tracker 64 KiB, analysis)" ;;
    heaptrack) echo "heaptrack $(heaptrack --version 2>/dev/null | awk '{ print $2 }')" ;;
  esac)
  wall=$(cut -d' ' -f1 "$tmp/$c" | median)
  rss=$(cut -d' ' -f2 "$tmp/$c" | median)
  awk -v l="$label" -v w="$wall" -v r="$rss" -v pw="$plain_wall" -v pr="$plain_rss" \
    'BEGIN { printf "| %s | %.2f s | %.2f× | %.0f MB | %.2f× |\n", l, w, w / pw, r / 1024, r / pr }'
done

fi

if part 2; then
echo "== 2. HTTP service under load (pairs of hunts, untracked and each configuration, $RUNS pairs each)" >&2
SERVER="$PWD/bench/native-http-server.js"
NAMING="--perf-basic-prof-only-functions --interpreted-frames-native-stack"
# hunt NAME ARGS…: "rate p99 tracker_memory" of the rounds after the warm-up, medians of the two
hunt() {
  local name=$1
  shift
  rm -rf "$tmp/hunt"
  "$LH" hunt --json --requests "$REQUESTS" --concurrency 8 --url / --out "$tmp/hunt" "$@" >"$tmp/report.json" 2>"$tmp/err" || [ $? = 1 ] || {
    cat "$tmp/err" >&2
    exit 1
  }
  node -e '
    const r = require(process.argv[1]);
    const rounds = r.rounds.slice(1).map((x) => x.load);
    const med = (xs) => { xs.sort((a, b) => a - b); const n = xs.length; return n % 2 ? xs[(n - 1) / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2; };
    const mem = r.native ? r.native.processes[0].tracker_memory : 0;
    console.log(med(rounds.map((l) => l.requests_per_second)), med(rounds.map((l) => l.latency_p99_ms)), mem);
  ' "$tmp/report.json" >"$tmp/last"
  cat "$tmp/last" >>"$tmp/$name"
}
REQUESTS=${REQUESTS:-30000}
hconfigs=(flags t512k t64k exact)
for i in $(seq "$RUNS"); do
  for c in "${hconfigs[@]}"; do
    # A pair: untracked, then the configuration; the ratio is taken within the pair, so the
    # machine's drift between pairs cancels out.
    hunt off --no-native -- node "$SERVER" 0
    read -r base_rate base_p99 _ <"$tmp/last"
    case $c in
    flags) hunt $c --no-native -- node $NAMING "$SERVER" 0 ;;
    t512k) hunt $c --native-interval 524288 -- node "$SERVER" 0 ;;
    t64k) hunt $c -- node "$SERVER" 0 ;;
    exact) hunt $c --exact-js -- node "$SERVER" 0 ;;
    esac
    read -r rate p99 mem <"$tmp/last"
    awk -v r="$rate" -v p="$p99" -v br="$base_rate" -v bp="$base_p99" -v m="$mem" \
      'BEGIN { print r / br, p / bp, m, r, p }' >>"$tmp/ratio-$c"
  done
  echo "  pairs $i done" >&2
done
echo
echo "HTTP service \`bench/native-http-server.js\` under \`leakhound hunt --requests $REQUESTS --concurrency 8\` (the built-in load driver, on the same 2 cores); each configuration in $RUNS pairs with an untracked hunt, the ratio taken within each pair (median and range), rates and p99 are medians of the rounds after the warm-up"
echo
echo "| configuration | requests/s | rate × untracked (min–max) | p99 latency | p99 × untracked (min–max) | tracker's memory |"
echo "|---|---:|---:|---:|---:|---:|"
printf '| untracked (`--no-native`) | %.0f | 1 | %.2f ms | 1 | – |\n' "$(cut -d' ' -f1 "$tmp/off" | median)" "$(cut -d' ' -f2 "$tmp/off" | median)"
for c in "${hconfigs[@]}"; do
  label=$(case $c in
    flags) echo "node's naming flags only" ;;
    t512k) echo "tracker 512 KiB + naming flags" ;;
    t64k) echo "tracker 64 KiB + naming flags (hunt's default)" ;;
    exact) echo "\`--exact-js\`: tracker 64 KiB, naming flags, no inlining" ;;
  esac)
  f="$tmp/ratio-$c"
  awk -v l="$label" -v r="$(cut -d' ' -f1 "$f" | median)" -v rmin="$(cut -d' ' -f1 "$f" | sort -g | head -1)" \
    -v rmax="$(cut -d' ' -f1 "$f" | sort -g | tail -1)" -v p="$(cut -d' ' -f2 "$f" | median)" \
    -v pmin="$(cut -d' ' -f2 "$f" | sort -g | head -1)" -v pmax="$(cut -d' ' -f2 "$f" | sort -g | tail -1)" \
    -v m="$(cut -d' ' -f3 "$f" | median)" -v rate="$(cut -d' ' -f4 "$f" | median)" -v lat="$(cut -d' ' -f5 "$f" | median)" \
    'BEGIN { printf "| %s | %.0f | %.3f (%.2f–%.2f) | %.2f ms | %.2f (%.2f–%.2f) | %s |\n", l, rate, r, rmin, rmax, lat, p, pmin, pmax, (m > 0 ? sprintf("%.1f MB", m / 1e6) : "–") }'
done

fi

if part 3; then
echo "== 3. startup" >&2
for i in $(seq 20); do
  for c in plain tracked; do
    start=$(date +%s%N)
    if [ $c = plain ]; then node -e 0; else "${track[@]}" node -e 0; fi
    echo $(($(date +%s%N) - start)) >>"$tmp/start-$c"
  done
done
echo
echo "Startup, \`node -e 0\`, median of 20: plain $(median <"$tmp/start-plain" | awk '{ printf "%.0f ms", $1 / 1e6 }'), under the tracker $(median <"$tmp/start-tracked" | awk '{ printf "%.0f ms", $1 / 1e6 }')"

fi

if part 4; then
echo "== 4. attribution" >&2
sh examples/native-leak/build.sh "$tmp/addon.node"
for i in $(seq "$RUNS"); do
  rm -rf "$tmp/hunt"
  ADDON="$tmp/addon.node" "$LH" hunt --json --requests 1000 --url /login --out "$tmp/hunt" -- node examples/native-leak/server.js 0 >"$tmp/report.json" 2>/dev/null || true
  node -e '
    const r = require(process.argv[1]);
    const s = r.native.processes[0].stacks.find((s) => s.suspect);
    const growth = s ? s.live.after - s.live.before : 0;
    const truth = 2000 * 4096;
    console.log([(growth / truth).toFixed(3), s ? s.allocated_by.name : "-", s && s.js_caller ? s.js_caller.name : "-", s ? s.error : 0].join("\t"));
  ' "$tmp/report.json" >>"$tmp/attr"
done
echo
echo "Attribution, \`hunt --url /login --requests 1000\` on examples/native-leak (2,000 × 4 KB leaked after the baseline), $RUNS hunts:"
echo
echo "| estimate / truth | top suspect allocated by | called from (JS) | ± (2σ) |"
echo "|---:|---|---|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %.1f MB |\n", $1, $2, $3, $4 / 1e6 }' "$tmp/attr"
fi
