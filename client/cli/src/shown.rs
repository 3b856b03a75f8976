//! Text from a database as a table shows it on a terminal.

/// `text` as a table shows it on a terminal: control characters in
/// caret notation (ESC as `^[`, CR as `^M`), a tab as a space, C1 controls
/// escaped; line breaks kept. A value read from a database must not move
/// the cursor, recolour the terminal or hide the rows around it (sqlite3's
/// table modes do not print them either).
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let odd = |c: char| c != '\n' && (c.is_control() || c == '\u{7f}');
    if !text.contains(odd) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(' '),
            c if !odd(c) => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{7f}' => {
                out.push('^');
                out.push(char::from(u8::try_from(c).unwrap_or(b'?') ^ 0x40));
            }
            c => out.extend(c.escape_default()),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn control_characters_are_shown_not_sent_to_the_terminal() {
        assert_eq!(shown("plain\nlines"), "plain\nlines");
        assert_eq!(
            shown("a\u{1b}[31mR\u{1b}[0m\rb\u{8}c\td\u{7f}"),
            "a^[[31mR^[[0m^Mb^Hc d^?"
        );
        assert_eq!(shown("é\u{9b}"), "é\\u{9b}");
    }
}
