//! A real headless Chromium for the report tests, driven over the Chrome DevTools Protocol:
//! open a self-contained HTML file, click and type like a user, and collect everything that went
//! wrong on the way (exceptions, console errors, network requests).

use std::io::{self, BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use std::{env, fs, process, thread};

use base64::Engine;
use rustix::process::{Pid, Signal};
use serde_json::{Value, json};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// How long the browser may take to start, to load a page or to answer a command.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a single socket read blocks, so every wait is bounded by its own deadline.
const TICK: Duration = Duration::from_millis(50);

/// The browser the report tests use: `LEAKHOUND_CHROMIUM`, else `chromium-headless-shell` or
/// `chromium` on PATH.
pub fn chromium() -> PathBuf {
    if let Some(path) = env::var_os("LEAKHOUND_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = env::var_os("PATH").unwrap_or_default();
    ["chromium-headless-shell", "chromium"]
        .iter()
        .flat_map(|name| env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|exe| exe.is_file())
        .expect(
            "no chromium-headless-shell or chromium on PATH (nor LEAKHOUND_CHROMIUM): the report \
             tests open the HTML report in a real browser; .ci/run installs it",
        )
}

/// One page in its own headless browser; dropping it ends the browser.
pub struct Page {
    ws: WebSocket<TcpStream>,
    /// The CDP session of the page target; empty while talking to the browser itself.
    session: String,
    next_id: u64,
    errors: Vec<String>,
    loaded: bool,
    _browser: Browser,
}

impl Page {
    /// Opens `html` in a fresh browser (with `prefers-color-scheme: dark` when `dark`) and
    /// waits for its load event.
    pub fn open(html: &Path, dark: bool) -> Page {
        let mut browser = Browser::start(None);
        let mut page = Page {
            ws: connect(&browser.devtools_url()),
            session: String::new(),
            next_id: 0,
            errors: Vec::new(),
            loaded: false,
            _browser: browser,
        };
        let target = page.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = page.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        page.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Runtime", "Log", "Page", "Network"] {
            page.call(&format!("{domain}.enable"), json!({}));
        }
        if dark {
            let features = [json!({"name": "prefers-color-scheme", "value": "dark"})];
            page.call("Emulation.setEmulatedMedia", json!({"features": features}));
        }
        let url = file_url(html);
        let navigated = page.call("Page.navigate", json!({"url": url}));
        if let Some(e) = navigated.get("errorText") {
            panic!("Chromium cannot open {url}: {e}");
        }
        let deadline = Instant::now() + TIMEOUT;
        while !page.loaded {
            if page.read(deadline).is_none() {
                panic!("{url} did not finish loading within {TIMEOUT:?}");
            }
        }
        page
    }

    /// Everything that went wrong so far: uncaught exceptions, `console.error` and failed
    /// `console.assert` calls, error log entries, and network requests.
    pub fn errors(&mut self) -> Vec<String> {
        // A round trip flushes what the page sent before it; a short quiet spell then catches
        // the browser's own events (the network ones), which are not ordered with the page's.
        self.call("Runtime.evaluate", json!({"expression": "0"}));
        let quiet = Instant::now() + Duration::from_millis(100);
        while self.read(quiet).is_some() {}
        self.errors.clone()
    }

    /// The value of `js` (awaited if it is a promise); panics if it throws.
    pub fn eval(&mut self, js: &str) -> Value {
        let params = json!({"expression": js, "returnByValue": true, "awaitPromise": true});
        let mut answer = self.call("Runtime.evaluate", params);
        if let Some(d) = answer.get("exceptionDetails") {
            let why = d["exception"].get("description").unwrap_or(&d["text"]);
            panic!("the script threw: {}\n{js}", text_of(why));
        }
        answer["result"]["value"].take()
    }

    /// Clicks the middle of the first element matching `selector` with a real mouse, after
    /// scrolling it into view, so whatever covers it gets the click as it would for a user.
    pub fn click(&mut self, selector: &str) {
        let js = format!(
            "(() => {{
                const e = document.querySelector({});
                if (!e) return 'matches nothing';
                e.scrollIntoView({{block: 'center', inline: 'center'}});
                const r = e.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return 'matches an element with no size';
                return [r.x + r.width / 2, r.y + r.height / 2];
            }})()",
            Value::from(selector)
        );
        let centre = self.eval(&js);
        if let Some(problem) = centre.as_str() {
            panic!("cannot click {selector:?}: it {problem}");
        }
        for kind in ["mousePressed", "mouseReleased"] {
            let event = json!({"type": kind, "x": centre[0], "y": centre[1], "button": "left",
                "clickCount": 1});
            self.call("Input.dispatchMouseEvent", event);
        }
    }

    /// Presses and releases `key` (a DOM key name: "Enter", "Tab", "Escape", " ", "Home",
    /// "End" or an arrow) in whatever has the focus.
    pub fn key(&mut self, key: &str) {
        let (code, virtual_code, text) = key_codes(key);
        // As in Puppeteer: a key that types something goes down with its text, others raw.
        let down = if text.is_empty() {
            "rawKeyDown"
        } else {
            "keyDown"
        };
        for (kind, text) in [(down, text), ("keyUp", "")] {
            let event = json!({"type": kind, "key": key, "code": code,
                "windowsVirtualKeyCode": virtual_code, "text": text});
            self.call("Input.dispatchKeyEvent", event);
        }
    }

    /// The text of the page as a user sees it.
    pub fn text(&mut self) -> String {
        text_of(&self.eval("document.body.innerText"))
    }

    /// Writes a PNG of the viewport, or of the whole document when `full_page`.
    pub fn screenshot(&mut self, path: &Path, full_page: bool) {
        let mut params = json!({"format": "png"});
        if full_page {
            let size = self.eval(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]",
            );
            params["captureBeyondViewport"] = true.into();
            params["clip"] =
                json!({"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1});
        }
        let png = decode(&self.call("Page.captureScreenshot", params)["data"]);
        fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// The page printed to PDF, as a user's "Print" would.
    pub fn pdf(&mut self) -> Vec<u8> {
        decode(&self.call("Page.printToPDF", json!({}))["data"])
    }

    /// Sends a command (to the page once attached) and waits for its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            command["sessionId"] = self.session.clone().into();
        }
        if let Err(e) = self.ws.send(Message::text(command.to_string())) {
            panic!("cannot send {method} to Chromium: {e}");
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let Some(mut m) = self.read(deadline) else {
                panic!("Chromium did not answer {method} within {TIMEOUT:?}");
            };
            if m["id"] == id {
                if let Some(e) = m.get("error") {
                    panic!("{method} failed: {e}");
                }
                return m["result"].take();
            }
        }
    }

    /// The next message before `deadline` (`None` if none came), recorded if it is an event.
    fn read(&mut self, deadline: Instant) -> Option<Value> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let m: Value = serde_json::from_str(&text).expect("Chromium sends JSON");
                    self.record(&m);
                    return Some(m);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
                Err(e) => panic!("lost the connection to Chromium: {e}"),
            }
        }
    }

    fn record(&mut self, m: &Value) {
        let p = &m["params"];
        let error = match m["method"].as_str().unwrap_or_default() {
            "Page.loadEventFired" => {
                self.loaded = true;
                None
            }
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                let description = text_of(&d["exception"]["description"]);
                Some(format!("{} {description}", text_of(&d["text"])))
            }
            "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                let args = p["args"].as_array().into_iter().flatten();
                let args: Vec<String> = args
                    .map(|a| text_of(a.get("value").unwrap_or(&a["description"])))
                    .collect();
                let kind = text_of(&p["type"]);
                Some(format!("console.{kind}: {}", args.join(" ")))
            }
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                let (text, url) = (text_of(&p["entry"]["text"]), text_of(&p["entry"]["url"]));
                Some(format!("log: {text} ({url})"))
            }
            "Network.requestWillBeSent" => {
                let url = text_of(&p["request"]["url"]);
                // blob: is local too: a download the report builds in memory.
                let local = ["file:", "data:", "about:", "blob:"];
                (!local.iter().any(|scheme| url.starts_with(scheme))).then(|| {
                    format!("network request to {url}: the report must make no network request")
                })
            }
            _ => None,
        };
        self.errors.extend(error);
    }
}

