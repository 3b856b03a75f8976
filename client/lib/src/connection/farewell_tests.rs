//! The arbiter's farewell (id 0, `ShuttingDown`, after every answer to
//! what it read): a request still unanswered then was never read. The
//! peer here plays the arbiter on a socket pair, to send the farewell at
//! the one moment a real arbiter's timing cannot be held to.

use std::os::unix::fs::MetadataExt;

use scribe_protocol::frame::{self, Answer, HEADER_LEN, PREAMBLE_LEN};
use scribe_protocol::{Batch, Hello, Paths, Served, Statement, WriteError, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::Connection;
use crate::options::Options;

async fn read_frame(s: &mut UnixStream) -> u32 {
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).await.unwrap();
    let (len, id) = frame::header(&h);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    id
}

async fn send(s: &mut UnixStream, id: u32, reply: &Result<Answer, WriteError>) {
    let mut out = Vec::new();
    frame::encode(id, reply, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
}

/// Greets a client as an arbiter of `paths.db` would, then sends the
/// farewell once its next request is in, and closes.
async fn arbiter(mut s: UnixStream, paths: Paths, farewell: bool) {
    let mut pre = [0u8; PREAMBLE_LEN];
    s.read_exact(&mut pre).await.unwrap();
    let id = read_frame(&mut s).await;
    let m = std::fs::metadata(&paths.db).unwrap();
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        server_version: "test".into(),
        pid: std::process::id(),
        limits: Default::default(),
        database: Served {
            dev: m.dev(),
            ino: m.ino(),
            path: paths.db.display().to_string(),
        },
    };
    send(&mut s, id, &Ok(Answer::Hello(hello))).await;
    read_frame(&mut s).await;
    if farewell {
        send(&mut s, 0, &Err(WriteError::ShuttingDown)).await;
    }
}

async fn write_then_close(farewell: bool) -> WriteError {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.db"), b"").unwrap();
    let paths = Paths::for_db(&dir.path().join("t.db"), None).unwrap();
    let (client, peer) = UnixStream::pair().unwrap();
    let peer = tokio::spawn(arbiter(peer, paths.clone(), farewell));
    let conn = Connection::handshake(client, &paths, &Options::default())
        .await
        .unwrap();
    let batch = Batch::new(vec![Statement::new("INSERT INTO t VALUES (1)")]);
    let e = conn.write(batch).await.unwrap_err();
    peer.await.unwrap();
    e
}

#[tokio::test]
async fn a_write_unanswered_at_the_farewell_is_shutting_down() {
    let e = write_then_close(true).await;
    assert!(matches!(e, WriteError::ShuttingDown), "{e:?}");
}

#[tokio::test]
async fn without_it_the_outcome_stays_unknown() {
    let e = write_then_close(false).await;
    assert!(matches!(e, WriteError::Timeout { .. }), "{e:?}");
}
