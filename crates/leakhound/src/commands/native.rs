//! `leakhound native`: run a command under the native allocation tracker and report the stacks
//! whose live memory grew, or analyse a recording again.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context;
use leakhound_live::native::{self, Recording};

use crate::cli::NativeArgs;
use crate::live::{install_interrupt_handler, unix_time};
use crate::native::{NativeJson, Request};
use crate::report::Page;

pub fn run(args: NativeArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.html {
        crate::output::check_file_path(path)?;
    }
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => record(&args)?,
    };
    let report = crate::native::analyse(Request {
        dir: &dir,
        pid: args.pid,
        checkpoints: None,
        top: args.top,
        fragmentation: true,
        flamegraph: Some(dir.join("native-growth.svg")),
        pprof: Some(dir.join("native.pb.gz")),
        sources: &crate::sources::Disk::new(args.source_maps.enabled()),
    })?;
    print(&args, &report)?;
    if let Some(path) = &args.html {
        let (section, cut) = crate::native::section(&report);
        let leak = report.verdict == native::analysis::Verdict::NativeLeak;
        let mut page = Page {
            command: "native",
            title: format!("Native memory: {}", report.dir.display()),
            verdict: crate::report::Verdict {
                level: match report.verdict {
                    native::analysis::Verdict::NativeLeak => "leak",
                    native::analysis::Verdict::None => "ok",
                    _ => "warn",
                },
                headline: crate::native::headline(report.verdict).to_owned(),
                next: crate::native::next_steps(&report),
            },
            facts: vec![("Recording".into(), report.dir.display().to_string())],
            native: Some(section),
            cut,
            commands: vec![(
                if leak {
                    "this analysis".into()
                } else {
                    "this recording, analysed again".into()
                },
                crate::report::command_line(
                    "leakhound",
                    &["native".to_owned(), report.dir.display().to_string()],
                ),
            )],
            ..Page::default()
        };
        if args.dir.is_none() {
            page.commands.insert(
                0,
                (
                    "the recording again (in a new directory)".into(),
                    crate::report::rerun(),
                ),
            );
        }
        crate::report::write_file(path, &mut page)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(if report.verdict == native::analysis::Verdict::NativeLeak {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print(args: &NativeArgs, report: &NativeJson) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        crate::native::print(&mut out, report)?;
        writeln!(
            out,
            "\nRecording: {} (native-growth.svg: flame graph of the growth; native.pb.gz: pprof profile)",
            report.dir.display()
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Runs the command under the tracker until it ends (or `--duration`, or Ctrl-C, which the
/// command receives as well: it is in our process group). Returns the recording directory.
fn record(args: &NativeArgs) -> anyhow::Result<PathBuf> {
    let (program, rest) = args
        .command
        .split_first()
        .context("give the command to run: `-- node worker.js`")?;
    native::check_program(program.as_ref())?;
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => PathBuf::from(format!("leakhound-native-{}", unix_time())),
    };
    // A recording mixes with no other: its PID directories are all read back.
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        anyhow::bail!(
            "the recording directory {} exists and is not empty; give a new one with --out (or analyse it with `leakhound native {}`)",
            dir.display(),
            dir.display()
        );
    }
    let mut recording = Recording::create(&dir, args.interval, args.exact_js)?;
    install_interrupt_handler();
    eprintln!(
        "recording native allocations of `{}` into {} (one sample per {} bytes on average){}",
        args.command.join(" "),
        dir.display(),
        args.interval,
        if args.duration.is_some() {
            ""
        } else {
            "; Ctrl-C stops it"
        }
    );
    let mut child = Command::new(program);
    if leakhound_live::procfs::is_node(program.as_ref()) {
        // node itself: every flag on its command line (NODE_OPTIONS refuses some).
        child.args(recording.node_flags());
    }
    let mut child = child
        .args(rest)
        .envs(recording.env())
        .env(
            "LEAKHOUND_NATIVE_DUMP_MS",
            args.dump_every.as_millis().to_string(),
        )
        .env("NODE_OPTIONS", Recording::node_options())
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let pid = child.id();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if args.duration.is_some_and(|d| start.elapsed() >= d) {
            // A last checkpoint first: SIGTERM ends node without running its exit handlers.
            if let Err(e) = recording.request_dump(pid, Duration::from_secs(5)) {
                eprintln!("warning: {e}");
            }
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::TERM,
            );
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "the command ended ({status}) after {:.1} s",
        start.elapsed().as_secs_f64()
    );
    recording.keep_perf_maps();
    Ok(dir)
}
