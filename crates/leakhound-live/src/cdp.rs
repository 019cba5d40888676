//! A Chrome DevTools Protocol session with Node's inspector, over its WebSocket.
//!
//! One blocking session, one command at a time: the tool never needs two in flight, and events
//! that belong to a command (snapshot chunks, progress) arrive before its answer. The types are
//! hand-written for the dozen methods we use; Node's own `/json/protocol` is the reference
//! (a Chrome-generated crate has no Node domains and takes long to build).

use std::borrow::Cow;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

use crate::Error;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes every session's wait end with [`Error::Interrupted`] (call it from a Ctrl-C handler),
/// so the caller can still clean up: close the inspector it opened, stop the app it started.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How often a blocked read wakes up to look at the interrupt flag.
const POLL: Duration = Duration::from_millis(200);

/// One inspector target, as `/json/list` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    pub id: String,
    /// `node` for Node.js (empty in old versions) and for Deno, which lists itself so; `page`,
    /// `iframe`, `service_worker`… for a browser.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Where to connect: only its path is used (`/ID` for Node, `/devtools/page/ID` for a
    /// browser page).
    #[serde(rename = "webSocketDebuggerUrl", default)]
    pub ws_url: String,
}

impl Target {
    pub fn is_node(&self) -> bool {
        self.kind == "node" || self.kind.is_empty()
    }

    /// The WebSocket path of the target on its inspector.
    fn path(&self) -> String {
        self.ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap_or_else(|| format!("/{}", self.id))
    }
}

/// The target a session attaches to: the Node (or Deno) process, else the first page of a
/// browser (Chrome, Electron's renderers), else a worker or another embedder's target.
fn pick(targets: Vec<Target>) -> Option<Target> {
    let rank = |t: &Target| match t.kind.as_str() {
        _ if t.is_node() => 0,
        "page" => 1,
        "worker" | "other" => 2,
        // Browser targets that are not a heap of their own (the browser, tabs' frames).
        _ => 3,
    };
    targets
        .into_iter()
        .filter(|t| rank(t) < 3)
        .min_by_key(|t| rank(t))
}

/// `GET path` from the inspector's HTTP endpoint, within `timeout` in all. The URL names the
/// socket address, an IP literal, which passes Node's DNS-rebinding check on `Host`.
fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String), Error> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    );
    let failed = |e: ureq::Error| match e {
        ureq::Error::Timeout(_) => Error::NoAnswer {
            addr,
            what: format!("GET {path}"),
            waited: timeout,
        },
        ureq::Error::Io(e) => Error::Connect { addr, source: e },
        e => Error::Discovery {
            addr,
            problem: format!("sent no usable HTTP answer to GET {path}: {e}"),
        },
    };
    let mut response = agent
        .get(format!("http://{addr}{path}"))
        .call()
        .map_err(failed)?;
    let status = response.status().as_u16();
    // Discovery documents are a few kB; ureq caps a body read into a string at 10 MB.
    let body = response.body_mut().read_to_string().map_err(failed)?;
    Ok((status, body))
}

/// The `Browser` field of `/json/version` (`node.js/v20.20.2`), or `None` when `addr` is not a
/// Node inspector (another HTTP server, or no HTTP at all). `timeout` bounds the whole exchange.
pub fn probe(addr: SocketAddr, timeout: Duration) -> Option<String> {
    probe_any(addr, timeout).filter(|b| is_node(b))
}

/// The `Browser` field of `/json/version` of any V8 inspector: Node (`node.js/v20.20.2`),
/// Chrome and Electron (`Chrome/…`, `HeadlessChrome/…`), Deno (`Deno/…`).
pub fn probe_any(addr: SocketAddr, timeout: Duration) -> Option<String> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(rename = "Browser")]
        browser: String,
        #[serde(rename = "Protocol-Version")]
        protocol: String,
    }
    let (status, body) = http_get(addr, "/json/version", timeout).ok()?;
    let v: Version = serde_json::from_str(&body).ok().filter(|_| status == 200)?;
    (!v.protocol.is_empty()).then_some(v.browser)
}

/// Whether a `Browser` field of `/json/version` is Node's.
pub fn is_node(browser: &str) -> bool {
    browser.starts_with("node.js/")
}

