//! Errors of live capture. Each says what happened and what the user can do about it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no process with PID {0} (check the PID with `pgrep -a node`)")]
    NoSuchProcess(u32),
    #[error(
        "permission denied: cannot {what} of PID {pid}; run leakhound as the same user as the process (or as root)"
    )]
    PermissionDenied { pid: u32, what: String },
    #[error(
        "PID {pid} is not a Node.js process (its executable is {exe}); leakhound attaches to `node` processes"
    )]
    NotNode { pid: u32, exe: String },
    #[error(
        "PID {pid} lives in another network namespace (a container?), so its inspector port is not reachable from here; run leakhound inside it (`nsenter -t {pid} -n leakhound …`)"
    )]
    OtherNetns { pid: u32 },
    #[error(
        "PID {pid} cannot open its inspector: port {port} is already taken{}; stop that process, or restart the app with `--inspect-port=0` (or `--inspect=127.0.0.1:0`)",
        .owner.as_ref().map(|(p, cmd)| format!(" by PID {p} ({cmd})")).unwrap_or_else(|| " by a process leakhound cannot see".into())
    )]
    PortTaken {
        pid: u32,
        port: u16,
        owner: Option<(u32, String)>,
    },
    #[error(
        "PID {pid} ({exe}) has no SIGUSR1 handler, so SIGUSR1 would kill it instead of opening its inspector: it is not a Node.js process, or is still starting; nothing was sent"
    )]
    NoSignalHandler { pid: u32, exe: String },
    #[error(
        "the inspector leakhound opened at {addr}{} may still be open ({why}); restart the app to close it, or run `leakhound capture --pid PID` again when it answers",
        .pid.map(|p| format!(" in PID {p}")).unwrap_or_default()
    )]
    StaysOpen {
        addr: SocketAddr,
        pid: Option<u32>,
        why: String,
    },
    #[error(
        "{address:?} is not an inspector address ({why}); give HOST:PORT such as 127.0.0.1:9229"
    )]
    BadAddress { address: String, why: String },
    #[error(
        "PID {pid} was started with {flag}, which {why}; restart it with `--inspect=127.0.0.1:0` to let leakhound in"
    )]
    InspectorDisabled {
        pid: u32,
        flag: String,
        why: &'static str,
    },
    #[error(
        "PID {pid} opened no inspector port within {} s after SIGUSR1. Either the app handles SIGUSR1 itself (`process.on('SIGUSR1')` replaces Node's handler), or its main thread is stuck in a native call (execSync, a sync fs call on a pipe, crypto *Sync, an addon): Node opens the port only when that call returns, and leakhound will not be there to close it. Check the app for a SIGUSR1 listener, or `cat /proc/{pid}/wchan`; restarting it with `--inspect=127.0.0.1:0` always works. To see it now without the inspector: `leakhound capture --pid {pid} --core`, then `leakhound core FILE` (objects by class and the JS stack)",
        .waited.as_secs_f64()
    )]
    NoInspector { pid: u32, waited: Duration },
    #[error(
        "the inspector at {addr} did not answer {what} within {} s: the app's main thread is probably stuck in a native call (execSync, a sync fs call, crypto *Sync, an addon). JavaScript loops do not block the inspector; native calls do. Try again when the call returns, or raise --timeout; to see it now, take a core (`leakhound capture --pid PID --core`, then `leakhound core FILE`: objects by class and the JS stack)",
        .waited.as_secs_f64()
    )]
    NoAnswer {
        addr: SocketAddr,
        what: String,
        waited: Duration,
    },
    #[error("cannot connect to the inspector at {addr}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the inspector at {addr} {problem}")]
    Discovery { addr: SocketAddr, problem: String },
    #[error("the inspector at {addr} closed the connection during {what}{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Closed {
        addr: SocketAddr,
        what: String,
        detail: Option<String>,
    },
    #[error("the inspector answered {method} with error {code}: {message}")]
    Protocol {
        method: String,
        code: i64,
        message: String,
    },
    #[error("the inspector sent a message leakhound cannot read ({what}): {detail}")]
    BadMessage { what: String, detail: String },
    #[error("{}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "not taking the snapshot: it would need about {need} more memory in PID {pid}, and only {free} is free
  Where the room is: {room}.
  V8 builds a snapshot inside the app, estimated at {estimate} (measured on Node 20–26; long strings cost less); at its limit the kernel kills the app.
