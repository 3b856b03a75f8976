//! Claim a task with a read-then-write transaction, through the arbiter.
//!
//! ```sh
//! cargo build --release --bins && export PATH=$PWD/target/release:$PATH
//! cargo run --release -p scribe-client --example transaction -- /tmp/board.db
//! ```
//!
//! Run it from several shells at once: each run claims a different task,
//! none waits on `database is locked`, and none claims a task twice.

use scribe_client::{blocking, Client, Options};
use scribe_protocol::{Batch, Params, Paths, Statement, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = std::env::args().nth(1).unwrap_or("/tmp/board.db".into());
    let paths = Paths::for_db(std::path::Path::new(&db), None)?;
    // Starts the arbiter if none runs for this database.
    let client = Client::connect(&paths, &Options::default()).await?;

    // Set-up: a batch is one atomic write, no session needed.
    client
        .write(Batch::new(vec![
            Statement::new(
                "CREATE TABLE IF NOT EXISTS tasks(id INTEGER PRIMARY KEY, title TEXT, \
                 status TEXT NOT NULL DEFAULT 'ready', owner INTEGER)",
            ),
            Statement::new(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) \
                 INSERT INTO tasks(title) SELECT 'task ' || i FROM n \
                 WHERE NOT EXISTS (SELECT 1 FROM tasks)",
            ),
        ]))
        .await?;

    // The read-then-write step: code runs between the statements, and the
    // whole closure runs again if the session ends before its commit.
    let me = i64::from(std::process::id());
    let claimed = client
        .transaction(|tx| async move {
            let ready = tx
                .execute(
                    "SELECT id, title FROM tasks WHERE status = 'ready' ORDER BY id LIMIT 1",
                    Params::None,
                )
                .await?;
            let Some(row) = ready.rows.first() else {
                return Ok(None);
            };
            let (id, title) = (row[0].clone(), row[1].clone());
            tx.execute(
                "UPDATE tasks SET status = 'running', owner = ?1 WHERE id = ?2",
                Params::Positional(vec![Value::Integer(me), id.clone()]),
            )
            .await?;
            Ok(Some((id, title)))
        })
        .await?;
    match claimed {
        Some((id, title)) => println!("process {me} claimed task {id:?}: {title:?}"),
        None => println!("no ready task left"),
    }

    // The same from synchronous code: the blocking client.
    let sync_client = tokio::task::spawn_blocking(move || {
        let c = blocking::Client::connect(&paths, &Options::default())?;
        let tx = c.begin()?;
        let left = tx.execute(
            "SELECT count(*) FROM tasks WHERE status = 'ready'",
            Params::None,
        )?;
        tx.commit()?;
        Ok::<_, scribe_client::Error>(left.rows[0][0].clone())
    })
    .await??;
    println!("ready tasks left: {sync_client:?}");
    Ok(())
}