/// The targets the inspector lists (one per Node process; workers are reached through it).
pub fn targets(addr: SocketAddr, timeout: Duration) -> Result<Vec<Target>, Error> {
    let (status, body) = http_get(addr, "/json/list", timeout)?;
    let bad = |problem: String| Error::Discovery { addr, problem };
    if status == 404 {
        return Err(bad("does not list its targets over HTTP (the app runs with --inspect-publish-uid=stderr); restart it without that flag".into()));
    }
    if status != 200 {
        return Err(bad(format!("answered GET /json/list with HTTP {status}")));
    }
    serde_json::from_str(&body)
        .map_err(|e| bad(format!("sent a /json/list leakhound cannot read: {e}")))
}

/// An open session.
pub struct Session {
    ws: WebSocket<TcpStream>,
    addr: SocketAddr,
    next_id: u64,
    /// How long a command may go without any message from the inspector.
    pub timeout: Duration,
    /// Set when Node reports that the app has finished and waits for us to disconnect.
    pub app_finished: bool,
    /// Set while closing: Ctrl-C no longer cuts waits short, so the close gets through.
    closing: bool,
    /// The target is a Node process, whose `process` may be evaluated (else a browser page,
    /// Deno…: V8's own figures only).
    pub node: bool,
}

#[derive(Deserialize)]
struct Incoming<'a> {
    id: Option<u64>,
    method: Option<&'a str>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    error: Option<ProtocolError>,
}

#[derive(Deserialize)]
struct ProtocolError {
    code: i64,
    message: String,
}

/// An event: its method and raw params.
pub struct Event<'a> {
    pub method: &'a str,
    pub params: &'a RawValue,
}

