//! Schema migrations from the program: [`Client::migrate`]. Any number of
//! processes may call it at once with the same list: the arbiter applies
//! each missing step once and tells the others the database is there.

use scribe_protocol::frame::{Answer, Request};
use scribe_protocol::migration::BUDGET;
use scribe_protocol::{MigrateReport, Migration, WriteError};

use crate::client::Client;
use crate::connection::{unexpected, Connection};
use crate::retry::{self, Backoff, Verdict};

impl Connection {
    /// Asks the arbiter to bring the schema up to the last of `list`.
    ///
    /// # Errors
    ///
    /// As [`Client::migrate`], without the retries.
    pub async fn migrate(&self, list: Vec<Migration>) -> Result<MigrateReport, WriteError> {
        self.migrate_request(&Request::Migrate(list)).await
    }

    /// Sends a `Migrate` request and waits for its report: as long as
    /// its migrations may take (each has the migration budget), while the
    /// arbiter answers a `status` every call timeout. One that stops
    /// answering (frozen, SIGSTOPped) is given up on within two call
    /// timeouts, not after the budget (five minutes).
    async fn migrate_request(&self, request: &Request) -> Result<MigrateReport, WriteError> {
        let steps = match request {
            Request::Migrate(list) => u32::try_from(list.len()).unwrap_or(u32::MAX),
            _ => 1,
        };
        // It may also wait behind another caller's migrations.
        let every = self.options().call_timeout;
        let timeout = every + BUDGET.saturating_mul(steps.saturating_add(1));
        let call = self.call(request, timeout);
        tokio::pin!(call);
        let answer = loop {
            tokio::select! {
                answer = &mut call => break answer?,
                () = tokio::time::sleep(every) => {
                    if let Err(e) = self.status().await {
                        return Err(WriteError::Timeout {
                            message: format!(
                                "the arbiter stopped answering while the migrations ran ({e}); \
                                 whether they were applied is unknown: ask again (applied \
                                 steps are recorded, nothing runs twice)"
                            ),
                        });
                    }
                }
            }
        };
        match answer {
            Answer::Migrated(r) => Ok(r),
            other => Err(unexpected("migrate", &other)),
        }
    }
}

impl Client {
    /// Brings the schema up to the last of `list` (versions 1, 2, 3… with
    /// no gap; see [`scribe_protocol::migration::from_dir`] for files).
    /// The report says what this call applied, where the database was and
    /// is, and whether it is newer than `list` (an older program may go
    /// on). Asking again is always safe: applied steps are recorded, so a
    /// lost answer is retried like a write, until `retry_for` passes.
    ///
    /// # Errors
    ///
    /// `Conflict` when an applied migration's text changed (nothing is
    /// applied); `Refused` for a gap; the failing migration's `Sql` error
    /// naming its version and statement (it is rolled back whole).
    pub async fn migrate(&self, list: Vec<Migration>) -> Result<MigrateReport, WriteError> {
        crate::inside::refuse_inside(self.id(), "a migration")?;
        scribe_protocol::migration::check_list(&list)?;
        let deadline = retry::deadline(self.options().retry_for);
        let mut backoff = Backoff::default();
        // Built once: each try sends it by reference.
        let request = Request::Migrate(list);
        loop {
            let (generation, outcome) = match self.connection().await {
                Ok((g, c)) => (g, c.migrate_request(&request).await),
                Err(e) => (u64::MAX, Err(e)),
            };
            let error = match outcome {
                Ok(report) => return Ok(report),
                Err(e) => e,
            };
            let Verdict::Retry {
                reconnect,
                at_least,
            } = retry::verdict(&error, self.paths())
            else {
                return Err(retry::given_up(error, self.paths()));
            };
            let pause = backoff.pause(at_least);
            if retry::past(deadline, pause) {
                return Err(error);
            }
            if reconnect {
                self.drop_connection(generation).await;
            }
            tokio::time::sleep(pause).await;
        }
    }
}
