//! The typed calls of a [`Connection`]: a write, the status, a stop.

use std::time::Duration;

use scribe_protocol::frame::{Answer, Request};
use scribe_protocol::{Batch, Receipt, Status, StopReport, StopRequest, WriteError};

use super::Connection;

impl Connection {
    /// Sends a batch and waits until it is committed.
    ///
    /// # Errors
    ///
    /// Any category; `Timeout` means the outcome is unknown.
    pub async fn write(&self, batch: Batch) -> Result<Receipt, WriteError> {
        self.write_within(batch, self.inner.options.call_timeout)
            .await
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
        self.write_request(&Request::Write(batch), timeout).await
    }

    /// Sends a write request (a batch, checked against the arbiter's
    /// limits first) and waits for its receipt.
    pub(crate) async fn write_request(
        &self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Receipt, WriteError> {
        if let Request::Write(batch) = request {
            batch.check(&self.inner.hello.limits)?;
        }
        match self.call(request, timeout).await? {
            Answer::Receipt(r) => Ok(r),
            other => Err(unexpected("write", &other)),
        }
    }

    /// The arbiter's counters and settings.
    ///
    /// # Errors
    ///
    /// `Unavailable` or `Timeout` when it does not answer.
    pub async fn status(&self) -> Result<Status, WriteError> {
        match self
            .call(&Request::Status, self.inner.options.call_timeout)
            .await?
        {
            Answer::Status(s) => Ok(*s),
            other => Err(unexpected("status", &other)),
        }
    }

    /// Asks the arbiter to drain and exit; answered once the queue is
    /// drained (the process may still be closing).
    ///
    /// # Errors
    ///
    /// `Unavailable` or `Timeout` when it does not answer.
    pub async fn stop(&self, request: StopRequest) -> Result<StopReport, WriteError> {
        match self
            .call(&Request::Stop(request), self.inner.options.call_timeout)
            .await?
        {
            Answer::Stopped(r) => Ok(r),
            other => Err(unexpected("stop", &other)),
        }
    }
}

pub(crate) fn unexpected(what: &str, answer: &Answer) -> WriteError {
    WriteError::Protocol {
        message: format!("the arbiter answered {what} with {answer:?}"),
    }
}

/// A write whose connection ended after it was sent; `safe_again` says
/// what asking again safely takes.
pub(super) fn unknown(why: &str, safe_again: &str) -> WriteError {
    WriteError::Timeout {
        message: format!(
            "the connection to the arbiter was lost after the write was sent ({why}); it may \
             or may not have committed: {safe_again}"
        ),
    }
}
