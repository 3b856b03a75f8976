//! [`Connection`]: one connection to the arbiter, no retries.

use std::time::{Duration, Instant};

use scribe_protocol::{
    transport, ArbiterClient, Batch, Hello, Paths, Receipt, Status, StopReport, StopRequest,
    WriteError, PROTOCOL_VERSION,
};
use tarpc::client::RpcError;
use tarpc::context;
use tokio::net::UnixStream;

use crate::autostart;
use crate::options::Options;

/// One connection to the arbiter of one database. Cheap to clone; clones
/// share the connection and may call concurrently (calls are pipelined).
/// [`Client`](crate::Client) adds reconnection and retries on top.
#[derive(Clone, Debug)]
pub struct Connection {
    rpc: ArbiterClient,
    hello: Hello,
    options: Options,
}

impl Connection {
    /// Connects (auto-starting the arbiter when `options.autostart` and
    /// nobody answers) and says hello.
    ///
    /// # Errors
    ///
    /// `Unavailable` with the reason when no arbiter answers; `Protocol`
    /// when its protocol version differs.
    pub async fn connect(paths: &Paths, options: &Options) -> Result<Connection, WriteError> {
        // A connection can land on an arbiter that is just stopping (it
        // closes connections whose hello it has not read): try again,
        // for as long as an auto-start would be given.
        let deadline = Instant::now() + options.ready_timeout;
        loop {
            let stream = match autostart::try_connect(paths).await? {
                Some(s) => s,
                None if options.autostart => autostart::start(paths, options).await?.stream,
                None => {
                    return Err(WriteError::Unavailable {
                        reason: format!(
                            "no arbiter is running for {} (auto-start is off; run `scribe start`)",
                            paths.db.display()
                        ),
                    })
                }
            };
            match Connection::handshake(stream, options).await {
                Err(WriteError::Unavailable { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                other => return other,
            }
        }
    }

    /// Says hello on an already connected stream.
    ///
    /// # Errors
    ///
    /// As [`Connection::connect`].
    pub async fn handshake(
        stream: UnixStream,
        options: &Options,
    ) -> Result<Connection, WriteError> {
        let rpc = ArbiterClient::new(Default::default(), transport::client(stream)).spawn();
        let hello = rpc
            .hello(deadline(options), PROTOCOL_VERSION)
            .await
            .map_err(|e| rpc_error(e, options.call_timeout))??;
        Ok(Connection {
            rpc,
            hello,
            options: options.clone(),
        })
    }

    /// What the arbiter said at hello (its version and pid).
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Sends a batch and waits until it is committed.
    ///
    /// # Errors
    ///
    /// Any category; `Timeout` means the outcome is unknown.
    pub async fn write(&self, batch: Batch) -> Result<Receipt, WriteError> {
        self.write_within(batch, self.options.call_timeout).await
    }

    /// As [`Connection::write`], with its own deadline.
    ///
    /// # Errors
    ///
    /// Any category; `Timeout` means the outcome is unknown.
    pub async fn write_within(
        &self,
        batch: Batch,
        timeout: Duration,
    ) -> Result<Receipt, WriteError> {
        batch.check(&self.hello.limits)?;
        let mut ctx = context::current();
        ctx.deadline = deadline_in(timeout);
        self.rpc.write(ctx, batch).await.map_err(|e| match e {
            RpcError::DeadlineExceeded => rpc_error(e, timeout),
            // Once the request may have left, a lost connection says
            // nothing about whether it committed.
            other => WriteError::Timeout {
                message: format!(
                    "the connection to the arbiter was lost after the write was sent ({other}); \
                     it may or may not have committed: only a retry with the same idempotency \
                     key is safe"
                ),
            },
        })?
    }

    /// The arbiter's counters and settings.
    ///
    /// # Errors
    ///
    /// `Unavailable` or `Timeout` when it does not answer.
    pub async fn status(&self) -> Result<Status, WriteError> {
        self.rpc
            .status(deadline(&self.options))
            .await
            .map_err(|e| rpc_error(e, self.options.call_timeout))?
    }

    /// Asks the arbiter to drain and exit; answered once the queue is
    /// drained (the process may still be closing).
    ///
    /// # Errors
    ///
    /// `Unavailable` or `Timeout` when it does not answer.
    pub async fn stop(&self, request: StopRequest) -> Result<StopReport, WriteError> {
        self.rpc
            .stop(deadline(&self.options), request)
            .await
            .map_err(|e| rpc_error(e, self.options.call_timeout))?
    }
}

fn deadline(options: &Options) -> context::Context {
    let mut ctx = context::current();
    ctx.deadline = deadline_in(options.call_timeout);
    ctx
}

/// Now plus `timeout`, capped at [`MAX_CALL_TIMEOUT`](crate::options::MAX_CALL_TIMEOUT).
fn deadline_in(timeout: Duration) -> Instant {
    Instant::now() + timeout.min(crate::options::MAX_CALL_TIMEOUT)
}

/// Maps a transport failure onto the categories.
fn rpc_error(e: RpcError, timeout: Duration) -> WriteError {
    match e {
        RpcError::DeadlineExceeded => WriteError::Timeout {
            message: format!(
                "no answer within {}; a write may or may not have committed \
                 (retry it with the same idempotency key)",
                humantime::format_duration(timeout)
            ),
        },
        other => WriteError::Unavailable {
            reason: format!("connection to the arbiter lost: {other}"),
        },
    }
}
