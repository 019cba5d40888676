//! The app a hunt runs against, supervised: started by us under `node` with its inspector
//! open and its output in the run directory, or attached to by PID; waited for until it serves;
//! a load command run beside it; its memory recorded in the background; and stopped at the end
//! (an app we attached to is left running).

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Error;
use crate::attach::{Inspector, Limits, reachable};
use crate::capture::create_private;
use crate::cdp;
use crate::load;
use crate::memory::Sample;
use crate::native::{self, Recording};
use crate::procfs::{self, Process};
use crate::sampler::Sampler;

/// The process we hunt in, started by us or attached to.
pub struct App {
    pub pid: u32,
    child: Option<Child>,
    pub inspector: Inspector,
    stderr_log: Option<PathBuf>,
}

impl App {
    /// The running process `pid`, through its inspector (opened with SIGUSR1 if closed).
    pub fn attach(pid: u32, limits: Limits) -> Result<App, Error> {
        Ok(App {
            pid,
            child: None,
            inspector: Inspector::of_pid(pid, limits)?,
            stderr_log: None,
        })
    }

    /// Starts `node ARGS…` as `node --inspect=127.0.0.1:0 ARGS…` (under the native allocation
    /// tracker with `tracker`, and with the flags that name its JS frames), its output in
    /// `dir/app.stdout.log` and `dir/app.stderr.log` (0600), in a process group of its own, and
    /// waits up to `ready_timeout` for its inspector. `spawned` gets its PID (= its process
    /// group) at once, so that a Ctrl-C handler can stop the group while we wait: Ctrl-C
    /// reaches only us. The kernel sends the app SIGTERM when the thread that started it ends,
    /// so start it from a thread that lives as long as the hunt.
    pub fn start(
        command: &[String],
        dir: &Path,
        limits: Limits,
        ready_timeout: Duration,
        tracker: Option<&Recording>,
        spawned: impl FnOnce(u32),
    ) -> Result<App, Error> {
        let Some((program, rest)) = command.split_first() else {
            return Err(Error::NotNodeCommand {
                program: String::new(),
            });
        };
        if !procfs::is_node(Path::new(program)) {
            return Err(Error::NotNodeCommand {
                program: program.clone(),
            });
        }
        let stdout = create_private(&dir.join("app.stdout.log"))?;
        let stderr_log = dir.join("app.stderr.log");
        let stderr = create_private(&stderr_log)?;
        let mut child = Command::new(program);
        child.arg("--inspect=127.0.0.1:0");
        if let Some(tracker) = tracker {
            native::check_program(Path::new(program))?;
            child.args(tracker.node_flags()).envs(tracker.env());
        }
        child
            .args(rest)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            child.pre_exec(|| {
                // If we die without stopping it (SIGKILL), the app goes too.
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))?;
                Ok(())
            });
        }
        let child = child.spawn().map_err(|source| Error::Start {
            command: command.join(" "),
            source,
        })?;
        let pid = child.id();
        spawned(pid);
        let mut app = App {
            pid,
            child: Some(child),
            inspector: Inspector {
                addr: ([127, 0, 0, 1], 0).into(),
                version: String::new(),
                pid: Some(pid),
                opened_by_us: false,
                limits,
            },
            stderr_log: Some(stderr_log),
        };
        let start = Instant::now();
        loop {
            app.check_alive()?;
            // Found from /proc, not from the app's stderr, as for attaching.
            if let Ok(inspector) = Inspector::of_open_port(pid, limits) {
                app.inspector = inspector;
                return Ok(app);
            }
            if start.elapsed() > ready_timeout {
                return Err(Error::NotReady {
                    what: "had opened no inspector (is it node, and does it start that slowly?)"
                        .into(),
                    waited: ready_timeout,
                });
            }
            if cdp::interrupted() {
                return Err(Error::Interrupted);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The address the app serves on: its one listening address besides the inspector's.
    /// With `wait` (the URLs need it, or it is the sign of readiness), waits up to `timeout`
    /// for one; with `relative` (paths such as `/status` go to it), several are an error.
    /// `None` when it need not be waited for and there is not exactly one.
    pub fn serving_address(
        &mut self,
        wait: bool,
        relative: bool,
        timeout: Duration,
    ) -> Result<Option<SocketAddr>, Error> {
        let start = Instant::now();
        loop {
            // First: an app that ended says how.
            self.check_alive()?;
            let addrs: Vec<SocketAddr> = Process::new(self.pid)?
                .listening()?
                .into_iter()
                .filter(|a| a.port() != self.inspector.addr.port())
                .map(reachable)
                .collect();
            match addrs.as_slice() {
                [addr] => return Ok(Some(*addr)),
                [] if wait && start.elapsed() < timeout => {}
                [] if wait => {
                    return Err(Error::NotReady {
                        what: "listened on no TCP port but its inspector (is it a server?)".into(),
                        waited: timeout,
                    });
                }
                [_, _, ..] if relative => return Err(Error::SeveralPorts(addrs)),
                _ => return Ok(None),
            }
            if cdp::interrupted() {
                return Err(Error::Interrupted);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `url` answers with any HTTP status.
    pub fn wait_ready(
        &mut self,
        url: &str,
        timeout: Duration,
        allow_remote: bool,
    ) -> Result<(), Error> {
        let plan = load::Plan {
            requests: vec![load::Request::get(url)],
            count: 1,
            concurrency: 1,
            time_limit: Duration::from_secs(2),
            allow_remote,
        };
        let start = Instant::now();
        loop {
            if load::run(&plan, None)?.responses == 1 {
                return Ok(());
            }
            self.check_alive()?;
            if start.elapsed() > timeout {
                return Err(Error::NotReady {
                    what: format!("did not answer at {url}"),
                    waited: timeout,
                });
            }
            if cdp::interrupted() {
                return Err(Error::Interrupted);
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn memory(&self) -> Result<procfs::Memory, Error> {
        Process::new(self.pid)?.memory()
    }

    /// An error naming how the app we started ended, with the end of its stderr.
    pub fn check_alive(&mut self) -> Result<(), Error> {
        let Some(child) = &mut self.child else {
            Process::new(self.pid)?;
            return Ok(());
        };
        let log = self.stderr_log.clone().expect("a started app has a log");
        let io = |source| Error::Io {
            path: log.clone(),
            source,
        };
        if let Some(status) = child.try_wait().map_err(io)? {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(Error::AppStopped {
                status: status.to_string(),
                log,
                tail: tail.join("\n"),
            });
        }
        Ok(())
    }

    /// Stops the app we started and its process group: SIGTERM, then SIGKILL after 5 s. An
    /// app we attached to is left running. Returns how it ended.
    pub fn stop(&mut self) -> Result<Option<String>, Error> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let path = PathBuf::from(format!("/proc/{}", child.id()));
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let group = rustix::process::Pid::from_child(&child);
        let signal = |s| {
            let _ = rustix::process::kill_process_group(group, s);
        };
        signal(rustix::process::Signal::TERM);
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().map_err(io)? {
                break status.to_string();
            }
            if start.elapsed() > Duration::from_secs(5) {
                signal(rustix::process::Signal::KILL);
                break format!("{} (after SIGKILL)", child.wait().map_err(io)?);
            }
            thread::sleep(Duration::from_millis(50));
        };
        Ok(Some(status))
    }

    /// Whether we started it (and so stop it).
    pub fn started(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for App {
    /// On any early return: the app we started does not outlive us.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// One run of a load command.
#[derive(Debug, Serialize)]
pub struct CommandRun {
    pub command: String,
    /// `exit status: 0`, or how it was stopped.
    pub status: String,
    pub seconds: f64,
}

impl CommandRun {
    pub fn succeeded(&self) -> bool {
        self.status == "exit status: 0"
    }
}

/// Runs `sh -c COMMAND` for round `round` in its own process group, with `LEAKHOUND_ROUND` and
/// `LEAKHOUND_PORT` (`port`, or empty) in its environment and its output appended to `log`
/// (0600), within `time_limit`; at the limit, or on Ctrl-C, the whole group is killed.
pub fn run_load_command(
    command: &str,
    log: &Path,
    round: usize,
    port: Option<u16>,
    time_limit: Duration,
) -> Result<CommandRun, Error> {
    let io = |source| Error::Io {
        path: log.to_owned(),
        source,
    };
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .map_err(io)?;
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("LEAKHOUND_ROUND", round.to_string())
        .env(
            "LEAKHOUND_PORT",
            port.map(|p| p.to_string()).unwrap_or_default(),
        )
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(io)?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Start {
            command: format!("the load command {command:?}"),
            source,
        })?;
    let group = rustix::process::Pid::from_child(&child);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io)? {
            break status.to_string();
        }
        let over = start.elapsed() > time_limit;
        if over || cdp::interrupted() {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            let _ = child.wait();
            if !over {
                return Err(Error::Interrupted);
            }
            break format!(
                "killed at the round time limit ({} s)",
                time_limit.as_secs_f64()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    Ok(CommandRun {
        command: command.to_owned(),
        status,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Samples a process's memory in the background (as `leakhound watch` does, without an
/// inspector) until stopped.
pub struct Recorder {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Vec<Sample>>,
}

impl Recorder {
    /// Starts sampling `pid` every `every`.
    pub fn start(pid: u32, every: Duration) -> Recorder {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut samples = Vec::new();
            let Ok(mut sampler) = Sampler::without_inspector(pid, every) else {
                return samples;
            };
            let start = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                match sampler.sample(start.elapsed().as_secs_f64()) {
                    Ok(s) => samples.push(s),
                    Err(_) => break,
                }
                thread::sleep(every);
            }
            samples
        });
        Recorder { stop, thread }
    }

    /// The samples taken.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
