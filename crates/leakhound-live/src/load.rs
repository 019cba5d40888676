//! A built-in HTTP load driver: it drives the app under test between heap snapshots.
//!
//! A round sends exactly [`Plan::count`] requests (unless the time limit stops it) over at most
//! [`Plan::concurrency`] keep-alive connections, round-robin over the targets, and returns
//! [`LoadStats`]. Every response counts, whatever its status: a leak hunt wants the server to do
//! its work, and a 404 or 500 is work too. Transport errors (refused, reset, timed out) are
//! counted, never returned as `Err`; only a bad plan is.
//!
//! Why `ureq`: it is well kept, synchronous and has a keep-alive connection pool. The rest of the
//! tool is synchronous, so a few worker threads, each sending one request after another, give
//! bounded concurrency with no async runtime at all.
//!
//! Targets must be on this machine (loopback) unless the plan says otherwise, see [`check_url`].

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ureq::http::{self, HeaderMap, HeaderName, HeaderValue, Method, Uri};

/// The most worker threads (and so connections) one plan may ask for.
pub const MAX_CONCURRENCY: usize = 1024;

/// One kind of request; a [`Plan`] sends its requests round-robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method, such as `GET` or `POST`; it is upper-cased before use.
    pub method: String,
    /// An absolute `http://` URL.
    pub url: String,
    /// Extra headers, sent in this order; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The request body, sent with a `Content-Length`; `None` sends no body.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A `GET` of `url` with no extra headers and no body.
    pub fn get(url: impl Into<String>) -> Request {
        Request {
            method: "GET".to_owned(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }
}

/// What one round of load sends.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The targets; request number `i` is `requests[i % requests.len()]`.
    pub requests: Vec<Request>,
    /// How many requests to send in all.
    pub count: u64,
    /// How many requests may be in flight at once (worker threads, and so connections).
    pub concurrency: usize,
    /// No request starts after this much time, and one in flight is abandoned when it runs out.
    /// `Duration::MAX` means no limit.
    pub time_limit: Duration,
    /// Allow targets that are not loopback addresses.
    pub allow_remote: bool,
}

/// What a round did. Every request sent ends in exactly one of `responses`, `errors` or
/// `cut_by_time_limit`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadStats {
    /// [`Plan::count`].
    pub requests_planned: u64,
    /// Requests started.
    pub requests_sent: u64,
    /// Worker threads used: the plan's concurrency, or fewer if there were fewer requests.
    pub workers: usize,
    /// Responses read to the end, whatever their status.
    pub responses: u64,
    /// Responses by status code.
    pub status_counts: BTreeMap<u16, u64>,
    /// Responses whose status is not 2xx.
    pub non_2xx: u64,
    /// Requests that failed in transport: refused, reset, closed early, bad HTTP.
    pub errors: u64,
    /// Errors by kind, such as `"connection refused"`.
    pub error_kinds: BTreeMap<String, u64>,
    /// The first error, with its URL.
    pub first_error: Option<String>,
    /// Requests abandoned in flight when the time limit ran out.
    pub cut_by_time_limit: u64,
    /// Whether the time limit ended the round before all planned requests were done.
    pub stopped_by_time_limit: bool,
    /// Wall-clock time of the round, in seconds.
    pub elapsed_secs: f64,
    /// `responses / elapsed_secs`.
    pub requests_per_second: f64,
    /// Median latency of the responses, in milliseconds; `None` without responses.
    pub latency_p50_ms: Option<f64>,
    /// 99th-percentile latency of the responses, in milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// Slowest response, in milliseconds.
    pub latency_max_ms: Option<f64>,
}

/// A load plan that cannot be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The URL does not parse, or lacks a scheme or host.
    #[error(
        "{url:?} is not a valid URL ({reason}); give a full URL such as http://127.0.0.1:3000/"
    )]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL is `https://`, which this build cannot send.
    #[error(
        "{url} uses https, which this build of leakhound does not support (it has no TLS); \
         send the load to the app's plain http port instead"
    )]
    HttpsUnsupported {
        /// The URL as given.
        url: String,
    },
    /// The URL has a scheme other than `http`.
    #[error("{url} has the scheme {scheme:?}; leakhound only sends load over http://")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The host is (or resolves to) an address that is not loopback.
    #[error(
        "{url} is not a loopback address ({address}); leakhound only sends load to this \
         machine unless you pass --allow-remote"
    )]
    NotLoopback {
        /// The URL as given.
        url: String,
        /// The first address that is not loopback.
        address: IpAddr,
    },
    /// The host name could not be resolved to check that it is loopback.
    #[error(
        "cannot resolve {host} (from {url}) to check that it is on this machine: {source}; \
         use an address such as 127.0.0.1 or localhost"
    )]
    Resolve {
        /// The URL as given.
        url: String,
        /// Its host.
        host: String,
        /// Why resolving failed.
        source: io::Error,
    },
    /// The method is not an HTTP method token.
    #[error("{method:?} is not a valid HTTP method; use one such as GET or POST")]
    BadMethod {
        /// The method as given.
        method: String,
    },
    /// A header is not `Name: value`, or its name or value has characters HTTP does not allow.
    #[error("bad header {text:?}: {reason}; write headers as \"Name: value\"")]
    BadHeader {
        /// The header as given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The plan has no targets.
    #[error("the load plan has no URL; give at least one")]
    NoRequests,
    /// The concurrency is zero or too large.
    #[error("load concurrency must be between 1 and {MAX_CONCURRENCY}, not {concurrency}")]
    BadConcurrency {
        /// The concurrency asked for.
        concurrency: usize,
    },
    /// The time limit is zero.
    #[error("the load time limit must be more than zero")]
    ZeroTimeLimit,
    /// The system would not start a worker thread.
    #[error("cannot start a load worker thread: {source}; try a lower concurrency")]
    Thread {
        /// Why.
        source: io::Error,
    },
}

