//! Multi-process tests: every test spawns the real `scribed` and real
//! client processes against a real database file in its own temp dir.

mod access;
mod batches;
mod bench;
mod cli_codes;
mod concurrency;
mod crash;
mod descriptors;
mod exactly_once;
mod guardrails;
mod hardening_instance;
mod hardening_limits;
mod hardening_sql;
mod hardening_wal;
mod harness;
mod http;
mod http_sessions;
mod idle;
mod lifecycle;
mod migration_directives;
mod migrations;
mod query_output;
mod rust_client;
mod sessions;
mod sessions_pipelined;
mod shell;
mod shell_habits;
mod snapshots;
mod socket_names;
mod socket_thread;
mod startstop;
mod torture;
mod units;
mod upgrade;
mod users;
mod waits;
