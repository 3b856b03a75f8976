//! A batch's fingerprint: what tells a retry of a keyed write from a
//! different batch sent under the same key. Stored with the key, so it
//! must be the same in every build.

use crate::batch::{Batch, Params};
use crate::value::Value;

/// A parameter's name without its `:`, `@`, `$` or `?` (how the arbiter
/// matches a name given bare).
fn bare(name: &str) -> &str {
    name.trim_start_matches([':', '@', '$', '?'])
}

impl Batch {
    /// A stable fingerprint of the statements (not the key): the same key
    /// with a different batch is told apart by it. It is computed from the
    /// fields directly, eight bytes at a time, without encoding the batch
    /// again (a 1,000-row batch used to spend 8% of the arbiter's CPU
    /// here), and is the same in every build. Named parameters count in
    /// the order of their names (bare of `:`/`@`/`$`; names alike keep
    /// the order given, which decides their binding): a JSON object has
    /// no order, and a retry that built it again in another order was
    /// told its key had been used for a different batch.
    pub fn fingerprint(&self) -> u64 {
        self.hash(true)
    }

    /// The fingerprint with named parameters in the order given, as builds
    /// before the name order recorded it; `None` when it is the same as
    /// [`Batch::fingerprint`]. A key recorded by such a build matches
    /// either.
    pub fn fingerprint_as_given(&self) -> Option<u64> {
        let reordered = self.statements.iter().any(|st| match &st.params {
            Params::Named(values) => !values.is_sorted_by_key(|(n, _)| bare(n)),
            _ => false,
        });
        reordered.then(|| self.hash(false))
    }

    fn hash(&self, by_name: bool) -> u64 {
        let mut h = Fingerprint::default();
        h.word(self.statements.len() as u64);
        for st in &self.statements {
            h.bytes(st.sql.as_bytes());
            match &st.params {
                Params::None => h.word(0),
                Params::Positional(values) => {
                    h.word(1);
                    h.word(values.len() as u64);
                    values.iter().for_each(|v| h.value(v));
                }
                Params::Named(values) => {
                    h.word(2);
                    h.word(values.len() as u64);
                    let mut named: Vec<&(String, Value)> = values.iter().collect();
                    if by_name {
                        // Stable: names alike keep the order given.
                        named.sort_by_key(|(n, _)| bare(n));
                    }
                    for (name, v) in named {
                        h.bytes(name.as_bytes());
                        h.value(v);
                    }
                }
            }
            match st.expect_rows {
                None => h.word(0),
                Some(n) => {
                    h.word(1);
                    h.word(n);
                }
            }
        }
        // Only when it says: the fingerprints of keys recorded before the
        // field existed stay as they were.
        if let Some(on) = self.foreign_keys {
            h.word(0xf0 | u64::from(on));
        }
        h.0
    }
}

/// A stable word-at-a-time hash (multiply and fold), for
/// [`Batch::fingerprint`] and [`StatementResult::fingerprint`](crate::StatementResult::fingerprint).
pub(crate) struct Fingerprint(pub(crate) u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    pub(crate) fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 ^= self.0 >> 29;
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    pub(crate) fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.word(10),
            Value::Integer(i) => {
                self.word(11);
                self.word(*i as u64);
            }
            Value::Real(f) => {
                self.word(12);
                self.word(f.to_bits());
            }
            Value::Text(t) => {
                self.word(13);
                self.bytes(t.as_bytes());
            }
            Value::Blob(b) => {
                self.word(14);
                self.bytes(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Statement;

    /// Recorded once: keys stored by one build must match in the next.
    const STABLE_SELECT_1: u64 = 0xa7ab_097e_99cb_76e8;

    #[test]
    fn fingerprints_tell_batches_apart_and_are_stable() {
        let a = Batch::one(Statement::new("INSERT INTO t VALUES (?1)").params(vec![1.into()]));
        let b = Batch::one(Statement::new("INSERT INTO t VALUES (?1)").params(vec![2.into()]));
        let c = Batch::one(Statement::new("INSERT INTO t VALUES (?1)").params(vec!["1".into()]));
        let d = Batch::one(
            Statement::new("INSERT INTO t VALUES (?1)")
                .params(vec![1.into()])
                .expect_rows(1),
        );
        let fps = [
            a.fingerprint(),
            b.fingerprint(),
            c.fingerprint(),
            d.fingerprint(),
        ];
        for i in 0..fps.len() {
            for j in i + 1..fps.len() {
                assert_ne!(fps[i], fps[j], "{i} vs {j}");
            }
        }
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        // The same in every build: a fixed value for a fixed batch.
        let fixed = Batch::one(Statement::new("SELECT 1")).fingerprint();
        eprintln!("fingerprint of SELECT 1: {fixed:#x}");
        assert_eq!(fixed, STABLE_SELECT_1);
    }

    #[test]
    fn named_parameters_in_another_order_are_the_same_batch() {
        let named = |pairs: &[(&str, i64)]| {
            Batch::one(
                Statement::new("INSERT INTO t VALUES (:a, :b)").named(
                    pairs
                        .iter()
                        .map(|(n, v)| ((*n).to_owned(), (*v).into()))
                        .collect(),
                ),
            )
        };
        let ab = named(&[(":a", 1), (":b", 2)]);
        let ba = named(&[(":b", 2), (":a", 1)]);
        assert_eq!(ab.fingerprint(), ba.fingerprint());
        // Recorded by earlier builds in the order given: either matches.
        assert_eq!(ab.fingerprint_as_given(), None);
        assert_eq!(ba.fingerprint_as_given(), Some(ba.hash(false)));
        assert_ne!(ba.fingerprint_as_given(), Some(ab.fingerprint()));
        // Other values, or names alike given in another order (the first
        // of them binds a bare parameter), stay apart.
        assert_ne!(
            ab.fingerprint(),
            named(&[(":a", 2), (":b", 1)]).fingerprint()
        );
        assert_ne!(
            named(&[("a", 1), ("$a", 2)]).fingerprint(),
            named(&[("$a", 2), ("a", 1)]).fingerprint()
        );
    }
}
