//! The bits of `/proc` we read about a target process: who it is, which TCP ports it listens on,
//! and its memory counters.
//!
//! Hand-written rather than the `procfs` crate: we need four small files, and the socket table
//! has to be joined with `/proc/PID/fd` by inode, which is a few lines either way.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::Error;

/// A process seen through `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
}

impl Process {
    /// The process, if it exists (a zombie counts as gone).
    pub fn new(pid: u32) -> Result<Process, Error> {
        let p = Process { pid };
        match fs::read_to_string(p.path("stat")) {
            Ok(stat) if stat_state(&stat) == Some('Z') => Err(Error::NoSuchProcess(pid)),
            Ok(_) => Ok(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoSuchProcess(pid)),
            Err(e) => Err(p.io_error("stat", e)),
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        Path::new("/proc").join(self.pid.to_string()).join(file)
    }

    fn io_error(&self, file: &str, e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::NotFound => Error::NoSuchProcess(self.pid),
            io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                pid: self.pid,
                what: format!("read {}", self.path(file).display()),
            },
            _ => Error::Io {
                path: self.path(file),
                source: e,
            },
        }
    }

    /// The executable, as `/proc/PID/exe` points to it.
    pub fn exe(&self) -> Result<PathBuf, Error> {
        fs::read_link(self.path("exe")).map_err(|e| self.io_error("exe", e))
    }

    /// The command line, one string per argument.
    pub fn cmdline(&self) -> Result<Vec<String>, Error> {
        let raw = fs::read(self.path("cmdline")).map_err(|e| self.io_error("cmdline", e))?;
        Ok(split_nul(&raw))
    }

    /// One variable of the process's initial environment (`NODE_OPTIONS`).
    pub fn env_var(&self, name: &str) -> Result<Option<String>, Error> {
        let raw = fs::read(self.path("environ")).map_err(|e| self.io_error("environ", e))?;
        Ok(split_nul(&raw).into_iter().find_map(|kv| {
            kv.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_owned)
        }))
    }

    /// Whether it lives in our network namespace (a container's loopback is not ours).
    pub fn shares_our_netns(&self) -> Result<bool, Error> {
        let theirs = fs::read_link(self.path("ns/net")).map_err(|e| self.io_error("ns/net", e))?;
        let ours = fs::read_link("/proc/self/ns/net").map_err(|e| Error::Io {
            path: "/proc/self/ns/net".into(),
            source: e,
        })?;
        Ok(theirs == ours)
    }

    /// The TCP addresses it listens on, found by joining the inodes of its socket descriptors
    /// with the listening rows of `/proc/PID/net/tcp` and `tcp6` (its own network namespace).
    pub fn listening(&self) -> Result<Vec<SocketAddr>, Error> {
        let inodes = self.socket_inodes()?;
        let mut out = Vec::new();
        for file in ["net/tcp", "net/tcp6"] {
            let text = match fs::read_to_string(self.path(file)) {
                Ok(t) => t,
                // No IPv6 in this kernel.
                Err(e) if e.kind() == io::ErrorKind::NotFound && file == "net/tcp6" => continue,
                Err(e) => return Err(self.io_error(file, e)),
            };
            out.extend(
                listeners(&text)
                    .into_iter()
                    .filter(|(_, inode)| inodes.contains(inode))
                    .map(|(addr, _)| addr),
            );
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn socket_inodes(&self) -> Result<Vec<u64>, Error> {
        let dir = fs::read_dir(self.path("fd")).map_err(|e| self.io_error("fd", e))?;
        let mut inodes = Vec::new();
        for entry in dir.flatten() {
            // A descriptor closed between listing and reading is simply gone.
            if let Ok(target) = fs::read_link(entry.path())
                && let Some(inode) = socket_inode(&target.to_string_lossy())
            {
                inodes.push(inode);
            }
        }
        inodes.sort_unstable();
        Ok(inodes)
    }

    /// Whether the process has a handler for signal `signal` (`SigCgt` in `/proc/PID/status`).
    /// A process without one is killed by SIGUSR1: Node installs its handler at startup.
    pub fn catches(&self, signal: u32) -> Result<bool, Error> {
        let text =
            fs::read_to_string(self.path("status")).map_err(|e| self.io_error("status", e))?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| (1..=64).contains(&signal) && mask & (1 << (signal - 1)) != 0))
    }

    /// Memory counters from `/proc/PID/status`.
    /// A zombie (it exited, its parent has not reaped it) counts as gone.
    pub fn memory(&self) -> Result<Memory, Error> {
        let text =
            fs::read_to_string(self.path("status")).map_err(|e| self.io_error("status", e))?;
        let state = text
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .and_then(|s| s.trim_start().chars().next());
        if matches!(state, Some('Z' | 'X')) {
            return Err(Error::NoSuchProcess(self.pid));
        }
        Ok(Memory::parse(&text))
    }
}

/// Whether an executable (or a program named on a command line) is Node: `node`, `nodejs`,
/// `node20`… The check is by name, as for `pgrep node`; a process that passes it must still
/// handle SIGUSR1 before it is sent one.
pub fn is_node(program: &Path) -> bool {
    program
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("node"))
}

