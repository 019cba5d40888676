//! `/metrics` for Prometheus: per-process memory gauges and growth rates, served on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, bail};
use leakhound_live::memory::Sample;
use leakhound_live::timeline::{Metric, Trend};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    pid: String,
    name: String,
    component: String,
}

/// The gauges; cheap to clone (they share their values).
#[derive(Clone, Default)]
pub struct Metrics {
    memory: Family<Labels, Gauge>,
    growth: Family<Labels, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    fn labels(pid: u32, name: &str, component: &str) -> Labels {
        Labels {
            pid: pid.to_string(),
            name: name.to_owned(),
            component: component.to_owned(),
        }
    }

    /// Sets the gauges of process `pid` from its latest sample.
    pub fn update(&self, name: &str, sample: &Sample) {
        for (component, value) in sample.figures() {
            let labels = Metrics::labels(sample.pid, name, component);
            match value {
                Some(v) => {
                    self.memory
                        .get_or_create(&labels)
                        .set(i64::try_from(v).unwrap_or(i64::MAX));
                }
                // Not in this sample: V8's figures when the inspector went away. (smaps
                // figures keep their last value between the reads.)
                None if component.starts_with("v8_") => {
                    self.memory.remove(&labels);
                }
                None => {}
            }
        }
    }

    /// Sets the growth rate of a component of process `pid`.
    pub fn set_growth(&self, pid: u32, name: &str, component: &str, trend: &Trend) {
        self.growth
            .get_or_create(&Metrics::labels(pid, name, component))
            .set(trend.slope_per_hour);
    }

    /// Drops every series of a process that has exited.
    pub fn remove(&self, pid: u32, name: &str) {
        let keys = Sample::FIGURES
            .into_iter()
            .chain(Metric::ALL.iter().map(|m| m.key()));
        for component in keys {
            let labels = Metrics::labels(pid, name, component);
            self.memory.remove(&labels);
            self.growth.remove(&labels);
        }
    }

    /// Serves `/metrics` on `addr` (loopback only) from a background thread.
    pub fn serve(&self, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
        if !addr.ip().is_loopback() {
            bail!(
                "--prometheus {addr}: leakhound serves metrics on loopback only (127.0.0.1 or [::1]); let a local agent or proxy expose them"
            );
        }
        let mut registry = Registry::default();
        registry.register(
            "leakhound_memory_bytes",
            "Resident memory of a watched process by component (status, smaps breakdown, V8)",
            self.memory.clone(),
        );
        registry.register(
            "leakhound_memory_growth_bytes_per_hour",
            "Robust (Theil-Sen) growth rate of a component over the watch window",
            self.growth.clone(),
        );
        let registry = Arc::new(registry);
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("--prometheus {addr}: cannot listen"))?;
        let bound = server
            .server_addr()
            .to_ip()
            .context("the metrics server has no IP address")?;
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let response = if request.url() == "/metrics" {
                    let mut text = String::new();
                    // Writing to a String cannot fail.
                    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
                    tiny_http::Response::from_string(text).with_header(
                        "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"
                            .parse::<tiny_http::Header>()
                            .expect("a valid header"),
                    )
                } else {
                    tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
                };
                // A scraper that hung up is its own problem.
                let _ = request.respond(response);
            }
        });
        Ok(bound)
    }
}
