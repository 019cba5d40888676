//! A core dump of a live process, for when its inspector cannot answer (a main thread stuck in
//! native code): gdb's `gcore`, which stops the process while it copies its memory out and
//! then lets it go on.
//!
//! What it costs is said before and after: the file is about the process's anonymous address
//! space (V8 reserves far more than it uses, and gdb writes the reservations as zeros), the
//! process is stopped while it is written (about 2 s per GB here), and the disk must have the
//! room, which is checked first. The file is written 0600 (a core holds everything the process
//! held: tokens, requests, keys). The process is never left stopped: whatever happens to
//! `gcore` (an error, a time limit, Ctrl-C), leakhound sends SIGCONT to a process it finds
//! stopped afterwards.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Error;
use crate::procfs::Process;

/// What a core of a process will cost on disk, and the room there is.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub pid: u32,
    /// Bytes gcore will write: the anonymous and writable mappings (gdb leaves read-only file
    /// mappings out, and writes V8's PROT_NONE reservations as zeros).
    pub estimate: u64,
    /// Free bytes on the file system of the output directory.
    pub free_disk: u64,
}

/// A core written.
#[derive(Debug, Clone, Serialize)]
pub struct Taken {
    pub path: PathBuf,
    /// Its size, and the bytes it takes on disk (holes in sparse files take none).
    pub bytes: u64,
    pub disk_bytes: u64,
    /// How long gcore ran; the process was stopped for about as long.
    pub seconds: f64,
    /// leakhound found the process stopped after gcore and sent it SIGCONT.
    pub resumed: bool,
}

/// Measures what a core of `pid` written into `dir` will take.
pub fn plan(pid: u32, dir: &Path) -> Result<Plan, Error> {
    let process = Process::new(pid)?;
    let maps = std::fs::read_to_string(process.path("maps")).map_err(|source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            Error::PermissionDenied {
                pid,
                what: "read the memory map".into(),
            }
        } else {
            Error::Io {
                path: process.path("maps"),
                source,
            }
        }
    })?;
    let estimate = maps.lines().filter_map(written_bytes).sum();
    let stat = rustix::fs::statvfs(dir).map_err(|e| Error::Io {
        path: dir.to_owned(),
        source: e.into(),
    })?;
    Ok(Plan {
        pid,
        estimate,
        free_disk: stat.f_bavail.saturating_mul(stat.f_frsize),
    })
}

/// The bytes gcore writes for one line of `/proc/PID/maps`: anonymous mappings (whatever their
/// protection) and writable file mappings; read-only file mappings stay in their files.
fn written_bytes(line: &str) -> Option<u64> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    let inode = fields.nth(2)?;
    let size = u64::from_str_radix(end, 16).ok()? - u64::from_str_radix(start, 16).ok()?;
    let anonymous = inode == "0";
    (anonymous || perms.as_bytes().get(1) == Some(&b'w')).then_some(size)
}

