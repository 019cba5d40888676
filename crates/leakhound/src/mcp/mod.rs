//! `leakhound mcp`: the tools as a Model Context Protocol server over stdio, for AI assistants.
//!
//! rmcp (the official Rust SDK) speaks the protocol and negotiates its version; it is async, so
//! this module runs a one-thread tokio runtime, the only async code in the binary. Each call
//! runs on tokio's blocking pool and is a thin call into what the commands do ([`tools`]), on
//! snapshots kept between calls ([`cache`]). Nothing but protocol messages reaches stdout.

mod cache;
mod live;
mod params;
mod tools;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{
    CallToolResult, Content, Implementation, ProgressNotificationParam, ServerCapabilities,
    ServerInfo,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};

use crate::cli::McpArgs;
use params::*;

const INSTRUCTIONS: &str = "leakhound finds memory leaks in Node.js (and any V8) processes. \
Typical hunt: `hunt` starts the app, drives load, takes three snapshots and reports leaked objects \
with who holds them (or use `capture` on a running process three times and `leaks` on the files). \
Then look closer: `summary` (classes by retained size), `diff` (growth between two snapshots), \
`show` (one object, `@ID` from other answers), `retainers` (why an object is alive), `findings` \
(suspicious patterns). A process stuck in native code: `capture` with `core: true`, then `core`. For memory outside the JS heap: `watch_sample` (RSS split into V8 heap, \
malloc and the rest) and `maps`. Snapshots stay loaded between calls: ask follow-up questions about \
the same files freely. Long lists come in pages: pass `next` back as `cursor`.";

#[derive(Clone)]
pub struct Server {
    cache: Arc<cache::Cache>,
    tool_router: ToolRouter<Self>,
}

/// Every `description` in `schema` on one line.
fn unwrap_lines(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(fields) => {
            for (name, value) in fields.iter_mut() {
                match value {
                    serde_json::Value::String(text) if name == "description" => {
                        *text = text.replace('\n', " ");
                    }
                    _ => unwrap_lines(value),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_lines),
        _ => {}
    }
}

/// The largest answer sent as it is; a larger one has its long lists cut (and says so).
const MAX_ANSWER: usize = 256 << 10;

/// Runs `work` on the blocking pool; its value, or its error as a tool error with the same text
/// as the command line prints.
async fn call(
    work: impl FnOnce() -> anyhow::Result<serde_json::Value> + Send + 'static,
) -> Result<CallToolResult, ErrorData> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(CallToolResult::structured(bounded(value))),
        Ok(Err(e)) => Ok(CallToolResult::error(vec![Content::text(format!("{e:#}"))])),
        Err(e) => Err(ErrorData::internal_error(
            format!("the tool failed: {e}"),
            None,
        )),
    }
}

/// The last resort against an answer no model can take: past [`MAX_ANSWER`] bytes, every list
/// is cut to a few items and the cuts are listed.
fn bounded(value: serde_json::Value) -> serde_json::Value {
    if value.to_string().len() <= MAX_ANSWER {
        return value;
    }
    live::trimmed(value)
}

