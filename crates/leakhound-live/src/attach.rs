//! Finding a process's inspector, or opening it with SIGUSR1, and closing what we opened.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::Error;
use crate::cdp::{self, Session};
use crate::procfs::{self, Process};

/// Time limits of attaching.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For each answer from the inspector.
    pub answer: Duration,
    /// For the port to open after SIGUSR1.
    pub open: Duration,
}

/// How long a port may take to say whether it is a Node inspector: the ports we probe are on
/// this machine, and a silent one must not hold up the search.
const PROBE: Duration = Duration::from_millis(500);

/// SIGUSR1's number on Linux.
const SIGUSR1: u32 = 10;

/// A reachable inspector.
#[derive(Debug, Clone)]
pub struct Inspector {
    pub addr: SocketAddr,
    /// `/json/version`'s `Browser`: `node.js/v20.20.2`, `HeadlessChrome/148.0…`, `Deno/2.1.4`.
    pub version: String,
    pub pid: Option<u32>,
    /// We opened it with SIGUSR1, so we close it when done.
    pub opened_by_us: bool,
    pub limits: Limits,
}

impl Inspector {
    /// The inspector at `HOST:PORT`, a bare `PORT` (on 127.0.0.1), or the `ws://HOST:PORT/…`
    /// address Node prints.
    pub fn at(address: &str, limits: Limits) -> Result<Inspector, Error> {
        let bad = |why: String| Error::BadAddress {
            address: address.to_owned(),
            why,
        };
        let host_port = address
            .strip_prefix("ws://")
            .map_or(address, |rest| rest.split('/').next().unwrap_or(rest));
        let host_port = if host_port.parse::<u16>().is_ok() {
            format!("127.0.0.1:{host_port}")
        } else {
            host_port.to_owned()
        };
        let addrs: Vec<SocketAddr> = host_port
            .to_socket_addrs()
            .map_err(|e| bad(e.to_string()))?
            .collect();
        let Some(&first) = addrs.first() else {
            return Err(bad("it resolves to no address".into()));
        };
        for &addr in &addrs {
            // Any V8 inspector: Node, a browser (its pages), Deno.
            if let Some(version) = cdp::probe_any(addr, limits.answer) {
                // A local Node inspector's process, when we can see it (for the memory check,
                // which also asks the app for its PID). A browser's port is its browser
                // process's, not the renderer's that holds a page's heap.
                let pid = (addr.ip().is_loopback() && cdp::is_node(&version))
                    .then(|| procfs::listener_of(addr.port()).flatten())
                    .flatten()
                    .map(|(pid, _)| pid)
                    .filter(|&pid| {
                        Process::new(pid)
                            .and_then(|p| p.exe())
                            .is_ok_and(|exe| procfs::is_node(&exe))
                    });
                return Ok(Inspector {
                    addr,
                    version,
                    pid,
                    opened_by_us: false,
                    limits,
                });
            }
        }
        // Say why: nothing listens, or something that is not an inspector does.
        cdp::targets(first, limits.answer)?;
        Err(Error::Discovery {
            addr: first,
            problem: "lists targets but answers no usable /json/version (no Browser and Protocol-Version fields): not a V8 inspector leakhound knows".into(),
        })
    }

