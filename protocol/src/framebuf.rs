//! Bytes read from a socket, split into frames in place: one read may
//! bring many frames, and none is copied out before it is decoded.

use crate::frame::{header, HEADER_LEN};
use crate::limits::MAX_FRAME_LEN;

/// How much a buffer grows by at least, per read.
const CHUNK: usize = 64 * 1024;

/// A frame claiming more than [`MAX_FRAME_LEN`]: the connection cannot go
/// on (what follows cannot be found).
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge(pub usize);

/// Read bytes not yet taken as frames: `buf[start..end]`. The buffer is
/// zeroed once when it grows, never per read (zero-filling 64 KiB per
/// read was a tenth of the arbiter's socket thread).
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameBuf {
    /// An empty buffer.
    pub fn new() -> FrameBuf {
        FrameBuf::default()
    }

    /// Room to read into (at least a chunk, or what the frame at the front
    /// still needs); call [`FrameBuf::filled`] with what was read.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        let want = self.pending_len().map_or(0, |n| n + HEADER_LEN).max(CHUNK);
        if self.buf.len() - self.start < want || self.buf.len() - self.end < CHUNK / 4 {
            // Move what is held to the front, then grow if still short.
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            let need = (self.end + CHUNK / 4).max(want);
            if self.buf.len() < need {
                self.buf.resize(need.next_power_of_two(), 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Keeps `n` bytes of the room [`FrameBuf::spare`] gave.
    pub fn filled(&mut self, n: usize, _spare_len: usize) {
        self.end += n;
    }

    /// Appends bytes (for tests and decoders fed from a slice).
    pub fn extend(&mut self, bytes: &[u8]) {
        let spare = self.spare();
        if spare.len() >= bytes.len() {
            spare[..bytes.len()].copy_from_slice(bytes);
            self.end += bytes.len();
        } else {
            self.buf.truncate(self.end);
            self.buf.extend_from_slice(bytes);
            self.end = self.buf.len();
        }
    }

    /// The declared body length of the frame at the front, once its header
    /// is in.
    pub fn pending_len(&self) -> Option<usize> {
        let rest = &self.buf[self.start..self.end];
        (rest.len() >= HEADER_LEN).then(|| {
            let h: [u8; HEADER_LEN] = rest[..HEADER_LEN].try_into().unwrap_or_default();
            header(&h).0
        })
    }

    /// Whether the frame at the front has arrived whole (its header and
    /// all of its body).
    pub fn front_whole(&self) -> bool {
        self.pending_len()
            .is_some_and(|n| self.end - self.start >= HEADER_LEN + n)
    }

    /// The next whole frame: its id and body.
    ///
    /// # Errors
    ///
    /// [`TooLarge`] when a header claims more than [`MAX_FRAME_LEN`].
    pub fn next_frame(&mut self) -> Result<Option<(u32, &[u8])>, TooLarge> {
        let rest = &self.buf[self.start..self.end];
        if rest.len() < HEADER_LEN {
            return Ok(None);
        }
        let h: [u8; HEADER_LEN] = rest[..HEADER_LEN].try_into().unwrap_or_default();
        let (len, id) = header(&h);
        if len > MAX_FRAME_LEN {
            return Err(TooLarge(len));
        }
        if rest.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body_at = self.start + HEADER_LEN;
        self.start = body_at + len;
        Ok(Some((id, &self.buf[body_at..body_at + len])))
    }

    /// Bytes held (read, not yet taken).
    pub fn held(&self) -> usize {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_and_many_per_read() {
        let mut wire = Vec::new();
        for (id, body) in [(1u32, &b"abc"[..]), (2, b""), (3, &[7u8; 100_000][..])] {
            crate::frame::encode_raw(id, body, &mut wire);
        }
        let mut fb = FrameBuf::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(7_000) {
            let spare = fb.spare();
            let n = chunk.len().min(spare.len());
            spare[..n].copy_from_slice(&chunk[..n]);
            let l = spare.len();
            fb.filled(n, l);
            assert_eq!(n, chunk.len());
            // Whole exactly when the next frame is there to take.
            let whole = fb.front_whole();
            let before = got.len();
            while let Some((id, body)) = fb.next_frame().unwrap() {
                got.push((id, body.len()));
            }
            assert_eq!(whole, got.len() > before);
        }
        assert_eq!(got, vec![(1, 3), (2, 0), (3, 100_000)]);
        assert_eq!(fb.held(), 0);
    }

    #[test]
    fn an_absurd_length_is_refused_before_any_allocation() {
        let mut fb = FrameBuf::new();
        fb.extend(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]);
        assert_eq!(fb.pending_len(), Some(u32::MAX as usize));
        assert!(fb.next_frame().is_err());
    }
}
