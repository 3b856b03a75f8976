//! Frames: round trips, bounded decoding, and random or mutated input
//! through the decoding path the arbiter runs (it may fail, never panic,
//! and never allocate from a claimed length).
//! `PROPTEST_CASES=1000000 cargo test -p scribe-protocol frame` runs a
//! long campaign.

use proptest::prelude::*;

use super::*;
use crate::framebuf::FrameBuf;
use crate::{Params, Statement};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

/// Every frame of `bytes` through the arbiter's decoder; how many decoded.
pub fn decode_all(bytes: &[u8]) -> usize {
    let mut fb = FrameBuf::new();
    fb.extend(bytes);
    let mut decoded = 0;
    while let Ok(Some((_, body))) = fb.next_frame() {
        if decode_request(body, &Limits::default()).is_ok() {
            decoded += 1;
        }
    }
    decoded
}

fn write_frame(sql: &str, blob: Vec<u8>) -> Vec<u8> {
    let req = Request::Write(Batch {
        statements: vec![Statement::new(sql).params(vec![Value::Blob(blob), 1.into()])],
        key: Some("k".into()),
        wait_ms: Some(250),
        foreign_keys: None,
    });
    let mut out = Vec::new();
    encode(7, &req, &mut out).unwrap();
    out
}

#[test]
fn requests_and_replies_round_trip() {
    let req = Request::Write(Batch::one(
        Statement::new("SELECT :a").named(vec![(":a".into(), Value::Text("x".into()))]),
    ));
    let mut out = Vec::new();
    encode(9, &req, &mut out).unwrap();
    let mut fb = FrameBuf::new();
    fb.extend(&out);
    let (id, body) = fb.next_frame().unwrap().unwrap();
    assert_eq!(id, 9);
    assert_eq!(decode_request(body, &Limits::default()).unwrap(), req);
    let reply: Reply = Err(WriteError::ShuttingDown);
    let mut out = Vec::new();
    encode(9, &reply, &mut out).unwrap();
    assert_eq!(decode_reply(&out[HEADER_LEN..]).unwrap(), reply);
    assert_eq!(decode_all(&write_frame("SELECT ?1, ?2", vec![1, 2, 3])), 1);
}

#[test]
fn counts_are_refused_before_they_are_allocated() {
    let limits = Limits {
        max_values: 10,
        max_statements: 3,
        ..Limits::default()
    };
    let many = |n: usize, stmts: usize| {
        Request::Write(Batch::new(
            (0..stmts)
                .map(|_| Statement::new("x").params(vec![Value::Null; n]))
                .collect(),
        ))
    };
    let body = |r: &Request| {
        let mut out = Vec::new();
        encode(1, r, &mut out).unwrap();
        out[HEADER_LEN..].to_vec()
    };
    assert!(decode_request(&body(&many(5, 2)), &limits).is_ok());
    let e = decode_request(&body(&many(11, 1)), &limits).unwrap_err();
    assert!(e.to_string().contains("--max-values"), "{e}");
    let e = decode_request(&body(&many(1, 4)), &limits).unwrap_err();
    assert!(e.to_string().contains("--max-statements"), "{e}");
    // The same bound for a session's exec_many.
    let exec_many = |stmts: usize| Request::ExecMany {
        session: 1,
        statements: (0..stmts).map(|_| Statement::new("x")).collect(),
    };
    assert!(decode_request(&body(&exec_many(3)), &limits).is_ok());
    let e = decode_request(&body(&exec_many(4)), &limits).unwrap_err();
    assert!(e.to_string().contains("--max-statements"), "{e}");
    // A frame claiming 2^60 values in a few bytes.
    let mut forged = body(&many(1, 1));
    let at = forged.len() - 2;
    forged.truncate(at);
    forged.extend([0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(decode_request(&forged, &Limits::default()).is_err());
    assert!(matches!(Params::None, Params::None));
}

#[test]
fn a_message_over_the_frame_limit_is_refused_and_leaves_nothing_behind() {
    let mut out = write_frame("INSERT INTO t VALUES (?1, ?2)", vec![1; 10]);
    let first = out.clone();
    let big = Request::Write(Batch::one(
        Statement::new("SELECT ?1").params(vec![Value::Blob(vec![0; MAX_FRAME_LEN + 1])]),
    ));
    match encode(8, &big, &mut out) {
        Err(WriteError::Refused { reason, .. }) => assert!(reason.contains("limit"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(out, first, "the refused frame left bytes behind");
    // Just under the limit still goes, whole.
    let fits = Request::Write(Batch::one(
        Statement::new("SELECT ?1").params(vec![Value::Blob(vec![0; MAX_FRAME_LEN - 1024])]),
    ));
    encode(9, &fits, &mut out).unwrap();
    let mut fb = FrameBuf::new();
    fb.extend(&out);
    assert_eq!(fb.next_frame().unwrap().map(|f| f.0), Some(7));
    let (id, body) = fb.next_frame().unwrap().unwrap();
    assert_eq!(id, 9);
    assert!(body.len() > MAX_FRAME_LEN - 1024 && body.len() <= MAX_FRAME_LEN);
}

#[test]
fn a_frame_claiming_4_gib_is_refused_without_allocating() {
    let mut bytes = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    bytes.extend([0u8; 64]);
    assert_eq!(decode_all(&bytes), 0);
}

#[test]
fn preambles_are_checked() {
    assert_eq!(
        check_preamble(&preamble(CODEC_BINCODE)).unwrap(),
        CODEC_BINCODE
    );
    assert!(check_preamble(b"POST / H").is_err());
    let mut p = preamble(CODEC_JSON);
    p[6] = 9;
    assert!(check_preamble(&p)
        .unwrap_err()
        .to_string()
        .contains("framing version"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decode_all(&bytes);
    }

    #[test]
    fn random_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut frame = Vec::new();
        encode_raw(1, &body, &mut frame);
        decode_all(&frame);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        sql in ".{0,64}",
        blob in proptest::collection::vec(any::<u8>(), 0..256),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut frame = write_frame(&sql, blob);
        for (at, byte) in flips {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        let keep = cut.index(frame.len() + 1);
        frame.truncate(keep.max(1));
        decode_all(&frame);
    }
}
