//! Length-delimited bincode over a Unix socket, with an explicit maximum
//! frame size on both sides.

use std::io;
use std::marker::PhantomData;
use std::pin::Pin;

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};
use tarpc::{
    serde_transport::{self, Transport},
    tokio_serde::{Deserializer, Serializer},
    tokio_util::bytes::{Bytes, BytesMut},
    tokio_util::codec::LengthDelimitedCodec,
    ClientMessage, Response,
};
use tokio::net::UnixStream;

/// bincode with tokio-serde's options, except that a body whose decoding
/// panics is an error for that frame instead of a crashed connection
/// task. (The property tests found one: tarpc turns a request's deadline
/// into an `Instant` by addition, which panics on an absurd deadline.)
pub struct Bincode<Item, SinkItem>(PhantomData<Direction<Item, SinkItem>>);

/// Reads `Item`s, writes `SinkItem`s (fn pointers: `Send`, `Sync`, `Unpin`
/// whatever the types).
type Direction<Item, SinkItem> = (fn() -> Item, fn(SinkItem));

impl<Item, SinkItem> Default for Bincode<Item, SinkItem> {
    fn default() -> Self {
        Bincode(PhantomData)
    }
}

impl<Item: DeserializeOwned, SinkItem> Deserializer<Item> for Bincode<Item, SinkItem> {
    type Error = io::Error;

    fn deserialize(self: Pin<&mut Self>, src: &BytesMut) -> Result<Item, io::Error> {
        decode(src)
    }
}

impl<Item, SinkItem: Serialize> Serializer<SinkItem> for Bincode<Item, SinkItem> {
    type Error = io::Error;

    fn serialize(self: Pin<&mut Self>, item: &SinkItem) -> Result<Bytes, io::Error> {
        bincode::DefaultOptions::new()
            .serialize(item)
            .map(Bytes::from)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

std::thread_local! {
    /// True while this thread decodes a frame: a panic then is a bad frame,
    /// reported as an error, and not worth a message or a backtrace.
    static DECODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once) a panic hook that stays quiet for panics caught while
/// decoding and defers to the previous hook for every other panic.
fn quiet_decoding_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Decodes one frame's body; a panic while decoding is an error.
fn decode<T: DeserializeOwned>(src: &[u8]) -> Result<T, io::Error> {
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    quiet_decoding_panics();
    DECODING.with(|d| d.set(true));
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bincode::DefaultOptions::new().deserialize::<T>(src)
    }));
    DECODING.with(|d| d.set(false));
    decoded
        .map_err(|_| bad("undecodable frame".into()))?
        .map_err(|e| bad(e.to_string()))
}

use crate::limits::MAX_FRAME_LEN;
use crate::service::{ArbiterRequest, ArbiterResponse};

/// The arbiter's side of one connection.
pub type ServerTransport = Transport<
    UnixStream,
    ClientMessage<ArbiterRequest>,
    Response<ArbiterResponse>,
    Bincode<ClientMessage<ArbiterRequest>, Response<ArbiterResponse>>,
>;

/// A caller's side of one connection.
pub type ClientTransport = Transport<
    UnixStream,
    Response<ArbiterResponse>,
    ClientMessage<ArbiterRequest>,
    Bincode<Response<ArbiterResponse>, ClientMessage<ArbiterRequest>>,
>;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_LEN)
        .new_codec()
}

/// Wraps an accepted stream.
pub fn server(stream: UnixStream) -> ServerTransport {
    serde_transport::new(
        tarpc::tokio_util::codec::Framed::new(stream, codec()),
        Bincode::default(),
    )
}

/// Wraps a connected stream.
pub fn client(stream: UnixStream) -> ClientTransport {
    serde_transport::new(
        tarpc::tokio_util::codec::Framed::new(stream, codec()),
        Bincode::default(),
    )
}

/// The decoding path of every frame the arbiter reads, as the server runs
/// it: the length-delimited codec, then bincode with tokio-serde's options.
/// Exposed for the property tests; returns how many frames decoded into a
/// request.
pub fn decode_all(bytes: &[u8]) -> usize {
    use tarpc::tokio_util::codec::Decoder;
    let mut codec = codec();
    let mut buf = tarpc::tokio_util::bytes::BytesMut::from(bytes);
    let mut decoded = 0;
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        if decode::<ClientMessage<ArbiterRequest>>(&frame).is_ok() {
            decoded += 1;
        }
    }
    decoded
}

#[cfg(test)]
mod fuzz {
    //! Random and mutated input through the decoding path: it may fail,
    //! never panic, and never allocate from a claimed length (a claim past
    //! the frame limit is refused by the codec; bincode reads slices, so a
    //! claimed string or vector longer than the frame fails at once).
    //! `PROPTEST_CASES=1000000 cargo test -p scribe-protocol fuzz` runs a
    //! long campaign.

    use super::*;
    use crate::{Batch, Statement, Value};
    use proptest::prelude::*;

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3000)
    }

    /// A valid frame carrying a write.
    fn valid_frame(sql: &str, blob: Vec<u8>) -> Vec<u8> {
        let msg: ClientMessage<ArbiterRequest> = ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id: 7,
            message: ArbiterRequest::Write {
                batch: Batch {
                    statements: vec![Statement::new(sql).params(vec![Value::Blob(blob), 1.into()])],
                    key: Some("k".into()),
                },
            },
        });
        let body = bincode::DefaultOptions::new().serialize(&msg).unwrap();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(body);
        frame
    }

    #[test]
    fn a_valid_frame_decodes() {
        assert_eq!(decode_all(&valid_frame("SELECT ?1, ?2", vec![1, 2, 3])), 1);
    }

    /// A request whose deadline is `u64::MAX` seconds away: the deadline is
    /// the first field after the variant tag, one varint byte for the
    /// default 10 s, replaced here by the 9-byte varint of `u64::MAX`.
    pub fn absurd_deadline_body() -> Vec<u8> {
        let msg: ClientMessage<ArbiterRequest> = ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id: 1,
            message: ArbiterRequest::Status {},
        });
        let body = bincode::DefaultOptions::new().serialize(&msg).unwrap();
        assert!(body[1] <= 10, "the deadline's seconds are one varint byte");
        let mut out = vec![body[0], 0xfd];
        out.extend([0xff; 8]);
        out.extend(&body[2..]);
        out
    }

    #[test]
    fn an_absurd_deadline_is_an_error_not_a_panic() {
        // The input the property test found; without the guard in
        // `decode` this panics inside tarpc's deadline arithmetic.
        let err = decode::<ClientMessage<ArbiterRequest>>(&absurd_deadline_body()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_frame_claiming_4_gib_is_refused_without_allocating() {
        let mut bytes = vec![0xff, 0xff, 0xff, 0xff];
        bytes.extend([0u8; 64]);
        assert_eq!(decode_all(&bytes), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            decode_all(&bytes);
        }

        #[test]
        fn random_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend(body);
            decode_all(&frame);
        }

        #[test]
        fn mutated_valid_frames_never_panic(
            sql in ".{0,64}",
            blob in proptest::collection::vec(any::<u8>(), 0..256),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut frame = valid_frame(&sql, blob);
            for (at, byte) in flips {
                let i = at.index(frame.len());
                frame[i] = byte;
            }
            let keep = cut.index(frame.len() + 1);
            frame.truncate(keep.max(1));
            decode_all(&frame);
        }
    }
}
