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
