//! The shell's dot commands: `.tables`, `.schema`, `.mode`, `.headers`,
//! `.separator`, `.import` (in `import.rs`), `.read`, `.status`,
//! `.timeout`, `.help`, `.quit`. scribe's own tables
//! (`_scribe_*`) are left out of `.tables` and `.schema`, as sqlite3
//! leaves out its `sqlite_*` ones.

use scribe_protocol::{Params, Value};

use super::output::{Mode, Separators};
use super::{Feed, Shell, Trouble};

const HELP: &str = "\
.headers on|off     Show column names in csv and list modes (on by default)
.help               Show this message
.import [--csv] [--skip N] FILE TABLE
                    Import FILE's rows into TABLE (made from the first
                    row's names when it does not exist): CSV, split on
                    , with --csv, else on the current separators
.mode [MODE]        Show or set the output mode: table, list, json, csv or
                    line
.quit               Leave the shell (also .exit [CODE], or end of input)
.read FILE          Run the statements and dot commands of FILE
.schema [PATTERN]   Show the CREATE statements (of tables LIKE PATTERN)
.separator COL [ROW]
                    Set the list and csv modes' separators (\\t, \\n and
                    \\r as in sqlite3)
.status             Show the arbiter's status
.tables [PATTERN]   List the tables and views (LIKE PATTERN)
.timeout MS         Let a write or BEGIN wait at most MS for the writer
                    (behind another connection's transaction), then fail
                    with database is busy, writing nothing

Reads run on the database file; writes go through the arbiter, one
statement per batch. BEGIN opens a write session (reads inside it see its
writes; other writers wait until COMMIT or ROLLBACK).";

/// Objects of the user's schema, not SQLite's or scribe's.
const OWN: &str =
    "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_scribe\\_%' ESCAPE '\\'";

impl Shell<'_> {
    /// Runs one dot command.
    pub(super) fn dot(&mut self, line: &str) -> Result<(), Trouble> {
        let words = words(line);
        let command = words.first().map_or(".", String::as_str);
        let args: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
        match (command, args.as_slice()) {
            (".help", _) => {
                outln!("{HELP}");
                Ok(())
            }
            (".exit", [code, ..]) => {
                // As sqlite3: `.exit N` ends the process with N (what
                // exit() keeps of it); 0, or a word, as a plain `.exit`.
                let code = code.parse::<i64>().unwrap_or(0) as u8;
                if code != 0 {
                    self.failed = Some(code);
                }
                self.quit = true;
                Ok(())
            }
            (".quit" | ".exit", _) => {
                self.quit = true;
                Ok(())
            }
            (".mode", []) => {
                outln!("current output mode: {}", self.mode.name());
                Ok(())
            }
            (".mode", [name]) => {
                self.mode = Mode::parse(name).ok_or_else(|| {
                    Trouble::usage(format!(
                        "unknown mode {name:?}: use table, list, json, csv or line"
                    ))
                })?;
                // As sqlite3: list mode starts again from `|` and a line
                // break, csv mode from `,` and CRLF.
                if let Some(s) = Separators::for_mode(self.mode) {
                    self.separators = s;
                }
                Ok(())
            }
            (".separator", [col] | [col, _]) => {
                // Its escapes were resolved with the words, as in sqlite3.
                let row = args
                    .get(1)
                    .map_or_else(|| self.separators.1.clone(), |r| (*r).to_owned());
                self.separators = Separators((*col).to_owned(), row);
                Ok(())
            }
            (".import", _) => self.import(&args),
            (".headers", [on]) => {
                self.headers = match *on {
                    "on" | "yes" | "1" => true,
                    "off" | "no" | "0" => false,
                    other => {
                        return Err(Trouble::usage(format!(
                            "use .headers on|off, not {other:?}"
                        )))
                    }
                };
                Ok(())
            }
            (".tables", [] | [_]) => self.tables(args.first().copied()),
            (".schema", [] | [_]) => self.schema(args.first().copied()),
            // A name with blanks comes quoted, as sqlite3 takes it.
            (".read", [_, ..]) => {
                let rest = line[command.len()..].trim();
                let file = ["'", "\""]
                    .iter()
                    .find_map(|q| rest.strip_prefix(q).and_then(|r| r.strip_suffix(q)))
                    .unwrap_or(rest);
                self.read(file)
            }
            (".timeout", [ms]) => {
                let ms = ms.parse::<u64>().map_err(|_| {
                    Trouble::usage(format!("use .timeout MS (milliseconds), not {ms:?}"))
                })?;
                self.wait_ms = Some(ms);
                Ok(())
            }
            (".status", []) => {
                let client = self.client()?.clone();
                let status = self.ctx.runtime.block_on(client.status())?;
                let http = scribe_protocol::reach::reach(
                    &self.ctx.paths,
                    scribe_protocol::reach::Which::Http,
                )
                .path
                .display()
                .to_string();
                outln!("{}", crate::status::table(&status, &http));
                Ok(())
            }
            _ => Err(Trouble::usage(format!(
                "unknown command or invalid arguments: {line:?}; enter \".help\" for help"
            ))),
        }
    }

    fn names(&self, sql: &str, pattern: Option<&str>) -> Result<Vec<String>, Trouble> {
        let params = Params::Positional(vec![Value::Text(pattern.unwrap_or("%").to_owned())]);
        let rows = self
            .reader
            .query(sql, &params)
            .map_err(|e| Trouble::sql(e.to_string()))?;
        Ok(rows
            .rows
            .into_iter()
            .filter_map(|r| match r.into_iter().next() {
                Some(Value::Text(t)) => Some(t),
                _ => None,
            })
            .collect())
    }

    /// sqlite3's layout: names in columns across 80 characters.
    fn tables(&self, pattern: Option<&str>) -> Result<(), Trouble> {
        let names = self.names(
            &format!(
                "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND {OWN} \
                 AND name LIKE ?1 ORDER BY 1"
            ),
            pattern,
        )?;
        if names.is_empty() {
            return Ok(());
        }
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let columns = (80 / (width + 2)).max(1);
        let rows = names.len().div_ceil(columns);
        for i in 0..rows {
            let mut line = String::new();
            for (k, name) in names.iter().skip(i).step_by(rows).enumerate() {
                let gap = if k == 0 { "" } else { "  " };
                line.push_str(&format!("{gap}{name:<width$}"));
            }
            outln!("{line}");
        }
        Ok(())
    }

    fn schema(&self, pattern: Option<&str>) -> Result<(), Trouble> {
        let statements = self.names(
            &format!(
                "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND {OWN} \
                 AND tbl_name LIKE ?1 ORDER BY rowid"
            ),
            pattern,
        )?;
        for sql in statements {
            outln!("{sql};");
        }
        Ok(())
    }

    fn read(&mut self, file: &str) -> Result<(), Trouble> {
        // A file that reads itself would recurse until the stack ends.
        if self.nesting >= MAX_NESTING {
            return Err(Trouble::usage(format!(
                "input nesting limit ({MAX_NESTING}) reached at .read {file}"
            )));
        }
        let bytes =
            std::fs::read(file).map_err(|e| Trouble::local(format!("cannot read {file}: {e}")))?;
        self.nesting += 1;
        let mut feed = Feed::default();
        for line in super::lines(&bytes) {
            self.line(&mut feed, &line);
            if self.quit || self.stop_reading {
                break;
            }
        }
        if !self.stop_reading {
            self.finish(&mut feed);
        }
        self.nesting -= 1;
        if self.nesting == 0 && self.stop_reading {
            self.stop_reading = false;
            return Err(Trouble::local(format!(
                "interrupted: the rest of {file} was not read"
            )));
        }
        Ok(())
    }
}

