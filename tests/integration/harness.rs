//! Spawning and reaping real processes, with a deadline on everything.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use scribe_protocol::{lockfile, Paths};

pub use crate::holder::LONG_LEASE;

pub const SCRIBED: &str = env!("CARGO_BIN_EXE_test-scribed");
pub const SCRIBE: &str = env!("CARGO_BIN_EXE_test-scribe");
pub const WORKER: &str = env!("CARGO_BIN_EXE_test-worker");

/// Longest any single command of a test may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A temp dir with one database, and every process started for it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    children: Vec<Option<Child>>,
}

impl Env {
    pub fn new() -> Env {
        // Short: a Unix socket path must stay under ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("sc")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let db = dir.path().join("t.db");
        Env {
            dir,
            db,
            children: Vec::new(),
        }
    }

    pub fn paths(&self) -> Paths {
        Paths::for_db(&self.db, None).expect("paths")
    }

    /// A command for one of the binaries, pointed at this database.
    ///
    /// `SCRIBE_TEST_BIN_DIR` swaps in the `scribed` and `scribe` of
    /// another build (to show a test failing on an older release).
    pub fn command(&self, bin: &str) -> Command {
        let mut c = Command::new(other_build(bin));
        c.env("SCRIBE_DB", &self.db)
            .env("SCRIBE_ARBITER_BIN", other_build(SCRIBED))
            .env_remove("SCRIBE_SOCKET")
            .env_remove("SCRIBE_AUTOSTART")
            .env_remove("SCRIBE_SYNCHRONOUS")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        c
    }

    /// Runs `scribe ARGS` to completion (bounded).
    pub fn scribe(&self, args: &[&str]) -> Output {
        let mut c = self.command(SCRIBE);
        c.args(args);
        run(c, COMMAND_TIMEOUT)
    }

    /// [`Env::scribe`] with the database named `db` (another name of it,
    /// or another file in this dir).
    pub fn scribe_at(&self, db: &std::path::Path, args: &[&str]) -> Output {
        let mut c = self.command(SCRIBE);
        c.env("SCRIBE_DB", db).args(args);
        run(c, COMMAND_TIMEOUT)
    }

    /// Writes rows `(tag, 0..n)` into `SCHEMA`'s table, one `scribe exec`
    /// each (each its own commit).
    pub fn insert_tagged(&self, tag: &str, n: u32) {
        for i in 0..n {
            self.scribe_ok(&[
                "exec",
                &format!("INSERT INTO t(tag, i) VALUES ('{tag}', {i})"),
            ]);
        }
    }

