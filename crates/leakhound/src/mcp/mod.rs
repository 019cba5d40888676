//! `leakhound mcp`: the tools as a Model Context Protocol server over stdio, for AI assistants.
//!
//! rmcp (the official Rust SDK) speaks the protocol and negotiates its version; it is async, so
//! this module runs a one-thread tokio runtime, the only async code in the binary. Each call
//! runs on tokio's blocking pool and is a thin call into what the commands do ([`tools`]), on
//! snapshots kept between calls ([`cache`]). Nothing but protocol messages reaches stdout.

mod cache;
mod params;
mod tools;

use std::sync::Arc;

use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolResult, Content, Implementation, ServerCapabilities, ServerInfo};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};

use crate::cli::McpArgs;
use params::*;

const INSTRUCTIONS: &str = "leakhound finds memory leaks in Node.js (and any V8) processes. \
Typical hunt: `hunt` starts the app, drives load, takes three snapshots and reports leaked objects \
with who holds them (or use `capture` on a running process three times and `leaks` on the files). \
Then look closer: `summary` (classes by retained size), `diff` (growth between two snapshots), \
`show` (one object, `@ID` from other answers), `retainers` (why an object is alive), `findings` \
(suspicious patterns). For memory outside the JS heap: `watch_sample` (RSS split into V8 heap, \
malloc and the rest) and `maps`. Snapshots stay loaded between calls: ask follow-up questions about \
the same files freely. Long lists come in pages: pass `next` back as `cursor`.";

#[derive(Clone)]
pub struct Server {
    cache: Arc<cache::Cache>,
    tool_router: ToolRouter<Self>,
}

/// Runs `work` on the blocking pool; its value, or its error as a tool error with the same text
/// as the command line prints.
async fn call(
    work: impl FnOnce() -> anyhow::Result<serde_json::Value> + Send + 'static,
) -> Result<CallToolResult, ErrorData> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(CallToolResult::structured(value)),
        Ok(Err(e)) => Ok(CallToolResult::error(vec![Content::text(format!("{e:#}"))])),
        Err(e) => Err(ErrorData::internal_error(
            format!("the tool failed: {e}"),
            None,
        )),
    }
}

#[tool_router]
impl Server {
    fn new(budget: u64) -> Server {
        Server {
            cache: Arc::new(cache::Cache::new(budget)),
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "The Summary view of a heap snapshot, as Chrome DevTools shows it: classes by retained size (count, shallow and retained bytes, distance), with the Statistics (where the heap's bytes go)"
    )]
    async fn summary(
        &self,
        Parameters(p): Parameters<SummaryParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::summary(&cache, &p)).await
    }

    #[tool(
        description = "The Statistics view of a heap snapshot: total, V8 heap (code, strings, JS arrays, system) and native bytes"
    )]
    async fn stats(
        &self,
        Parameters(p): Parameters<SnapshotParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::stats(&cache, &p)).await
    }

    #[tool(
        description = "Compare two snapshots of one process: DevTools' Comparison view (new, deleted, size delta per class) with each class's retained growth and, for generic classes (Object, strings, arrays), the collection that holds the new objects"
    )]
    async fn diff(
        &self,
        Parameters(p): Parameters<DiffParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::diff(&cache, &p)).await
    }

    #[tool(
        description = "Leaked objects across snapshots of one process (oldest first; three or more separate a leak from a cache filling once): clusters of objects that were never freed, who holds them (a grown Map, array or object, named as the app's code names it, e.g. NodeCache.data reached from quoteCache), where they were allocated, and a verdict (leak_suspected)"
    )]
    async fn leaks(
        &self,
        Parameters(p): Parameters<LeaksParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::leaks(&cache, &p)).await
    }

    #[tool(
        description = "The shortest retaining paths (from the GC roots) of one object (@ID) or of a class's largest instances: why they are still alive"
    )]
    async fn retainers(
        &self,
        Parameters(p): Parameters<RetainersParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::retainers(&cache, &p)).await
    }

    #[tool(
        description = "One object (@ID): class, sizes, distance, source location, dominators, its largest edges and its retainers nearest to the root, and its shortest retaining path"
    )]
    async fn show(
        &self,
        Parameters(p): Parameters<ShowParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::show(&cache, &p)).await
    }

    #[tool(
        description = "Suspicious patterns in a snapshot: handle leaks (one object with a huge fan-out), edges to missing objects, huge collections, duplicate strings, listener and closure build-ups, contexts shared by many closures"
    )]
    async fn findings(
        &self,
        Parameters(p): Parameters<PagedSnapshotParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::findings(&cache, &p)).await
    }

    #[tool(
        description = "Take a heap snapshot (or a sampling allocation profile) of a running Node process by PID or inspector address; refuses when the snapshot would not fit in the app's free memory (V8 builds it inside the app) unless force is set. Answers the file written (mode 0600) and the heap's figures"
    )]
    async fn capture(
        &self,
        Parameters(p): Parameters<CaptureParams>,
    ) -> Result<CallToolResult, ErrorData> {
        call(move || tools::capture(&p)).await
    }

    #[tool(
        description = "The whole leak hunt, bounded in requests, rounds and time: start the app (its command line), drive HTTP load, take a baseline and a snapshot after each round, and report the leak (JS heap and native memory) with a verdict; writes report.json and report.html in the run directory"
    )]
    async fn hunt(
        &self,
        Parameters(p): Parameters<HuntParams>,
    ) -> Result<CallToolResult, ErrorData> {
        call(move || tools::hunt(&p)).await
    }

    #[tool(
        description = "Watch a process's memory for a few seconds: RSS split into V8 heap, malloc heap and the rest, growth rates and which memory grows"
    )]
    async fn watch_sample(
        &self,
        Parameters(p): Parameters<WatchParams>,
    ) -> Result<CallToolResult, ErrorData> {
        call(move || tools::watch_sample(&p)).await
    }

    #[tool(
        description = "A process's memory map grouped and named (V8 heap, malloc arenas, thread stacks, each mapped file); can save it and compare with a sample saved earlier"
    )]
    async fn maps(
        &self,
        Parameters(p): Parameters<MapsParams>,
    ) -> Result<CallToolResult, ErrorData> {
        call(move || tools::maps(&p)).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("leakhound", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

pub fn run(args: McpArgs) -> anyhow::Result<()> {
    let budget = match args.cache_mb {
        Some(mb) => mb << 20,
        None => default_budget(),
    };
    eprintln!(
        "leakhound mcp: serving on stdio; keeping snapshots within {}",
        crate::output::size(budget)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let service = Server::new(budget)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| anyhow::anyhow!("the MCP session did not start: {e}"))?;
        service.waiting().await?;
        anyhow::Ok(())
    })
}

/// Half the memory this process may still take (its cgroup limit or the machine's available
/// memory), at least 256 MiB: a loaded snapshot holds about its file's size.
fn default_budget() -> u64 {
    let free = leakhound_live::headroom::Room::of(std::process::id()).map_or(0, |r| r.free);
    (free / 2).max(256 << 20)
}