/// [`call`] for a tool that runs a child process: a cancelled call stops it, and its stderr
/// lines become progress notifications when the client asked for them.
async fn call_live(
    ctx: RequestContext<RoleServer>,
    work: impl FnOnce(&live::Control) -> anyhow::Result<serde_json::Value> + Send + 'static,
) -> Result<CallToolResult, ErrorData> {
    let (sender, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let token = ctx.meta.get_progress_token();
    let control = Arc::new(live::Control {
        cancelled: AtomicBool::new(false),
        progress: token.is_some().then_some(sender),
    });
    let peer = ctx.peer.clone();
    let progress = tokio::spawn(async move {
        let Some(token) = token else { return };
        let mut n = 0.0;
        while let Some(line) = lines.recv().await {
            n += 1.0;
            let mut note = ProgressNotificationParam::new(token.clone(), n);
            note.message = Some(line);
            let _ = peer.notify_progress(note).await;
        }
    });
    let watcher = {
        let (control, ct) = (control.clone(), ctx.ct.clone());
        tokio::spawn(async move {
            ct.cancelled().await;
            control.cancelled.store(true, Ordering::Relaxed);
        })
    };
    let running = control.clone();
    let answer = call(move || work(&running)).await;
    watcher.abort();
    drop(control);
    let _ = progress.await;
    answer
}

#[tool_router]
impl Server {
    fn new(budget: u64) -> Server {
        let mut tool_router = Self::tool_router();
        // Doc comments wrap at 100 columns; a model should read each as one sentence.
        for route in tool_router.map.values_mut() {
            let mut schema = serde_json::Value::Object((*route.attr.input_schema).clone());
            unwrap_lines(&mut schema);
            if let serde_json::Value::Object(schema) = schema {
                route.attr.input_schema = Arc::new(schema);
            }
        }
        Server {
            cache: Arc::new(cache::Cache::new(budget)),
            tool_router,
        }
    }

    #[tool(
        description = "The Summary view of a heap snapshot, as Chrome DevTools shows it: classes by retained size (count, shallow and retained bytes, distance), with the Statistics (where the heap's bytes go)",
        annotations(read_only_hint = true)
    )]
    async fn summary(
        &self,
        Parameters(p): Parameters<SummaryParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::summary(&cache, &p)).await
    }

    #[tool(
        description = "The Statistics view of a heap snapshot: total, V8 heap (code, strings, JS arrays, system) and native bytes",
        annotations(read_only_hint = true)
    )]
    async fn stats(
        &self,
        Parameters(p): Parameters<SnapshotParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::stats(&cache, &p)).await
    }

    #[tool(
        description = "Compare two snapshots of one process: DevTools' Comparison view (new, deleted, size delta per class) with each class's retained growth and, for generic classes (Object, strings, arrays), the collection that holds the new objects",
        annotations(read_only_hint = true)
    )]
    async fn diff(
        &self,
        Parameters(p): Parameters<DiffParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::diff(&cache, &p)).await
    }

    #[tool(
        description = "Leaked objects across snapshots of one process (oldest first; three or more separate a leak from a cache filling once): clusters of objects that were never freed, who holds them (a grown Map, array or object, named as the app's code names it, e.g. NodeCache.data reached from quoteCache), where they were allocated, and a verdict (leak_suspected)",
        annotations(read_only_hint = true)
    )]
    async fn leaks(
        &self,
        Parameters(p): Parameters<LeaksParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::leaks(&cache, &p)).await
    }

    #[tool(
        description = "The shortest retaining paths (from the GC roots) of one object (@ID) or of a class's largest instances: why they are still alive",
        annotations(read_only_hint = true)
    )]
    async fn retainers(
        &self,
        Parameters(p): Parameters<RetainersParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::retainers(&cache, &p)).await
    }

    #[tool(
        description = "One object (@ID): class, sizes, distance, source location, dominators, its largest edges and its retainers nearest to the root, and its shortest retaining path",
        annotations(read_only_hint = true)
    )]
    async fn show(
        &self,
        Parameters(p): Parameters<ShowParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::show(&cache, &p)).await
    }

    #[tool(
        description = "Suspicious patterns in a snapshot: handle leaks (one object with a huge fan-out), edges to missing objects, huge collections, duplicate strings, listener and closure build-ups, contexts shared by many closures",
        annotations(read_only_hint = true)
    )]
    async fn findings(
        &self,
        Parameters(p): Parameters<PagedSnapshotParams>,
    ) -> Result<CallToolResult, ErrorData> {
        let cache = self.cache.clone();
        call(move || tools::findings(&cache, &p)).await
    }

    #[tool(
        description = "Take a heap snapshot (or a sampling allocation profile, or with core: true a core dump) of a running Node process by PID or inspector address; refuses when the snapshot would not fit in the app's free memory (V8 builds it inside the app) unless force is set. Answers the file written (mode 0600) and the heap's figures"
    )]
    async fn capture(
        &self,
        Parameters(p): Parameters<CaptureParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        call_live(ctx, move |control| live::capture(&p, control)).await
    }

    #[tool(
        description = "The whole leak hunt, bounded in requests, rounds and time: start the app (its command line), drive HTTP load, take a baseline and a snapshot after each round, and report the leak (JS heap and native memory) with a verdict; writes report.json and report.html in the run directory"
    )]
    async fn hunt(
        &self,
        Parameters(p): Parameters<HuntParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        call_live(ctx, move |control| live::hunt(&p, control)).await
    }

    #[tool(
        description = "Objects by class (count, bytes; application classes first) and the JS stack of every thread of a Node process, from its core dump: for a process the inspector cannot reach (main thread stuck in native code, heap too big to snapshot). With diff: which classes grew between two cores of one process"
    )]
    async fn core(
        &self,
        Parameters(p): Parameters<CoreParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        call_live(ctx, move |control| live::core(&p, control)).await
    }

    #[tool(
        description = "Watch a process's memory for a few seconds: RSS split into V8 heap, malloc heap and the rest, growth rates and which memory grows"
    )]
    async fn watch_sample(
        &self,
        Parameters(p): Parameters<WatchParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        call_live(ctx, move |control| live::watch_sample(&p, control)).await
    }

    #[tool(
        description = "A process's memory map grouped and named (V8 heap, malloc arenas, thread stacks, each mapped file); can save it and compare with a sample saved earlier"
    )]
    async fn maps(
        &self,
        Parameters(p): Parameters<MapsParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        call_live(ctx, move |control| live::maps(&p, control)).await
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
        Some(mb) => mb.saturating_mul(1 << 20),
        None => default_budget(),
    };
    eprintln!(
        "leakhound mcp: serving on stdio; keeping snapshots within {}",
        crate::output::size(budget)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let service = Server::new(budget)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| anyhow::anyhow!("the MCP session did not start: {e}"))?;
        let ended = service.waiting().await;
        // The session is over: no child it started goes on without it.
        live::stop_all();
        ended?;
        anyhow::Ok(())
    });
    // Calls still running are not waited for long: their children were told to stop.
    runtime.shutdown_timeout(std::time::Duration::from_secs(15));
    served
}

/// Half the memory this process may still take (its cgroup limit or the machine's available
/// memory), at least 256 MiB: a loaded snapshot holds about its file's size.
fn default_budget() -> u64 {
    let free = leakhound_live::headroom::Room::of(std::process::id()).map_or(0, |r| r.free);
    (free / 2).max(256 << 20)
}
