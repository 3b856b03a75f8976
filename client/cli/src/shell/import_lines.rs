//! The bytes of an `.import` file as sqlite3 reads them, before the `csv`
//! crate splits them, and the line each row begins on.
//!
//! [`Input`] skips the first `--skip` rows (a blank one counts; a quoted
//! field may span lines) and drops a CR just before the row separator
//! outside quotes, as sqlite3 does; a CR anywhere else is data (a quoted
//! field's last byte, a last line with no break after it). A quote in a
//! quoted field that neither doubles nor ends it is data, and the field
//! goes on, as sqlite3 reads it (`"x"y,z` is one field, `x"y,z` and what
//! follows): it is passed on doubled, and said, as sqlite3 says it, with a
//! quoted field the file ends in. [`Lines`]
//! notes where each row separator is, and [`LineOf`] turns the offset
//! where a row begins into its line.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::rc::Rc;

/// Where the reader is in the CSV text (quotes open a field only at its
/// start; `""` inside one is a quote).
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it ends there unless another comes.
    QuoteInQuoted,
}

/// The file's bytes with the skipped rows and the CRs before a row
/// separator left out.
pub struct Input<R> {
    inner: R,
    col: u8,
    row: u8,
    at: At,
    /// A CR outside quotes, kept back until the next byte says whether
    /// it ends the row; and whether it came right after a quote that
    /// closed a field (if the row does not end there, that quote was data
    /// and the field goes on, as sqlite3 reads it).
    cr: bool,
    cr_after_quote: bool,
    skip: usize,
    /// Row separators passed while skipping (for the line numbers).
    skipped: Rc<Cell<u64>>,
    /// The line being read (from 1, as sqlite3 counts: every separator),
    /// and the one the quoted field being read began on.
    line: u64,
    quoted_from: u64,
    /// Bytes to pass on before the next one read, and whether the file
    /// has ended.
    queued: VecDeque<u8>,
    done: bool,
    /// What was said of the quotes: (line, what).
    said: Said,
}

/// What [`Input`] says of a file's quotes, by line.
pub type Said = Rc<RefCell<Vec<(u64, String)>>>;

impl<R: BufRead> Input<R> {
    /// Reads `inner`, skipping its first `skip` rows.
    pub fn new(inner: R, col: u8, row: u8, skip: usize) -> (Input<R>, Rc<Cell<u64>>, Said) {
        let skipped = Rc::new(Cell::new(0));
        let said = Said::default();
        let input = Input {
            inner,
            col,
            row,
            at: At::FieldStart,
            cr: false,
            cr_after_quote: false,
            skip,
            skipped: Rc::clone(&skipped),
            line: 1,
            quoted_from: 1,
            queued: VecDeque::new(),
            done: false,
            said: Rc::clone(&said),
        };
        (input, skipped, said)
    }

    /// Moves the state on by `b`: whether `b` ends a row, and whether a
    /// quote goes before it (the one before it was data, not the end).
    fn step(&mut self, b: u8) -> (bool, bool) {
        let (col, row) = (self.col, self.row);
        if b == row {
            self.line += 1;
        }
        let (at, ends, doubled) = match (self.at, b) {
            (At::Quoted, b'"') => (At::QuoteInQuoted, false, false),
            (At::Quoted, _) => (At::Quoted, false, false),
            (At::QuoteInQuoted, b'"') => (At::Quoted, false, false),
            (At::QuoteInQuoted, b) if b != row && b != col => {
                let line = self.line;
                self.said
                    .borrow_mut()
                    .push((line, "unescaped \" character".into()));
                (At::Quoted, false, true)
            }
            (At::FieldStart, b'"') => {
                self.quoted_from = self.line;
                (At::Quoted, false, false)
            }
            (_, b) if b == row => (At::FieldStart, true, false),
            (_, b) if b == col => (At::FieldStart, false, false),
            _ => (At::Unquoted, false, false),
        };
        self.at = at;
        (ends, doubled)
    }

    /// The end of the file: a quoted field still open is said.
    fn ended(&mut self) {
        if self.at == At::Quoted {
            self.said
                .borrow_mut()
                .push((self.quoted_from, "unterminated \"-quoted field".into()));
            self.at = At::FieldStart;
        }
    }
}

impl<R: BufRead> Input<R> {
    /// Passes `b` on, unless the row is being skipped.
    fn pass(&mut self, b: u8) {
        if self.skip == 0 {
            self.queued.push_back(b);
        }
    }

    /// A CR kept back is data after all: after a closing quote, that
    /// quote was data too and the field reads on (as sqlite3 reads
    /// `"x"\ry`), else the field goes on unquoted.
    fn kept_cr_is_data(&mut self) {
        if std::mem::take(&mut self.cr_after_quote) {
            self.pass(b'"');
            self.at = At::Quoted;
        } else {
            self.at = At::Unquoted;
        }
        self.pass(b'\r');
    }

