//! `leakhound hunt`: start (or attach to) an app, drive load, snapshot after each round, and
//! report the leak.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use heapsnap::leaks::Settings;
use leakhound_live::attach::{Inspector, Limits};
use leakhound_live::capture::{self, HeapUsage};
use leakhound_live::cdp;
use leakhound_live::load::{self, LoadStats};
use leakhound_live::procfs::{self, Process};
use serde::Serialize;

use super::capture::{bar, install_interrupt_handler, unix_time};
use super::leaks::{self, LeaksJson};
use crate::cli::HuntArgs;
use crate::output;

/// `report.json` of a run.
#[derive(Serialize)]
struct HuntJson {
    leak_suspected: bool,
    dir: PathBuf,
    app: AppJson,
    rounds: Vec<Round>,
    #[serde(flatten)]
    leaks: LeaksJson,
}

#[derive(Serialize)]
struct AppJson {
    pid: u32,
    /// The command we started, or empty when we attached.
    command: Vec<String>,
    inspector: String,
    node: String,
    port: Option<u16>,
    /// How the app we started ended: `exit 0`, `signal 15`…
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<String>,
}

/// One round: its load, then the memory after a full GC, then the snapshot.
#[derive(Serialize)]
struct Round {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    load: Option<LoadStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    load_command: Option<CommandRun>,
    /// V8 and Node's figures after a full GC.
    heap: HeapUsage,
    /// `/proc/PID/status` before and after the snapshot (a snapshot leaves freed malloc memory
    /// resident: RSS after one is not a leak).
    memory_before_snapshot: procfs::Memory,
    memory_after_snapshot: procfs::Memory,
    snapshot: capture::Snapshot,
}

#[derive(Serialize)]
struct CommandRun {
    command: String,
    status: String,
    seconds: f64,
}

