//! scribe against direct SQLite in the same run, the kanban workload as
//! real processes, and the demo built on it. The `scribe` CLI runs these
//! (`scribe bench`, `scribe demo`, and the hidden `scribe bench-worker`
//! each worker process is).
//!
//! # Layout
//!
//! - [`shared`]: what both the bench and the kanban workload use (worker
//!   spec and report, direct SQLite, result rows, processes of a run).
//! - [`bench`]: `scribe bench`: the sweep, one configuration, the worker
//!   process, and the kanban workload as a bench run.
//! - [`kanban`]: the kanban workload (described in `docs/kanban.md`):
//!   schema, operations, roles, invariants.
//! - [`demo`]: `scribe demo`: the kanban workload with a live dashboard
//!   and a summary.
//! - [`error`]: this crate's error.

pub mod bench;
pub mod demo;
pub mod error;
pub mod kanban;
pub mod shared;

pub use bench::BenchArgs;
pub use demo::DemoArgs;
pub use error::Error;