impl Session {
    /// Connects to the target at `addr` (the Node process, or a browser's first page), whose
    /// `/json/version` said `browser`, and asks Node to tell us when the app finishes, so a
    /// session of ours never keeps it from exiting.
    pub fn connect(addr: SocketAddr, browser: &str, timeout: Duration) -> Result<Session, Error> {
        let target = pick(targets(addr, timeout)?).ok_or_else(|| Error::Discovery {
            addr,
            problem: "lists no Node process, page or other JavaScript target".into(),
        })?;
        // Deno lists itself as a `node` target with the NodeRuntime domain, but its `process` is
        // loaded lazily, and loading it from the inspector can fail and end the app (Deno 2.9
        // on a cold cache: "Circular dependency detected"): only Node's own is evaluated.
        let node = target.is_node() && is_node(browser);
        let connect = |e| Error::Connect { addr, source: e };
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(connect)?;
        stream.set_read_timeout(Some(timeout)).map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        // Built from the address we reached and the listed path, not the listed
        // webSocketDebuggerUrl's host, which echoes whatever Host the listing request carried.
        let url = format!("ws://{addr}{}", target.path());
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(url.as_str())
            .map_err(|e| Error::Discovery {
                addr,
                problem: format!("lists a target id that makes a bad URL {url}: {e}"),
            })?;
        request.headers_mut().insert(
            "Host",
            tungstenite::http::HeaderValue::from_static("localhost"),
        );
        // Snapshot chunks are ~100 KB, but a sampling profile or an evaluate result can be
        // larger than tungstenite's 64 MiB default; the peer is local and trusted.
        let config = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (ws, _) = tungstenite::client::client_with_config(request, stream, Some(config))
            .map_err(|e| Error::Discovery {
                addr,
                problem: format!("refused the WebSocket connection: {e}"),
            })?;
        ws.get_ref().set_read_timeout(Some(POLL)).map_err(connect)?;
        let mut session = Session {
            ws,
            addr,
            next_id: 1,
            timeout,
            app_finished: false,
            closing: false,
            node,
        };
        if target.is_node() {
            session.call("NodeRuntime.enable", None)?;
            session.call(
                "NodeRuntime.notifyWhenWaitingForDisconnect",
                Some(r#"{"enabled":true}"#),
            )?;
        }
        Ok(session)
    }

    /// Sends a command and waits for its answer, ignoring events.
    pub fn call(&mut self, method: &str, params: Option<&str>) -> Result<Box<RawValue>, Error> {
        self.call_with(method, params, self.timeout, &mut |_| Ok(()))
    }

    /// Sends a command and waits for its answer; events that arrive meanwhile go to
    /// `on_event`. `idle` bounds the time without any message from the inspector.
    pub fn call_with(
        &mut self,
        method: &str,
        params: Option<&str>,
        idle: Duration,
        on_event: &mut dyn FnMut(Event) -> Result<(), Error>,
    ) -> Result<Box<RawValue>, Error> {
        let id = self.next_id;
        self.next_id += 1;
        let text = match params {
            Some(p) => format!(r#"{{"id":{id},"method":"{method}","params":{p}}}"#),
            None => format!(r#"{{"id":{id},"method":"{method}"}}"#),
        };
        self.ws
            .send(Message::text(text))
            .map_err(|e| self.ws_error(method, e))?;
        loop {
            let text = self.next(method, idle)?;
            let m: Incoming = serde_json::from_str(&text).map_err(|e| Error::BadMessage {
                what: format!("while waiting for {method}"),
                detail: e.to_string(),
            })?;
            match (m.id, m.method) {
                (Some(got), _) if got == id => {
                    if let Some(e) = m.error {
                        return Err(Error::Protocol {
                            method: method.to_owned(),
                            code: e.code,
                            message: e.message,
                        });
                    }
                    let result = m.result.map_or("{}", RawValue::get);
                    return Ok(RawValue::from_string(result.to_owned())
                        .expect("a RawValue's text is valid JSON"));
                }
                (None, Some("NodeRuntime.waitingForDisconnect")) => self.app_finished = true,
                (None, Some(event)) => on_event(Event {
                    method: event,
                    params: m.params.unwrap_or(RawValue::NULL),
                })?,
                // An answer to an earlier command we gave up on.
                _ => {}
            }
        }
    }

    /// The next text message, waiting at most `idle` for it (`NoAnswer` after that).
    fn next(&mut self, what: &str, idle: Duration) -> Result<tungstenite::Utf8Bytes, Error> {
        let start = Instant::now();
        // Each read waits a poll tick at most (less for a short wait), so Ctrl-C is seen.
        let tick = idle.clamp(Duration::from_millis(1), POLL);
        if let Err(e) = self.ws.get_ref().set_read_timeout(Some(tick)) {
            return Err(self.ws_error(what, tungstenite::Error::Io(e)));
        }
        loop {
            if interrupted() && !self.closing {
                return Err(Error::Interrupted);
            }
            match self.ws.read() {
                Ok(Message::Text(t)) => return Ok(t),
                Ok(Message::Close(frame)) => {
                    return Err(Error::Closed {
                        addr: self.addr,
                        what: what.to_owned(),
                        detail: frame.as_ref().map(|f| f.reason.to_string()),
                    });
                }
                Ok(_) => {}
                // The read timeout (our poll tick), or a signal such as Ctrl-C.
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    if start.elapsed() >= idle {
                        return Err(Error::NoAnswer {
                            addr: self.addr,
                            what: what.to_owned(),
                            waited: idle,
                        });
                    }
                }
                Err(e) => return Err(self.ws_error(what, e)),
            }
        }
    }

    /// Handles messages for `time` (a command-free wait that still notices the app
    /// finishing); returns early when it has.
    /// With a zero `time`, handles only what has already arrived.
    pub fn pump(&mut self, time: Duration) -> Result<(), Error> {
        let start = Instant::now();
        while !self.app_finished {
            let left = time.saturating_sub(start.elapsed());
            match self.next("a wait", left) {
                Ok(text) => {
                    if let Ok(m) = serde_json::from_str::<Incoming>(&text) {
                        self.app_finished |= m.method == Some("NodeRuntime.waitingForDisconnect");
                    }
                }
                Err(Error::NoAnswer { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Ends waits even after Ctrl-C, within `self.timeout`, to close what we opened.
    pub fn start_closing(&mut self) {
        self.closing = true;
    }

    fn ws_error(&self, method: &str, e: tungstenite::Error) -> Error {
        match e {
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ) => Error::Closed {
                addr: self.addr,
                what: method.to_owned(),
                detail: None,
            },
            tungstenite::Error::Io(e) => Error::Closed {
                addr: self.addr,
                what: method.to_owned(),
                detail: Some(e.to_string()),
            },
            e => Error::BadMessage {
                what: format!("during {method}"),
                detail: e.to_string(),
            },
        }
    }

    /// Closes the session. Node then lets the app exit if it has finished.
    pub fn close(mut self) {
        // The peer may be gone already; nothing to report then.
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

/// The text of an `addHeapSnapshotChunk` event, unescaped only when it holds escapes.
pub fn chunk_text(params: &RawValue) -> Result<Cow<'_, str>, Error> {
    #[derive(Deserialize)]
    struct Chunk<'a> {
        #[serde(borrow)]
        chunk: Cow<'a, str>,
    }
    serde_json::from_str::<Chunk>(params.get())
        .map(|c| c.chunk)
        .map_err(|e| Error::BadMessage {
            what: "a heap snapshot chunk".into(),
            detail: e.to_string(),
        })
}
