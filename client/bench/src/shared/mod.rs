//! What the bench and the kanban workload both use: the worker spec and
//! report, direct SQLite with BUSY retries, result rows, and the
//! processes of a run. Both import this module, never each other's.

pub mod cpu;
pub mod direct;
pub mod procs;
pub mod report;
pub mod spec;
