//! The load driver against a real HTTP/1.1 server on a loopback socket.
//!
//! The server below is std only: a thread per connection, keep-alive, `Content-Length` bodies.
//! Paths steer it: `/sleep/<ms>` answers after a delay, `/status/<code>` answers with that
//! status, anything else answers 200 at once. It counts connections, requests and the most
//! requests it had in flight at once, and keeps what each request looked like.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use leakhound_live::load::{self, LoadError, LoadStats, Plan, Request};

#[test]
fn sends_exactly_the_planned_count() {
    let server = Server::start();
    let progress = indicatif::ProgressBar::hidden();
    let stats = load::run(
        &plan(vec![Request::get(server.url("/"))], 500, 8),
        Some(&progress),
    )
    .expect("plan is valid");

    assert_eq!(server.requests(), 500);
    assert_eq!(stats.requests_planned, 500);
    assert_eq!(stats.requests_sent, 500);
    assert_eq!(stats.responses, 500);
    assert_eq!(stats.status_counts.get(&200), Some(&500));
    assert_eq!(
        (stats.non_2xx, stats.errors, stats.cut_by_time_limit),
        (0, 0, 0)
    );
    assert_eq!(stats.first_error, None);
    assert!(!stats.stopped_by_time_limit);
    assert_eq!(stats.workers, 8);
    assert_eq!(progress.position(), 500);
    assert!(
        server.connections() <= 8,
        "{} connections for 8 workers",
        server.connections()
    );
    let (p50, p99, max) = latencies(&stats);
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{p50} {p99} {max}");
    assert!(stats.requests_per_second > 0.0);
}

#[test]
fn never_more_in_flight_than_the_concurrency() {
    let server = Server::start();
    let stats = load::run(
        &plan(vec![Request::get(server.url("/sleep/20"))], 40, 4),
        None,
    )
    .expect("plan is valid");

    assert_eq!(stats.responses, 40);
    assert_eq!(server.max_in_flight(), 4);
    // Keep-alive: each worker keeps reusing its one connection.
    assert!(
        server.connections() <= 4,
        "{} connections for 4 workers",
        server.connections()
    );
    assert!(server.connections() >= 1);
    let (p50, _, _) = latencies(&stats);
    assert!(p50 >= 20.0, "p50 {p50} ms below the server's 20 ms delay");
}

#[test]
fn fewer_workers_than_concurrency_when_fewer_requests() {
    let server = Server::start();
    let stats =
        load::run(&plan(vec![Request::get(server.url("/"))], 3, 16), None).expect("plan is valid");
    assert_eq!((stats.workers, stats.responses), (3, 3));

    // `Duration::MAX` is no limit at all, not an overflow.
    let mut unlimited = plan(vec![Request::get(server.url("/"))], 5, 2);
    unlimited.time_limit = Duration::MAX;
    let stats = load::run(&unlimited, None).expect("plan is valid");
    assert_eq!(stats.responses, 5);
    assert!(!stats.stopped_by_time_limit);

    let stats =
        load::run(&plan(vec![Request::get(server.url("/"))], 0, 4), None).expect("plan is valid");
    assert_eq!(
        (stats.workers, stats.requests_sent, stats.responses),
        (0, 0, 0)
    );
    assert_eq!(stats.latency_p50_ms, None);
}

#[test]
fn time_limit_stops_the_round() {
    let server = Server::start();
    let mut plan = plan(vec![Request::get(server.url("/sleep/50"))], 10_000, 2);
    plan.time_limit = Duration::from_secs(1);
    let started = Instant::now();
    let stats = load::run(&plan, None).expect("plan is valid");
    let took = started.elapsed();

    assert!(took < Duration::from_secs(4), "round took {took:?}");
    assert!(took >= Duration::from_millis(900), "round took {took:?}");
    assert!(stats.stopped_by_time_limit);
    assert!(stats.requests_sent < 10_000);
    assert!(stats.responses >= 2, "{} responses", stats.responses);
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
    assert_eq!(
        stats.responses + stats.errors + stats.cut_by_time_limit,
        stats.requests_sent
    );
}

