//! The RPC handlers. Thin: they check the handshake, enqueue and await.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use scribe_protocol::{
    Arbiter, Batch, Hello, Receipt, Status, StopReport, StopRequest, WriteError, PROTOCOL_VERSION,
};
use tarpc::context::Context;

use crate::state::{InFlight, Shared, StopReason};

/// One connection's view of the service; cloned per request.
#[derive(Clone, Debug)]
pub struct Service {
    shared: Arc<Shared>,
    greeted: Arc<AtomicBool>,
}

impl Service {
    /// A service for a new connection (not yet greeted).
    pub fn new(shared: Arc<Shared>) -> Self {
        Service {
            shared,
            greeted: Arc::new(AtomicBool::new(false)),
        }
    }

    fn check_greeted(&self) -> Result<InFlight, WriteError> {
        if !self.greeted.load(Ordering::Acquire) {
            return Err(WriteError::Protocol {
                message: "the first call on a connection must be hello(version)".into(),
            });
        }
        self.shared.touch();
        Ok(InFlight::new(&self.shared))
    }
}

impl Arbiter for Service {
    async fn hello(self, _: Context, version: u32) -> Result<Hello, WriteError> {
        if version != PROTOCOL_VERSION {
            tracing::warn!(
                client = version,
                server = PROTOCOL_VERSION,
                "protocol mismatch"
            );
            return Err(WriteError::Protocol {
                message: format!(
                    "client speaks protocol version {version}, this arbiter speaks version \
                     {PROTOCOL_VERSION}; use a client and an arbiter of the same release"
                ),
            });
        }
        self.greeted.store(true, Ordering::Release);
        Ok(Hello {
            protocol_version: PROTOCOL_VERSION,
            server_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            limits: self.shared.config.limits.clone(),
        })
    }

    async fn write(self, _: Context, batch: Batch) -> Result<Receipt, WriteError> {
        let _guard = self.check_greeted()?;
        self.shared.writer.submit(batch).await
    }

    async fn status(self, _: Context) -> Result<Status, WriteError> {
        let _guard = self.check_greeted()?;
        Ok(self.shared.status())
    }

    async fn stop(self, _: Context, request: StopRequest) -> Result<StopReport, WriteError> {
        let _guard = self.check_greeted()?;
        tracing::info!(hold = request.hold, grace_ms = ?request.grace_ms, "stop requested");
        self.shared.begin_shutdown(StopReason::Requested(request));
        let mut drained = self.shared.drained.subscribe();
        let drained = match drained.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(0),
            Err(_) => 0,
        };
        Ok(StopReport {
            drained,
            pid: std::process::id(),
        })
    }
}
