//! A write request: one or more statements applied all or nothing.

use serde::{Deserialize, Serialize};

use crate::limits;
use crate::value::Value;
use crate::wire_error::WriteError;

/// Parameters of one statement.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Params {
    /// No parameters.
    #[default]
    None,
    /// `?`, `?NNN` parameters, bound in order starting at 1.
    Positional(#[serde(deserialize_with = "crate::frame::bounded_values")] Vec<Value>),
    /// `:name`, `@name`, `$name` parameters; the name includes its prefix
    /// character (`":id"`), or gets `:` added when it has none.
    Named(#[serde(deserialize_with = "crate::frame::bounded_named")] Vec<(String, Value)>),
}

impl Params {
    /// Number of values carried.
    pub fn len(&self) -> usize {
        match self {
            Params::None => 0,
            Params::Positional(v) => v.len(),
            Params::Named(v) => v.len(),
        }
    }

    /// True when no value is carried.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn wire_len(&self) -> usize {
        match self {
            Params::None => 0,
            Params::Positional(v) => v.iter().map(Value::wire_len).sum(),
            Params::Named(v) => v.iter().map(|(n, x)| n.len() + x.wire_len()).sum(),
        }
    }
}

/// One SQL statement of a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Exactly one SQL statement.
    pub sql: String,
    /// Its parameters.
    pub params: Params,
    /// When set, the statement must change exactly this many rows, or the
    /// whole batch rolls back and the caller gets `Conflict`. This is how a
    /// compare-and-set (claim a task) works without an interactive
    /// transaction.
    pub expect_rows: Option<u64>,
}

/// Where SQL text holds a NUL byte, said as a refusal's reason ends: SQLite
/// stops reading text there and would silently drop the rest.
pub(crate) fn nul_byte(sql: &str) -> Option<String> {
    let at = sql.find('\0')?;
    Some(format!(
        "a NUL byte at offset {at}; SQLite would stop reading there and silently drop the rest"
    ))
}

impl Statement {
    /// Refuses SQL text that SQLite would silently cut short at a NUL
    /// byte; `index` names the statement in the error.
    ///
    /// # Errors
    ///
    /// `Refused` naming the statement and the offset.
    pub fn check_text(&self, index: u32) -> Result<(), WriteError> {
        match nul_byte(&self.sql) {
            Some(nul) => Err(WriteError::Refused {
                statement: Some(index),
                reason: format!("the SQL text holds {nul}"),
            }),
            None => Ok(()),
        }
    }

    /// A statement without parameters.
    pub fn new(sql: impl Into<String>) -> Self {
        Statement {
            sql: sql.into(),
            params: Params::None,
            expect_rows: None,
        }
    }

    /// Sets positional parameters.
    pub fn params(mut self, params: Vec<Value>) -> Self {
        self.params = Params::Positional(params);
        self
    }

    /// Sets named parameters.
    pub fn named(mut self, params: Vec<(String, Value)>) -> Self {
        self.params = Params::Named(params);
        self
    }

    /// Requires the statement to change exactly `n` rows.
    pub fn expect_rows(mut self, n: u64) -> Self {
        self.expect_rows = Some(n);
        self
    }
}

/// A write: statements applied in order, all or nothing, in one commit.
///
/// Statements run on the arbiter's one connection, in order, so
/// `changes()` and `last_insert_rowid()` carry from one to the next.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The statements, applied in order.
    #[serde(deserialize_with = "crate::frame::bounded_statements")]
    pub statements: Vec<Statement>,
    /// Idempotency key chosen by the caller (at most
    /// [`MAX_KEY_LEN`](crate::limits::MAX_KEY_LEN) bytes).
    pub key: Option<String>,
    /// Longest the batch may wait in the arbiter's queue before it
    /// starts, milliseconds (as SQLite's busy timeout bounds the wait for
    /// the lock): past it, behind another connection's write session or
    /// a backlog, it is answered `Overloaded` and never runs. `None`
    /// waits as long as it takes.
    pub wait_ms: Option<u64>,
    /// Whether the batch's writes are checked against foreign keys, as
    /// `PRAGMA foreign_keys` on the caller's own connection would say:
    /// `None` takes the arbiter's setting (`--pragma foreign_keys`). The
    /// batch runs in a transaction of batches that want the same.
    pub foreign_keys: Option<bool>,
}

impl Batch {
    /// A batch of the given statements without a key.
    pub fn new(statements: Vec<Statement>) -> Self {
        Batch {
            statements,
            key: None,
            wait_ms: None,
            foreign_keys: None,
        }
    }

    /// A batch of one statement.
    pub fn one(statement: Statement) -> Self {
        Batch::new(vec![statement])
    }

