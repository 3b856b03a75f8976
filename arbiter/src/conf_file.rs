//! `<db>.scribe.conf`: the arbiter's flags, one `name = value` a line,
//! read before the command line so that the command line wins.

/// An arbiter running as root takes its settings (extensions to load,
/// migrations to run) only from a file no one else can change: root's,
/// not writable by its group or others.
fn trusted_as_root(path: &std::path::Path, m: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    if m.uid() != 0 || m.mode() & 0o022 != 0 || !m.is_file() {
        return Err(format!(
            "{} is uid {}'s, mode {:04o}, and this arbiter runs as root: it takes settings \
             only from a file of root's that no one else can write (or run the arbiter as the \
             database's owner)",
            path.display(),
            m.uid(),
            m.mode() & 0o777
        ));
    }
    Ok(())
}

/// Reads `<db>.scribe.conf` into command-line arguments.
pub fn args(path: &std::path::Path) -> Result<Vec<String>, String> {
    let cannot = |e: std::io::Error| {
        format!(
            "cannot read {} (as uid {}): {e}",
            path.display(),
            nix::unistd::geteuid()
        )
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(cannot(e)),
    };
    // Checked on the file read, not on the path again (which may name
    // another file by then).
    trusted_as_root(path, &file.metadata().map_err(cannot)?)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).map_err(cannot)?;
    let mut args = Vec::new();
    for (n, line) in text.lines().enumerate() {
        // `#` starts a comment at the start of a line or after a space, so
        // a value may contain one (`pragma = x=a#b`).
        let line = match line.trim_start().starts_with('#') {
            true => "",
            false => line.split(" #").next().unwrap_or("").trim(),
        };
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!(
                "{}:{}: expected `name = value`, got {line:?}",
                path.display(),
                n + 1
            ));
        };
        let name = name.trim();
        if name == "db" {
            return Err(format!(
                "{}:{}: the database is the file this config sits beside; remove `db`",
                path.display(),
                n + 1
            ));
        }
        args.push(format!("--{name}"));
        args.push(beside(path, name, unquote(value.trim())));
    }
    Ok(args)
}

/// The settings that name files.
const PATHS: [&str; 3] = ["migrations", "load-extension", "socket"];

/// `value` of setting `name` in the file at `conf`: a relative path is
/// taken from the file's directory, not from wherever the process that
/// started the arbiter ran (an auto-start from another directory found
/// no migrations, or no extension, and failed).
fn beside(conf: &std::path::Path, name: &str, value: &str) -> String {
    let relative = !value.is_empty() && std::path::Path::new(value).is_relative();
    match conf.parent() {
        Some(dir) if relative && PATHS.contains(&name) => dir.join(value).display().to_string(),
        _ => value.to_owned(),
    }
}

/// A value without one pair of quotes around it (`synchronous = "full"`
/// as in TOML or INI files means `full`; quotes inside stay).
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn a_relative_path_is_taken_from_the_file_s_directory() {
        let conf = std::path::Path::new("/srv/app/app.db.scribe.conf");
        assert_eq!(super::beside(conf, "migrations", "m"), "/srv/app/m");
        assert_eq!(super::beside(conf, "load-extension", "/x/v.so"), "/x/v.so");
        assert_eq!(super::beside(conf, "synchronous", "full"), "full");
    }

    #[test]
    fn one_pair_of_quotes_around_a_value_is_dropped() {
        assert_eq!(unquote("\"normal\""), "normal");
        assert_eq!(unquote("'normal'"), "normal");
        assert_eq!(unquote("foreign_keys=on"), "foreign_keys=on");
        assert_eq!(unquote("x='a'"), "x='a'");
        assert_eq!(unquote("\"a"), "\"a");
        assert_eq!(unquote("\""), "\"");
        assert_eq!(unquote("\"\""), "");
    }
}
