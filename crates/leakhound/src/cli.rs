//! Command-line flags (clap derive types live here only) and their conversion to settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "leakhound",
    version,
    about = "Find memory leaks in Node.js and V8 processes"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Summary view of a heap snapshot: objects grouped by class, as Chrome DevTools shows them
    Summary(SummaryArgs),
    /// The Statistics view of a heap snapshot: where the heap's bytes go, by category
    Stats(StatsArgs),
    /// Compare two snapshots: the DevTools Comparison view, plus retained-size growth and who
    /// holds the growth of generic classes
    Diff(DiffArgs),
    /// Find leaked objects in a series of snapshots of one process and name who holds them
    Leaks(LeaksArgs),
    /// The shortest retaining paths of one object (@ID) or of a class's largest objects
    Retainers(RetainersArgs),
    /// One object: class, sizes, distance, dominators, edges, retainers, source location
    Show(ShowArgs),
    /// Suspicious patterns in a snapshot: handle leaks, dangling edges, huge collections,
    /// duplicate strings, listener and closure build-ups, shared contexts
    Findings(FindingsArgs),
    /// Take a heap snapshot (or a sampling allocation profile) of a running Node process
    Capture(CaptureArgs),
    /// The whole leak hunt: start (or attach to) an app, drive load, take a baseline, target and
    /// final snapshot, and report the leak. Exit code 0: no leak suspected, 1: leak suspected,
    /// 2: error
    Hunt(HuntArgs),
    /// Watch processes' memory over time: RSS split into V8 heap, malloc heap and the rest,
    /// growth rates and a verdict on which memory leaks; files, an SVG chart, Prometheus
    Watch(WatchArgs),
    /// A process's memory map grouped and named (V8 heap, malloc arenas, stacks, each file),
    /// saved and compared with an earlier one
    Maps(MapsArgs),
    /// Record the native (malloc, C++ new) allocations of a command and name the C++ and JS
    /// stacks whose live memory grows; or analyse a recording again. Exit code 0: no native
    /// leak suspected, 1: suspected, 2: error
    Native(NativeArgs),
    /// Objects by class and the JS stack of a Node process from its core dump, for when the
    /// inspector cannot reach it (take one with `capture --pid PID --core`); `--diff` compares
    /// two cores of one process
    Core(CoreArgs),
    /// Serve the tools to AI assistants: a Model Context Protocol server on stdin/stdout
    /// (summary, stats, diff, leaks, retainers, show, findings, capture, hunt, watch_sample,
    /// maps), keeping loaded snapshots between calls
    Mcp(McpArgs),
}

/// Output options every command shares.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Print the time of each phase on stderr
    #[arg(long)]
    pub timings: bool,
}

/// For the commands that print source positions.
#[derive(Debug, clap::Args)]
pub struct SourceMapArgs {
    /// Show positions as the scripts give them only: do not look for source maps (by default
    /// a script with a map, `//# sourceMappingURL=` or FILE.map beside it, also gets the
    /// position in its original source, e.g. the .ts file)
    #[arg(long)]
    pub no_source_maps: bool,
}

