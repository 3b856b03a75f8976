//! The column names `.import` makes a table with, from the first row, as
//! sqlite3 3.40 makes them: an empty name is `?`; names alike (SQLite
//! compares them without case) become `NAME_N`, N the column's place from
//! 1, padded with zeros until no name is taken twice (`a,a,a_1` gives
//! `a_01`, `a_02`, `a_1`); and the renames are said on stderr.

/// The names for `header`'s fields (said renames go to stderr, naming
/// `file`).
pub fn header_names(header: &csv::ByteRecord, file: &str) -> Vec<String> {
    let given: Vec<String> = header
        .iter()
        .map(|f| match String::from_utf8_lossy(f).into_owned() {
            empty if empty.is_empty() => "?".to_owned(),
            name => name,
        })
        .collect();
    // As SQLite compares names: without ASCII case only.
    let key = |n: &str| n.to_ascii_lowercase();
    let alike = |i: usize| {
        given
            .iter()
            .enumerate()
            .any(|(j, n)| j != i && key(n) == key(&given[i]))
    };
    let renamed: Vec<usize> = (0..given.len()).filter(|&i| alike(i)).collect();
    if renamed.is_empty() {
        return given;
    }
    let width_fits = |width: usize| {
        let names = names_at(&given, &renamed, width);
        let mut seen = std::collections::HashSet::new();
        names.iter().all(|n| seen.insert(key(n)))
    };
    let width = (1..=20).find(|&w| width_fits(w)).unwrap_or(20);
    let names = names_at(&given, &renamed, width);
    let said: Vec<String> = renamed
        .iter()
        .map(|&i| {
            let q = |n: &str| n.replace('"', "\"\"");
            format!("\"{}\" to \"{}\"", q(&given[i]), q(&names[i]))
        })
        .collect();
    errln!(
        "Columns renamed during .import {file} due to duplicates:\n{}",
        said.join(",\n")
    );
    names
}

/// `given` with the columns `renamed` suffixed by their place, `width`
/// digits at least.
fn names_at(given: &[String], renamed: &[usize], width: usize) -> Vec<String> {
    let mut names = given.to_vec();
    for &i in renamed {
        names[i] = format!("{}_{:0width$}", given[i], i + 1);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(fields: &[&str]) -> Vec<String> {
        header_names(&csv::ByteRecord::from(fields.to_vec()), "f.csv")
    }

    #[test]
    fn names_alike_and_empty_ones_are_renamed_as_sqlite3_renames_them() {
        assert_eq!(names(&["a", "b"]), ["a", "b"]);
        assert_eq!(names(&["A", "a", "b"]), ["A_1", "a_2", "b"]);
        assert_eq!(names(&["", "b", ""]), ["?_1", "b", "?_3"]);
        assert_eq!(names(&["a", "a", "a_1"]), ["a_01", "a_02", "a_1"]);
        assert_eq!(names(&["x", "", "y"]), ["x", "?", "y"]);
        assert_eq!(names(&["É", "é"]), ["É", "é"]);
    }
}
