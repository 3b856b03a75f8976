//! The line each row of an `.import` begins on.

/// Where each line of the file begins, for the line a row begins on:
/// the `csv` crate's own count is one short after a quoted line break in
/// a file whose lines end in CRLF. The reader notes the offset of every
/// `\n` it passes; [`LineOf::of`] forgets those before the row asked.
pub struct Lines<R> {
    inner: R,
    at: u64,
    breaks: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<u64>>>,
}

/// The line numbers of rows, by where they begin.
pub struct LineOf {
    breaks: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<u64>>>,
    passed: u64,
}

impl<R: std::io::Read> Lines<R> {
    pub fn over(inner: R) -> (Lines<R>, LineOf) {
        let breaks = std::rc::Rc::default();
        let of = LineOf {
            breaks: std::rc::Rc::clone(&breaks),
            passed: 0,
        };
        (
            Lines {
                inner,
                at: 0,
                breaks,
            },
            of,
        )
    }
}

impl<R: std::io::Read> std::io::Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                breaks.push_back(self.at + i as u64);
            }
        }
        self.at += n as u64;
        Ok(n)
    }
}

impl LineOf {
    /// The line (from 1) of the byte at `offset`; offsets asked must not
    /// go down.
    pub fn of(&mut self, offset: u64) -> u64 {
        let mut breaks = self.breaks.borrow_mut();
        // A row may be said to begin at the `\n` of the CRLF before it.
        while breaks.front().is_some_and(|b| *b <= offset) {
            breaks.pop_front();
            self.passed += 1;
        }
        self.passed + 1
    }
}
