//! A migration's directive to scribe, `-- scribe: foreign_keys=off`, read
//! from the comments its text opens with. A comment that looks meant as
//! one but is not exactly it is an error, never ignored: a table rebuild
//! run with foreign keys on deletes every row that points at the table
//! (`ON DELETE CASCADE`), and commits.
//!
//! The Python client reads a directory with the same rules
//! (`scribe_client/migrations.py`), checked against the same cases
//! (`directive_cases.txt`): only ASCII counts as blank or changes case,
//! and lines end at `\n` alone, so that both sides read every text alike.

use crate::migration::FOREIGN_KEYS_OFF;

/// Whether `sql` asks for foreign keys off (see the module).
///
/// # Errors
///
/// The line that looks meant as a directive and is not the one scribe
/// knows, or one below the first statement.
pub fn directives(sql: &str) -> Result<bool, String> {
    let mut off = false;
    let mut opening = true;
    let mut in_block = false;
    let text = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    for (n, line) in text.split('\n').enumerate() {
        let line = blank_trimmed(line);
        let comment = if in_block {
            Some(line)
        } else if let Some(c) = line.strip_prefix("--") {
            Some(c)
        } else if let Some(c) = line.strip_prefix("/*") {
            in_block = true;
            Some(c)
        } else {
            None
        };
        if in_block {
            in_block = !line.contains("*/");
        }
        let comment = comment.map(|c| c.split("*/").next().unwrap_or(c));
        opening &= line.is_empty() || comment.is_some();
        let Some(said) = comment.and_then(addressed) else {
            continue;
        };
        let n = n + 1;
        let compact: String = said
            .chars()
            .filter(|c| !is_blank(*c))
            .map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        if compact != "foreign_keys=off" {
            return Err(format!(
                "line {n}: `{line}` is not a directive scribe knows (the one there is: \
                 `{FOREIGN_KEYS_OFF}`)"
            ));
        }
        if !opening {
            return Err(format!(
                "line {n}: `{line}` must be among the comments the file opens with, before \
                 its first statement"
            ));
        }
        off = true;
    }
    Ok(off)
}

/// Blanks as SQLite's tokenizer and both readers take them: ASCII only.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{b}' | '\u{c}')
}

fn blank_trimmed(s: &str) -> &str {
    s.trim_matches(is_blank)
}

/// What a comment says to scribe, when it looks addressed to it: the word
/// `scribe` first (after dashes, `@`, `#` or `*`), then a colon and a
/// setting (`name=value`), or any mention of foreign keys.
fn addressed(comment: &str) -> Option<&str> {
    let text = comment.trim_start_matches(|c: char| is_blank(c) || "-*@#".contains(c));
    let head = text.get(..6)?;
    if !head.eq_ignore_ascii_case("scribe") {
        return None;
    }
    let rest = &text[6..];
    if rest
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None; // `scribes`, `scribe_x`: another word
    }
    let said = blank_trimmed(rest);
    let said = said.strip_prefix(':').unwrap_or(said);
    let lower = said.to_ascii_lowercase();
    (lower.contains("foreign")
        || (rest.trim_start_matches(is_blank).starts_with(':') && lower.contains('=')))
    .then_some(said)
}

#[cfg(test)]
mod tests {
    use super::directives;

    /// The cases both readers are checked against: `text ⇥ expected`, the
    /// text with `\n`, `\r`, `\t`, `\v` (vertical tab) and `\u{…}` escaped;
    /// expected `on`, `off` or an error's words.
    const CASES: &str = include_str!("directive_cases.txt");

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('v') => out.push('\u{b}'),
                Some('u') => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                Some(other) => out.push(other),
                None => {}
            }
        }
        out
    }

    #[test]
    fn every_shared_case_reads_as_expected() {
        for line in CASES
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (text, expected) = line.split_once('\t').expect("text TAB expected");
            let got = directives(&unescape(text));
            match expected {
                "on" => assert_eq!(got, Ok(false), "{text}"),
                "off" => assert_eq!(got, Ok(true), "{text}"),
                words => {
                    let e = got.expect_err(text);
                    assert!(e.contains(words), "{text}: {e}");
                }
            }
        }
    }
}