/// Whether something in our network namespace listens on `port`: `Some(owner)`, where the owner
/// (PID and command line) is `None` when it is a process we cannot see.
pub fn listener_of(port: u16) -> Option<Option<(u32, String)>> {
    let mut wanted = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(file) {
            wanted.extend(
                listeners(&text)
                    .into_iter()
                    .filter(|(a, _)| a.port() == port)
                    .map(|(_, inode)| inode),
            );
        }
    }
    if wanted.is_empty() {
        return None;
    }
    let Ok(dir) = fs::read_dir("/proc") else {
        return Some(None);
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let p = Process { pid };
        let Ok(inodes) = p.socket_inodes() else {
            continue;
        };
        if wanted.iter().any(|i| inodes.binary_search(i).is_ok()) {
            let cmd = p.cmdline().unwrap_or_default().join(" ");
            return Some(Some((pid, cmd)));
        }
    }
    Some(None)
}

/// Memory counters of `/proc/PID/status`, in bytes (0 when absent, as for kernel threads).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    pub rss: u64,
    pub rss_peak: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub swap: u64,
}

impl Memory {
    /// Parses the `Vm*`/`Rss*` lines (`VmRSS:   163128 kB`); other lines are ignored.
    pub fn parse(text: &str) -> Memory {
        let mut m = Memory::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let slot = match key {
                "VmRSS" => &mut m.rss,
                "VmHWM" => &mut m.rss_peak,
                "RssAnon" => &mut m.rss_anon,
                "RssFile" => &mut m.rss_file,
                "VmSwap" => &mut m.swap,
                _ => continue,
            };
            *slot = kb_value(value).unwrap_or(0);
        }
        m
    }
}

fn split_nul(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A `/proc` figure in kB (`  163128 kB`), in bytes.
pub fn kb_value(text: &str) -> Option<u64> {
    let kb: u64 = text.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// How process `pid` ended, if it is a zombie (its parent has not collected it yet): `signal 9
/// (SIGKILL)` or `exit 1`, from the exit code in `/proc/PID/stat`. `None` while it runs, or once
/// it is gone.
pub fn ending(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(Process { pid }.path("stat")).ok()?;
    if stat_state(&stat) != Some('Z') {
        return None;
    }
    // Field 52, the 50th after the state (field 3).
    let code: i32 = stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(49)?
        .parse()
        .ok()?;
    // The kernel shows 0 to readers without ptrace access to the process: unknown, not `exit 0`.
    Some(match code & 0x7f {
        0 if code == 0 => return None,
        0 => format!("exit {}", (code >> 8) & 0xff),
        9 => "signal 9 (SIGKILL)".to_owned(),
        s => format!("signal {s}"),
    })
}

fn stat_state(stat: &str) -> Option<char> {
    // `pid (comm) S …`: comm may hold spaces and parentheses, so look after the last ')'.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Listening rows (`st` 0A) of a `/proc/net/tcp{,6}` table: local address and socket inode.
/// Malformed rows are skipped.
pub fn listeners(table: &str) -> Vec<(SocketAddr, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(3) != Some(&"0A") {
                return None;
            }
            let addr = parse_addr(cols.get(1)?)?;
            let inode = cols.get(9)?.parse().ok()?;
            Some((addr, inode))
        })
        .collect()
}

/// `0100007F:2405` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host (little-endian)
/// byte order, then the port in big-endian hex.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::swap_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let w = word(&ip[i * 8..i * 8 + 8])?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rows from a real `node --inspect=127.0.0.1:9229` also listening on [::]:8081, plus a
    // connected row, an IPv6 loopback row and a malformed one.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:240D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 190420 1 0000000050cd1763 100 0 0 10 0
   1: 0100007F:240D 0100007F:D1F2 01 00000000:00000000 00:00000000 00000000     0        0 190499 1 0000000000000000 20 4 30 10 -1
   2: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 189282 1 000000005f1cd589 100 0 0 10 0
   1: 00000000000000000000000001000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 412401 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn socket_tables() {
        assert_eq!(
            listeners(TCP),
            vec![("127.0.0.1:9229".parse().unwrap(), 190420)]
        );
        assert_eq!(
            listeners(TCP6),
            vec![
                ("[::]:8081".parse().unwrap(), 189282),
                ("[::1]:8082".parse().unwrap(), 412401)
            ]
        );
    }

    #[test]
    fn status_counters() {
        let m = Memory::parse(
            "Name:\tnode\nVmHWM:\t  200000 kB\nVmRSS:\t  163128 kB\nRssAnon:\t  123768 kB\nRssFile:\t   39360 kB\nodd line\nVmSwap:\tx kB\n",
        );
        assert_eq!(m.rss, 163128 * 1024);
        assert_eq!(m.rss_peak, 200000 * 1024);
        assert_eq!(m.rss_anon, 123768 * 1024);
        assert_eq!(m.rss_file, 39360 * 1024);
        assert_eq!(m.swap, 0);
    }

    #[test]
    fn status_of_a_real_node() {
        // `/proc/PID/status` of an idle node 20 process.
        let m = Memory::parse(include_str!("../tests/smaps/node.status"));
        assert_eq!(m.rss, 40388 * 1024);
        assert_eq!(m.rss_peak, 40388 * 1024);
        assert_eq!(m.rss_anon, 6320 * 1024);
        assert_eq!(m.rss_file, 34068 * 1024);
        assert_eq!(m.swap, 0);
    }

    #[test]
    fn stat_with_odd_comm() {
        assert_eq!(stat_state("42 (a) b (c)) S 1 2"), Some('S'));
        assert_eq!(stat_state("42 (node) Z 1"), Some('Z'));
    }
}
