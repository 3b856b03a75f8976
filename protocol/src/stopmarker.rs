//! The stopping marker: `<db>.scribe.stopping`.
//!
//! Written when an arbiter begins to stop (and again when it exits), it
//! tells auto-start not to respawn the arbiter: a `stop` must stay
//! stopped. It carries its own expiry, so a stop that crashes cannot block
//! auto-start forever; a held marker (`scribe stop --hold`) has none and
//! lasts until the next `scribe start`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::paths::Paths;
use crate::sidefile::Like;

/// What the marker says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// Auto-start is off until `scribe start`.
    Hold,
    /// Auto-start is off until this Unix time (milliseconds).
    Until(u64),
}

/// Default grace period after a stop during which auto-start stays off.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// Longest a marker with an expiry may keep auto-start off, counted from
/// when it was written: a marker edited (or mis-set) far into the future
/// still expires. `stop --hold` is the way to keep it off for good.
pub const MAX_GRACE: Duration = Duration::from_secs(24 * 3600);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Marker {
    /// A marker that expires `after` from now (at most [`MAX_GRACE`]).
    pub fn for_next(after: Duration) -> Marker {
        let after = after.min(MAX_GRACE);
        Marker::Until(now_ms().saturating_add(after.as_millis() as u64))
    }

    /// Time left before auto-start resumes (`None` for a hold).
    pub fn remaining(self) -> Option<Duration> {
        match self {
            Marker::Hold => None,
            Marker::Until(ms) => Some(Duration::from_millis(ms.saturating_sub(now_ms()))),
        }
    }

    /// True while it still blocks auto-start.
    pub fn is_active(self) -> bool {
        match self {
            Marker::Hold => true,
            Marker::Until(ms) => ms > now_ms(),
        }
    }

    /// Why auto-start is off, for messages.
    pub fn describe(self) -> String {
        match self {
            Marker::Hold => {
                "the arbiter was stopped with `scribe stop --hold`; auto-start is off until \
                 `scribe start`"
                    .to_owned()
            }
            Marker::Until(_) => format!(
                "the arbiter was stopped; auto-start resumes in {} (or run `scribe start`)",
                humanize(self.remaining().unwrap_or_default())
            ),
        }
    }
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}s", secs.round() as u64)
    }
}

/// Reads the marker; `None` when absent, unreadable or expired. An
/// expiry is never later than [`MAX_GRACE`] after the file was written.
pub fn read_active(path: &Path) -> Option<Marker> {
    let text = std::fs::read_to_string(path).ok()?;
    let marker = match parse(&text)? {
        Marker::Until(ms) => {
            let written = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(now_ms(), |d| d.as_millis() as u64);
            Marker::Until(ms.min(written.saturating_add(MAX_GRACE.as_millis() as u64)))
        }
        hold => hold,
    };
    // A database moved away, then back: the marker held auto-start off
    // for the file that went, which is here again (outages of 30 to 90 s
    // for a file moved and moved back).
    if moved_back(path, &text) {
        return None;
    }
    marker.is_active().then_some(marker)
}

/// True when the marker names the file moved away (`file=DEV:INO`) and
/// that file is at the database's path again.
fn moved_back(path: &Path, text: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(file) = text.lines().find_map(|l| l.strip_prefix("file=")) else {
        return false;
    };
    let Some(db) = path
        .to_str()
        .and_then(|p| p.strip_suffix(".scribe.stopping"))
    else {
        return false;
    };
    std::fs::metadata(db).is_ok_and(|m| format!("{}:{}", m.dev(), m.ino()) == file.trim())
}

fn parse(text: &str) -> Option<Marker> {
    let line = text.lines().next()?.trim();
    if line == "hold" {
        return Some(Marker::Hold);
    }
    line.strip_prefix("until=")?.parse().ok().map(Marker::Until)
}

/// Writes the database's marker atomically (temp file + rename), with
/// the database file's mode (see [`crate::sidefile`]).
///
/// # Errors
///
/// The I/O error when the directory is not writable.
pub fn write(paths: &Paths, marker: Marker) -> std::io::Result<()> {
    write_why(paths, marker, None)
}

/// As [`write`], with why the arbiter stopped on a line of its own (when
/// it stopped on its own: its database was moved away), for `status` to
/// show. Readers of the first line only are not disturbed by it.
///
/// # Errors
///
/// As [`write`].
pub fn write_why(paths: &Paths, marker: Marker, why: Option<&str>) -> std::io::Result<()> {
    write_moved(paths, marker, why, None)
}

/// As [`write_why`], naming the database file moved away (`(dev, ino)`):
/// the marker holds nothing back once that file is at the path again.
///
/// # Errors
///
/// As [`write`].
pub fn write_moved(
    paths: &Paths,
    marker: Marker,
    why: Option<&str>,
    file: Option<(u64, u64)>,
) -> std::io::Result<()> {
    let mut text = match marker {
        Marker::Hold => "hold\n".to_owned(),
        Marker::Until(ms) => format!("until={ms}\n"),
    };
    if let Some(why) = why {
        text.push_str("why=");
        text.push_str(&why.replace('\n', " "));
        text.push('\n');
    }
    if let Some((dev, ino)) = file {
        text.push_str(&format!("file={dev}:{ino}\n"));
    }
    Like::db(&paths.db).replace(&paths.stop_marker, &text)
}

/// Why the arbiter stopped, when its marker says (see [`write_why`]).
pub fn read_why(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("why="))
        .map(str::to_owned)
}

/// Removes the marker (auto-start on again).
///
/// # Errors
///
/// The I/O error other than "not found".
pub fn clear(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_hold_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::for_db(&dir.path().join("x.db"), None).unwrap();
        let p = paths.stop_marker.clone();
        assert_eq!(read_active(&p), None);
        write(&paths, Marker::for_next(Duration::from_secs(60))).unwrap();
        assert!(matches!(read_active(&p), Some(Marker::Until(_))));
        write(&paths, Marker::Until(1)).unwrap();
        assert_eq!(read_active(&p), None, "expired markers are ignored");
        write(&paths, Marker::Hold).unwrap();
        assert_eq!(read_active(&p), Some(Marker::Hold));
        assert!(Marker::Hold.describe().contains("scribe start"));
        // An expiry 3,000 years away counts from the file's own time.
        std::fs::write(&p, format!("until={}\n", u64::MAX / 2)).unwrap();
        let m = read_active(&p).expect("active");
        assert!(m.remaining().unwrap() <= MAX_GRACE);
        assert!(
            Marker::for_next(Duration::from_secs(1 << 40))
                .remaining()
                .unwrap()
                <= MAX_GRACE
        );
        clear(&p).unwrap();
        clear(&p).unwrap();
        assert_eq!(read_active(&p), None);
    }

    #[test]
    fn a_reason_rides_on_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::for_db(&dir.path().join("x.db"), None).unwrap();
        let p = paths.stop_marker.clone();
        write_why(
            &paths,
            Marker::for_next(Duration::from_secs(60)),
            Some("moved\naway"),
        )
        .unwrap();
        assert!(matches!(read_active(&p), Some(Marker::Until(_))));
        assert_eq!(read_why(&p).as_deref(), Some("moved away"));
        write(&paths, Marker::Hold).unwrap();
        assert_eq!(read_why(&p), None);
    }
}