    /// The inspector of process `pid`: the one it has open, or one it opens on SIGUSR1.
    pub fn of_pid(pid: u32, limits: Limits) -> Result<Inspector, Error> {
        let process = Process::new(pid)?;
        let exe = process.exe()?;
        if !procfs::is_node(&exe) {
            return Err(Error::NotNode {
                pid,
                exe: exe.display().to_string(),
            });
        }
        if !process.shares_our_netns()? {
            return Err(Error::OtherNetns { pid });
        }
        let flags = node_flags(&process)?;
        let port = inspect_port(&flags);
        let before: BTreeSet<SocketAddr> = process.listening()?.into_iter().collect();
        if let Ok(open) = Inspector::of_open_port(pid, limits) {
            return Ok(open);
        }

        refuse_disabled(pid, &flags)?;
        // Without Node's handler, SIGUSR1 would kill the process.
        if !process.catches(SIGUSR1)? {
            return Err(Error::NoSignalHandler {
                pid,
                exe: exe.display().to_string(),
            });
        }
        if port != 0
            && before.iter().all(|a| a.port() != port)
            && let Some(owner) = procfs::listener_of(port)
        {
            return Err(Error::PortTaken { pid, port, owner });
        }

        rustix::process::kill_process(pid_of(pid)?, Signal::USR1).map_err(|e| match e {
            rustix::io::Errno::SRCH => Error::NoSuchProcess(pid),
            rustix::io::Errno::PERM => Error::PermissionDenied {
                pid,
                what: "send SIGUSR1 (which opens the inspector)".into(),
            },
            e => Error::Io {
                path: process.path(""),
                source: e.into(),
            },
        })?;
        // Each new port is probed once: a probe is a request to whatever listens there.
        let mut probed = BTreeSet::new();
        let start = Instant::now();
        while start.elapsed() < limits.open {
            if cdp::interrupted() {
                return Err(Error::Interrupted);
            }
            thread::sleep(Duration::from_millis(50));
            let now: BTreeSet<SocketAddr> = Process::new(pid)?.listening()?.into_iter().collect();
            let new: BTreeSet<SocketAddr> = now.difference(&before).copied().collect();
            if let Some(found) = find(&new, port, &mut probed, limits) {
                return Ok(Inspector {
                    pid: Some(pid),
                    opened_by_us: true,
                    ..found
                });
            }
        }
        // A port taken after our first look.
        if port != 0
            && let Some(owner) = procfs::listener_of(port)
            && owner.as_ref().is_none_or(|(p, _)| *p != pid)
        {
            return Err(Error::PortTaken { pid, port, owner });
        }
        Err(Error::NoInspector {
            pid,
            waited: limits.open,
        })
    }

    /// The inspector process `pid` already has open, if any (no SIGUSR1). Only the port its
    /// `--inspect*` flags name (9229 by default) is probed, all its ports only for port 0: a
    /// probe is an HTTP request to whatever listens there.
    pub fn of_open_port(pid: u32, limits: Limits) -> Result<Inspector, Error> {
        let process = Process::new(pid)?;
        let port = inspect_port(&node_flags(&process)?);
        let open: BTreeSet<SocketAddr> = process
            .listening()?
            .into_iter()
            .filter(|a| port == 0 || a.port() == port)
            .collect();
        find(&open, port, &mut BTreeSet::new(), limits)
            .map(|found| Inspector {
                pid: Some(pid),
                ..found
            })
            .ok_or(Error::NoInspector {
                pid,
                waited: Duration::ZERO,
            })
    }

    /// A new session.
    pub fn session(&self) -> Result<Session, Error> {
        Session::connect(self.addr, &self.version, self.limits.answer)
    }

    /// Ends `session` (if any). If we opened the inspector, closes it first
    /// (`inspector.close()` in the app; through a new session if `session` is gone), so no
    /// debug port stays open after us. Works after Ctrl-C too. An app that has finished is
    /// only disconnected from: it exits then, with its port.
    pub fn finish(&self, session: Option<Session>) -> Result<(), Error> {
        if !self.opened_by_us {
            if let Some(s) = session {
                s.close();
            }
            return Ok(());
        }
        let mut session = match session {
            Some(s) => s,
            None => self.session().map_err(|e| self.stays_open(&e))?,
        };
        if session.app_finished {
            session.close();
            return Ok(());
        }
        session.start_closing();
        let expression = "(process.getBuiltinModule ? process.getBuiltinModule('inspector') : require('inspector')).close()";
        let params = serde_json::json!({
            "expression": expression,
            "includeCommandLineAPI": true,
        })
        .to_string();
        // Chunks of a snapshot cut short by Ctrl-C arrive first: allow for them.
        let idle = session.timeout.max(crate::capture::SNAPSHOT_IDLE);
        let closed = session.call_with("Runtime.evaluate", Some(&params), idle, &mut |_| Ok(()));
        match closed {
            // Node answers by closing the connection, with the server.
            Err(Error::Closed { .. }) if cdp::probe(self.addr, PROBE).is_none() => Ok(()),
            Ok(_) => {
                session.close();
                Err(self.stays_open(&"it answered instead of closing"))
            }
            Err(e) => Err(self.stays_open(&e)),
        }
    }

