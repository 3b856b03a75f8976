//! A blocking client that speaks the socket protocol frame by frame, for
//! tests that must send what no well-behaved client would (a wrong
//! version, an oversized batch, garbage).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use scribe_protocol::frame::{self, Request, CODEC_BINCODE, HEADER_LEN};
use scribe_protocol::{Reply, PROTOCOL_VERSION};

/// One raw connection (preamble sent).
pub struct Raw {
    /// The socket.
    pub stream: UnixStream,
    next: u32,
}

impl Raw {
    /// Connects and sends the preamble.
    ///
    /// # Panics
    ///
    /// When the socket does not accept.
    pub fn connect(socket: &Path) -> Raw {
        let mut stream = UnixStream::connect(socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream
            .write_all(&frame::preamble(CODEC_BINCODE))
            .expect("preamble");
        Raw { stream, next: 0 }
    }

    /// Sends a request; returns its id.
    ///
    /// # Panics
    ///
    /// When the socket cannot be written.
    pub fn send(&mut self, request: &Request) -> u32 {
        let id = self.next;
        self.next += 1;
        let mut out = Vec::new();
        frame::encode(id, request, &mut out).expect("encode");
        self.stream.write_all(&out).expect("send");
        id
    }

    /// Reads the next answer: its id and reply (`None` at the end of the
    /// stream).
    pub fn recv(&mut self) -> Option<(u32, Reply)> {
        let mut h = [0u8; HEADER_LEN];
        self.stream.read_exact(&mut h).ok()?;
        let (len, id) = frame::header(&h);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).ok()?;
        Some((id, frame::decode_reply(&body).unwrap_or_else(Err)))
    }

    /// Sends a request and reads its answer.
    ///
    /// # Panics
    ///
    /// When the connection ends first.
    pub fn call(&mut self, request: &Request) -> Reply {
        self.send(request);
        self.recv().expect("an answer").1
    }

    /// Says hello with this release's version.
    ///
    /// # Panics
    ///
    /// When the arbiter refuses it.
    pub fn greeted(socket: &Path) -> Raw {
        let mut r = Raw::connect(socket);
        r.call(&Request::Hello {
            version: PROTOCOL_VERSION,
        })
        .expect("hello");
        r
    }
}
