//! Multi-process tests for scribe: the real `scribed` and real clients on a
//! real database file in a temp dir.
//!
//! # Layout
//!
//! - `src/bin/test_scribed.rs`, `src/bin/test_scribe.rs`: thin shims over
//!   the real entry points, so tests of this package can locate them
//!   through `CARGO_BIN_EXE_*`.
//! - `src/bin/test_worker.rs`: a client process for tests: writes rows,
//!   reads in a loop, or says hello with a chosen protocol version.
//! - [`raw`]: a blocking client that speaks the socket protocol frame by
//!   frame, for tests that send what no well-behaved client would.
//! - `integration/`: the tests (one binary): `harness.rs` spawns and reaps
//!   processes; one file per subject.

pub mod raw;
