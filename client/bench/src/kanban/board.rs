//! One interface over the two ways a kanban process reaches the database:
//! through scribe (batches, reads from the file) or directly (each
//! operation one `BEGIN IMMEDIATE` transaction, retried on BUSY).

use std::path::Path;
use std::time::Instant;

use scribe_client::{Client, Options};
use scribe_protocol::{Batch, Params, Paths, Statement, StatementResult, Value, WriteError};
use scribe_reader::Reader;
use scribe_values as values;

use crate::shared::direct::{Direct, Failed};

/// Why an operation did not commit.
#[derive(Debug)]
pub enum Refusal {
    /// An expectation was not met: someone else got there first.
    Conflict,
    /// Anything else (the text says what).
    Error(String),
}

/// A kanban process's way to the database.
pub enum Board {
    /// Through the arbiter.
    Scribe {
        /// Writes.
        client: Client,
        /// Reads.
        reader: Reader,
        /// Runs the client's futures.
        rt: tokio::runtime::Runtime,
    },
    /// Each process its own connection.
    Direct(Box<Direct>),
}

impl Board {
    /// Opens the board for `db`.
    ///
    /// # Errors
    ///
    /// When the database or the arbiter cannot be reached.
    pub fn open(db: &str, scribe: bool, sync: &str) -> Result<Board, String> {
        if !scribe {
            return Direct::open(db, sync, false).map(|d| Board::Direct(Box::new(d)));
        }
        let paths = Paths::for_db(Path::new(db), None).map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let client = rt
            .block_on(Client::connect(&paths, &Options::default()))
            .map_err(|e| e.to_string())?;
        let reader = Reader::open(&paths).map_err(|e| e.to_string())?;
        Ok(Board::Scribe { client, reader, rt })
    }

    /// Applies `statements` atomically; returns per-statement results and
    /// the time it took.
    ///
    /// # Errors
    ///
    /// `Conflict` when an `expect_rows` is not met (nothing written).
    pub fn write(
        &mut self,
        statements: Vec<Statement>,
    ) -> Result<(Vec<StatementResult>, u32), Refusal> {
        let t = Instant::now();
        let out = match self {
            Board::Scribe { client, rt, .. } => {
                match rt.block_on(client.write(Batch::new(statements))) {
                    Ok(r) => Ok(r.results),
                    Err(WriteError::Conflict { .. }) => Err(Refusal::Conflict),
                    Err(e) => Err(Refusal::Error(e.to_string())),
                }
            }
            Board::Direct(d) => d
                .transaction(|c| {
                    let mut results = Vec::with_capacity(statements.len());
                    for st in &statements {
                        let mut stmt = c.prepare_cached(&st.sql)?;
                        values::bind(&mut stmt, &st.params)?;
                        let r = values::run(c, &mut stmt, usize::MAX)?.unwrap_or_default();
                        if st.expect_rows.is_some_and(|n| n != r.rows_affected) {
                            return Err(Failed::Conflict);
                        }
                        results.push(r);
                    }
                    Ok(results)
                })
                .map_err(|e| match e {
                    Failed::Conflict => Refusal::Conflict,
                    Failed::Sql(e) => Refusal::Error(e.to_string()),
                }),
        };
        out.map(|r| (r, t.elapsed().as_micros() as u32))
    }

    /// Runs a query.
    ///
    /// # Errors
    ///
    /// SQLite's error, as text.
    pub fn read(
        &mut self,
        sql: &str,
        params: Vec<(String, Value)>,
    ) -> Result<Vec<Vec<Value>>, String> {
        let params = if params.is_empty() {
            Params::None
        } else {
            Params::Named(params)
        };
        match self {
            Board::Scribe { reader, .. } => reader
                .query(sql, &params)
                .map(|r| r.rows)
                .map_err(|e| e.to_string()),
            Board::Direct(d) => {
                let mut stmt = d.conn.prepare_cached(sql).map_err(|e| e.to_string())?;
                values::bind(&mut stmt, &params).map_err(|e| e.to_string())?;
                values::collect(&mut stmt, usize::MAX)
                    .map(|c| c.rows)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// BUSY retries (direct) or client retries (scribe) so far.
    pub fn retries(&self) -> u64 {
        match self {
            Board::Scribe { client, .. } => client.stats().retries,
            Board::Direct(d) => d.busy,
        }
    }
}