impl SourceMapArgs {
    pub fn enabled(&self) -> bool {
        !self.no_source_maps
    }
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier snapshot
    pub base: PathBuf,
    /// The later snapshot
    pub current: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Show only the first N classes (by size delta)
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Also write the report as one self-contained HTML page to FILE (opens offline in any
    /// browser; share it in the incident channel)
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub source_maps: SourceMapArgs,
}

#[derive(Debug, clap::Args)]
pub struct LeaksArgs {
    /// Snapshots of one process, oldest first: BASELINE TARGET [MORE…]
    #[arg(required = true, num_args = 2.., value_name = "SNAPSHOT")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Show the N largest clusters
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// A cluster must have leaked at least this many times (its headline's count) to count for
    /// the verdict
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub min_count: u64,
    /// Also write the report as one self-contained HTML page to FILE (opens offline in any
    /// browser; share it in the incident channel)
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub source_maps: SourceMapArgs,
}

#[derive(Debug, clap::Args)]
pub struct RetainersArgs {
    /// A heap snapshot
    pub file: PathBuf,
    /// The object, as `@ID` (DevTools' notation) or `ID`
    #[arg(required_unless_present = "class", value_name = "@ID")]
    pub object: Option<String>,
    /// Instead of one object: the largest instances of this class (by retained size)
    #[arg(long, value_name = "NAME", conflicts_with = "object")]
    pub class: Option<String>,
    /// How many objects of the class
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub instances: usize,
    /// Paths per object
    #[arg(short = 'k', long, value_name = "K", default_value_t = 5)]
    pub paths: usize,
    /// Never go through an edge with this name (repeatable), like DevTools' "ignore this retainer"
    #[arg(long, value_name = "NAME")]
    pub ignore_edge: Vec<String>,
    /// Never go through this node (repeatable)
    #[arg(long, value_name = "@ID")]
    pub ignore_node: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A heap snapshot
    pub file: PathBuf,
    /// The object, as `@ID` or `ID`
    #[arg(value_name = "@ID")]
    pub object: String,
    /// Edges and retainers listed
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub source_maps: SourceMapArgs,
}

#[derive(Debug, clap::Args)]
pub struct FindingsArgs {
    /// A heap snapshot
    pub file: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub source_maps: SourceMapArgs,
}

/// Options every snapshot-reading command shares.
#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    /// A .heapsnapshot or .heaptimeline file, gzip-compressed or not; `-` reads standard input
    pub file: PathBuf,
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Print the time of each phase on stderr
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Show only the first N classes
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Order of the classes
    #[arg(long, value_enum, default_value_t = SortKey::Retained)]
    pub sort: SortKey,
    /// Keep only classes whose name matches this regular expression
    #[arg(long, value_name = "REGEX")]
    pub class: Option<String>,
    #[command(flatten)]
    pub source_maps: SourceMapArgs,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Retained,
    Shallow,
    Count,
    Name,
}

