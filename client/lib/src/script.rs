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
    for (i, _) in script.match_indices(';') {
        let candidate = &script[start..=i];
        if is_complete(candidate) {
            push(&mut out, candidate);
            start = i + 1;
        }
    }
    push(&mut out, &script[start..]);
    Ok(out)
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
    fn comments_and_blank_lines_are_not_statements() {
        assert!(split("-- nothing\n\n;").unwrap().is_empty());
        assert_eq!(split("SELECT 1;\n-- trailing comment\n").unwrap().len(), 1);
    }
}