/// Writes a core of `pid` to `out` with gcore, within `limit`; `interrupted` is polled (Ctrl-C).
pub fn take(
    pid: u32,
    out: &Path,
    limit: Duration,
    interrupted: &dyn Fn() -> bool,
) -> Result<Taken, Error> {
    Process::new(pid)?;
    // A process someone else stopped stays as it was found.
    let stopped_before = is_stopped(pid);
    // gcore writes PREFIX.PID; a temporary prefix beside `out`, renamed when complete, so a
    // partial core never carries the final name.
    let prefix = out.with_extension(format!(
        "{}part",
        out.extension()
            .map(|e| format!("{}.", e.to_string_lossy()))
            .unwrap_or_default()
    ));
    let written = PathBuf::from(format!("{}.{pid}", prefix.display()));
    let mut command = Command::new("gcore");
    command
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the child only makes async-signal-safe system calls: its
    // own process group (so Ctrl-C reaches leakhound, which then stops it cleanly) and a umask
    // that makes the core private.
    unsafe {
        command.pre_exec(|| {
            rustix::process::setsid()?;
            rustix::process::umask(rustix::fs::Mode::from_bits_truncate(0o077));
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NoGcore
        } else {
            Error::Start {
                command: "gcore".into(),
                source,
            }
        }
    })?;
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stopped_early = loop {
        match child.try_wait() {
            Ok(Some(_)) => break None,
            Ok(None) => {}
            Err(_) => break Some(Stop::Lost),
        }
        if interrupted() {
            break Some(Stop::Interrupted);
        }
        if started.elapsed() > limit {
            break Some(Stop::Limit);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if stopped_early.is_some() {
        // gdb detaches from a process when it dies; the check below resumes it if needed.
        if let Some(group) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = child.wait();
    }
    let status = child.wait().ok();
    let seconds = started.elapsed().as_secs_f64();
    let resumed = !stopped_before && resume_if_stopped(pid);
    let messages = reader.join().unwrap_or_default();
    let complete = stopped_early.is_none()
        && status.is_some_and(|s| s.success())
        && std::fs::metadata(&written).is_ok_and(|m| m.len() > 0);
    if !complete {
        let _ = std::fs::remove_file(&written);
        let why = match stopped_early {
            Some(Stop::Interrupted) => return Err(Error::Interrupted),
            Some(Stop::Limit) => format!("gcore did not finish within {} s", limit.as_secs()),
            Some(Stop::Lost) => "gcore could not be waited for".to_owned(),
            None => gdb_says(&messages),
        };
        return Err(Error::CoreFailed { pid, why });
    }
    std::fs::rename(&written, out).map_err(|source| Error::Io {
        path: out.to_owned(),
        source,
    })?;
    let meta = std::fs::metadata(out).map_err(|source| Error::Io {
        path: out.to_owned(),
        source,
    })?;
    Ok(Taken {
        path: out.to_owned(),
        bytes: meta.len(),
        disk_bytes: std::os::unix::fs::MetadataExt::blocks(&meta) * 512,
        seconds,
        resumed,
    })
}

/// Why gcore was stopped before it ended.
enum Stop {
    Interrupted,
    Limit,
    /// Waiting for it failed.
    Lost,
}

/// gdb's reason, in a line or two, with what to do for the usual one.
fn gdb_says(messages: &str) -> String {
    let lines: Vec<&str> = messages
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if messages.contains("ptrace: Operation not permitted") {
        return "the kernel refused gdb's ptrace: run leakhound as root or as the process's user \
                with ptrace allowed (`sysctl kernel.yama.ptrace_scope` must be 0 for a non-root \
                user; a container needs CAP_SYS_PTRACE)"
            .into();
    }
    match lines.len() {
        0 => "gcore failed without a message".into(),
        n => lines[n.saturating_sub(2)..].join("; "),
    }
}

/// Whether `pid` is stopped (`T`), or stopped under a tracer (`t`).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
        })
        .is_some_and(|state| state == "T" || state == "t")
}

/// Sends SIGCONT to `pid` if it is stopped; whether it was.
fn resume_if_stopped(pid: u32) -> bool {
    if is_stopped(pid)
        && let Some(p) = rustix::process::Pid::from_raw(pid as i32)
    {
        return rustix::process::kill_process(p, rustix::process::Signal::CONT).is_ok();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::written_bytes;

    #[test]
    fn counts_what_gcore_writes() {
        // Anonymous, also PROT_NONE (V8's reservations), and writable file mappings count.
        assert_eq!(
            written_bytes("7f0000000000-7f0000040000 ---p 00000000 00:00 0 "),
            Some(0x40000)
        );
        assert_eq!(
            written_bytes("00400000-00401000 rw-p 00000000 08:01 1234 /usr/bin/node"),
            Some(0x1000)
        );
        assert_eq!(
            written_bytes("7ffd0000-7ffd2000 rw-p 00000000 00:00 0 [stack]"),
            Some(0x2000)
        );
        // Read-only file mappings stay in their files.
        assert_eq!(
            written_bytes("00400000-00800000 r-xp 00000000 08:01 1234 /usr/bin/node"),
            None
        );
        assert_eq!(written_bytes("garbage"), None);
    }
}