/// Which process to reach, and how long to wait for it.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// The process to attach to; if its inspector is closed, leakhound opens it with SIGUSR1
    /// and closes it again when done
    #[arg(long, value_name = "PID", conflicts_with = "inspect")]
    pub pid: Option<u32>,
    /// The address of an open inspector (the app runs with `--inspect=HOST:PORT`)
    #[arg(long, value_name = "HOST:PORT")]
    pub inspect: Option<String>,
    /// How long to wait for each answer from the inspector (a main thread stuck in a native
    /// call answers nothing)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub timeout: Duration,
    /// How long to wait for the inspector port to open after SIGUSR1
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub open_timeout: Duration,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["pid", "inspect"]))]
pub struct CaptureArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where to write (mode 0600). Default: node-PID-TIME.heapsnapshot (or .heapprofile)
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Do not collect garbage before the snapshot (V8 still drops unreachable objects)
    #[arg(long)]
    pub no_gc: bool,
    /// Take the snapshot even when it does not fit in the app's free memory (V8 builds it
    /// inside the app, several times its heap; the kernel may kill the app at its limit)
    #[arg(long)]
    pub force: bool,
    /// Instead of a snapshot: run V8's sampling heap profiler this long (`30s`, `2m`) and save
    /// the allocation sites of the memory still alive at the end
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub sample_allocations: Option<Duration>,
    /// Mean bytes between two samples of the sampling heap profiler
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = leakhound_live::capture::SAMPLING_INTERVAL,
        requires = "sample_allocations"
    )]
    pub sampling_interval: u64,
    /// Instead of a snapshot: a core dump of --pid with gdb's gcore, for when the inspector
    /// cannot answer (a main thread stuck in native code) or the heap is too big to snapshot
    /// inside its container. The process is stopped while it is written (about 2 s per GB)
    /// and then goes on; read it with `leakhound core FILE`
    #[arg(long, requires = "pid", conflicts_with_all = ["inspect", "sample_allocations", "no_gc"])]
    pub core: bool,
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct HuntArgs {
    /// Send load to this URL (repeatable: requests go round-robin). A path such as `/status`
    /// goes to the port the app listens on
    #[arg(long, value_name = "URL", conflicts_with = "load")]
    pub url: Vec<String>,
    /// Requests per round
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub requests: u64,
    /// Requests in flight at once
    #[arg(long, value_name = "C", default_value_t = 8)]
    pub concurrency: usize,
    /// HTTP method
    #[arg(long, value_name = "METHOD", default_value = "GET")]
    pub method: String,
    /// A request header, `Name: value` (repeatable)
    #[arg(long, value_name = "HEADER")]
    pub header: Vec<String>,
    /// The request body
    #[arg(long, value_name = "BODY")]
    pub body: Option<String>,
    /// Time limit of one load round (also for a --load command, which is then stopped)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub round_time_limit: Duration,
    /// Allow load to hosts other than this machine
    #[arg(long)]
    pub allow_remote: bool,
    /// Instead of the built-in load driver: run this shell command once per round (curl, wrk,
    /// autocannon…); it sees LEAKHOUND_ROUND and LEAKHOUND_PORT
    #[arg(long, value_name = "CMD")]
    pub load: Option<String>,
    /// Load rounds after the baseline, each followed by a snapshot (at least 2)
    #[arg(long, value_name = "R", default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..))]
    pub rounds: u32,
    /// Wait until this URL answers before starting (default: the first --url, else until the
    /// app listens on a port)
    #[arg(long, value_name = "URL")]
    pub ready_url: Option<String>,
    /// How long the app may take to get ready
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub ready_timeout: Duration,
    /// The run directory: snapshots, report.json, load statistics, the app's output.
    /// Default: leakhound-hunt-TIME in the current directory
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Attach to this running process instead of starting one (it is left running)
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Take snapshots even when they do not fit in the app's free memory (by default a round
    /// whose snapshot would not fit is not started)
    #[arg(long)]
    pub force: bool,
    /// How long to wait for each answer from the inspector
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub timeout: Duration,
    /// With --pid: how long to wait for the inspector port to open after SIGUSR1
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub open_timeout: Duration,
    /// Show the N largest clusters
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// A cluster must have leaked at least this many times (its headline's count) to count for
    /// the verdict
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub min_count: u64,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Record native allocations (on by default when the hunt starts the app; this makes it an
    /// error when they cannot be recorded, as with --pid)
    #[arg(long, conflicts_with = "no_native")]
    pub native: bool,
    /// Do not record native allocations
    #[arg(long)]
    pub no_native: bool,
    /// Native tracking: mean bytes allocated between two samples (1 = every allocation)
    #[arg(long, value_name = "BYTES", default_value_t = leakhound_live::native::HUNT_INTERVAL)]
    pub native_interval: u64,
    /// Native tracking: start node with V8's inlining off, so every JS function keeps its own
    /// frame (costs about a tenth of a CPU-bound service's throughput; without it, an inlined
    /// function is found through the stacks recorded before it was inlined)
    #[arg(long)]
    pub exact_js: bool,
    #[command(flatten)]
    pub source_maps: SourceMapArgs,
    /// The app to start: `-- node app.js ARGS…` (leakhound adds `--inspect=127.0.0.1:0`)
    #[arg(
        last = true,
        value_name = "COMMAND",
        required_unless_present = "pid",
        conflicts_with = "pid"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct NativeArgs {
    /// A recording to analyse again: the `native` directory of a hunt or of an earlier
    /// `leakhound native -- CMD`
    #[arg(
        value_name = "DIR",
        conflicts_with = "command",
        required_unless_present = "command"
    )]
    pub dir: Option<PathBuf>,
    /// Mean bytes allocated between two samples (1 = every allocation, about 2× slower on
    /// malloc-heavy code)
    #[arg(long, value_name = "BYTES", default_value_t = leakhound_live::native::HUNT_INTERVAL)]
    pub interval: u64,
    /// Time between two dumps of the counters (the checkpoints growth is measured over)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    pub dump_every: Duration,
    /// Start node (when the command is node itself) with V8's inlining off, so every JS function
    /// keeps its own frame (costs about a tenth of a CPU-bound service's throughput)
    #[arg(long)]
    pub exact_js: bool,
    /// Stop the command after this long (a last dump, then SIGTERM; default: when it ends, or on
    /// Ctrl-C, which reaches it too)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub duration: Option<Duration>,
    /// The recording directory (default: leakhound-native-TIME in the current directory)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Report only this process of the recording (default: every process whose tracked memory
    /// grew)
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Show the N stacks that grew most per process
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Also write the report as one self-contained HTML page to FILE (opens offline in any
    /// browser; share it in the incident channel)
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub source_maps: SourceMapArgs,
    /// The command to run under the tracker: `-- node worker.js`, `-- npm test`… Node processes
    /// anywhere under it get the flags that name their JS frames (through NODE_OPTIONS)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true).multiple(true).args(["pids", "pattern"]))]
pub struct WatchArgs {
    /// A process to watch (repeatable)
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Also watch every Node process whose command line matches this regular expression; new
    /// ones are picked up, exited ones dropped
    #[arg(long = "match", value_name = "REGEX")]
    pub pattern: Option<String>,
    /// The `name` label of the processes (default: the script name)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Time between two samples
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    pub interval: Duration,
    /// Stop after this long (default: when the processes exit, or on Ctrl-C)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub duration: Option<Duration>,
    /// The least time between two reads of /proc/PID/smaps, which split RSS into V8 heap,
    /// malloc heap and the rest (default: the interval; it is also read at most once per 150
    /// times its own cost, so it stays under 1 % of a core)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub smaps_every: Option<Duration>,
    /// Read V8's figures from this inspector (one --pid only; by default an inspector the
    /// process already has open is used, and none is opened)
    #[arg(long, value_name = "HOST:PORT")]
    pub inspect: Option<String>,
    /// How long to wait for each answer from an inspector
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    pub timeout: Duration,
    /// Write every sample to this file as JSON lines
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
    /// Write every sample to this CSV file
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
    /// At the end, draw the components over time into this SVG file (FILE-PID.svg for several
    /// processes)
    #[arg(long, value_name = "FILE.svg")]
    pub svg: Option<PathBuf>,
    /// At the end, write the timelines and the verdicts as one self-contained HTML page to
    /// FILE (opens offline in any browser)
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (loopback addresses only)
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<std::net::SocketAddr>,
    /// Print the final report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Take evidence when a process's memory starts to grow (the verdict's trend becomes
    /// significant): a sampling heap profile, a heap snapshot when it fits in the process's
    /// free memory, and the maps (breakdown and what changed since the watch began), in a
    /// directory of its own under --capture-dir. Opens the inspector with SIGUSR1 for it and
    /// closes it again
    #[arg(long)]
    pub capture_on_growth: bool,
    /// Where --capture-on-growth writes (each capture in a directory NAME-PID-UNIXMS, mode 0700)
    #[arg(
        long,
        value_name = "DIR",
        default_value = "leakhound-captures",
        requires = "capture_on_growth"
    )]
    pub capture_dir: PathBuf,
    /// At most one capture per process this often
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = duration, requires = "capture_on_growth")]
    pub capture_every: Duration,
    /// How long each capture runs the sampling heap profiler
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration, requires = "capture_on_growth")]
    pub capture_profile: Duration,
    /// Keep the newest N captures of each process name, across restarts (and the newest with a
    /// snapshot); older ones are deleted
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..), requires = "capture_on_growth")]
    pub keep: u32,
}

