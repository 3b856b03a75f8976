//! `scribe query`: read directly from the file, never through the arbiter.

use std::cell::RefCell;

use super::{params, render, Ctx, Failure};

/// `scribe query` arguments.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// One SQL query.
    pub sql: String,
    #[command(flatten)]
    pub params: params::ParamArgs,
    /// Print CSV (with a header line).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Read-your-writes: first wait (up to --timeout) until the commit with
    /// this seq (from a receipt) is visible.
    #[arg(long, value_name = "SEQ")]
    pub after: Option<u64>,
}

/// Runs `scribe query`.
///
/// # Errors
///
/// `Sql` when SQLite refuses the query; `Unavailable` when the database
/// does not exist and could not be created.
pub fn run(ctx: &Ctx, args: QueryArgs) -> Result<(), Failure> {
    let params = args.params.parse().map_err(Failure::Usage)?;
    // A missing database is created by the arbiter (started if needed),
    // never by a reader.
    let reader = ctx.open_reader().map_err(read_error)?;
    if let Some(seq) = args.after {
        reader
            .wait_for(seq, ctx.options.call_timeout)
            .map_err(read_error)?;
    }
    if args.csv && !ctx.json {
        return csv(&reader, &args.sql, &params);
    }
    if ctx.json {
        return json(&reader, &args.sql, &params);
    }
    // A table needs every row for its widths, as sqlite3's table modes do.
    let rows = reader.query(&args.sql, &params).map_err(read_error)?;
    // A statement without columns (BEGIN, a pragma that sets) prints
    // nothing, as in sqlite3.
    if !rows.columns.is_empty() {
        outln!("{}", render::rows_table(&rows.columns, &rows.rows));
    }
    Ok(())
}

/// A JSON result is held until it passes this many bytes, then written
/// as SQLite reads it.
const JSON_HELD: usize = 1 << 20;

/// The rows as one JSON array. A result that fails within [`JSON_HELD`]
/// bytes prints only the error, one JSON document as for any command; a
/// longer result streams in constant memory (and `| head` stops the
/// query), and a failure past that point leaves the array unclosed, so no
/// parser takes it for the whole result, says why on stderr and exits
/// with the error's code.
fn json(
    reader: &scribe_reader::Reader,
    sql: &str,
    params: &scribe_protocol::Params,
) -> Result<(), Failure> {
    let out = RefCell::new(render::JsonOut::new(JSON_HELD));
    let columns = RefCell::new(Vec::new());
    let failed = RefCell::new(None);
    let done = reader.query_each(
        sql,
        params,
        |names| {
            *columns.borrow_mut() = names;
            true
        },
        |row| {
            let columns = columns.borrow();
            let object = |out: &mut Vec<u8>| {
                scribe_protocol::json_answer::write_row_object(&columns, &row, out);
            };
            keep_going(&failed, out.borrow_mut().element(object))
        },
    );
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    let out = out.into_inner();
    match done {
        Ok(()) => out.finish(),
        Err(e) if out.streaming() => {
            let f = read_error(e);
            out.abandon();
            render::failure(&f, false);
            Err(Failure::Reported(f.exit_code()))
        }
        Err(e) => Err(read_error(e)),
    }
}

/// CSV row by row as SQLite reads them: a result of any size, in
/// constant memory, and `| head` stops the query.
fn csv(
    reader: &scribe_reader::Reader,
    sql: &str,
    params: &scribe_protocol::Params,
) -> Result<(), Failure> {
    let out = RefCell::new(render::CsvOut::new(b',', csv::Terminator::Any(b'\n')));
    let failed = RefCell::new(None);
    let write = |r| keep_going(&failed, r);
    reader
        .query_each(
            sql,
            params,
            |columns| write(out.borrow_mut().record(&columns)),
            |row| write(out.borrow_mut().row(&row, |v| render::value_text(v, ""))),
        )
        .map_err(read_error)?;
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    out.into_inner().finish()
}

/// For a row callback: true to go on, or false with the failure kept.
fn keep_going(failed: &RefCell<Option<Failure>>, r: Result<(), Failure>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            *failed.borrow_mut() = Some(e);
            false
        }
    }
}

fn read_error(e: scribe_reader::Error) -> Failure {
    use scribe_protocol::WriteError;
    match e {
        scribe_reader::Error::NotFound { .. } => Failure::Category(WriteError::Unavailable {
            reason: e.to_string(),
        }),
        scribe_reader::Error::OtherName { .. } => Failure::Category(WriteError::Refused {
            statement: None,
            reason: e.to_string(),
        }),
        scribe_reader::Error::Timeout { .. } => Failure::Category(WriteError::Timeout {
            message: e.to_string(),
        }),
        scribe_reader::Error::Sqlite(rusqlite::Error::MultipleStatement) => {
            Failure::Read(WriteError::Sql {
                statement: Some(0),
                code: 1,
                message: "more than one SQL statement: `scribe query` runs one; send each as a \
                          query of its own"
                    .into(),
            })
        }
        other => {
            let mut message = other.to_string();
            let code = other.sqlite_code().unwrap_or(1);
            // SQLITE_READONLY itself: the query tried to write. Its other
            // forms (a directory or -shm this user cannot write, say) are
            // the file's permissions, whatever the statement.
            match code {
                8 => {
                    message.push_str(" (scribe query only reads: writes go through `scribe exec`)")
                }
                c if c & 0xff == 8 => message.push_str(
                    " (this user cannot make or update the -wal and -shm files beside the \
                     database, which every reader of a WAL database needs: check the \
                     permissions of its directory and of those files)",
                ),
                _ => {}
            }
            Failure::Read(WriteError::Sql {
                statement: Some(0),
                code,
                message,
            })
        }
    }
}