#[test]
fn time_limit_cuts_a_request_in_flight() {
    let server = Server::start();
    let mut plan = plan(vec![Request::get(server.url("/sleep/10000"))], 5, 1);
    plan.time_limit = Duration::from_millis(300);
    let started = Instant::now();
    let stats = load::run(&plan, None).expect("plan is valid");
    let took = started.elapsed();

    assert!(took < Duration::from_secs(5), "round took {took:?}");
    assert!(stats.stopped_by_time_limit);
    assert_eq!(stats.requests_sent, 1);
    assert_eq!(stats.cut_by_time_limit, 1);
    assert_eq!((stats.responses, stats.errors), (0, 0));
}

#[test]
fn non_2xx_responses_are_counted_not_errors() {
    let server = Server::start();
    let targets = ["/", "/status/404", "/status/500"].map(|path| Request::get(server.url(path)));
    let stats = load::run(&plan(targets.to_vec(), 30, 3), None).expect("plan is valid");

    assert_eq!(stats.responses, 30);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.non_2xx, 20);
    let counts: Vec<(u16, u64)> = stats.status_counts.into_iter().collect();
    assert_eq!(counts, [(200, 10), (404, 10), (500, 10)]);
}

#[test]
fn transport_errors_are_counted_not_returned() {
    // Bind a port, then close it: nothing listens there any more.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let stats = load::run(&plan(vec![Request::get(&url)], 5, 2), None).expect("plan is valid");

    assert_eq!(stats.requests_sent, 5);
    assert_eq!((stats.responses, stats.errors), (0, 5));
    assert_eq!(
        stats.error_kinds.get("connection refused"),
        Some(&5),
        "{:?}",
        stats.error_kinds
    );
    let first = stats.first_error.expect("an error is kept");
    assert!(first.starts_with(&url), "{first}");
    assert_eq!(stats.latency_max_ms, None);
}

