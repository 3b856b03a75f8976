//! `scribe migrate DIR`: bring the schema up to the directory's last
//! migration, through the arbiter; `scribe migrate --status [DIR]`: the
//! history, read from the file (and DIR's migrations not applied yet).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use comfy_table::{presets, Table};
use scribe_protocol::{Migration, MigrationRecord, Params, Value, WriteError};

use super::{render, Ctx, Failure};
use scribe_client::Client;

/// `scribe migrate` arguments.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The migrations: files `NNNN_name.sql` (the number is the version).
    #[arg(required_unless_present = "status")]
    pub dir: Option<PathBuf>,
    /// Show the migrations applied (and DIR's pending ones) instead.
    #[arg(long)]
    pub status: bool,
}

/// Runs `scribe migrate`.
///
/// # Errors
///
/// The arbiter's categorized error; a local failure reading DIR.
pub fn run(ctx: &Ctx, args: &MigrateArgs) -> Result<(), Failure> {
    let list = match &args.dir {
        Some(dir) => scribe_protocol::migration::from_dir(dir).map_err(Failure::Local)?,
        None => Vec::new(),
    };
    if args.status {
        return status(ctx, &list);
    }
    if list.is_empty() {
        return Err(Failure::Local(format!(
            "{} holds no migration (files named NNNN_name.sql)",
            args.dir
                .as_ref()
                .map_or(String::new(), |d| d.display().to_string())
        )));
    }
    let report = ctx.runtime.block_on(async {
        let client = Client::connect(&ctx.paths, &ctx.options).await?;
        client.migrate(list.clone()).await
    })?;
    if ctx.json {
        render::print_json(&serde_json::to_value(&report).unwrap_or_default());
        return Ok(());
    }
    for v in &report.applied {
        let name = list
            .iter()
            .find(|m| m.version == *v)
            .map_or("", |m| &m.name);
        outln!("applied {v} {name}");
    }
    let last = list.last().map_or(0, |m| m.version);
    if report.newer {
        outln!(
            "the database is at version {}, newer than these migrations (up to {last}): \
             nothing applied; a newer program migrated it",
            report.after
        );
    } else if report.applied.is_empty() {
        outln!(
            "the database is already at version {}: nothing to apply",
            report.after
        );
    } else {
        outln!(
            "the database is at version {} (it was at {})",
            report.after,
            report.before
        );
    }
    Ok(())
}

/// The applied migrations, read from the file.
fn history(ctx: &Ctx) -> Result<Vec<MigrationRecord>, Failure> {
    // A status looks: a database not made yet (a mistyped path, say) has
    // applied nothing, and is not made (nor an arbiter started) to say so.
    if !ctx.paths.db.exists() {
        return Ok(Vec::new());
    }
    let reader = ctx.open_reader().map_err(|e| WriteError::Unavailable {
        reason: e.to_string(),
    })?;
    let rows = match reader.query(
        "SELECT version, name, checksum, applied_at FROM _scribe_migrations ORDER BY version",
        &Params::None,
    ) {
        Ok(r) => r,
        // A database no arbiter of this release has opened yet.
        Err(e) if e.to_string().contains("no such table") => return Ok(Vec::new()),
        Err(e) => return Err(Failure::Local(e.to_string())),
    };
    Ok(rows
        .rows
        .into_iter()
        .map(|r| {
            let int = |v: &Value| match v {
                Value::Integer(i) => *i,
                _ => 0,
            };
            let text = |v: &Value| match v {
                Value::Text(t) => t.clone(),
                _ => String::new(),
            };
            MigrationRecord {
                version: u64::try_from(int(&r[0])).unwrap_or(0),
                name: text(&r[1]),
                checksum: text(&r[2]),
                applied_at_ms: int(&r[3]),
            }
        })
        .collect())
}

fn status(ctx: &Ctx, list: &[Migration]) -> Result<(), Failure> {
    let done = history(ctx)?;
    let mut rows: Vec<[String; 4]> = done
        .iter()
        .map(|r| {
            let at = SystemTime::UNIX_EPOCH
                + Duration::from_millis(u64::try_from(r.applied_at_ms).unwrap_or(0));
            let state = match list.iter().find(|m| m.version == r.version) {
                Some(m) if m.checksum() != r.checksum => {
                    format!(
                        "CHANGED since applied {}",
                        humantime::format_rfc3339_seconds(at)
                    )
                }
                _ => format!("applied {}", humantime::format_rfc3339_seconds(at)),
            };
            [
                r.version.to_string(),
                r.name.clone(),
                r.checksum.clone(),
                state,
            ]
        })
        .collect();
    let at = done.last().map_or(0, |r| r.version);
    for m in list.iter().filter(|m| m.version > at) {
        rows.push([
            m.version.to_string(),
            m.name.clone(),
            m.checksum(),
            "pending".into(),
        ]);
    }
    if ctx.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|[version, name, checksum, state]| {
                serde_json::json!({"version": version.parse::<u64>().unwrap_or(0), "name": name,
                                   "checksum": checksum, "state": state})
            })
            .collect();
        render::print_json(&serde_json::Value::from(v));
        return Ok(());
    }
    if rows.is_empty() {
        outln!("no migrations applied (schema version 0)");
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY);
    t.set_header(["version", "name", "checksum", "state"]);
    for r in rows {
        t.add_row(r);
    }
    outln!("{t}");
    outln!("schema version {at}");
    Ok(())
}
