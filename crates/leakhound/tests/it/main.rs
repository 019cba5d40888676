//! The integration tests of the leakhound binary: one test binary, one module per feature.

mod browser;
mod conformance;
mod core;
mod headroom;
mod leaks;
mod live;
mod mcp;
mod native;
mod report;
mod sourcemaps;
mod watch;
