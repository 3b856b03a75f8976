//! A real as SQLite prints it (`%!.15g`), so that the CLI's tables and
//! CSV show the figures sqlite3's shell shows.

/// A real as SQLite prints it (`%!.15g`): 15 significant digits, at least
/// one digit after the point, an exponent outside 1e-4..1e15.
pub fn real_text(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "Inf" } else { "-Inf" }.into();
    }
    // SQLite prints a negative zero as zero.
    if f == 0.0 {
        return "0.0".into();
    }
    let (digits, exp) = fifteen_digits(f.abs());
    let sign = if f < 0.0 { "-" } else { "" };
    let digits: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    if !(-4..15).contains(&exp) {
        let m = trim_zeros(&format!("{}.{}", &digits[..1], &digits[1..]));
        let e_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{e_sign}{:02}", exp.abs());
    }
    let text = match usize::try_from(exp) {
        // d…d.d…d: the first exp+1 digits before the point.
        Ok(whole) => format!("{}.{}", &digits[..=whole], &digits[whole + 1..]),
        // 0.000d…d
        Err(_) => format!("0.{}{digits}", "0".repeat((-exp - 1) as usize)),
    };
    format!("{sign}{}", trim_zeros(&text))
}

/// The first 15 significant digits of `f` (positive, finite, not zero),
/// rounded half up on its exact value as SQLite's printf rounds (Rust's
/// own rounding at 15 digits is half to even), and the exponent of the
/// first.
fn fifteen_digits(f: f64) -> ([u8; 15], i32) {
    // 18 digits (cheap to print) tell which way the 16th rounds, unless
    // they read 5, 0, 0 from the 16th on: the exact value may then sit on
    // the tie or just under it, and only more of its digits tell (rare:
    // the exact expansion, which costs several times as much).
    let (mut all, mut exp) = digits_of(f, 17);
    if all[15..18] == [5, 0, 0] {
        (all, exp) = digits_of(f, 40);
    }
    let mut digits = [0u8; 15];
    digits.copy_from_slice(&all[..15]);
    if all[15] >= 5 {
        let mut i = 15;
        loop {
            if i == 0 {
                // 9.99…9 rounded up: 1.00…0, one power of ten more.
                digits = [0; 15];
                digits[0] = 1;
                exp += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    (digits, exp)
}

/// The first `precision + 1` significant digits of `f`, correctly rounded
/// (at most 41), and the exponent of the first.
fn digits_of(f: f64, precision: usize) -> ([u8; 41], i32) {
    let sci = format!("{f:.precision$e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let mut all = [0u8; 41];
    for (slot, d) in all
        .iter_mut()
        .zip(mantissa.bytes().filter(u8::is_ascii_digit))
    {
        *slot = d - b'0';
    }
    (all, exp.parse().unwrap_or(0))
}

/// Drops trailing zeros after the point, keeping one digit.
fn trim_zeros(s: &str) -> String {
    if !s.contains('.') {
        return format!("{s}.0");
    }
    let t = s.trim_end_matches('0');
    if t.ends_with('.') {
        format!("{t}0")
    } else {
        t.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_print_as_sqlite_prints_them() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        for f in [
            1.5,
            -3.0,
            1e20,
            1e15,
            1e14,
            123_456.789,
            0.1,
            1e-4,
            1e-5,
            2.0 / 3.0,
            -1.25e-300,
            f64::MAX,
            0.0,
            100.0,
            1.234_567_890_123_456_7e-7,
            -0.0,
            100_000_000_000_000.5,
            0.5,
            9.999_999_999_999_95,
            999_999_999_999_999.5,
        ] {
            let sqlite: String = c
                .query_row("SELECT printf('%!.15g', ?1)", [f], |r| r.get(0))
                .unwrap();
            assert_eq!(real_text(f), sqlite, "{f:e}");
        }
        // Random doubles of every magnitude, and random ties.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = if i % 2 == 0 {
                f64::from_bits(x)
            } else {
                // A half: ties at the 15th digit.
                (x % 1_000_000_000_000_000) as f64 / 10.0 + 0.05
            };
            if !f.is_finite() {
                continue;
            }
            let sqlite: String = c
                .query_row("SELECT printf('%!.15g', ?1)", [f], |r| r.get(0))
                .unwrap();
            assert_eq!(real_text(f), sqlite, "{f:e} ({:#x})", f.to_bits());
        }
    }
}
