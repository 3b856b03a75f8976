//! What an arbiter that did not become ready left in its log, for the
//! caller's error.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The last lines the arbiter wrote to its log since `from`.
pub(super) fn log_tail(log: &Path, from: u64) -> String {
    let mut text = String::new();
    // Never blocking on a FIFO, nor reading through a link.
    let read = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
        .open(log)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(from))?;
            f.take(64 * 1024).read_to_string(&mut text)
        });
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if read.is_err() || lines.is_empty() {
        return format!("its log {} says nothing{}", log.display(), why_silent(log));
    }
    let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
    format!("its log {} ends with: {tail}", log.display())
}

/// Why a log may say nothing: the arbiter could not write it (its
/// message went with it).
fn why_silent(log: &Path) -> &'static str {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let dir = log.parent().filter(|d| !d.as_os_str().is_empty());
    match statvfs(dir.unwrap_or(Path::new("."))) {
        Ok(fs) if fs.flags().contains(FsFlags::ST_RDONLY) => " (its file system is read-only)",
        Ok(fs) if fs.blocks_available() == 0 => " (its file system has no space left)",
        _ => "",
    }
}