What to do instead:
  - `leakhound capture --pid {pid} --sample-allocations 30s`: a sampling heap profile costs almost no memory and shows what allocates the live heap
  - raise the memory limit by about {more} while the snapshot is taken, or take it on a replica with that room
  - `--force` takes it anyway",
        pid = .0.pid, need = .0.need, free = .0.free, more = .0.more, estimate = .0.estimate, room = .0.room
    )]
    NoRoom(Box<Shortfall>),
    #[error(
        "not taking the snapshot: leakhound cannot see how much memory the app has free ({why}), and a snapshot of its {heap} heap needs up to {need} more inside the app. Run leakhound where it sees the process and its cgroup (`--pid`, as root or as the app's user), or give `--force` if you know the app has that room"
    )]
    RoomUnknown {
        need: String,
        heap: String,
        why: String,
    },
    #[error("PID {pid} died during the snapshot ({seen}): {why}.\n{advice}")]
    Died {
        pid: u32,
        why: String,
        advice: String,
        seen: Box<Error>,
    },
    #[error(
        "{}",
        if .program.is_empty() {
            "give the app to start: `-- node app.js ARGS…`".to_owned()
        } else {
            format!("the app is started with node (`-- node app.js ARGS…`), not {:?}; for an app started another way (npm, a wrapper script), start it yourself and use --pid", .program)
        }
    )]
    NotNodeCommand { program: String },
    #[error("cannot start {command}")]
    Start {
        command: String,
        source: std::io::Error,
    },
    #[error("the app {what} after {} s (--ready-timeout)", .waited.as_secs())]
    NotReady { what: String, waited: Duration },
    #[error("the app listens on {0:?}: give full URLs (http://127.0.0.1:PORT/path)")]
    SeveralPorts(Vec<SocketAddr>),
    #[error("the app stopped ({status}); the end of {}:\n{tail}", .log.display())]
    AppStopped {
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    #[error("interrupted")]
    Interrupted,
    #[error(
        "gcore (from gdb) is not installed: install gdb (`apt install gdb`, `dnf install gdb`), or take the core another way (`kill -ABRT` with cores enabled kills the app)"
    )]
    NoGcore,
    #[error("no core of PID {pid}: {why}")]
    CoreFailed { pid: u32, why: String },
    #[error(
        "not taking the core: it will be about {need}, and {dir} has {free} free; write it elsewhere (-o /big/disk/FILE), or give --force"
    )]
    NoDiskRoom {
        need: String,
        free: String,
        dir: PathBuf,
    },
    #[error(
        "native allocation tracking needs {lib}, which is not built: build it with `cargo build --release` at the workspace root (or `cargo build -p leakhound-preload`), or point LEAKHOUND_PRELOAD at it; looked in {}",
        .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        lib = crate::native::LIBRARY
    )]
    NoTracker { searched: Vec<PathBuf> },
    #[error("cannot record native allocations of {}: {why}", .program.display())]
    CannotTrack { program: PathBuf, why: String },
    #[error(
        "PID {pid} wrote no native dump within {} s of being asked (in {}); is it still running, and was it started under the tracker?",
        .waited.as_secs_f64(), .dir.display()
    )]
    NoDump {
        pid: u32,
        dir: PathBuf,
        waited: Duration,
    },
    #[error(transparent)]
    Record(#[from] crate::native::record::RecordError),
}

/// A snapshot that does not fit: the figures of [`Error::NoRoom`], as people read them.
#[derive(Debug)]
pub struct Shortfall {
    pub pid: u32,
    /// What the snapshot needs.
    pub need: String,
    /// What the process has free.
    pub free: String,
    /// The difference.
    pub more: String,
    /// How the need was estimated.
    pub estimate: String,
    /// Where the room is: the limit that binds, or the machine.
    pub room: String,
}
