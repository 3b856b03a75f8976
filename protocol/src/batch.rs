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
    Positional(Vec<Value>),
    /// `:name`, `@name`, `$name` parameters; the name includes its prefix
    /// character (`":id"`), or gets `:` added when it has none.
    Named(Vec<(String, Value)>),
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

impl Statement {
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
    pub statements: Vec<Statement>,
    /// Idempotency key chosen by the caller (at most
    /// [`MAX_KEY_LEN`](crate::limits::MAX_KEY_LEN) bytes).
    pub key: Option<String>,
}

impl Batch {
    /// A batch of the given statements without a key.
    pub fn new(statements: Vec<Statement>) -> Self {
        Batch {
            statements,
            key: None,
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

    /// A stable fingerprint of the statements (not the key): the same key
    /// with a different batch is told apart by it. FNV-1a over the
    /// bincode encoding, so it is the same in every build.
    pub fn fingerprint(&self) -> u64 {
        let bytes = bincode::serialize(&self.statements).unwrap_or_default();
        crate::paths::fnv1a(&bytes)
    }

    /// Checks the batch against `limits` (and the key length). Both sides
    /// call it: the client so an oversized request fails only itself, the
    /// arbiter because it cannot trust the client.
    ///
    /// # Errors
    ///
    /// `Refused` naming the limit and its value.
    pub fn check(&self, limits: &limits::Limits) -> Result<(), WriteError> {
        let refuse = |reason: String| Err(WriteError::Refused { reason });
        if self.statements.is_empty() {
            return refuse("empty batch: a batch needs at least one statement".into());
        }
        let n = self.statements.len() as u64;
        if n > limits.max_statements {
            return refuse(format!(
                "batch has {n} statements; the limit is {} (--max-statements)",
                limits.max_statements
            ));
        }
        if let Some(k) = &self.key {
            if k.len() > limits::MAX_KEY_LEN {
                return refuse(format!(
                    "idempotency key is {} bytes; the limit is {}",
                    k.len(),
                    limits::MAX_KEY_LEN
                ));
            }
        }
        for (i, st) in self.statements.iter().enumerate() {
            if st.sql.len() as u64 > limits.max_sql_bytes {
                return refuse(format!(
                    "statement {i} is {} bytes of SQL; the limit is {} (--max-sql-bytes)",
                    st.sql.len(),
                    limits.max_sql_bytes
                ));
            }
            if st.params.len() as u64 > limits.max_params {
                return refuse(format!(
                    "statement {i} has {} parameters; the limit is {} (--max-params)",
                    st.params.len(),
                    limits.max_params
                ));
            }
        }
        let bytes = self.wire_len() as u64;
        if bytes > limits.max_batch_bytes {
            return refuse(format!(
                "batch is {bytes} bytes; the limit is {} (--max-batch-bytes)",
                limits.max_batch_bytes
            ));
        }
        Ok(())
    }
}
