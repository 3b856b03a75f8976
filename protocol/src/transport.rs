//! Length-delimited bincode over a Unix socket, with an explicit maximum
//! frame size on both sides.

use tarpc::{
    serde_transport::{self, Transport},
    tokio_serde::formats::Bincode,
    tokio_util::codec::LengthDelimitedCodec,
    ClientMessage, Response,
};
use tokio::net::UnixStream;

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
    use bincode::Options;
    use tarpc::tokio_util::codec::Decoder;
    let mut codec = codec();
    let mut buf = tarpc::tokio_util::bytes::BytesMut::from(bytes);
    let mut decoded = 0;
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        if bincode::DefaultOptions::new()
            .deserialize::<ClientMessage<ArbiterRequest>>(&frame)
            .is_ok()
        {
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
    use bincode::Options;
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
