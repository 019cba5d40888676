//! `leakhound capture`: one heap snapshot, or one sampling allocation profile, of a live process.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use leakhound_live::attach::{Inspector, Limits};
use leakhound_live::capture::{self, HeapUsage};
use leakhound_live::cdp::Session;
use serde::Serialize;

use crate::cli::{CaptureArgs, TargetArgs};
use crate::live::{bar, install_interrupt_handler, unix_time};
use crate::output;

#[derive(Serialize)]
struct CaptureJson {
    inspector: String,
    node: String,
    pid: Option<u32>,
    /// We opened the inspector with SIGUSR1 and closed it again.
    opened_inspector: bool,
    heap_before: HeapUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<capture::Snapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<ProfileJson>,
}

#[derive(Serialize)]
struct ProfileJson {
    path: PathBuf,
    seconds: f64,
    #[serde(flatten)]
    summary: capture::ProfileSummary,
}

pub fn run(args: CaptureArgs) -> anyhow::Result<()> {
    install_interrupt_handler();
    if let Some(path) = &args.output {
        crate::output::check_file_path(path)?;
    }
    if args.core {
        return core(&args);
    }
    let inspector = attach(&args.target)?;
    let node = leakhound_live::cdp::is_node(&inspector.version);
    let stem = format!(
        "{}-{}-{}",
        if node { "node" } else { "v8" },
        inspector.pid.map_or("remote".to_owned(), |p| p.to_string()),
        unix_time()
    );
    let (taken, session) = match inspector.session() {
        Ok(mut session) => (
            take(&args, &mut session, inspector.pid, &stem),
            Some(session),
        ),
        Err(e) => (Err(e.into()), None),
    };
    let closed = inspector.finish(session);
    let taken = taken.map_err(|e| {
        let no_room = matches!(
            e.downcast_ref::<leakhound_live::Error>(),
            Some(leakhound_live::Error::RoomUnknown { .. } | leakhound_live::Error::NoRoom(_))
        );
        if node || !no_room {
            return e;
        }
        // What does not apply to a browser page or Deno, said where it bites.
        e.context(format!(
            "{} is not Node: leakhound attaches to its first page (a browser) or its runtime (Deno) but cannot see which process holds that heap, so the memory check cannot pass (check the renderer's memory in the browser's task manager, then give --force); SIGUSR1 and --pid discovery are Node's only",
            inspector.version
        ))
    });
    let mut doc = taken?;
    closed?;
    doc.opened_inspector = inspector.opened_by_us;
    doc.inspector = inspector.addr.to_string();
    doc.node.clone_from(&inspector.version);
    doc.pid = inspector.pid;

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    let h = &doc.heap_before;
    writeln!(
        out,
        "{} at {}{}: heap {} used of {}, external {}{}",
        doc.node,
        doc.inspector,
        doc.pid.map(|p| format!(" (PID {p})")).unwrap_or_default(),
        output::size(h.heap_used),
        output::size(h.heap_total),
        output::size(h.external),
        // Only Node says its RSS (`process.memoryUsage()`).
        if node {
            format!(", rss {}", output::size(h.rss))
        } else {
            String::new()
        },
    )?;
    if let Some(s) = &doc.snapshot {
        writeln!(
            out,
            "wrote {} ({}) in {:.1} s",
            s.path.display(),
            output::size(s.bytes),
            s.seconds
        )?;
    }
    if let Some(p) = &doc.profile {
        writeln!(
            out,
            "wrote {} ({:.0} s of sampling; {} still alive, sampled)",
            p.path.display(),
            p.seconds,
            output::size(p.summary.total_bytes)
        )?;
        print_stacks(&mut out, &p.summary)?;
    }
    if doc.opened_inspector {
        writeln!(out, "closed the inspector leakhound opened")?;
    }
    Ok(())
}