/// The browser process and its profile, cleaned up even when `Page::open` fails half-way.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    /// The DevTools WebSocket URL, once read from stderr.
    devtools: Option<String>,
}

impl Browser {
    /// Starts the browser, on `page` when given (else on a blank page).
    pub fn start(page: Option<&Path>) -> Browser {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let exe = chromium();
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let profile =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-{}-{n}", process::id()));
        let _ = fs::remove_dir_all(&profile);
        let mut command = Command::new(&exe);
        let name = exe.file_name().unwrap_or_default().to_string_lossy();
        if !name.contains("headless-shell") {
            command.arg("--headless");
        }
        // Chromium refuses to start as root with its sandbox (CI containers run as root).
        if rustix::process::getuid().is_root() {
            command.arg("--no-sandbox");
        }
        command
            .args([
                "--remote-debugging-port=0",
                "--no-first-run",
                "--disable-gpu",
            ])
            .arg("--window-size=1280,900")
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Debian's launcher is a shell script that runs the browser as its child, and the
            // browser forks helpers: a group of their own lets Drop kill them all.
            .process_group(0);
        if let Some(page) = page {
            command.arg(file_url(page));
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        Browser {
            child,
            profile,
            devtools: None,
        }
    }

    /// `127.0.0.1:PORT` of the browser's DevTools endpoint.
    pub fn devtools_address(&mut self) -> String {
        let url = self.devtools_url();
        let host = url.trim_start_matches("ws://").split('/').next();
        host.unwrap_or_default().to_owned()
    }

    /// The browser's DevTools WebSocket URL, which it prints on stderr once it listens.
    fn devtools_url(&mut self) -> String {
        if let Some(url) = &self.devtools {
            return url.clone();
        }
        let url = self.read_devtools_url();
        self.devtools = Some(url.clone());
        url
    }

    fn read_devtools_url(&mut self) -> String {
        let stderr = BufReader::new(self.child.stderr.take().expect("stderr is piped"));
        let (tx, rx) = mpsc::channel();
        // Drains the pipe for the browser's whole life, so it never blocks writing its logs.
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = String::new();
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some((_, url)) = line.split_once("DevTools listening on ") {
                return url.trim().to_owned();
            }
            seen += &line;
            seen.push('\n');
        }
        // The channel also ends early, when the browser exits and so closes its stderr.
        let when = if Instant::now() < deadline {
            "before exiting".to_owned()
        } else {
            format!("within {TIMEOUT:?}")
        };
        panic!("Chromium did not say where DevTools listens {when}; stderr:\n{seen}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.profile);
    }
}

/// Waits until the page at the DevTools endpoint `addr` has the title `title` (a page's
/// script sets it when it is done); returns the browser's version (`HeadlessChrome/…`).
pub fn wait_for_title(addr: &str, title: &str) -> String {
    let get = |path: &str| -> Option<Value> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        // Chromium answers HTTP/1.1 only.
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        // It may keep the connection open: the body is as long as its Content-Length says.
        let mut answer = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).ok()?;
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                });
                if n == 0 || length.is_some_and(|len| body.len() >= len) {
                    return serde_json::from_str(body).ok();
                }
            } else if n == 0 {
                return None;
            }
        }
    };
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        let ready = get("/json/list").is_some_and(|list| {
            list.as_array()
                .is_some_and(|l| l.iter().any(|t| t["title"] == title))
        });
        if ready {
            let version = get("/json/version").unwrap_or_default();
            return text_of(&version["Browser"]);
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("no page titled {title:?} at {addr} within {TIMEOUT:?}");
}

