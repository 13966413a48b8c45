//! Python's `repr` of a float, which `json.dumps` writes for every JSON
//! number with a fraction or an exponent.
//!
//! Both Python and Rust find the shortest digits that read back as the same
//! double; they differ only in layout. Python writes a plain decimal for
//! magnitudes from 1e-4 up to (not including) 1e16 (`0.0001`,
//! `1000000000000000.0`), a whole number keeping a `.0`, and otherwise a
//! mantissa and an exponent with a sign and at least two digits (`1e+16`,
//! `1.5e-07`). Beyond the range of a double the
//! value is `Infinity` (Python's `json.loads` reads `1e400` as infinity, and
//! `json.dumps` writes that).

/// Appends Python's `repr` of a float (what `json.dumps` writes).
pub(super) fn push_float(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("NaN");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if x.is_sign_negative() {
        out.push('-');
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as Python's
    // repr does; only the layout differs.
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let decimal_point = exponent.parse::<i32>().unwrap_or(0) + 1;
    if decimal_point <= -4 || decimal_point > 16 {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let exp = decimal_point - 1;
        out.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if decimal_point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(decimal_point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let point = decimal_point as usize;
        if point >= digits.len() {
            out.push_str(&digits);
            out.push_str(&"0".repeat(point - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(x: f64) -> String {
        let mut out = String::new();
        push_float(&mut out, x);
        out
    }

    // Expected texts come from CPython 3.11 (`repr(x)`).
    #[test]
    fn layout_matches_python() {
        assert_eq!(repr(1.0), "1.0");
        assert_eq!(repr(0.0), "0.0");
        assert_eq!(repr(-0.0), "-0.0");
        assert_eq!(repr(1e16), "1e+16");
        assert_eq!(repr(1.5e16), "1.5e+16");
        assert_eq!(repr(1e15), "1000000000000000.0");
        assert_eq!(repr(0.0001), "0.0001");
        assert_eq!(repr(0.00001), "1e-05");
        assert_eq!(repr(1.5e-7), "1.5e-07");
        assert_eq!(repr(123.456), "123.456");
        assert_eq!(repr(1e300), "1e+300");
        assert_eq!(repr(f64::INFINITY), "Infinity");
        assert_eq!(repr(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(repr(f64::NAN), "NaN");
    }
}