fn take(
    args: &CaptureArgs,
    session: &mut Session,
    pid: Option<u32>,
    stem: &str,
) -> anyhow::Result<CaptureJson> {
    let heap_before = capture::heap_usage(session)?;
    let mut doc = CaptureJson {
        inspector: String::new(),
        node: String::new(),
        pid: None,
        opened_inspector: false,
        heap_before,
        snapshot: None,
        profile: None,
    };
    if let Some(duration) = args.sample_allocations {
        let path = output_path(&args.output, stem, "heapprofile");
        let bar = bar("sampling allocations", Some(duration));
        let profile = capture::sample_allocations(session, duration, args.sampling_interval, &bar)?;
        bar.finish_and_clear();
        let mut file = capture::create_private(&path)?;
        file.write_all(profile.get().as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        doc.profile = Some(ProfileJson {
            summary: capture::summarize_profile(profile.get(), 10)?,
            path,
            seconds: duration.as_secs_f64(),
        });
    } else {
        let path = output_path(&args.output, stem, "heapsnapshot");
        let headroom = capture::check_room(session, pid, 0, args.force)?;
        if let Some(warning) = headroom.warning() {
            eprintln!("warning: {warning}");
        }
        let bar = bar("heap snapshot", None);
        let snapshot = capture::snapshot(session, headroom, &path, !args.no_gc, &bar)?;
        bar.finish_and_clear();
        if !args.no_gc && !snapshot.gc_done {
            eprintln!(
                "warning: the app's event loop was busy: no separate GC ran before the snapshot (the snapshot collected garbage itself)"
            );
        }
        doc.snapshot = Some(snapshot);
    }
    Ok(doc)
}

pub fn print_stacks(
    out: &mut impl Write,
    summary: &capture::ProfileSummary,
) -> std::io::Result<()> {
    writeln!(out, "\nTop allocation sites of live memory:")?;
    for s in &summary.stacks {
        let share = 100.0 * s.bytes as f64 / summary.total_bytes.max(1) as f64;
        let mut frames = s.frames.iter();
        writeln!(
            out,
            "{:>10} {share:>5.1}%  {}",
            output::size(s.bytes),
            frames.next().map_or("(root)", String::as_str)
        )?;
        for f in frames.take(5) {
            writeln!(out, "{:18}← {f}", "")?;
        }
    }
    Ok(())
}

/// The inspector of `--pid` or `--inspect`.
pub fn attach(target: &TargetArgs) -> anyhow::Result<Inspector> {
    let limits = Limits {
        answer: target.timeout,
        open: target.open_timeout,
    };
    Ok(match (&target.pid, &target.inspect) {
        (Some(pid), _) => Inspector::of_pid(*pid, limits)?,
        // clap requires one of the two.
        (None, addr) => Inspector::at(addr.as_deref().unwrap_or_default(), limits)?,
    })
}

fn output_path(given: &Option<PathBuf>, stem: &str, extension: &str) -> PathBuf {
    given
        .clone()
        .unwrap_or_else(|| Path::new(&format!("{stem}.{extension}")).to_owned())
}

/// How long gcore may take: about 2 s per GB here, so this is room for a very big process on a
/// slow disk; the process is resumed if it runs out.
const CORE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// `capture --pid PID --core`: a core dump with gcore, its cost said before and after.
fn core(args: &CaptureArgs) -> anyhow::Result<()> {
    use leakhound_live::gcore;
    let pid = args.target.pid.expect("clap requires --pid with --core");
    let out = output_path(&args.output, &format!("node-{pid}-{}", unix_time()), "core");
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let plan = gcore::plan(pid, dir)?;
    if plan.estimate > plan.free_disk && !args.force {
        return Err(leakhound_live::Error::NoDiskRoom {
            need: output::size(plan.estimate),
            free: output::size(plan.free_disk),
            dir: dir.to_owned(),
        }
        .into());
    }
    eprintln!(
        "taking a core of PID {pid} with gcore: about {} to write ({} free there); the process is stopped while it is written",
        output::size(plan.estimate),
        output::size(plan.free_disk)
    );
    let taken = gcore::take(pid, &out, CORE_LIMIT, &leakhound_live::cdp::interrupted)?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        #[derive(Serialize)]
        struct CoreJson<'a> {
            pid: u32,
            estimate: u64,
            #[serde(flatten)]
            core: &'a gcore::Taken,
        }
        let doc = CoreJson {
            pid,
            estimate: plan.estimate,
            core: &taken,
        };
        serde_json::to_writer_pretty(&mut stdout, &doc)?;
        writeln!(stdout)?;
    } else {
        writeln!(
            stdout,
            "wrote {} ({}, {} on disk) in {:.1} s; PID {pid} was stopped that long and goes on{}",
            taken.path.display(),
            output::size(taken.bytes),
            output::size(taken.disk_bytes),
            taken.seconds,
            if taken.resumed {
                " (leakhound found it stopped afterwards and resumed it)"
            } else {
                ""
            }
        )?;
        writeln!(stdout, "next: leakhound core {}", taken.path.display())?;
    }
    Ok(())
}