fn connect(url: &str) -> WebSocket<TcpStream> {
    let host = url.trim_start_matches("ws://").split('/').next();
    let stream = TcpStream::connect(host.unwrap_or_default())
        .unwrap_or_else(|e| panic!("cannot connect to Chromium at {url}: {e}"));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    // Screenshots and PDFs come as one large message; the peer is local and trusted.
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (ws, _) = tungstenite::client::client_with_config(url, stream, Some(config))
        .unwrap_or_else(|e| panic!("Chromium refused the DevTools connection: {e}"));
    ws.get_ref().set_read_timeout(Some(TICK)).unwrap();
    ws
}

/// The `file://` URL of `path`, percent-encoded.
fn file_url(path: &Path) -> String {
    let path =
        fs::canonicalize(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            url.push(b as char);
        } else {
            url += &format!("%{b:02X}");
        }
    }
    url
}

/// The DOM `code`, Windows virtual key code and typed text of `key`.
fn key_codes(key: &str) -> (&str, u32, &str) {
    match key {
        "Enter" => ("Enter", 13, "\r"),
        " " => ("Space", 32, " "),
        "Tab" => ("Tab", 9, ""),
        "Escape" => ("Escape", 27, ""),
        "Home" => ("Home", 36, ""),
        "End" => ("End", 35, ""),
        "ArrowLeft" => ("ArrowLeft", 37, ""),
        "ArrowUp" => ("ArrowUp", 38, ""),
        "ArrowRight" => ("ArrowRight", 39, ""),
        "ArrowDown" => ("ArrowDown", 40, ""),
        _ => panic!("no key codes known for {key:?}: add them to key_codes"),
    }
}

