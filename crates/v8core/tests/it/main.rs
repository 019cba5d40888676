//! v8core on real cores: gcore and kernel cores of real node processes (Node 20 from PATH,
//! Node 22, 24 and 26 when the conformance tests have installed them), of `sleep`, and
//! broken copies of them.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod broken;
mod census;
mod fake;
mod fixture;
mod node;
mod stack;
