//! Splitting an SQL script into statements, for `scribe exec --file`.
//!
//! SQLite itself decides where a statement ends (`sqlite3_complete`), so
//! semicolons inside strings, comments and trigger bodies are handled the
//! way SQLite handles them.

use std::ffi::CString;

/// Splits `script` into its statements (trimmed, without empty ones).
///
/// # Errors
///
/// When the script contains a NUL byte.
pub fn split(script: &str) -> Result<Vec<String>, String> {
    if script.contains('\0') {
        return Err("the script contains a NUL byte".into());
    }
    let mut out = Vec::new();
    let mut start = 0;
    for i in semicolons_outside_quotes(script) {
        let candidate = &script[start..=i];
        if is_complete(candidate) {
            push(&mut out, candidate);
            start = i + 1;
        }
    }
    push(&mut out, &script[start..]);
    Ok(out)
}

/// The byte offsets of the semicolons outside strings, quoted names and
/// comments, quoted as SQLite's `sqlite3_complete` reads them: only these
/// can end a statement. Asking SQLite at every semicolon read the script
/// again from the statement's start each time: 160,000 semicolons in one
/// string literal took 20 s.
fn semicolons_outside_quotes(script: &str) -> Vec<usize> {
    let bytes = script.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Where the quoted span, or comment, opened at `i` ends (exclusive).
    let skip = |from: usize, end: &[u8]| {
        bytes[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(bytes.len(), |at| from + at + end.len())
    };
    while i < bytes.len() {
        i = match bytes[i] {
            b';' => {
                out.push(i);
                i + 1
            }
            q @ (b'\'' | b'"' | b'`') => skip(i + 1, &[q]),
            b'[' => skip(i + 1, b"]"),
            b'-' if bytes.get(i + 1) == Some(&b'-') => skip(i + 2, b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => skip(i + 2, b"*/"),
            _ => i + 1,
        };
    }
    out
}

fn push(out: &mut Vec<String>, piece: &str) {
    let trimmed = piece.trim();
    if !trimmed.is_empty() && !only_comments(trimmed) {
        out.push(trimmed.to_owned());
    }
}

/// True when `piece` holds nothing but comments (`--` to the end of a
/// line, `/* … */`, an unclosed one to the end, as SQLite reads them),
/// blanks and semicolons.
fn only_comments(piece: &str) -> bool {
    let mut rest = piece;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if rest.is_empty() {
            return true;
        }
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, next)| next);
        } else {
            return false;
        }
    }
}

/// True when `sql` ends with a whole statement (SQLite's own test).
pub fn is_complete(sql: &str) -> bool {
    let Ok(c) = CString::new(sql) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call;
    // sqlite3_complete only reads it.
    unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_alone_are_no_statement() {
        for piece in [
            "-- a\n;",
            "/* a */",
            "/* a */ -- b\n/* c",
            ";;",
            "/* x */;\n-- y",
        ] {
            assert!(only_comments(piece), "{piece:?}");
        }
        for piece in ["/* a */ SELECT 1", "-- a\nSELECT 1", "'/* a */'", "/ * a"] {
            assert!(!only_comments(piece), "{piece:?}");
        }
        let parts = split("SELECT 1; /* trailing */").unwrap();
        assert_eq!(parts, ["SELECT 1;"]);
    }

    #[test]
    fn splits_on_statement_ends_only() {
        let script = "CREATE TABLE t(a TEXT); -- one\n\
            INSERT INTO t VALUES ('x;y');\n\
            CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 'z'; END;\n\
            INSERT INTO t VALUES ('last')";
        let parts = split(script).unwrap();
        assert_eq!(parts.len(), 4, "{parts:?}");
        // A comment travels with the statement after it; SQLite skips it.
        assert!(parts[1].ends_with("INSERT INTO t VALUES ('x;y');"));
        assert!(parts[2].ends_with("END;"));
        assert_eq!(parts[3], "INSERT INTO t VALUES ('last')");
    }

    #[test]
    fn semicolons_in_quotes_and_comments_end_nothing() {
        let script = "INSERT INTO t VALUES ('a;''b;', \"c;\", `d;`, [e;]); -- f;\n\
            /* g; */ SELECT 1;";
        let parts = split(script).unwrap();
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert!(parts[1].ends_with("SELECT 1;"), "{parts:?}");
        // The statement ends found are the two outside quotes.
        assert_eq!(semicolons_outside_quotes(script).len(), 2);
        // An unclosed quote runs to the end, as SQLite reads it.
        assert_eq!(split("SELECT 'a; b; c").unwrap(), ["SELECT 'a; b; c"]);
    }

    #[test]
    fn a_literal_of_many_semicolons_is_split_in_linear_time() {
        // 200,000 semicolons in one string: quadratic, this took minutes.
        let script = format!(
            "INSERT INTO t VALUES ('{}'); SELECT 2;",
            ";".repeat(200_000)
        );
        let parts = split(&script).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], "SELECT 2;");
    }

    #[test]
    fn comments_and_blank_lines_are_not_statements() {
        assert!(split("-- nothing\n\n;").unwrap().is_empty());
        assert_eq!(split("SELECT 1;\n-- trailing comment\n").unwrap().len(), 1);
    }
}