    /// Reads one byte of the file on, queueing what it passes on; false at
    /// its end.
    fn next_byte(&mut self) -> std::io::Result<bool> {
        let chunk = self.inner.fill_buf()?;
        let Some(&b) = chunk.first() else {
            if std::mem::take(&mut self.cr) {
                self.kept_cr_is_data();
            }
            self.ended();
            return Ok(false);
        };
        let outside = matches!(self.at, At::FieldStart | At::Unquoted | At::QuoteInQuoted);
        if b == b'\r' && outside && !self.cr && self.row != b'\r' {
            self.cr = true;
            self.cr_after_quote = self.at == At::QuoteInQuoted;
            self.inner.consume(1);
            return Ok(true);
        }
        if std::mem::take(&mut self.cr) {
            if b == self.row {
                self.cr_after_quote = false; // dropped, as sqlite3 drops it
            } else {
                self.kept_cr_is_data();
                if b == b'\r' {
                    // Read again: it may be the one before the row's end.
                    return Ok(true);
                }
            }
        }
        self.inner.consume(1);
        let (ends, doubled) = self.step(b);
        if self.skip > 0 {
            // Lines are counted as [`Lines`] counts them: every
            // separator, a quoted one too.
            if b == self.row {
                self.skipped.set(self.skipped.get() + 1);
            }
            if ends {
                self.skip -= 1;
            }
            return Ok(true);
        }
        if doubled {
            self.pass(b'"');
        }
        self.pass(b);
        Ok(true)
    }
}

impl<R: BufRead> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if let Some(b) = self.queued.pop_front() {
                buf[n] = b;
                n += 1;
            } else if self.done || !self.next_byte()? {
                self.done = true;
                if self.queued.is_empty() {
                    break;
                }
            }
        }
        Ok(n)
    }
}

/// Notes the offset of every row separator read through it.
pub struct Lines<R> {
    inner: R,
    row: u8,
    at: u64,
    breaks: Rc<RefCell<VecDeque<u64>>>,
}

/// The line numbers of rows, by where they begin.
pub struct LineOf {
    breaks: Rc<RefCell<VecDeque<u64>>>,
    skipped: Rc<Cell<u64>>,
    passed: u64,
}

impl<R: Read> Lines<R> {
    /// Counts the rows of `inner`, `skipped` of them already left out.
    pub fn over(inner: R, row: u8, skipped: Rc<Cell<u64>>) -> (Lines<R>, LineOf) {
        let breaks = Rc::default();
        let of = LineOf {
            breaks: Rc::clone(&breaks),
            skipped,
            passed: 0,
        };
        (
            Lines {
                inner,
                row,
                at: 0,
                breaks,
            },
            of,
        )
    }
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == self.row {
                breaks.push_back(self.at + i as u64);
            }
        }
        self.at += n as u64;
        Ok(n)
    }
}

impl LineOf {
    /// The line (from 1, the skipped ones counted) of the row that begins
    /// at `offset`; offsets asked must not go down.
    pub fn of(&mut self, offset: u64) -> u64 {
        let mut breaks = self.breaks.borrow_mut();
        while breaks.front().is_some_and(|b| *b < offset) {
            breaks.pop_front();
            self.passed += 1;
        }
        self.skipped.get() + self.passed + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8], skip: usize) -> (Vec<u8>, u64) {
        let (mut input, skipped, _) = Input::new(text, b',', b'\n', skip);
        let mut out = Vec::new();
        input.read_to_end(&mut out).unwrap();
        (out, skipped.get())
    }

    #[test]
    fn a_cr_goes_only_before_the_row_separator_outside_quotes() {
        assert_eq!(read(b"a,b\r\n1,x\ry\r\n", 0).0, b"a,b\n1,x\ry\n");
        assert_eq!(read(b"1,\"x\r\"\n", 0).0, b"1,\"x\r\"\n");
        assert_eq!(read(b"1,\"x\"\r\n3,4\r", 0).0, b"1,\"x\"\n3,4\r");
    }

    #[test]
    fn skipped_rows_may_be_blank_or_span_lines() {
        let text = b"h1,h2\n\"x\ny\",1\n\n\"p\nq\",2\n";
        assert_eq!(read(text, 2), (b"\n\"p\nq\",2\n".to_vec(), 3));
        assert_eq!(read(text, 9).0, b"");
    }

    #[test]
    fn a_stray_quote_in_a_quoted_field_is_data_and_said() {
        let text = b"a,b\n\"x\"y,z\n\"open,1\n";
        let (mut input, _, said) = Input::new(&text[..], b',', b'\n', 0);
        // One byte at a time: a doubled quote straddles every read.
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while input.read(&mut byte).unwrap() == 1 {
            out.push(byte[0]);
        }
        assert_eq!(out, b"a,b\n\"x\"\"y,z\n\"\"open,1\n");
        assert_eq!(
            *said.borrow(),
            [
                (2, "unescaped \" character".to_owned()),
                (3, "unescaped \" character".to_owned()),
                (2, "unterminated \"-quoted field".to_owned()),
            ]
        );
    }

    #[test]
    fn a_cr_after_a_closing_quote_ends_the_field_only_before_the_row_end() {
        // The row ends: the CR goes, the quote closed the field.
        assert_eq!(read(b"1,\"x\"\r\n2,3\n", 0).0, b"1,\"x\"\n2,3\n");
        // It does not: the quote was data, and the field reads on.
        assert_eq!(
            read(b"a,b\n1,\"x\"\ry\n2,3\n", 0).0,
            b"a,b\n1,\"x\"\"\ry\n2,3\n"
        );
        assert_eq!(read(b"1,\"x\"\r", 0).0, b"1,\"x\"\"\r");
        // Of two CRs before the row's end, only the last goes.
        assert_eq!(read(b"1,x\r\r\n", 0).0, b"1,x\r\n");
    }
}
