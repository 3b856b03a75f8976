//! The bytes of an `.import` file as sqlite3 reads them, before the `csv`
//! crate splits them, and the line each row begins on.
//!
//! [`Input`] skips the first `--skip` rows (a blank one counts; a quoted
//! field may span lines) and drops a CR just before the row separator
//! outside quotes, as sqlite3 does; a CR anywhere else is data (a quoted
//! field's last byte, a last line with no break after it). [`Lines`]
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
    /// it ends the row.
    cr: bool,
    skip: usize,
    /// Row separators passed while skipping (for the line numbers).
    skipped: Rc<Cell<u64>>,
}

impl<R: BufRead> Input<R> {
    /// Reads `inner`, skipping its first `skip` rows.
    pub fn new(inner: R, col: u8, row: u8, skip: usize) -> (Input<R>, Rc<Cell<u64>>) {
        let skipped = Rc::new(Cell::new(0));
        let input = Input {
            inner,
            col,
            row,
            at: At::FieldStart,
            cr: false,
            skip,
            skipped: Rc::clone(&skipped),
        };
        (input, skipped)
    }

    /// Moves the state on by `b`; true when `b` ends a row.
    fn step(&mut self, b: u8) -> bool {
        let (col, row) = (self.col, self.row);
        let (at, ends) = match (self.at, b) {
            (At::Quoted, b'"') => (At::QuoteInQuoted, false),
            (At::Quoted, _) => (At::Quoted, false),
            (At::QuoteInQuoted, b'"') => (At::Quoted, false),
            (At::FieldStart, b'"') => (At::Quoted, false),
            (_, b) if b == row => (At::FieldStart, true),
            (_, b) if b == col => (At::FieldStart, false),
            _ => (At::Unquoted, false),
        };
        self.at = at;
        ends
    }
}

impl<R: BufRead> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let chunk = self.inner.fill_buf()?;
            let Some(&b) = chunk.first() else {
                if std::mem::take(&mut self.cr) && self.skip == 0 {
                    buf[n] = b'\r';
                    n += 1;
                }
                return Ok(n);
            };
            let outside = matches!(self.at, At::FieldStart | At::Unquoted | At::QuoteInQuoted);
            if b == b'\r' && outside && !self.cr && self.row != b'\r' {
                self.cr = true;
                self.inner.consume(1);
                continue;
            }
            // A CR kept back that does not end the row is data after all.
            if std::mem::take(&mut self.cr) && b != self.row && self.skip == 0 {
                buf[n] = b'\r';
                n += 1;
                self.at = At::Unquoted;
                if n == buf.len() {
                    return Ok(n);
                }
            }
            self.inner.consume(1);
            let ends = self.step(b);
            if self.skip > 0 {
                // Lines are counted as [`Lines`] counts them: every
                // separator, a quoted one too.
                if b == self.row {
                    self.skipped.set(self.skipped.get() + 1);
                }
                if ends {
                    self.skip -= 1;
                }
                continue;
            }
            buf[n] = b;
            n += 1;
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
        let (mut input, skipped) = Input::new(text, b',', b'\n', skip);
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
}