#[test]
fn method_headers_and_body_arrive() {
    let server = Server::start();
    let header = load::parse_header("X-Leak-Test:  42 ").expect("valid header");
    assert_eq!(header, ("X-Leak-Test".to_owned(), "42".to_owned()));
    let body = br#"{"user":"ada","items":[1,2,3]}"#.to_vec();
    let request = Request {
        method: "post".to_owned(),
        url: server.url("/orders"),
        headers: vec![
            header,
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ],
        body: Some(body.clone()),
    };
    let stats = load::run(&plan(vec![request], 3, 1), None).expect("plan is valid");
    assert_eq!(stats.responses, 3);

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    for request in seen {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/orders");
        assert_eq!(request.header("x-leak-test"), Some("42"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(request.body, body);
    }
}

#[test]
fn round_robin_over_targets() {
    let (a, b) = (Server::start(), Server::start());
    let targets = vec![Request::get(a.url("/a")), Request::get(b.url("/b"))];
    let stats = load::run(&plan(targets, 11, 3), None).expect("plan is valid");

    assert_eq!(stats.responses, 11);
    assert_eq!((a.requests(), b.requests()), (6, 5));
    assert!(a.seen().iter().all(|r| r.path == "/a"));
    assert!(b.seen().iter().all(|r| r.path == "/b"));
}

#[test]
fn check_url_allows_only_loopback_http() {
    for url in [
        "http://127.0.0.1:3000/",
        "http://127.8.9.10/x",
        "http://localhost:8080/a?b=c",
    ] {
        assert!(load::check_url(url, false).is_ok(), "{url}");
    }
    assert!(load::check_url("http://[::1]:3000/", false).is_ok());
    assert!(load::check_url("http://[::ffff:127.0.0.1]/", false).is_ok());

    let error = load::check_url("http://10.1.2.3/", false).expect_err("remote");
    assert!(matches!(error, LoadError::NotLoopback { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("http://10.1.2.3/") && message.contains("--allow-remote"),
        "{message}"
    );
    assert!(load::check_url("http://10.1.2.3/", true).is_ok());
    assert!(load::check_url("http://[2001:db8::1]/", false).is_err());

    let error = load::check_url("https://127.0.0.1/", false).expect_err("https");
    assert!(
        matches!(error, LoadError::HttpsUnsupported { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("does not support"), "{error}");
    // https is refused even where remote targets are allowed: there is no TLS in this build.
    assert!(load::check_url("https://127.0.0.1/", true).is_err());

    for garbage in [
        "",
        "not a url",
        "localhost:3000",
        "http://",
        "ftp://127.0.0.1/",
        "/just/a/path",
    ] {
        let error = load::check_url(garbage, true).expect_err(garbage);
        assert!(!error.to_string().is_empty());
    }
    // `.invalid` never resolves, so it cannot be shown to be loopback.
    assert!(load::check_url("http://leakhound.invalid/", false).is_err());
}

#[test]
fn bad_plans_are_errors() {
    let server = Server::start();
    let ok = || vec![Request::get(server.url("/"))];

    let remote = load::run(&plan(vec![Request::get("http://10.1.2.3/")], 1, 1), None);
    assert!(matches!(remote, Err(LoadError::NotLoopback { .. })));
    assert!(matches!(
        load::run(&plan(Vec::new(), 1, 1), None),
        Err(LoadError::NoRequests)
    ));
    assert!(matches!(
        load::run(&plan(ok(), 1, 0), None),
        Err(LoadError::BadConcurrency { concurrency: 0 })
    ));
    let mut zero_time = plan(ok(), 1, 1);
    zero_time.time_limit = Duration::ZERO;
    assert!(matches!(
        load::run(&zero_time, None),
        Err(LoadError::ZeroTimeLimit)
    ));

    let mut bad_method = ok();
    bad_method[0].method = "GE T".to_owned();
    assert!(matches!(
        load::run(&plan(bad_method, 1, 1), None),
        Err(LoadError::BadMethod { .. })
    ));
    let mut bad_header = ok();
    bad_header[0]
        .headers
        .push(("Bad Name".to_owned(), "x".to_owned()));
    assert!(matches!(
        load::run(&plan(bad_header, 1, 1), None),
        Err(LoadError::BadHeader { .. })
    ));
    assert_eq!(server.requests(), 0);

    for text in ["no colon", ": empty name", "X-Ok: line\nbreak"] {
        assert!(load::parse_header(text).is_err(), "{text:?}");
    }
}

fn plan(requests: Vec<Request>, count: u64, concurrency: usize) -> Plan {
    Plan {
        requests,
        count,
        concurrency,
        time_limit: Duration::from_secs(30),
        allow_remote: false,
    }
}

fn latencies(stats: &LoadStats) -> (f64, f64, f64) {
    match (
        stats.latency_p50_ms,
        stats.latency_p99_ms,
        stats.latency_max_ms,
    ) {
        (Some(p50), Some(p99), Some(max)) => (p50, p99, max),
        other => panic!("latencies missing: {other:?}"),
    }
}

/// A request as the server saw it; header names are lower-cased.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    connections: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    seen: Mutex<Vec<Seen>>,
}

struct Server {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Server {
    /// Listens on a free loopback port; the listener lives until the test process ends.
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&shared);
                thread::spawn(move || serve(stream, &shared));
            }
        });
        Server { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("not poisoned").clone()
    }
}

/// Serves one keep-alive connection until the client closes it (or breaks it).
fn serve(stream: TcpStream, state: &State) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        state.requests.fetch_add(1, Ordering::SeqCst);

        let mut status = 200;
        if let Some(ms) = request.path.strip_prefix("/sleep/") {
            thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
        }
        if let Some(code) = request.path.strip_prefix("/status/") {
            status = code.parse().unwrap_or(500);
        }
        let body = format!("{} {}\n", request.method, request.path);
        let close = request.header("connection") == Some("close");
        state.seen.lock().expect("not poisoned").push(request);

        let response = format!(
            "HTTP/1.1 {status} Test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let written = writer
            .write_all(response.as_bytes())
            .and_then(|()| writer.flush());
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
        if written.is_err() || close {
            return;
        }
    }
}

/// Reads one request; `None` at the end of the connection or on a malformed request.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut seen = Seen {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let length: usize = seen
        .header("content-length")
        .map_or(Some(0), |v| v.parse().ok())?;
    seen.body.resize(length, 0);
    reader.read_exact(&mut seen.body).ok()?;
    Some(seen)
}