    /// Runs `scribe ARGS` and insists it succeeds; returns stdout.
    pub fn scribe_ok(&self, args: &[&str]) -> String {
        let out = self.scribe(args);
        assert!(
            out.status.success(),
            "scribe {args:?} failed ({:?}): {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `scribed ARGS` in the foreground (as a child of the test)
    /// and waits until its socket accepts.
    pub fn start_arbiter(&mut self, args: &[&str]) -> u32 {
        let mut c = self.command(SCRIBED);
        c.arg("--db").arg(&self.db).args(args);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let child = c.spawn().expect("spawn scribed");
        let pid = child.id();
        self.children.push(Some(child));
        self.wait_ready(Duration::from_secs(60));
        pid
    }

    /// As [`Env::start_arbiter`], with its log written to `log` (debug
    /// lines too).
    pub fn start_arbiter_logged(&mut self, args: &[&str], log: &std::path::Path) -> u32 {
        self.start_arbiter_logged_at(args, log, "debug,tarpc=warn")
    }

    /// As [`Env::start_arbiter_logged`], at the `RUST_LOG` level `level`.
    pub fn start_arbiter_logged_at(
        &mut self,
        args: &[&str],
        log: &std::path::Path,
        level: &str,
    ) -> u32 {
        let mut c = self.command(SCRIBED);
        let file = std::fs::File::create(log).expect("log file");
        c.arg("--db").arg(&self.db).args(args);
        c.env("RUST_LOG", level);
        c.stdout(Stdio::null()).stderr(file);
        let child = c.spawn().expect("spawn scribed");
        let pid = child.id();
        self.children.push(Some(child));
        self.wait_ready(Duration::from_secs(60));
        pid
    }

    /// Waits until the socket accepts a connection.
    pub fn wait_ready(&self, within: Duration) {
        let socket = self.paths().socket;
        let deadline = Instant::now() + within;
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "arbiter not ready within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Spawns a tracked child (killed when the test ends).
    pub fn spawn(&mut self, mut c: Command) -> usize {
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.children.push(Some(c.spawn().expect("spawn")));
        self.children.len() - 1
    }

    /// Whether a tracked child has exited (without waiting).
    pub fn exited(&mut self, index: usize) -> bool {
        let child = self.children[index].as_mut().expect("not waited for yet");
        child.try_wait().expect("try_wait").is_some()
    }

    /// Waits for a tracked child (bounded) and returns its output.
    pub fn wait(&mut self, index: usize, within: Duration) -> Output {
        let slot = &mut self.children[index];
        let child = slot.as_mut().expect("waited for once");
        wait_exit(child, within);
        let child = slot.take().expect("still there");
        child.wait_with_output().expect("output")
    }

    /// Starts `scribed` in the foreground and hands the child to the test
    /// (to signal it and read its exit status); waits until it is ready.
    pub fn foreground_arbiter(&self) -> Child {
        let mut c = self.command(SCRIBED);
        c.arg("--db")
            .arg(&self.db)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = c.spawn().expect("spawn scribed");
        self.wait_ready(Duration::from_secs(60));
        child
    }

    /// The pid of the arbiter holding the lock, if one is alive.
    pub fn arbiter_pid(&self) -> Option<u32> {
        let paths = self.paths();
        if lockfile::is_held(&paths).unwrap_or(false) {
            lockfile::read_info(&paths.lock).pid
        } else {
            None
        }
    }

    /// Kills the live arbiter with SIGKILL and waits until that process is
    /// gone (writers that retry may start the next one at once).
    pub fn kill9_arbiter(&self) {
        let pid = self.arbiter_pid().expect("an arbiter is running");
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        // Generous, for a loaded machine.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
            let gone = match status {
                Err(_) => true,
                Ok(s) => s
                    .lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z')),
            };
            // The leader is a zombie while its other threads may still
            // be exiting, holding the database's lock: wait for that too.
            // A writer that retries may start the next arbiter the moment
            // the lock is free, so the lock held by another (its pid
            // recorded) counts as let go: waiting for a free lock alone
            // raced with that start and failed on a loaded machine.
            let released = !scribe_protocol::lockfile::is_held(&self.paths()).unwrap_or(false)
                || self.arbiter_pid().is_some_and(|p| p != pid);
            if gone && released {
                return;
            }
            assert!(Instant::now() < deadline, "arbiter {pid} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A plain SQLite connection, for checking what is in the file.
    pub fn sqlite(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.db).expect("open");
        c.busy_timeout(Duration::from_secs(5))
            .expect("busy_timeout");
        c
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.sqlite()
            .query_row(sql, [], |r| r.get(0))
            .expect("count")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Auto-started arbiters are not our children: find them by lock.
        if let Some(pid) = self.arbiter_pid() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// `bin`, or its namesake in `SCRIBE_TEST_BIN_DIR` when that is set.
pub fn other_build(bin: &str) -> String {
    let name = match bin {
        SCRIBED => "scribed",
        SCRIBE => "scribe",
        _ => return bin.to_owned(),
    };
    match std::env::var_os("SCRIBE_TEST_BIN_DIR") {
        Some(dir) => std::path::Path::new(&dir)
            .join(name)
            .to_string_lossy()
            .into_owned(),
        None => bin.to_owned(),
    }
}

/// Runs a command to completion, killing it past `within`.
pub fn run(mut c: Command, within: Duration) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().expect("spawn");
    output_within(child, within, &format!("{c:?}"))
}

/// Waits for a spawned child's exit and output, killing it past `within`.
pub fn output_within(child: Child, within: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("{what} did not finish within {within:?}");
        }
    }
}
/// Waits until process `pid` is gone (bounded); `what` says, on failure,
/// what kept it.
pub fn wait_gone(pid: u32, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded) for a child to exit; returns its status.
pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return s;
        }
        assert!(Instant::now() < deadline, "no exit within {within:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The table every test writes into.
pub const SCHEMA: &str =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, tag TEXT NOT NULL, i INTEGER NOT NULL, UNIQUE(tag, i))";

impl Env {
    /// Polls `scribe status --json` until `ready` holds (bounded).
    pub fn wait_status(&self, ready: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.scribe(&["--json", "status"]);
            if let Ok(s) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                if ready(&s) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "status never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pids of live `scribed` processes serving this database.
    /// Waits until at most `n` arbiter processes of this database are
    /// left (one that lost a start race exits at once, but may still be
    /// on its way out when the `start` that launched it has returned);
    /// panics, naming them, past `within`.
    pub fn arbiters_settle(&self, n: usize, within: Duration) -> Vec<u32> {
        let deadline = Instant::now() + within;
        loop {
            let now = self.arbiter_processes();
            if now.len() <= n {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "arbiters still running after {within:?}: {now:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn arbiter_processes(&self) -> Vec<u32> {
        let db = self.db.to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_arbiter = args
                .first()
                .is_some_and(|a| a.ends_with("test-scribed") || a.ends_with("/scribed"));
            if is_arbiter && args.contains(&db) {
                pids.push(pid);
            }
        }
        pids
    }
}

/// A one-thread runtime and a client (default options) of the arbiter at
/// `paths`, connected.
pub fn client(paths: &Paths) -> (tokio::runtime::Runtime, scribe_client::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = rt
        .block_on(scribe_client::Client::connect(
            paths,
            &scribe_client::Options::default(),
        ))
        .expect("connect");
    (rt, client)
}