/// Checks that `url` is an `http://` URL with a host, and, unless `allow_remote`, that the host
/// is on this machine: `localhost`, an address in 127.0.0.0/8 or `::1`, or a name that resolves
/// only to such addresses.
///
/// This guards against sending load somewhere by mistake; it is not a security boundary (a name
/// is resolved again when the requests are sent).
pub fn check_url(url: &str, allow_remote: bool) -> Result<(), LoadError> {
    parse_url(url, allow_remote).map(drop)
}

/// Parses a header given as `Name: value` (spaces around either part are dropped).
pub fn parse_header(text: &str) -> Result<(String, String), LoadError> {
    let bad = |reason: String| LoadError::BadHeader {
        text: text.to_owned(),
        reason,
    };
    let Some((name, value)) = text.split_once(':') else {
        return Err(bad("it has no ':'".to_owned()));
    };
    let (name, value) = (name.trim(), value.trim());
    header(name, value).map_err(bad)?;
    Ok((name.to_owned(), value.to_owned()))
}

/// Sends one round of load as `plan` says and reports what happened.
///
/// Worker threads take request numbers from a shared counter, so exactly `plan.count` requests
/// are sent unless the time limit stops the round, and never more than `plan.concurrency` are
/// in flight. Each response body is read to the end so that its connection goes back to the
/// pool. Redirects are not followed (a 3xx is counted like any other status), and proxy
/// settings from the environment are ignored. A latency runs from the start of the request to
/// the end of its response body.
///
/// `progress`, if given, advances by one per response or transport error.
///
/// Returns `Err` only for a plan that cannot be run (a bad or remote URL, a bad method or
/// header, no targets, zero concurrency, no time) or when a worker thread cannot start; failed
/// requests are counted in the stats.
pub fn run(plan: &Plan, progress: Option<&ProgressBar>) -> Result<LoadStats, LoadError> {
    if plan.requests.is_empty() {
        return Err(LoadError::NoRequests);
    }
    if plan.concurrency == 0 || plan.concurrency > MAX_CONCURRENCY {
        return Err(LoadError::BadConcurrency {
            concurrency: plan.concurrency,
        });
    }
    if plan.time_limit.is_zero() {
        return Err(LoadError::ZeroTimeLimit);
    }
    let targets = plan
        .requests
        .iter()
        .map(|request| Target::new(request, plan.allow_remote))
        .collect::<Result<Vec<_>, _>>()?;

    // An extra worker would have nothing to send.
    let workers = plan
        .concurrency
        .min(usize::try_from(plan.count).unwrap_or(usize::MAX));
    // Each worker holds one connection at a time, but may keep one idle per distinct target.
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .allow_non_standard_methods(true)
        .max_idle_connections(workers.saturating_mul(targets.len()).max(1))
        .max_idle_connections_per_host(workers.max(1))
        .user_agent(concat!("leakhound/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent();

    let start = Instant::now();
    let shared = Shared {
        agent,
        targets,
        count: plan.count,
        next: AtomicU64::new(0),
        deadline: start.checked_add(plan.time_limit),
        timed_out: AtomicBool::new(false),
        abort: AtomicBool::new(false),
        progress,
    };

    let mut total = Tally::default();
    let mut spawn_error = None;
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers {
            let spawned = std::thread::Builder::new()
                .name(format!("leakhound-load-{n}"))
                .spawn_scoped(scope, || work(&shared));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    shared.abort.store(true, Ordering::Relaxed);
                    spawn_error = Some(error);
                    break;
                }
            }
        }
        for handle in handles {
            match handle.join() {
                Ok(tally) => total.merge(tally),
                // A worker only panics on a bug; pass the panic on rather than hide it.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
    });
    if let Some(source) = spawn_error {
        return Err(LoadError::Thread { source });
    }
    let elapsed_secs = start.elapsed().as_secs_f64();

    total.latencies_us.sort_unstable();
    let latency = |percent| percentile(&total.latencies_us, percent);
    let non_2xx = total
        .status_counts
        .iter()
        .filter(|(status, _)| !(200..300).contains(*status))
        .map(|(_, n)| n)
        .sum();
    Ok(LoadStats {
        requests_planned: plan.count,
        requests_sent: total.sent,
        workers,
        responses: total.responses,
        non_2xx,
        errors: total.errors,
        first_error: total.first_error.map(|(_, message)| message),
        cut_by_time_limit: total.cut,
        stopped_by_time_limit: shared.timed_out.load(Ordering::Relaxed),
        elapsed_secs,
        requests_per_second: if elapsed_secs > 0.0 {
            total.responses as f64 / elapsed_secs
        } else {
            0.0
        },
        latency_p50_ms: latency(50),
        latency_p99_ms: latency(99),
        latency_max_ms: latency(100),
        status_counts: total.status_counts,
        error_kinds: total.error_kinds,
    })
}