#[derive(Debug, clap::Args)]
pub struct MapsArgs {
    /// The process
    #[arg(long, value_name = "PID")]
    pub pid: u32,
    /// Save this sample of the map (JSON) to compare with later
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Compare with a sample saved earlier: what grew, shrank, appeared or vanished
    #[arg(long, value_name = "FILE")]
    pub diff: Option<PathBuf>,
    /// Show the N largest groups (or changes)
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub top: usize,
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CoreArgs {
    /// A core dump of a Node process (gdb's gcore, or the kernel's)
    pub core: PathBuf,
    /// The node binary (or libnode.so) that wrote the core, when it is not at the path the core
    /// names (another machine, a container); its build id must match
    #[arg(long, value_name = "BINARY")]
    pub node: Option<PathBuf>,
    /// A later core of the same process: which classes grew between the two
    #[arg(long, value_name = "CORE2")]
    pub diff: Option<PathBuf>,
    /// Show the N first classes
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub top: usize,
    /// Print every thread's stack, not only the main thread's
    #[arg(long)]
    pub all_threads: bool,
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// Memory for snapshots kept between calls, in MiB (default: half of what this process may
    /// still take, from its cgroup limit or the machine's available memory)
    #[arg(long, value_name = "MIB")]
    pub cache_mb: Option<u64>,
}

/// `30s`, `2m`, `500ms`, `1h`; not zero.
fn duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. 30s, 2m, 500ms)")),
    }
}
