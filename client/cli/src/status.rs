//! `scribe status`: the running arbiter's counters. Never auto-starts.

use std::time::Duration;

use comfy_table::{presets, Table};
use scribe_protocol::{Status, WriteError};

use super::{lifecycle, render, Ctx, Failure};

/// Runs `scribe status`.
///
/// # Errors
///
/// `Unavailable` when no arbiter runs.
pub fn run(ctx: &Ctx) -> Result<(), Failure> {
    let status = ctx.runtime.block_on(async {
        let Some(client) = lifecycle::live(ctx).await? else {
            return Err(WriteError::Unavailable {
                reason: format!(
                    "no arbiter is running for {}; {}",
                    ctx.paths.db.display(),
                    lifecycle::autostart_state(ctx)
                ),
            });
        };
        client.status().await
    })?;
    // The HTTP socket is where this client's resolver puts it, as the
    // arbiter's does (the same code): beside the database, or under a
    // hashed name when that path is too long for a socket (or the name the
    // arbiter recorded, when it had to set that one aside).
    let http = scribe_protocol::reach::reach(&ctx.paths, scribe_protocol::reach::Which::Http)
        .path
        .display()
        .to_string();
    if ctx.json {
        let mut json = scribe_protocol::json::status(&status);
        if let Some(o) = json.as_object_mut() {
            o.insert("http_socket".into(), http.into());
        }
        render::print_json(&json);
    } else {
        outln!("{}", table(&status, &http));
    }
    Ok(())
}

/// The open write session, if any, and what waits behind it.
fn session(s: &Status) -> String {
    let Some(o) = &s.session else {
        return "none".into();
    };
    format!(
        "pid {} (uid {}), open for {}, {} statement{} so far; {} write{} waiting behind it",
        o.pid,
        o.uid,
        humantime::format_duration(Duration::from_millis(o.age_ms)),
        o.statements,
        if o.statements == 1 { "" } else { "s" },
        s.queue_depth,
        if s.queue_depth == 1 { "" } else { "s" },
    )
}

/// The status as a two-column table.
pub fn table(s: &Status, http_socket: &str) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    let us = |v: u64| humantime::format_duration(Duration::from_micros(v)).to_string();
    let rows: Vec<(&str, String)> = vec![
        ("pid", s.pid.to_string()),
        (
            "uptime",
            humantime::format_duration(Duration::from_secs(s.uptime_ms / 1000)).to_string(),
        ),
        ("database", s.db.clone()),
        ("socket", s.socket.clone()),
        ("http socket", http_socket.to_owned()),
        (
            "protocol",
            format!("{} (scribed {})", s.protocol_version, s.server_version),
        ),
        ("sqlite", s.sqlite_version.clone()),
        ("synchronous", s.synchronous.clone()),
        (
            "queue",
            format!("{} waiting (capacity {})", s.queue_depth, s.queue_capacity),
        ),
        ("commits", s.commits.to_string()),
        (
            "writes",
            format!(
                "{} committed, {} failed, {} replayed",
                s.writes, s.failed, s.replayed
            ),
        ),
        (
            "group size",
            format!("mean {:.2}, max {}", s.mean_group, s.max_group),
        ),
        (
            "commit time",
            format!("p50 {}, p99 {}", us(s.commit_p50_us), us(s.commit_p99_us)),
        ),
        ("wal", format!("{} bytes", s.wal_bytes)),
        ("seq", s.seq.to_string()),
        (
            "last error",
            s.last_error.clone().unwrap_or_else(|| "none".into()),
        ),
        (
            "state",
            match (s.stopping, s.writing_for_ms) {
                (true, _) => "stopping (draining the queue)".to_owned(),
                (false, 0) => "serving".to_owned(),
                (false, ms) => format!("serving (writing for {ms} ms)"),
            },
        ),
        ("session", session(s)),
        ("schema version", s.schema_version.to_string()),
        (
            "keys",
            format!("{} idempotency keys held (at most {})", s.keys, s.max_keys),
        ),
        (
            "settings",
            if s.settings.is_empty() {
                "defaults".to_owned()
            } else {
                s.settings.join(", ")
            },
        ),
        (
            "batch budget",
            humantime::format_duration(Duration::from_millis(s.batch_budget_ms)).to_string(),
        ),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_owned(), v]);
    }
    t
}
