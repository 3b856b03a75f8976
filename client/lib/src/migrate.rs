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

    /// Sends a `Migrate` request and waits for its report.
    async fn migrate_request(&self, request: &Request) -> Result<MigrateReport, WriteError> {
        // It may wait behind other callers' migrations, each as long as
        // the migration budget.
        let timeout = self.options().call_timeout + BUDGET;
        match self.call(request, timeout).await? {
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
