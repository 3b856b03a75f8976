//! The RPC service every arbiter serves.

use crate::{
    batch::Batch,
    receipt::{Hello, Receipt, StopReport, StopRequest},
    status::Status,
    wire_error::WriteError,
};

/// The protocol version. Bump on any change to the types of this crate or
/// to the service trait; the handshake refuses a mismatch.
pub const PROTOCOL_VERSION: u32 = 1;

/// The arbiter's RPC interface.
///
/// A connection starts with [`Arbiter::hello`]; other calls on a connection
/// that has not said hello are answered with `Protocol`.
#[tarpc::service]
pub trait Arbiter {
    /// Handshake: the caller's protocol version. A mismatch is a
    /// `Protocol` error naming both versions.
    async fn hello(version: u32) -> Result<Hello, WriteError>;
    /// Queue a batch; answered once it is committed (or failed).
    async fn write(batch: Batch) -> Result<Receipt, WriteError>;
    /// The arbiter's counters and settings.
    async fn status() -> Result<Status, WriteError>;
    /// Ask the arbiter to drain and exit; answered once the queue is drained.
    async fn stop(request: StopRequest) -> Result<StopReport, WriteError>;
}