    /// Approximate encoded size, for the request size limit.
    pub fn wire_len(&self) -> usize {
        self.key.as_ref().map_or(0, String::len)
            + self
                .statements
                .iter()
                .map(|s| s.sql.len() + s.params.wire_len() + 16)
                .sum::<usize>()
    }

    /// Checks the batch against `limits` and its text for what SQLite
    /// would silently mangle. Both sides call it: the client so an
    /// oversized request fails only itself, the arbiter because it cannot
    /// trust the client.
    ///
    /// # Errors
    ///
    /// As [`Batch::check_text`] and [`Batch::check_limits`].
    pub fn check(&self, limits: &limits::Limits) -> Result<(), WriteError> {
        self.check_text()?;
        self.check_limits(limits)
    }

    /// Refuses SQL text that SQLite would silently cut short (a NUL byte
    /// ends the text for SQLite, and whatever follows would vanish), and
    /// an empty idempotency key (see [`check_key`]).
    ///
    /// # Errors
    ///
    /// `Refused` naming the statement and the offset.
    pub fn check_text(&self) -> Result<(), WriteError> {
        if let Some(k) = self.key.as_deref().filter(|k| k.is_empty()) {
            check_key(k)?;
        }
        for (i, st) in self.statements.iter().enumerate() {
            st.check_text(u32::try_from(i).unwrap_or(u32::MAX))?;
        }
        Ok(())
    }

    /// Checks the batch against `limits` (and the key length).
    ///
    /// # Errors
    ///
    /// `Protocol` for an empty batch; `Refused` naming the limit and its
    /// value.
    pub fn check_limits(&self, limits: &limits::Limits) -> Result<(), WriteError> {
        let refuse = |statement: Option<usize>, reason: String| {
            Err(WriteError::Refused {
                statement: statement.map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
                reason,
            })
        };
        if self.statements.is_empty() {
            return Err(WriteError::Protocol {
                message: "empty batch: a write needs at least one statement".into(),
            });
        }
        let n = self.statements.len() as u64;
        if n > limits.max_statements {
            return refuse(
                None,
                format!(
                    "batch has {n} statements; the limit is {} (--max-statements)",
                    limits.max_statements
                ),
            );
        }
        if let Some(k) = self.key.as_deref().filter(|k| !k.is_empty()) {
            // Its length (a size limit); an empty key is a rule's matter
            // (`check_text`).
            check_key(k)?;
        }
        for (i, st) in self.statements.iter().enumerate() {
            if st.sql.len() as u64 > limits.max_sql_bytes {
                // The SQL limit is never above the batch's: when that is
                // what bounds it, the batch's flag is the one to raise.
                let flag = if limits.max_sql_bytes >= limits.max_batch_bytes {
                    "--max-batch-bytes, which bounds the SQL too"
                } else {
                    "--max-sql-bytes"
                };
                return refuse(
                    Some(i),
                    format!(
                        "{} bytes of SQL; the limit is {} ({flag})",
                        st.sql.len(),
                        limits.max_sql_bytes
                    ),
                );
            }
            if st.params.len() as u64 > limits.max_params {
                return refuse(
                    Some(i),
                    format!(
                        "{} parameters; the limit is {} (--max-params)",
                        st.params.len(),
                        limits.max_params
                    ),
                );
            }
        }
        let values: u64 = self.statements.iter().map(|s| s.params.len() as u64).sum();
        if values > limits.max_values {
            return refuse(
                None,
                format!(
                    "batch has {values} parameter values; the limit is {} (--max-values)",
                    limits.max_values
                ),
            );
        }
        let bytes = self.wire_len() as u64;
        if bytes > limits.max_batch_bytes {
            return refuse(
                None,
                format!(
                    "batch is {bytes} bytes; the limit is {} (--max-batch-bytes)",
                    limits.max_batch_bytes
                ),
            );
        }
        Ok(())
    }
}

/// Checks an idempotency key: 1 to [`MAX_KEY_LEN`](limits::MAX_KEY_LEN)
/// bytes. An empty key is refused rather than kept: an unset variable
/// (`--key "$K"`) would otherwise become one key that every later write
/// of the same batch replays, for as long as keys are kept.
///
/// # Errors
///
/// `Refused` saying why.
pub fn check_key(key: &str) -> Result<(), WriteError> {
    let reason = if key.is_empty() {
        "the idempotency key is empty: give a key of 1 to 128 bytes, or none".to_owned()
    } else if key.len() > limits::MAX_KEY_LEN {
        format!(
            "idempotency key is {} bytes; the limit is {}",
            key.len(),
            limits::MAX_KEY_LEN
        )
    } else {
        return Ok(());
    };
    Err(WriteError::Refused {
        statement: None,
        reason,
    })
}