/// At most this many distinct error kinds are kept; further kinds are counted as `"other"`.
const MAX_ERROR_KINDS: usize = 16;

/// A [`Request`], checked and turned into `http` types once, before the round starts.
struct Target<'a> {
    url: &'a str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Option<&'a [u8]>,
}

impl<'a> Target<'a> {
    fn new(request: &'a Request, allow_remote: bool) -> Result<Target<'a>, LoadError> {
        let uri = parse_url(&request.url, allow_remote)?;
        let method = request.method.trim().to_ascii_uppercase();
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| LoadError::BadMethod {
            method: request.method.clone(),
        })?;
        let mut headers = HeaderMap::with_capacity(request.headers.len());
        for (name, value) in &request.headers {
            let (name, value) = header(name, value).map_err(|reason| LoadError::BadHeader {
                text: format!("{name}: {value}"),
                reason,
            })?;
            headers.append(name, value);
        }
        Ok(Target {
            url: &request.url,
            method,
            uri,
            headers,
            body: request.body.as_deref(),
        })
    }
}

/// What the workers share.
struct Shared<'a> {
    agent: ureq::Agent,
    targets: Vec<Target<'a>>,
    count: u64,
    /// The next request number to send.
    next: AtomicU64,
    /// `None` when the time limit is too far away to represent.
    deadline: Option<Instant>,
    timed_out: AtomicBool,
    /// Set when a worker could not be started: the others stop too.
    abort: AtomicBool,
    progress: Option<&'a ProgressBar>,
}

/// One worker's counts; merged when the round ends so that workers never contend on them.
#[derive(Default)]
struct Tally {
    sent: u64,
    responses: u64,
    status_counts: BTreeMap<u16, u64>,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    first_error: Option<(Instant, String)>,
    cut: u64,
    latencies_us: Vec<u32>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.responses += other.responses;
        for (status, n) in other.status_counts {
            *self.status_counts.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        for (kind, n) in other.error_kinds {
            self.count_error_kind(kind, n);
        }
        if let Some((at, message)) = other.first_error
            && self
                .first_error
                .as_ref()
                .is_none_or(|(first, _)| at < *first)
        {
            self.first_error = Some((at, message));
        }
        self.cut += other.cut;
        self.latencies_us.extend(other.latencies_us);
    }

    fn count_error_kind(&mut self, kind: String, n: u64) {
        let kind =
            if self.error_kinds.len() < MAX_ERROR_KINDS || self.error_kinds.contains_key(&kind) {
                kind
            } else {
                "other".to_owned()
            };
        *self.error_kinds.entry(kind).or_default() += n;
    }
}

