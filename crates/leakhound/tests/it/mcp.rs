//! `leakhound mcp` driven by a test client over stdio, as an assistant's client drives it:
//! the handshake and version negotiation, the tool list, calls on a snapshot captured from a
//! real node process, a follow-up answered from the cache, paging, and errors.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

use crate::conformance::LEAKHOUND;
use crate::live::{App, dir};

/// A session with `leakhound mcp`, killed when dropped.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl Session {
    /// Starts the server and completes the handshake, asking for `version`; the answer's
    /// `result`.
    fn start(version: &str) -> (Session, Value) {
        let mut child = Command::new(LEAKHOUND)
            .args(["mcp", "--cache-mb", "512"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("leakhound mcp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut session = Session {
            child,
            stdin: Some(stdin),
            lines,
            next_id: 1,
        };
        let init = session.request(
            "initialize",
            json!({
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": { "name": "leakhound-test", "version": "1" }
            }),
        );
        session.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        (session, init)
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("the session is open");
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a request and waits for its response (every line on stdout must be JSON-RPC);
    /// the `result`, or the whole message when it is an error.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no answer to {method} within 120 s"));
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a line that is not JSON ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == json!(id) {
                return if message.get("error").is_some() {
                    message
                } else {
                    message["result"].clone()
                };
            }
        }
    }

    /// Calls a tool; (its structured answer, or its error text; whether it is an error).
    fn call(&mut self, tool: &str, arguments: Value) -> (Value, bool) {
        let result = self.request(
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
        );
        let error = result["isError"] == true;
        if error {
            (result["content"][0]["text"].clone(), true)
        } else {
            (result["structuredContent"].clone(), false)
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_mcp_session_answers_from_loaded_snapshots() {
    let dir = dir("mcp");
    let (mut mcp, init) = Session::start("2025-06-18");
    assert_eq!(init["protocolVersion"], "2025-06-18", "{init}");
    assert_eq!(init["serverInfo"]["name"], "leakhound", "{init}");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");

    let list = mcp.request("tools/list", json!({}));
    let mut names: Vec<&str> = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "capture",
            "core",
            "diff",
            "findings",
            "hunt",
            "leaks",
            "maps",
            "retainers",
            "show",
            "stats",
            "summary",
            "watch_sample"
        ]
    );
    let leaks_tool = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "leaks")
        .unwrap();
    assert_eq!(
        leaks_tool["inputSchema"]["properties"]["snapshots"]["type"], "array",
        "{leaks_tool}"
    );
    assert_eq!(
        leaks_tool["annotations"]["readOnlyHint"], true,
        "{leaks_tool}"
    );
    assert!(
        !list.to_string().contains("\\n"),
        "descriptions are single lines: {list}"
    );

    // A snapshot of a real process, taken through the server.
    let script = "class Order { constructor(i) { this.i = i; this.items = [i]; } }
globalThis.orders = Array.from({ length: 1500 }, (_, i) => new Order(i));
console.log('ready'); setInterval(() => {}, 1000);";
    let app = App::start(Path::new("node"), &["--inspect=127.0.0.1:0"], script);
    let file = dir.join("app.heapsnapshot");
    let (captured, error) = mcp.call(
        "capture",
        json!({ "inspect": app.inspect.clone().unwrap(), "output": file }),
    );
    assert!(!error, "{captured}");
    assert!(file.exists(), "{captured}");
    let file = file.to_str().unwrap();

    let (first, error) = mcp.call("summary", json!({ "snapshot": file, "top": 5 }));
    assert!(!error, "{first}");
    assert_eq!(first["cache"], "loaded", "{first}");
    assert_eq!(first["classes"].as_array().unwrap().len(), 5);
    assert_eq!(first["next"], "5", "{first}");
    let (orders, _) = mcp.call("summary", json!({ "snapshot": file, "class": "^Order$" }));
    assert_eq!(
        orders["cache"], "cached",
        "a follow-up reads nothing again: {orders}"
    );
    assert_eq!(orders["classes"][0]["count"], 1500, "{orders}");
    // The next page starts where the first ended.
    let (second, _) = mcp.call(
        "summary",
        json!({ "snapshot": file, "top": 5, "cursor": first["next"] }),
    );
    assert_ne!(second["classes"][0], first["classes"][0]);

    let (paths, error) = mcp.call(
        "retainers",
        json!({ "snapshot": file, "class": "Order", "instances": 1 }),
    );
    assert!(!error, "{paths}");
    let object = &paths["objects"][0]["object"];
    assert_eq!(object["class"], "Order", "{paths}");
    let path = paths["objects"][0]["paths"][0].to_string();
    assert!(path.contains("orders"), "the path names the global: {path}");
    let (shown, error) = mcp.call(
        "show",
        json!({ "snapshot": file, "object": format!("@{}", object["id"]) }),
    );
    assert!(!error, "{shown}");
    assert_eq!(shown["object"]["id"], object["id"]);
    assert_eq!(shown["cache"], "cached");

    // Errors are tool errors with the command line's text; the session goes on.
    let missing = dir.join("missing.heapsnapshot");
    let (text, error) = mcp.call("stats", json!({ "snapshot": missing }));
    assert!(error);
    assert!(text.as_str().unwrap().contains("cannot open"), "{text}");
    let (text, error) = mcp.call("show", json!({ "snapshot": file, "object": "@4294967295" }));
    assert!(
        error
            && text
                .as_str()
                .unwrap()
                .contains("no node with id @4294967295"),
        "{text}"
    );
    let (text, error) = mcp.call("summary", json!({ "snapshot": file, "cursor": "999999" }));
    assert!(error && text.as_str().unwrap().contains("cursor"), "{text}");
    let unknown = mcp.request("tools/call", json!({ "name": "nope", "arguments": {} }));
    assert!(unknown.get("error").is_some(), "{unknown}");

    // Leaks over a series, oldest first; asked twice, answered once.
    let files = crate::report::write_series(&dir);
    let series: Vec<String> = files
        .iter()
        .map(|f| dir.join(f).to_str().unwrap().to_owned())
        .collect();
    let (found, error) = mcp.call("leaks", json!({ "snapshots": series }));
    assert!(!error, "{found}");
    assert_eq!(found["leak_suspected"], true, "{found}");
    assert!(
        found["clusters"][0]["class"]
            .as_str()
            .unwrap()
            .contains("Session"),
        "{found}"
    );
    let (again, _) = mcp.call("leaks", json!({ "snapshots": series }));
    assert_eq!(again["cache"], "cached");
    let (text, error) = mcp.call("leaks", json!({ "snapshots": [series[0]] }));
    assert!(
        error && text.as_str().unwrap().contains("two snapshots"),
        "{text}"
    );

    // The live tools run the commands themselves: maps of the app.
    let (maps, error) = mcp.call("maps", json!({ "pid": app.pid().parse::<u32>().unwrap() }));
    assert!(!error, "{maps}");
    assert!(maps.to_string().contains("V8 heap"), "{maps}");

    // The whole hunt on the bundled example, bounded.
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/leaky-server/server.js"
    );
    let (hunt, error) = mcp.call(
        "hunt",
        json!({
            "command": ["node", example, "0"],
            "url": ["/status?test=1", "/report"],
            "requests": 300,
            "no_native": true,
            "time_limit_seconds": 240,
            "out": dir.join("hunt"),
        }),
    );
    assert!(!error, "{hunt}");
    assert_eq!(hunt["leak_suspected"], true, "{hunt}");
    let owners: Vec<&str> = hunt["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["owner"]["name"].as_str())
        .collect();
    assert!(owners.contains(&"handleMap"), "{owners:?}");
    assert!(dir.join("hunt/report.json").exists());
}

