//! Whether a statement's text holds more than one statement.
//!
//! rusqlite refuses such a text, but it prepares what follows the first
//! statement to tell, and an error there (a table the first one creates)
//! is what it reports; the arbiter asks here when a prepare fails, so the
//! caller hears why the text cannot run.

/// True when `sql` holds a whole statement and then more than blanks,
/// comments and semicolons.
pub fn several(sql: &str) -> bool {
    sql.match_indices(';')
        .find(|(i, _)| complete(&sql[..=*i]))
        .is_some_and(|(i, _)| !only_blanks(&sql[i + 1..]))
}

fn complete(sql: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(sql) else {
        return false;
    };
    // SAFETY: `c` is NUL-terminated and outlives the call, which only reads it.
    unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

/// Blanks, `--` and `/* */` comments and semicolons only.
fn only_blanks(mut rest: &str) -> bool {
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return rest.is_empty();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::several;

    #[test]
    fn a_second_statement_counts_and_what_only_looks_like_one_does_not() {
        assert!(several("CREATE TABLE u(x); INSERT INTO u VALUES (1)"));
        assert!(several("SELECT 1;;\n -- c\n SELECT 2"));
        assert!(!several("INSERT INTO t VALUES ('a;b')"));
        assert!(!several("SELECT 1; -- done\n/* and */ ;"));
        assert!(!several(
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM t; END"
        ));
        assert!(!several("SELECT nope FROM nowhere"));
    }
}