pub fn run(args: HuntArgs) -> anyhow::Result<ExitCode> {
    install_interrupt_handler();
    if args.url.is_empty() && args.load.is_none() {
        bail!("give the load: --url URL (repeatable) for the built-in driver, or --load CMD");
    }
    let dir = run_dir(args.out.as_deref())?;
    let limits = Limits {
        answer: args.timeout,
        ..Limits::default()
    };
    let mut app = match args.pid {
        Some(pid) => App::attach(pid, limits)?,
        None => App::start(&args.command, &dir, limits, args.ready_timeout)?,
    };
    let hunted = hunt(&args, &dir, &mut app);
    let stopped = app.stop();
    let (rounds, port) = hunted?;
    let stopped = stopped?;
    if cdp::interrupted() {
        bail!("interrupted; the snapshots taken are in {}", dir.display());
    }

    eprintln!("analysing {} snapshots…", rounds.len());
    let files: Vec<PathBuf> = rounds.iter().map(|r| r.snapshot.path.clone()).collect();
    let settings = Settings {
        top: args.top,
        min_count: args.min_count,
    };
    let found = leaks::analyse(&files, &settings, false)?;
    let doc = HuntJson {
        leak_suspected: found.report.leak_suspected,
        dir: dir.clone(),
        app: AppJson {
            pid: app.pid,
            command: args.command.clone(),
            inspector: app.inspector.addr.to_string(),
            node: app.inspector.version.clone(),
            port,
            stopped,
        },
        rounds,
        leaks: found,
    };
    let report = dir.join("report.json");
    let mut file = capture::create_private(&report)?;
    serde_json::to_writer_pretty(&mut file, &doc)
        .with_context(|| format!("writing {}", report.display()))?;

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        leaks::print(&mut out, &doc.leaks, args.min_count)?;
        writeln!(out)?;
        print_rounds(&mut out, &doc.rounds)?;
        writeln!(
            out,
            "\nRun directory: {} (report.json, snapshots{})",
            dir.display(),
            if args.pid.is_none() {
                ", app.stdout.log, app.stderr.log"
            } else {
                ""
            }
        )?;
    }
    out.flush()?;
    Ok(if doc.leak_suspected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The rounds: warm-up then baseline, then `args.rounds` more, each ending in a snapshot.
fn hunt(args: &HuntArgs, dir: &Path, app: &mut App) -> anyhow::Result<(Vec<Round>, Option<u16>)> {
    let port = app.port(args)?;
    let plan = plan(args, port)?;
    if let Some(url) = ready_url(args, port)? {
        app.wait_ready(&url, args.ready_timeout, args.allow_remote)?;
    }
    let mut session = app.inspector.session()?;
    let result = (|| {
        let mut rounds = Vec::new();
        let last = args.rounds as usize;
        for i in 0..=last {
            let name = match i {
                0 => "baseline".to_owned(),
                1 => "target".to_owned(),
                i if i == last => "final".to_owned(),
                i => format!("round-{i}"),
            };
            let label = if i == 0 { "warm-up" } else { &name };
            let (load, load_command) = match &plan {
                Some(plan) => {
                    let bar = bar(&format!("load ({label})"), None);
                    bar.set_length(plan.count);
                    let stats = load::run(plan, Some(&bar))?;
                    bar.finish_and_clear();
                    if cdp::interrupted() {
                        bail!("interrupted");
                    }
                    (Some(stats), None)
                }
                None => (None, Some(run_load_command(args, dir, i, port)?)),
            };
            app.check_alive()?;
            if !capture::collect_garbage(&mut session)? {
                eprintln!(
                    "warning: the app's event loop is busy: no GC before the snapshot (the snapshot collects garbage itself)"
                );
            }
            let heap = capture::heap_usage(&mut session)?;
            let memory_before_snapshot = app.memory()?;
            let path = dir.join(format!("{}-{name}.heapsnapshot", i + 1));
            let bar = bar(&format!("snapshot ({name})"), None);
            let snapshot = capture::snapshot(&mut session, &path, false, &bar)?;
            bar.finish_and_clear();
            eprintln!(
                "{label}: {}; heap {} used, rss {}; wrote {} ({})",
                match (&load, &load_command) {
                    (Some(l), _) => format!(
                        "{} requests ({} non-2xx, {} errors) in {:.1} s",
                        output::count(l.responses),
                        output::count(l.non_2xx),
                        output::count(l.errors),
                        l.elapsed_secs
                    ),
                    (_, Some(c)) => format!("load command {} in {:.1} s", c.status, c.seconds),
                    _ => String::new(),
                },
                output::size(heap.heap_used),
                output::size(memory_before_snapshot.rss),
                path.display(),
                output::size(snapshot.bytes),
            );
            rounds.push(Round {
                name,
                load,
                load_command,
                heap,
                memory_before_snapshot,
                memory_after_snapshot: app.memory()?,
                snapshot,
            });
        }
        anyhow::Ok(rounds)
    })();
    let finished = app.inspector.finish(session);
    let rounds = result?;
    finished.context("closing the inspector leakhound opened")?;
    Ok((rounds, port))
}

/// The built-in load of one round, or `None` with `--load`.
fn plan(args: &HuntArgs, port: Option<u16>) -> anyhow::Result<Option<load::Plan>> {
    if args.load.is_some() {
        return Ok(None);
    }
    let headers = args
        .header
        .iter()
        .map(|h| load::parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let requests = args
        .url
        .iter()
        .map(|u| {
            let url = resolve(u, port)?;
            load::check_url(&url, args.allow_remote)?;
            Ok(load::Request {
                method: args.method.clone(),
                url,
                headers: headers.clone(),
                body: args.body.as_ref().map(|b| b.as_bytes().to_vec()),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(load::Plan {
        requests,
        count: args.requests,
        concurrency: args.concurrency,
        time_limit: args.round_time_limit,
        allow_remote: args.allow_remote,
    }))
}

/// `/status` → `http://127.0.0.1:PORT/status` on the app's port; full URLs stay.
fn resolve(url: &str, port: Option<u16>) -> anyhow::Result<String> {
    if !url.starts_with('/') {
        return Ok(url.to_owned());
    }
    match port {
        Some(port) => Ok(format!("http://127.0.0.1:{port}{url}")),
        None => bail!("cannot send {url} to the app: it listens on no TCP port; give a full URL"),
    }
}

fn ready_url(args: &HuntArgs, port: Option<u16>) -> anyhow::Result<Option<String>> {
    match args
        .ready_url
        .as_deref()
        .or(args.url.first().map(String::as_str))
    {
        Some(url) => Ok(Some(resolve(url, port)?)),
        None => Ok(None),
    }
}

fn run_load_command(
    args: &HuntArgs,
    dir: &Path,
    round: usize,
    port: Option<u16>,
) -> anyhow::Result<CommandRun> {
    let command = args.load.clone().unwrap_or_default();
    let log_path = dir.join("load.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .env("LEAKHOUND_ROUND", round.to_string())
        .env(
            "LEAKHOUND_PORT",
            port.map(|p| p.to_string()).unwrap_or_default(),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting the load command {command:?}"))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if cdp::interrupted() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("interrupted");
        }
        thread::sleep(Duration::from_millis(50));
    };
    if !status.success() {
        eprintln!(
            "warning: the load command {status} in round {round} (its output is in {})",
            log_path.display()
        );
    }
    Ok(CommandRun {
        command,
        status: status.to_string(),
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The process we hunt in, started by us or attached to.
struct App {
    pid: u32,
    child: Option<Child>,
    inspector: Inspector,
    stderr_log: Option<PathBuf>,
}

impl App {
    fn attach(pid: u32, limits: Limits) -> anyhow::Result<App> {
        Ok(App {
            pid,
            child: None,
            inspector: Inspector::of_pid(pid, limits)?,
            stderr_log: None,
        })
    }

    /// Starts `node ARGS…` as `node --inspect=127.0.0.1:0 ARGS…`, its output in `dir`, and
    /// waits for its inspector.
    fn start(
        command: &[String],
        dir: &Path,
        limits: Limits,
        ready_timeout: Duration,
    ) -> anyhow::Result<App> {
        let (program, rest) = command
            .split_first()
            .context("give the app: -- node app.js")?;
        let name = Path::new(program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains("node") {
            bail!(
                "hunt starts the app with node (`-- node app.js ARGS…`), not {program:?}; for an app started another way (npm, a wrapper script), start it yourself and use --pid"
            );
        }
        let stdout = capture::create_private(&dir.join("app.stdout.log"))?;
        let stderr_log = dir.join("app.stderr.log");
        let stderr = capture::create_private(&stderr_log)?;
        let mut child = Command::new(program);
        child
            .arg("--inspect=127.0.0.1:0")
            .args(rest)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // Its own process group: Ctrl-C reaches only leakhound, which then stops the app.
        std::os::unix::process::CommandExt::process_group(&mut child, 0);
        let child = child
            .spawn()
            .with_context(|| format!("starting {}", command.join(" ")))?;
        let pid = child.id();
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
                let _ = app.stop();
                bail!(
                    "the app opened no inspector within {} s",
                    ready_timeout.as_secs()
                );
            }
            if cdp::interrupted() {
                let _ = app.stop();
                bail!("interrupted");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port the app serves on: its one listening port besides the inspector's, waited for
    /// when a URL needs it.
    fn port(&mut self, args: &HuntArgs) -> anyhow::Result<Option<u16>> {
        let needed = args
            .url
            .iter()
            .chain(&args.ready_url)
            .any(|u| u.starts_with('/'))
            || (args.url.is_empty() && args.ready_url.is_none());
        let start = Instant::now();
        loop {
            let ports: Vec<u16> = Process::new(self.pid)?
                .listening()?
                .into_iter()
                .map(|a| a.port())
                .filter(|&p| p != self.inspector.addr.port())
                .collect();
            match ports.as_slice() {
                [port] => return Ok(Some(*port)),
                [] if needed && start.elapsed() < args.ready_timeout => {}
                [] if needed => bail!(
                    "the app listens on no TCP port after {} s (only its inspector); is it a server?",
                    args.ready_timeout.as_secs()
                ),
                [] => return Ok(None),
                more if needed => bail!(
                    "the app listens on ports {more:?}: give full URLs (http://127.0.0.1:PORT/path)"
                ),
                _ => return Ok(None),
            }
            self.check_alive()?;
            if cdp::interrupted() {
                bail!("interrupted");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `url` answers with any HTTP status.
    fn wait_ready(
        &mut self,
        url: &str,
        timeout: Duration,
        allow_remote: bool,
    ) -> anyhow::Result<()> {
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
                bail!("{url} did not answer within {} s", timeout.as_secs());
            }
            if cdp::interrupted() {
                bail!("interrupted");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn memory(&self) -> anyhow::Result<procfs::Memory> {
        Ok(Process::new(self.pid)?.memory()?)
    }

    /// An error naming how the app we started ended, with the end of its stderr.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        let Some(child) = &mut self.child else {
            Process::new(self.pid)?;
            return Ok(());
        };
        if let Some(status) = child.try_wait()? {
            let log = self.stderr_log.as_deref().expect("a started app has a log");
            let text = fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "the app stopped ({status}); the end of {}:\n{}",
                log.display(),
                tail.join("\n")
            );
        }
        Ok(())
    }

    /// Stops the app we started: SIGTERM, then SIGKILL after 5 s. An app we attached to is
    /// left running. Returns how it ended.
    fn stop(&mut self) -> anyhow::Result<Option<String>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status.to_string()));
        }
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Some(status) = child.try_wait()? {
                return Ok(Some(status.to_string()));
            }
            thread::sleep(Duration::from_millis(50));
        }
        child.kill()?;
        Ok(Some(format!("{} (after SIGKILL)", child.wait()?)))
    }
}

/// The run directory, private to the user: it will hold snapshots.
fn run_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = given.map_or_else(
        || PathBuf::from(format!("leakhound-hunt-{}", unix_time())),
        Path::to_owned,
    );
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating the run directory {}", dir.display()))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))?;
    Ok(dir)
}

fn print_rounds(out: &mut impl Write, rounds: &[Round]) -> std::io::Result<()> {
    writeln!(
        out,
        "Rounds (memory after a full GC, before each snapshot):"
    )?;
    let rows: Vec<Vec<String>> = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (requests, bad) = match &r.load {
                Some(l) => (
                    output::count(l.responses),
                    output::count(l.non_2xx + l.errors),
                ),
                None => ("-".to_owned(), "-".to_owned()),
            };
            vec![
                if i == 0 {
                    "warm-up → baseline".to_owned()
                } else {
                    r.name.clone()
                },
                requests,
                bad,
                output::size(r.heap.heap_used),
                output::size(r.heap.external),
                output::size(r.memory_before_snapshot.rss),
                output::size(r.snapshot.bytes),
            ]
        })
        .collect();
    output::table(
        out,
        &[
            "round",
            "requests",
            "failed",
            "heap used",
            "external",
            "rss",
            "snapshot",
        ],
        &rows,
    )
}
