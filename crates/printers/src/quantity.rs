//! Canonical spelling of resource quantities (`Quantity.String()` in apimachinery).
//!
//! Printers show capacities, quota usage and HPA targets in canonical form: `1024Mi` prints as
//! `1Gi`, `1.5` as `1500m`, `1000` as `1k`, `0.5Gi` as `512Mi`. A stored object may still hold the
//! spelling a client sent, so the printer canonicalizes. The format (binary, decimal SI, decimal
//! exponent) follows the suffix the value was written with, as upstream does. Anything that does not
//! parse as a quantity is shown unchanged rather than failing the whole table.

/// How a quantity was written, which decides how it is printed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `Ki`, `Mi`, ... powers of 1024.
    BinarySi,
    /// `m`, `k`, `M`, ... powers of 1000, or no suffix.
    DecimalSi,
    /// `e3`, `E-6`.
    DecimalExponent,
}

/// A parsed quantity: `mantissa * 10^scale`, exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parsed {
    mantissa: i128,
    scale: i32,
    format: Format,
}

/// The canonical form of `s`, or `s` itself when it is not a quantity.
pub(crate) fn canonical(s: &str) -> String {
    match parse(s) {
        Some(q) => format(q).unwrap_or_else(|| s.to_string()),
        None => s.to_string(),
    }
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

fn parse(s: &str) -> Option<Parsed> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match bytes.first()? {
        b'-' => {
            negative = true;
            pos += 1;
        }
        b'+' => pos += 1,
        _ => {}
    }
    let int_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let int_digits = &s[int_start..pos];
    let mut frac_digits = "";
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        frac_digits = &s[frac_start..pos];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let (format, base10_exp, base2_exp) = suffix(&s[pos..])?;

    let mut mantissa: i128 = 0;
    for d in int_digits.bytes().chain(frac_digits.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(d - b'0'))?;
    }
    let frac_len = i32::try_from(frac_digits.len()).ok()?;
    let mut scale = base10_exp.checked_sub(frac_len)?;
    if base2_exp > 0 {
        mantissa = mantissa.checked_mul(1i128.checked_shl(base2_exp)?)?;
    }
    // Quantities are kept to nanounits; anything finer rounds up (away from zero), as upstream.
    if scale < -9 {
        let drop = u32::try_from(-9 - scale).ok()?;
        let div = pow10(drop).unwrap_or(i128::MAX);
        let rounded_up = mantissa % div != 0;
        mantissa = mantissa / div + i128::from(rounded_up);
        scale = -9;
    }
    if negative {
        mantissa = -mantissa;
    }
    Some(Parsed {
        mantissa,
        scale,
        format,
    })
}

/// Decodes a suffix into (format, power of ten, power of two).
fn suffix(s: &str) -> Option<(Format, i32, u32)> {
    let decimal = |e: i32| Some((Format::DecimalSi, e, 0));
    let binary = |e: u32| Some((Format::BinarySi, 0, e));
    match s {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = s.strip_prefix(['e', 'E'])?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((Format::DecimalExponent, rest.parse().ok()?, 0))
        }
    }
}

fn format(q: Parsed) -> Option<String> {
    if q.format == Format::BinarySi {
        if let Some(bytes) = whole_value(q)
            && bytes.abs() >= 1024
        {
            return Some(binary(bytes));
        }
        // Small or fractional binary quantities print as decimal so nothing is rounded away.
        return decimal(q, Format::DecimalSi);
    }
    decimal(q, q.format)
}

/// The value as an integer, when it is one.
fn whole_value(q: Parsed) -> Option<i128> {
    if q.scale >= 0 {
        q.mantissa.checked_mul(pow10(q.scale.unsigned_abs())?)
    } else {
        let div = pow10(q.scale.unsigned_abs())?;
        (q.mantissa % div == 0).then_some(q.mantissa / div)
    }
}

fn binary(value: i128) -> String {
    let mut amount = value;
    let mut exp = 0;
    while amount.abs() >= 1024 && amount % 1024 == 0 && exp < 6 {
        amount /= 1024;
        exp += 1;
    }
    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
    format!("{amount}{suffix}")
}

fn decimal(q: Parsed, format: Format) -> Option<String> {
    let mut amount = q.mantissa;
    let mut exp = q.scale;
    while amount.abs() >= 10 && amount % 10 == 0 {
        amount /= 10;
        exp += 1;
    }
    // Engineering notation: the exponent is a multiple of three.
    match exp.rem_euclid(3) {
        1 => {
            amount = amount.checked_mul(10)?;
            exp -= 1;
        }
        2 => {
            amount = amount.checked_mul(100)?;
            exp -= 2;
        }
        _ => {}
    }
    if amount == 0 {
        return Some("0".to_string());
    }
    let suffix = match (format, exp) {
        (Format::DecimalExponent, 0) => String::new(),
        (Format::DecimalExponent, e) => format!("e{e}"),
        (_, -9) => "n".into(),
        (_, -6) => "u".into(),
        (_, -3) => "m".into(),
        (_, 0) => String::new(),
        (_, 3) => "k".into(),
        (_, 6) => "M".into(),
        (_, 9) => "G".into(),
        (_, 12) => "T".into(),
        (_, 15) => "P".into(),
        (_, 18) => "E".into(),
        (_, e) => format!("e{e}"),
    };
    Some(format!("{amount}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn binary_quantities() {
        assert_eq!(canonical("1Gi"), "1Gi");
        assert_eq!(canonical("1024Mi"), "1Gi");
        assert_eq!(canonical("1536Mi"), "1536Mi");
        assert_eq!(canonical("0.5Gi"), "512Mi");
        assert_eq!(canonical("2048Ki"), "2Mi");
        assert_eq!(canonical("10Gi"), "10Gi");
        assert_eq!(canonical("1Ki"), "1Ki");
        // Below 1024 (or fractional) a binary quantity prints as decimal.
        assert_eq!(canonical("0.5Ki"), "512");
        assert_eq!(canonical("0Gi"), "0");
        assert_eq!(canonical("1.5Ki"), "1536");
        assert_eq!(canonical("0.001Ki"), "1024m");
    }

    #[test]
    fn decimal_quantities() {
        assert_eq!(canonical("100m"), "100m");
        assert_eq!(canonical("1.5"), "1500m");
        assert_eq!(canonical("0.1"), "100m");
        assert_eq!(canonical("1000"), "1k");
        assert_eq!(canonical("1000m"), "1");
        assert_eq!(canonical("10"), "10");
        assert_eq!(canonical("250M"), "250M");
        assert_eq!(canonical("2000M"), "2G");
        assert_eq!(canonical("5"), "5");
        assert_eq!(canonical("0"), "0");
        assert_eq!(canonical("-1.5"), "-1500m");
        assert_eq!(canonical("+2"), "2");
        assert_eq!(canonical("0.0000000001"), "1n");
    }

    #[test]
    fn exponent_quantities() {
        assert_eq!(canonical("1e3"), "1e3");
        assert_eq!(canonical("1E6"), "1e6");
        assert_eq!(canonical("12e2"), "1200");
        assert_eq!(canonical("1e-3"), "1e-3");
    }

    #[test]
    fn garbage_is_shown_as_is() {
        assert_eq!(canonical("lots"), "lots");
        assert_eq!(canonical(""), "");
        assert_eq!(canonical("1Qi"), "1Qi");
        assert_eq!(canonical("."), ".");
    }
}
