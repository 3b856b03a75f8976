//! The processes of a run: a fresh directory, the arbiter, the workers,
//! each reaped however the run ends.

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::spec::{Sync, WorkerSpec};

/// A fresh directory for one run.
pub fn fresh_dir(base: &Path) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("sb")
        .tempdir_in(base)
        .map_err(|e| format!("cannot make a temp dir in {}: {e}", base.display()))
}

/// Kills and reaps children when a run ends, however it ends.
pub struct Children(pub Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `scribed` on `db` in the foreground, as our child.
pub fn start_arbiter(db: &Path, sync: Sync, log: &Path) -> Result<Child, String> {
    let options = scribe_client::Options {
        self_arbiter: true,
        ..scribe_client::Options::default()
    };
    let mut cmd = scribe_client::autostart::arbiter_command(&options).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let child = cmd
        .arg("--db")
        .arg(db)
        .args(["--synchronous", sync.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start scribed: {e}"))?;
    let paths = scribe_protocol::Paths::for_db(db, None).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&paths.socket).is_err() {
        if Instant::now() > deadline {
            return Err("scribed did not become ready".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(child)
}

/// Stops the arbiter the way an operator does (SIGTERM drains).
pub fn stop_arbiter(mut child: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// Spawns one worker and waits for its `ready`.
pub fn spawn_worker(spec: &WorkerSpec) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("bench-worker")
        .arg(json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no worker stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("a worker failed to start ({:?})", line.trim()));
    }
    Ok(child)
}

/// Says ready, then waits for the go file.
pub fn ready_and_wait(spec: &WorkerSpec) {
    println!("ready");
    let _ = std::io::stdout().flush();
    while !Path::new(&spec.go).exists() {
        std::thread::sleep(Duration::from_micros(500));
    }
}
