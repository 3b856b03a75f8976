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

/// Read bytes not yet taken as frames.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
}

impl FrameBuf {
    /// An empty buffer.
    pub fn new() -> FrameBuf {
        FrameBuf::default()
    }

    /// Room to read into (at least a chunk, or what the frame at the front
    /// still needs); call [`FrameBuf::filled`] with what was read.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.buf.capacity() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let want = self.pending_len().map_or(0, |n| n + HEADER_LEN).max(CHUNK);
        let have = self.buf.len() - self.start;
        let grow = want.saturating_sub(have).max(CHUNK / 4);
        let len = self.buf.len();
        self.buf.resize(len + grow, 0);
        &mut self.buf[len..]
    }

    /// Keeps `n` bytes of the room [`FrameBuf::spare`] gave (the rest is
    /// given back).
    pub fn filled(&mut self, n: usize, spare_len: usize) {
        let len = self.buf.len();
        self.buf.truncate(len - spare_len + n);
    }

    /// Appends bytes (for tests and decoders fed from a slice).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The declared body length of the frame at the front, once its header
    /// is in.
    pub fn pending_len(&self) -> Option<usize> {
        let rest = &self.buf[self.start..];
        (rest.len() >= HEADER_LEN).then(|| {
            let h: [u8; HEADER_LEN] = rest[..HEADER_LEN].try_into().unwrap_or_default();
            header(&h).0
        })
    }

    /// The next whole frame: its id and body.
    ///
    /// # Errors
    ///
    /// [`TooLarge`] when a header claims more than [`MAX_FRAME_LEN`].
    pub fn next_frame(&mut self) -> Result<Option<(u32, &[u8])>, TooLarge> {
        let rest = &self.buf[self.start..];
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
        self.buf.len() - self.start
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
            while let Some((id, body)) = fb.next_frame().unwrap() {
                got.push((id, body.len()));
            }
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