/// A client that speaks an older protocol version gets that version back.
#[test]
fn mcp_negotiates_an_older_protocol_version() {
    let (_mcp, init) = Session::start("2024-11-05");
    assert_eq!(init["protocolVersion"], "2024-11-05", "{init}");
}

/// Ending the session (the client closes stdin) stops a hunt it started, and the app with it:
/// nothing runs on without the client.
#[test]
fn a_hunt_stops_when_the_session_ends() {
    let dir = dir("mcp-eof");
    let app = dir.join("slow-app.js");
    std::fs::write(
        &app,
        "require('http').createServer((q, r) => setTimeout(() => r.end('ok'), 200)).listen(0);",
    )
    .unwrap();
    let (mut mcp, _) = Session::start("2025-06-18");
    let id = mcp.next_id;
    mcp.send(&json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": "hunt", "arguments": {
            "command": ["node", app], "url": ["/"], "requests": 20000, "no_native": true,
            "out": dir.join("run"),
        }},
    }));
    let running = |needle: &str| -> bool {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
            })
    };
    let needle = app.to_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    while !running(&needle) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the hunt did not start the app"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    drop(mcp.stdin.take());
    let ended = std::time::Instant::now();
    while running(&needle) {
        assert!(
            ended.elapsed() < Duration::from_secs(30),
            "the app still runs 30 s after the session ended"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // And the server itself exits.
    while mcp.child.try_wait().unwrap().is_none() {
        assert!(
            ended.elapsed() < Duration::from_secs(40),
            "the server did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