/// How deep `.read` may nest, as in sqlite3.
const MAX_NESTING: u8 = 25;

/// A dot command's words, as sqlite3 splits them: on blanks, except
/// inside a pair of `"` or `'`, which are taken off (`.import "my
/// file.csv" "my table"`, `.separator " "`). Backslash escapes (`\t`,
/// `\n`, `\\`, octal `\NNN` …) are resolved in a word that is not quoted
/// or is in `"`, where `\"` does not end it; one in `'` is taken as it is.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .chars()
        .peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '\'' {
            chars.next();
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
                word.push(d);
            }
            out.push(word);
            continue;
        }
        if c == '"' {
            chars.next();
            while let Some(d) = chars.next() {
                match d {
                    '"' => break,
                    '\\' => {
                        word.push(d);
                        word.extend(chars.next());
                    }
                    _ => word.push(d),
                }
            }
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_ascii_whitespace() {
                    break;
                }
                word.push(d);
                chars.next();
            }
        }
        out.push(resolve_backslashes(&word));
    }
    out
}

/// sqlite3's escapes in a dot command's word.
fn resolve_backslashes(word: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push(c);
            break;
        };
        out.push(match e {
            'a' => '\u{7}',
            'b' => '\u{8}',
            't' => '\t',
            'n' => '\n',
            'v' => '\u{b}',
            'f' => '\u{c}',
            'r' => '\r',
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                char::from_u32(v).unwrap_or('\u{fffd}')
            }
            other => other,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_split_as_text_lines_and_keep_what_is_not_utf8() {
        let got: Vec<String> = super::super::lines(b"a;\r\nb\xe9;\nc").collect();
        assert_eq!(got, ["a;", "b\u{fffd};", "c"]);
    }

    #[test]
    fn words_split_on_blanks_outside_quotes() {
        assert_eq!(
            super::words(r#".import --csv "my file.csv" 'my table'"#),
            [".import", "--csv", "my file.csv", "my table"]
        );
        assert_eq!(
            super::words(r#".separator " " \n"#),
            [".separator", " ", "\n"]
        );
        assert_eq!(
            super::words(r#".separator ' -- ' '\r\n' "a\"b" \101"#),
            [".separator", " -- ", "\\r\\n", "a\"b", "A"]
        );
    }
}