/// The longest one request may take: an app that stops answering then fails requests instead of
/// holding a round (and Ctrl-C) until its time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One worker: sends requests one after another until none are left or time is up.
fn work(shared: &Shared) -> Tally {
    let mut tally = Tally::default();
    // Ctrl-C (see `cdp::interrupt`) ends the round after the requests in flight.
    while !shared.abort.load(Ordering::Relaxed) && !crate::cdp::interrupted() {
        let number = shared.next.fetch_add(1, Ordering::Relaxed);
        if number >= shared.count {
            break;
        }
        let started = Instant::now();
        let left = match shared.deadline {
            Some(deadline) => match deadline.checked_duration_since(started) {
                Some(left) if !left.is_zero() => Some(left),
                _ => {
                    shared.timed_out.store(true, Ordering::Relaxed);
                    break;
                }
            },
            None => None,
        };
        // The round's deadline, or the per-request limit if that comes first.
        let cut_by_deadline = left.is_some_and(|l| l <= REQUEST_TIMEOUT);
        let timeout = Some(left.map_or(REQUEST_TIMEOUT, |l| l.min(REQUEST_TIMEOUT)));
        // `number % len` is below `len`, so it fits in usize.
        let target = &shared.targets[(number % shared.targets.len() as u64) as usize];
        tally.sent += 1;
        match send(&shared.agent, target, timeout) {
            Ok(status) => {
                let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                tally.latencies_us.push(micros);
                tally.responses += 1;
                *tally.status_counts.entry(status).or_default() += 1;
            }
            Err(error) if cut_by_deadline && is_timeout(&error) => {
                shared.timed_out.store(true, Ordering::Relaxed);
                tally.cut += 1;
                continue;
            }
            Err(error) => {
                tally.errors += 1;
                tally.count_error_kind(error_kind(&error), 1);
                if tally.first_error.is_none() {
                    tally.first_error = Some((started, format!("{}: {error}", target.url)));
                }
            }
        }
        if let Some(progress) = shared.progress {
            progress.inc(1);
        }
    }
    tally
}

/// Sends one request, reads its response to the end, and returns its status.
fn send(
    agent: &ureq::Agent,
    target: &Target,
    timeout: Option<Duration>,
) -> Result<u16, ureq::Error> {
    // The body type differs, so the two cases are two instances of one function.
    match target.body {
        Some(body) => exchange(agent, target, body, timeout),
        None => exchange(agent, target, (), timeout),
    }
}

fn exchange<B: ureq::AsSendBody>(
    agent: &ureq::Agent,
    target: &Target,
    body: B,
    timeout: Option<Duration>,
) -> Result<u16, ureq::Error> {
    let mut request = http::Request::new(body);
    *request.method_mut() = target.method.clone();
    *request.uri_mut() = target.uri.clone();
    *request.headers_mut() = target.headers.clone();
    let request = agent
        .configure_request(request)
        .timeout_global(timeout)
        .build();
    let mut response = agent.run(request)?;
    let status = response.status().as_u16();
    // Reading to the end is what lets ureq put the connection back in the pool.
    io::copy(&mut response.body_mut().as_reader(), &mut io::sink())?;
    Ok(status)
}

fn is_timeout(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
        _ => false,
    }
}

/// A short name for the kind of an error, to count errors by.
fn error_kind(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => e.kind().to_string(),
        ureq::Error::Timeout(_) => "timed out".to_owned(),
        ureq::Error::Protocol(_) => "bad HTTP from the server".to_owned(),
        other => other.to_string(),
    }
}

/// The nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile(sorted_us: &[u32], percent: usize) -> Option<f64> {
    let rank = sorted_us.len().saturating_mul(percent).div_ceil(100).max(1);
    sorted_us.get(rank - 1).map(|&us| f64::from(us) / 1000.0)
}

fn parse_url(url: &str, allow_remote: bool) -> Result<Uri, LoadError> {
    let bad = |reason: &str| LoadError::BadUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    let Some(scheme) = uri.scheme_str() else {
        return Err(bad("it has no scheme; start it with http://"));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(LoadError::HttpsUnsupported {
            url: url.to_owned(),
        });
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(LoadError::UnsupportedScheme {
            url: url.to_owned(),
            scheme: scheme.to_owned(),
        });
    }
    let host = match uri.host() {
        Some(host) if !host.is_empty() => host,
        _ => return Err(bad("it has no host")),
    };
    if !allow_remote {
        check_loopback(url, host, uri.port_u16().unwrap_or(80))?;
    }
    Ok(uri)
}

fn check_loopback(url: &str, host: &str, port: u16) -> Result<(), LoadError> {
    let not_loopback = |address| LoadError::NotLoopback {
        url: url.to_owned(),
        address,
    };
    // `Uri::host` keeps the brackets of an IPv6 address.
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(address) = bare.parse::<IpAddr>() {
        return if is_loopback(address) {
            Ok(())
        } else {
            Err(not_loopback(address))
        };
    }
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(());
    }
    let resolve_error = |source| LoadError::Resolve {
        url: url.to_owned(),
        host: bare.to_owned(),
        source,
    };
    let mut resolved = false;
    for address in (bare, port).to_socket_addrs().map_err(resolve_error)? {
        if !is_loopback(address.ip()) {
            return Err(not_loopback(address.ip()));
        }
        resolved = true;
    }
    if resolved {
        Ok(())
    } else {
        Err(resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            "it has no address",
        )))
    }
}

fn is_loopback(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// A header as `http` types, or what is wrong with it.
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("the name: {e}"))?;
    let value = HeaderValue::from_str(value).map_err(|e| format!("the value: {e}"))?;
    Ok((name, value))
}