fn decode(base64: &Value) -> Vec<u8> {
    let text = base64
        .as_str()
        .expect("Chromium sends binary data as base64 text");
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("Chromium's base64 is valid")
}

/// A string as itself, anything else as JSON.
fn text_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

const SELF_TEST_PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>harness</title>
<button id="add" onclick="document.body.append('clicked!')">add</button>
<button id="fail" onclick="console.error('boom')">fail</button>
<input id="name" onkeydown="if (event.key === 'Enter') document.body.append('entered!')">
"#;

const DARK: &str = "matchMedia('(prefers-color-scheme: dark)').matches";

#[test]
fn harness_sees_errors_clicks_and_screenshots() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let html = dir.join("browser-self-test.html");
    fs::write(&html, SELF_TEST_PAGE).unwrap();
    let mut page = Page::open(&html, false);
    assert_eq!(page.errors(), Vec::<String>::new());
    assert_eq!(page.eval(DARK), false);

    page.click("#add");
    assert!(page.text().contains("clicked!"), "{}", page.text());
    page.click("#name");
    page.key("Enter");
    assert!(page.text().contains("entered!"), "{}", page.text());
    page.click("#fail");
    let errors = page.errors();
    assert!(errors.iter().any(|e| e.contains("boom")), "{errors:?}");

    let png = dir.join("browser-self-test.png");
    page.screenshot(&png, true);
    assert!(fs::read(&png).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(page.pdf().starts_with(b"%PDF"));
    drop(page);

    let html = dir.join("browser-self-test-network.html");
    fs::write(&html, r#"<img src="http://example.invalid/x.png">"#).unwrap();
    let mut page = Page::open(&html, true);
    assert_eq!(page.eval(DARK), true);
    let errors = page.errors();
    let request = "network request to http://example.invalid/x.png";
    assert!(errors.iter().any(|e| e.contains(request)), "{errors:?}");
}
