//! `test-worker migrate DIR TAG`: what a program does at startup — bring
//! the schema up to DIR's migrations — then one write that needs them:
//! `INSERT INTO notes(body) VALUES (TAG)`. Prints the report as JSON, then
//! `wrote`; on failure prints the error and exits with its category's code.

use std::path::Path;
use std::process::ExitCode;

use scribe_client::{Client, Options};
use scribe_protocol::{Batch, Paths, Statement, Value};

pub async fn migrate_and_write(paths: &Paths, dir: &Path, tag: &str) -> ExitCode {
    let list = match scribe_protocol::migration::from_dir(dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let fail = |e: scribe_protocol::WriteError| {
        println!("{}: {e}", e.category());
        ExitCode::from(e.category().exit_code())
    };
    let client = match Client::connect(paths, &Options::default()).await {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    match client.migrate(list).await {
        Ok(report) => println!("{}", serde_json::to_string(&report).unwrap_or_default()),
        Err(e) => return fail(e),
    }
    let write = Batch::one(
        Statement::new("INSERT INTO notes(body) VALUES (?1)")
            .params(vec![Value::Text(tag.to_owned())]),
    );
    match client.write(write).await {
        Ok(_) => {
            println!("wrote");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