    fn stays_open(&self, why: &dyn std::fmt::Display) -> Error {
        Error::StaysOpen {
            addr: self.addr,
            pid: self.pid,
            why: why.to_string(),
        }
    }
}

/// The first address in `addrs` where a Node inspector answers, trying `port` first and each
/// address once (`probed` remembers): probing sends a request to whatever listens there.
fn find(
    addrs: &BTreeSet<SocketAddr>,
    port: u16,
    probed: &mut BTreeSet<SocketAddr>,
    limits: Limits,
) -> Option<Inspector> {
    let mut order: Vec<SocketAddr> = addrs.iter().copied().collect();
    order.sort_by_key(|a| a.port() != port);
    order.into_iter().find_map(|a| {
        if !probed.insert(a) {
            return None;
        }
        let addr = reachable(a);
        cdp::probe(addr, PROBE).map(|version| Inspector {
            addr,
            version,
            pid: None,
            opened_by_us: false,
            limits,
        })
    })
}

/// A listening address as a client reaches it (`0.0.0.0` → `127.0.0.1`).
pub fn reachable(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), a.port())
        }
        _ => a,
    }
}

fn pid_of(pid: u32) -> Result<Pid, Error> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(Error::NoSuchProcess(pid))
}

/// Node's options: its command-line flags, then those of `NODE_OPTIONS`.
fn node_flags(p: &Process) -> Result<Vec<String>, Error> {
    let mut flags: Vec<String> = p
        .cmdline()?
        .into_iter()
        .skip(1)
        .take_while(|a| a.starts_with('-'))
        .collect();
    // `environ` may be unreadable while cmdline is not; the flags there are only a diagnosis.
    if let Ok(Some(options)) = p.env_var("NODE_OPTIONS") {
        flags.extend(options.split_whitespace().map(str::to_owned));
    }
    Ok(flags)
}

fn refuse_disabled(pid: u32, flags: &[String]) -> Result<(), Error> {
    for f in flags {
        let why = match f.as_str() {
            "--disable-sigusr1" => "turns off opening the inspector with SIGUSR1",
            "--permission" | "--experimental-permission" => {
                "turns on the permission model, under which SIGUSR1 does not open the inspector"
            }
            _ => continue,
        };
        return Err(Error::InspectorDisabled {
            pid,
            flag: f.clone(),
            why,
        });
    }
    Ok(())
}

/// The inspector's port: from `--inspect-port=[host:]port` (or `--debug-port`), or
/// `--inspect[-brk|-wait]=[host:]port`, the last one given; else 9229.
fn inspect_port(flags: &[String]) -> u16 {
    flags
        .iter()
        .rev()
        .find_map(|f| {
            let value = [
                "--inspect-port=",
                "--debug-port=",
                "--inspect=",
                "--inspect-brk=",
                "--inspect-wait=",
            ]
            .iter()
            .find_map(|p| f.strip_prefix(p))?;
            value.rsplit(':').next()?.parse().ok()
        })
        .unwrap_or(9229)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn port_from_flags() {
        assert_eq!(inspect_port(&flags(&[])), 9229);
        assert_eq!(inspect_port(&flags(&["--inspect-port=0"])), 0);
        assert_eq!(
            inspect_port(&flags(&["--inspect-port=127.0.0.1:9333"])),
            9333
        );
        assert_eq!(
            inspect_port(&flags(&["--debug-port=9400", "--inspect-port=9401"])),
            9401
        );
    }

    #[test]
    fn disabled_by_flags() {
        assert!(refuse_disabled(1, &flags(&["--max-old-space-size=100"])).is_ok());
        let e = refuse_disabled(1, &flags(&["--disable-sigusr1"])).unwrap_err();
        assert!(e.to_string().contains("--disable-sigusr1"), "{e}");
    }
}
