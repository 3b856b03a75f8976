//! `.import [--csv] [--skip N] FILE TABLE`, in the habits of sqlite3's:
//! CSV (`--csv`, or in csv mode) or fields split by the list separator,
//! read by the `csv` crate; into a table it makes from the first row's
//! names (all TEXT) when none exists; a row with too few fields filled
//! with NULL, one with too many cut, each said as sqlite3 says it
//! (`FILE:LINE: expected 2 columns but found 1 - filling the rest with
//! NULL`); a row SQLite refuses said (`FILE:LINE: INSERT failed: …`) and
//! left out, the rest imported.
//!
//! The rows go through the arbiter in batches of up to [`ROWS`] (each all
//! or nothing, a key each): a failing row's batch is sent again without
//! it, since nothing of it was written. sqlite3 imports in one
//! transaction; here a reader may see the rows of the batches committed
//! so far, and an import stopped half way (the arbiter stopped) keeps
//! them, said with their count.

use scribe_protocol::{Batch, Params, Statement, Value, WriteError};

use super::import_lines::{Input, Lines};
use super::output::Mode;
use super::{Shell, Trouble};

/// "1 row", "2 rows".
fn rows_count(n: u64) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

/// Rows in one batch at most (fewer when the arbiter's limits refuse it).
const ROWS: usize = 500;

/// Field bytes in one batch at most, before the arbiter's own limit.
const BYTES: usize = 1 << 20;

/// What `.import` was asked.
struct Args<'a> {
    file: &'a str,
    table: &'a str,
    csv: bool,
    skip: usize,
}

fn parse<'a>(args: &[&'a str]) -> Result<Args<'a>, Trouble> {
    let usage = || Trouble::usage("use .import [--csv] [--skip N] FILE TABLE");
    let (mut csv, mut skip, mut names) = (false, 0, Vec::new());
    let mut words = args.iter();
    while let Some(w) = words.next() {
        match *w {
            "--csv" | "-csv" => csv = true,
            "--skip" | "-skip" => {
                // As sqlite3: a negative count skips nothing.
                let n: i64 = words
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(usage)?;
                skip = usize::try_from(n).unwrap_or(0);
            }
            w if w.starts_with('-') && w.len() > 1 => {
                return Err(Trouble::usage(format!(
                    "unknown option {w:?} of .import: use .import [--csv] [--skip N] FILE TABLE"
                )))
            }
            w => names.push(w),
        }
    }
    match names.as_slice() {
        [file, table] => Ok(Args {
            file,
            table,
            csv,
            skip,
        }),
        _ => Err(usage()),
    }
}

