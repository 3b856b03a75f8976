//! SQLite values as they travel on the wire.

use serde::{Deserialize, Serialize};

/// One SQLite value: the five storage classes.
///
/// The variant order is part of the wire format (bincode is not
/// self-describing); never reorder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit IEEE float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes. On the wire as bytes, not as a sequence of numbers:
    /// bincode lays both out alike (length, then the bytes), but writes
    /// and reads bytes in one go instead of one call per byte.
    Blob(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl Value {
    /// Bytes this value adds to a request, for size limits.
    pub fn wire_len(&self) -> usize {
        match self {
            Value::Null => 1,
            Value::Integer(_) | Value::Real(_) => 9,
            Value::Text(s) => s.len() + 9,
            Value::Blob(b) => b.len() + 9,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use bincode::Options as _;

    use super::*;

    #[test]
    fn a_blob_keeps_its_wire_layout() {
        // Variant 4, then the length and the bytes: what a sequence of
        // numbers encoded to before, so older receipts still decode.
        let wire = bincode::DefaultOptions::new()
            .serialize(&Value::Blob(vec![1, 2, 3]))
            .unwrap();
        assert_eq!(wire, [4, 3, 1, 2, 3]);
        let back: Value = bincode::DefaultOptions::new().deserialize(&wire).unwrap();
        assert_eq!(back, Value::Blob(vec![1, 2, 3]));
        let as_numbers = bincode::DefaultOptions::new()
            .serialize(&(4u8, vec![1u8, 2, 3]))
            .unwrap();
        assert_eq!(wire, as_numbers);
    }
}