/// `name` quoted as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Shell<'_> {
    /// Runs `.import`.
    pub(super) fn import(&mut self, words: &[&str]) -> Result<(), Trouble> {
        let args = parse(words)?;
        if self.tx.is_some() || self.ended.is_some() {
            return Err(Trouble::usage(
                ".import runs outside a transaction here: COMMIT or ROLLBACK first",
            ));
        }
        if self.query_only {
            return Err(Trouble::sql(
                "attempt to write a readonly database (PRAGMA query_only is on)",
            ));
        }
        if args.file.starts_with('|') {
            return Err(Trouble::usage(
                ".import from a command is not supported: import its output from a file",
            ));
        }
        let (col, row) = self.import_separators(args.csv)?;
        let file = std::fs::File::open(args.file)
            .map_err(|e| Trouble::local(format!("cannot open \"{}\": {e}", args.file)))?;
        let (input, skipped, quotes) =
            Input::new(std::io::BufReader::new(file), col, row, args.skip);
        let (counted, mut lines) = Lines::over(input, row, skipped);
        let mut rows = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(col)
            // Rows end at the row separator alone, as in sqlite3: a CR
            // inside a field is data (see `Input` for the CR before one).
            .terminator(csv::Terminator::Any(row))
            .from_reader(counted)
            .into_byte_records();
        let columns = match self.table_columns(args.table)? {
            Some(n) => n,
            None => {
                let Some(header) = rows.next() else {
                    // The quotes of rows skipped are said all the same.
                    for (at, what) in quotes.borrow_mut().drain(..) {
                        errln!("{}:{at}: {what}", args.file);
                    }
                    return Err(Trouble::local(format!("{}: empty file", args.file)));
                };
                let header = header.map_err(|e| bad_csv(args.file, &e))?;
                let names = super::import_names::header_names(&header, args.file);
                // As sqlite3 writes it (four columns a line), so that
                // `.schema` reads the same.
                let mut columns = String::new();
                for (i, n) in names.iter().enumerate() {
                    let sep = match i {
                        0 => "",
                        i if i % 4 == 0 => ",\n ",
                        _ => ", ",
                    };
                    columns.push_str(&format!("{sep}{} TEXT", ident(n)));
                }
                self.write(&format!(
                    "CREATE TABLE IF NOT EXISTS {}(\n{columns})",
                    ident(args.table)
                ))?;
                names.len()
            }
        };
        let insert = format!(
            "INSERT INTO {} VALUES({})",
            ident(args.table),
            (1..=columns)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        // One that cannot run at all (into a view, say) is said once, as
        // sqlite3 says it, not once a row.
        if let Err(e) = self.reader.classify(&insert) {
            return Err(Trouble::sql(e.to_string()));
        }
        // A Ctrl-C before this import is not for it; one during it stops
        // it between batches, in a script too (which then ends).
        if let Some(i) = &self.interrupt {
            i.take_seen();
        }
        let _importing = self
            .interrupt
            .as_ref()
            .map(super::interrupt::Interrupt::reading);
        let mut import = Import {
            insert,
            file: args.file,
            rows: Vec::new(),
            said: Vec::new(),
            imported: 0,
            refused: 0,
        };
        let mut bytes = 0;
        for record in rows {
            let record = record.map_err(|e| bad_csv(args.file, &e))?;
            let line = lines.of(record.position().map_or(0, csv::Position::byte));
            // Said as sqlite3 reads them: those of this row's lines (and
            // of any skipped before it) come before what is said of it.
            // (The csv crate reads ahead of the rows it gives.)
            let end = line + record.as_slice().iter().filter(|&&b| b == row).count() as u64;
            let mut quoted = quotes.borrow_mut();
            let upto = quoted.iter().take_while(|(at, _)| *at <= end).count();
            for (at, what) in quoted.drain(..upto) {
                import.say_at(line, at, &what);
            }
            drop(quoted);
            let found = record.len();
            if found < columns {
                import.say(
                    line,
                    &format!(
                        "expected {columns} columns but found {found} - filling the rest with \
                         NULL"
                    ),
                );
            } else if found > columns {
                import.say(
                    line,
                    &format!("expected {columns} columns but found {found} - extras ignored"),
                );
            }
            let mut values: Vec<Value> = record
                .iter()
                .take(columns)
                .map(|f| Value::Text(String::from_utf8_lossy(f).into_owned()))
                .collect();
            values.resize(columns, Value::Null);
            bytes += record.as_slice().len();
            import.rows.push((line, values));
            if import.rows.len() >= ROWS || bytes >= BYTES {
                self.send_rows(&mut import)?;
                bytes = 0;
                if self.interrupt.as_ref().is_some_and(|i| i.seen()) {
                    return Err(Trouble::local(format!(
                        "interrupted: {} of {} imported, the rest not read",
                        rows_count(import.imported),
                        args.file
                    )));
                }
            }
        }
        for (at, what) in quotes.borrow_mut().drain(..) {
            import.say_at(u64::MAX, at, &what);
        }
        self.send_rows(&mut import)?;
        match import.refused {
            0 => Ok(()),
            n => Err(Trouble::sql(format!(
                "{} of {} not imported (see above)",
                rows_count(n),
                args.file
            ))),
        }
    }

    /// The column and row separators `.import` splits on: `,` and a line
    /// break with `--csv`, else the current ones (csv mode's CRLF read
    /// as a line break, as sqlite3 reads it); one byte each.
    fn import_separators(&self, csv: bool) -> Result<(u8, u8), Trouble> {
        if csv {
            return Ok((b',', b'\n'));
        }
        let super::output::Separators(col, row) = &self.separators;
        let row = match (self.mode, row.as_str()) {
            (Mode::Csv, "\r\n") => "\n",
            (_, r) => r,
        };
        match (col.as_bytes(), row.as_bytes()) {
            ([c], [r]) => Ok((*c, *r)),
            ([_], _) => Err(Trouble::usage(
                "multi-character row separators not allowed for import",
            )),
            _ => Err(Trouble::usage(
                "multi-character column separators not allowed for import",
            )),
        }
    }

    /// The number of columns of `table`, when it exists.
    fn table_columns(&self, table: &str) -> Result<Option<usize>, Trouble> {
        let rows = self
            .reader
            .query(
                "SELECT count(*) FROM pragma_table_info(?1)",
                &Params::Positional(vec![Value::Text(table.to_owned())]),
            )
            .map_err(|e| Trouble::sql(e.to_string()))?;
        Ok(match rows.rows.first().and_then(|r| r.first()) {
            Some(Value::Integer(n)) if *n > 0 => Some(*n as usize),
            _ => None,
        })
    }

    /// Writes the rows read so far in batches; a row SQLite refuses is
    /// said and left out. What is said of them comes out in line order,
    /// as sqlite3 says it row by row.
    fn send_rows(&mut self, import: &mut Import<'_>) -> Result<(), Trouble> {
        let result = self.send_batches(import);
        import.said.sort_by_key(|(line, _)| *line);
        for (_, what) in import.said.drain(..) {
            errln!("{what}");
        }
        result
    }

    fn send_batches(&mut self, import: &mut Import<'_>) -> Result<(), Trouble> {
        let mut size = import.rows.len().max(1);
        while !import.rows.is_empty() {
            let take = size.min(import.rows.len());
            let batch = Batch {
                statements: import.rows[..take]
                    .iter()
                    .map(|(_, v)| Statement::new(import.insert.as_str()).params(v.clone()))
                    .collect(),
                key: Some(scribe_client::retry::new_key()),
                wait_ms: self.wait_ms,
                foreign_keys: self.foreign_keys,
            };
            let client = self.client()?.clone();
            match self.ctx.runtime.block_on(client.write(batch)) {
                Ok(_) => {
                    import.rows.drain(..take);
                    import.imported += take as u64;
                }
                // Nothing of the batch was written: the rest goes again
                // without the row SQLite refused.
                Err(WriteError::Sql {
                    statement: Some(i),
                    message,
                    ..
                }) if (i as usize) < take => {
                    let (line, _) = import.rows.remove(i as usize);
                    import.say(line, &format!("INSERT failed: {message}"));
                    import.refused += 1;
                }
                // Over a limit of the arbiter's: smaller batches.
                Err(WriteError::Refused { .. }) if take > 1 => size = take / 2,
                // One row over the arbiter's limit on a batch: refused,
                // as a row SQLite refuses, and the rest go on.
                Err(WriteError::Refused { reason, .. }) => {
                    let (line, _) = import.rows.remove(0);
                    import.say(line, &format!("INSERT refused: {reason}"));
                    import.refused += 1;
                    size = import.rows.len().max(1);
                }
                Err(e) => {
                    let done = import.imported;
                    let mut t = Trouble::from(e);
                    t.message = format!(
                        "{} ({} of {} {} imported before it)",
                        t.message,
                        rows_count(done),
                        import.file,
                        if done == 1 { "was" } else { "were" }
                    );
                    return Err(t);
                }
            }
        }
        Ok(())
    }
}

/// An import under way.
struct Import<'a> {
    /// The INSERT each row runs.
    insert: String,
    file: &'a str,
    /// Rows read and not written yet, with the line each begins on.
    rows: Vec<(u64, Vec<Value>)>,
    /// What is to be said of them (`FILE:LINE: …`), by the line of the
    /// row it comes with.
    said: Vec<(u64, String)>,
    /// Rows written.
    imported: u64,
    /// Rows SQLite refused.
    refused: u64,
}

impl Import<'_> {
    /// Says `what` of the row on `line`.
    fn say(&mut self, line: u64, what: &str) {
        self.say_at(line, line, what);
    }

    /// Says `what` of line `at`, with the row on `line` (in the order
    /// sqlite3 says it: as it reads).
    fn say_at(&mut self, line: u64, at: u64, what: &str) {
        self.said
            .push((line, format!("{}:{at}: {what}", self.file)));
    }
}

/// A CSV error of `file`, said with where.
fn bad_csv(file: &str, e: &csv::Error) -> Trouble {
    let at = e
        .position()
        .map_or(String::new(), |p| format!(":{}", p.line()));
    Trouble::local(format!("{file}{at}: {e}"))
}
