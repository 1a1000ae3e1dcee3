//! Resource quantities (`100m`, `1.5Gi`, `1e3`): parsing, canonical form, comparison and
//! arithmetic, with upstream's `resource.Quantity` semantics.
//!
//! A [`Quantity`] is an exact fixed-point number with nine decimal places (nanos) plus the
//! [`Format`] its suffix had. Parsing follows upstream's grammar and rounding: anything finer than
//! one nano is rounded up (away from zero), binary-suffixed values are capped at 2^63-1, and the
//! canonical string picks the largest suffix that loses nothing (`1.5` → `1500m`, `0.5Gi` →
//! `512Mi`). Equality and ordering compare values only, so `1Ki == 1024`.
//!
//! Values whose magnitude exceeds 10^28 units (far beyond anything a cluster holds) are refused
//! with [`QuantityError::OutOfRange`] rather than silently losing digits; upstream keeps them as
//! arbitrary-precision decimals.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

/// Nanos per unit.
const NANO: i128 = 1_000_000_000;
/// Largest magnitude (in nanos) a quantity may hold: 10^28 units.
const MAX_NANOS: i128 = 10_i128.pow(37);
/// Upstream caps binary-suffixed values at the largest int64.
const MAX_BINARY_NANOS: i128 = (i64::MAX as i128) * NANO;

/// How a quantity is written; parsing remembers it and the canonical form keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `k`, `M`, `m`... or no suffix.
    #[default]
    DecimalSI,
    /// `Ki`, `Mi`, `Gi`...
    BinarySI,
    /// `e3`, `E-2`...
    DecimalExponent,
}

/// Why a string is not a quantity. The messages are upstream's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("quantity is too large")]
    OutOfRange,
}

/// An exact resource amount.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// The lexical parts of a quantity string, as upstream's `parseQuantityString` splits it.
struct Parts<'a> {
    positive: bool,
    /// Integer digits with leading zeros removed ("0" when there are none).
    num: &'a str,
    /// Fraction digits (possibly empty).
    denom: &'a str,
    suffix: &'a str,
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    let zero = Parts {
        positive,
        num: "0",
        denom: "",
        suffix: "",
    };
    if pos >= end {
        return Ok(zero);
    }
    let num_start = pos;
    while pos < end && is_digit(b[pos]) {
        pos += 1;
    }
    let num = if pos == num_start {
        "0"
    } else {
        &s[num_start..pos]
    };
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && is_digit(b[pos]) {
            pos += 1;
        }
        denom = &s[start..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && is_digit(b[pos]) {
        pos += 1;
    }
    if pos != end {
        return Err(QuantityError::Format);
    }
    Ok(Parts {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// `(base, exponent, format)` of a suffix: `Mi` is 2^20, `k` 10^3, `e-2` 10^-2.
fn interpret_suffix(suffix: &str) -> Option<(u32, i64, Format)> {
    let decimal = match suffix {
        "" => Some(0),
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((10, e, Format::DecimalSI));
    }
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = binary {
        return Some((2, e, Format::BinarySI));
    }
    let rest = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    if rest.is_empty() {
        return None;
    }
    rest.parse::<i64>()
        .ok()
        .map(|e| (10, e, Format::DecimalExponent))
}

/// `ceil(m × 10^p × 2^shift)` for `m ≥ 0`; `sticky` says digits below `m` were dropped and were
/// not all zero, which only matters when the result is otherwise exact.
fn scale_round_up(m: i128, p: i64, shift: u32, sticky: bool) -> Result<i128, QuantityError> {
    let m = m
        .checked_mul(1_i128 << shift)
        .ok_or(QuantityError::OutOfRange)?;
    if p >= 0 {
        if sticky {
            return Err(QuantityError::OutOfRange);
        }
        let factor = u32::try_from(p)
            .ok()
            .and_then(|p| 10_i128.checked_pow(p))
            .ok_or(QuantityError::OutOfRange)?;
        return m.checked_mul(factor).ok_or(QuantityError::OutOfRange);
    }
    let divisor = u32::try_from(-p).ok().and_then(|p| 10_i128.checked_pow(p));
    match divisor {
        // 10^-p is beyond i128, so the (non-zero) value is below one nano.
        None => Ok(1),
        Some(d) => {
            let (q, r) = (m / d, m % d);
            Ok(if r != 0 || sticky { q + 1 } else { q })
        }
    }
}

impl Quantity {
    /// Parses upstream's quantity syntax.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        let parts = split(s)?;
        let (base, exponent, mut format) =
            interpret_suffix(parts.suffix).ok_or(QuantityError::Suffix)?;
        let all = format!("{}{}", parts.num, parts.denom);
        let sig = all.trim_start_matches('0');
        if sig.is_empty() {
            return Ok(Quantity { nanos: 0, format });
        }
        // Keep 36 significant digits exactly; anything after only decides rounding.
        let kept = sig.len().min(36);
        let dropped = &sig[kept..];
        let sticky = dropped.bytes().any(|c| c != b'0');
        let m: i128 = sig[..kept].parse().map_err(|_| QuantityError::Numeric)?;
        let frac_digits = i64::try_from(parts.denom.len()).map_err(|_| QuantityError::Numeric)?;
        let dropped_len = i64::try_from(dropped.len()).map_err(|_| QuantityError::Numeric)?;
        let (p, shift) = if base == 10 {
            (
                exponent
                    .checked_sub(frac_digits)
                    .and_then(|e| e.checked_add(9 + dropped_len))
                    .ok_or(QuantityError::OutOfRange)?,
                0,
            )
        } else {
            (9 - frac_digits + dropped_len, exponent as u32)
        };
        let mut nanos = scale_round_up(m, p, shift, sticky)?;
        if format == Format::BinarySI {
            nanos = nanos.min(MAX_BINARY_NANOS);
            if nanos < NANO {
                // Upstream shows sub-unit binary amounts in decimal to avoid confusion.
                format = Format::DecimalSI;
            }
        }
        if nanos > MAX_NANOS {
            return Err(QuantityError::OutOfRange);
        }
        Ok(Quantity {
            nanos: if parts.positive { nanos } else { -nanos },
            format,
        })
    }

    /// The zero quantity (`"0"`).
    pub const fn zero() -> Quantity {
        Quantity {
            nanos: 0,
            format: Format::DecimalSI,
        }
    }

    /// `n` thousandths, decimal (`from_milli(1500)` is `1500m`).
    pub fn from_milli(n: i128) -> Quantity {
        Quantity {
            nanos: n.saturating_mul(1_000_000).clamp(-MAX_NANOS, MAX_NANOS),
            format: Format::DecimalSI,
        }
    }

    /// `n` whole units in the given format (`from_value(1 << 30, BinarySI)` is `1Gi`).
    pub fn from_value(n: i128, format: Format) -> Quantity {
        Quantity {
            nanos: n.saturating_mul(NANO).clamp(-MAX_NANOS, MAX_NANOS),
            format,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        self.nanos.signum() as i32
    }

    /// The exact value in billionths.
    pub fn as_nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in thousandths, rounded away from zero (upstream's `MilliValue`).
    pub fn as_milli(&self) -> i128 {
        div_away_from_zero(self.nanos, 1_000_000)
    }

    /// The value in units, rounded away from zero (upstream's `Value`).
    pub fn as_value(&self) -> i128 {
        div_away_from_zero(self.nanos, NANO)
    }

    /// An approximation for scoring and ratios; never use it for comparisons.
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    /// Rounds away from zero to a multiple of 10^-`decimals` units (upstream's `RoundUp`, e.g.
    /// `round_up(3)` makes `0.0001` into `1m`). Returns whether the value was already exact.
    pub fn round_up(&mut self, decimals: u32) -> bool {
        let step = match 9_u32.checked_sub(decimals) {
            Some(d) => 10_i128.pow(d),
            None => return true,
        };
        let rounded = div_away_from_zero(self.nanos, step) * step;
        let exact = rounded == self.nanos;
        self.nanos = rounded.clamp(-MAX_NANOS, MAX_NANOS);
        exact
    }

    /// `self + other`, or `None` past the representable range. A zero left side takes the
    /// right side's format, as upstream's `Add` does.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let nanos = self.nanos.checked_add(other.nanos)?;
        (nanos.abs() <= MAX_NANOS).then_some(Quantity {
            nanos,
            format: self.combined_format(other),
        })
    }

    /// `self - other`, or `None` past the representable range.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        let nanos = self.nanos.checked_sub(other.nanos)?;
        (nanos.abs() <= MAX_NANOS).then_some(Quantity {
            nanos,
            format: self.combined_format(other),
        })
    }

    fn combined_format(&self, other: &Quantity) -> Format {
        if self.nanos == 0 {
            other.format
        } else {
            self.format
        }
    }

    /// Upstream's canonical string (what the API server stores and returns).
    pub fn to_canonical_string(&self) -> String {
        if self.nanos == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0)
        {
            // Small or fractional binary amounts cannot be shown exactly with Ki..Ei.
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let (mut v, mut k) = (self.nanos / NANO, 0usize);
            while k < 6 && v % 1024 == 0 {
                v /= 1024;
                k += 1;
            }
            return format!("{v}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k]);
        }
        let (mut m, mut e) = (self.nanos, -9_i32);
        while m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        while e % 3 != 0 {
            m *= 10;
            e -= 1;
        }
        let suffix = match (format, e) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalSI, -9) => "n".into(),
            (Format::DecimalSI, -6) => "u".into(),
            (Format::DecimalSI, -3) => "m".into(),
            (Format::DecimalSI, 0) => String::new(),
            (Format::DecimalSI, 3) => "k".into(),
            (Format::DecimalSI, 6) => "M".into(),
            (Format::DecimalSI, 9) => "G".into(),
            (Format::DecimalSI, 12) => "T".into(),
            (Format::DecimalSI, 15) => "P".into(),
            (Format::DecimalSI, 18) => "E".into(),
            // Beyond the SI table (and all exponent forms) upstream writes `e<n>`.
            (_, e) => format!("e{e}"),
        };
        format!("{m}{suffix}")
    }

    /// The wire type used in `k8s-openapi` objects, in canonical form.
    pub fn to_k8s(&self) -> k8s_openapi::apimachinery::pkg::api::resource::Quantity {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(self.to_canonical_string())
    }
}

/// `n / d` rounded away from zero (`d > 0`).
fn div_away_from_zero(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    match r.signum() {
        1 => q + 1,
        -1 => q - 1,
        _ => q,
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl TryFrom<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> for Quantity {
    type Error = QuantityError;
    fn try_from(
        q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ) -> Result<Self, Self::Error> {
        Quantity::parse(&q.0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical_string())
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Saturates at the representable range instead of overflowing.
impl Add for Quantity {
    type Output = Quantity;
    fn add(self, rhs: Quantity) -> Quantity {
        Quantity {
            nanos: self
                .nanos
                .saturating_add(rhs.nanos)
                .clamp(-MAX_NANOS, MAX_NANOS),
            format: self.combined_format(&rhs),
        }
    }
}

/// Saturates at the representable range instead of overflowing.
impl Sub for Quantity {
    type Output = Quantity;
    fn sub(self, rhs: Quantity) -> Quantity {
        Quantity {
            nanos: self
                .nanos
                .saturating_sub(rhs.nanos)
                .clamp(-MAX_NANOS, MAX_NANOS),
            format: self.combined_format(&rhs),
        }
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, rhs: Quantity) {
        *self = *self + rhs;
    }
}

impl SubAssign for Quantity {
    fn sub_assign(&mut self, rhs: Quantity) {
        *self = *self - rhs;
    }
}

impl Neg for Quantity {
    type Output = Quantity;
    fn neg(self) -> Quantity {
        Quantity {
            nanos: -self.nanos,
            format: self.format,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Quantity::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_canonical_string()
    }

    #[test]
    fn canonical_forms_match_upstream() {
        let cases = [
            ("0", "0"),
            ("0000", "0"),
            ("-0", "0"),
            ("1", "1"),
            ("1.5", "1500m"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("100m", "100m"),
            ("0.1m", "100u"),
            ("1n", "1n"),
            ("0.1n", "1n"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1.5Gi", "1536Mi"),
            ("1024Mi", "1Gi"),
            ("1Ki", "1Ki"),
            ("512Ki", "512Ki"),
            ("0.5Ki", "512"),
            ("1023", "1023"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("2000", "2k"),
            ("1M", "1M"),
            ("1000k", "1M"),
            ("1E", "1E"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1e4", "10e3"),
            ("1e-3", "1e-3"),
            ("100e-3", "100e-3"),
            ("-1", "-1"),
            ("-1.5", "-1500m"),
            ("-1Gi", "-1Gi"),
            ("+1", "1"),
            ("1.", "1"),
            (".5", "500m"),
            ("0.0001", "100u"),
            ("12.34Mi", "12939427840m"),
            ("8Ei", "9223372036854775807"),
            ("1Ei", "1Ei"),
            ("0.000000000000000000000001", "1n"),
        ];
        for (input, want) in cases {
            assert_eq!(canon(input), want, "input {input}");
        }
    }

    #[test]
    fn parse_errors_use_upstream_messages() {
        let cases = [
            ("", QuantityError::Format),
            ("abc", QuantityError::Format),
            ("1 Gi", QuantityError::Format),
            ("1.5.5", QuantityError::Format),
            ("1K", QuantityError::Suffix),
            ("1e", QuantityError::Suffix),
            ("1Gi0", QuantityError::Suffix),
            ("1mi", QuantityError::Suffix),
            ("1e99999999999999999999", QuantityError::Suffix),
            ("1e40", QuantityError::OutOfRange),
        ];
        for (input, want) in cases {
            assert_eq!(Quantity::parse(input), Err(want.clone()), "input {input:?}");
        }
        assert_eq!(
            QuantityError::Format.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        // Zero with any exponent is still zero.
        assert!(Quantity::parse("0e999").unwrap().is_zero());
    }

    #[test]
    fn accessors_round_away_from_zero() {
        let q = Quantity::parse("1.5").unwrap();
        assert_eq!(q.as_milli(), 1500);
        assert_eq!(q.as_value(), 2);
        assert_eq!(Quantity::parse("0.1m").unwrap().as_milli(), 1);
        assert_eq!(Quantity::parse("-0.1m").unwrap().as_milli(), -1);
        assert_eq!(Quantity::parse("1Gi").unwrap().as_value(), 1 << 30);
        assert_eq!(Quantity::parse("250m").unwrap().as_nanos(), 250_000_000);
        assert!((Quantity::parse("1.5").unwrap().as_f64() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn comparison_ignores_format() {
        let a = Quantity::parse("1Ki").unwrap();
        let b = Quantity::parse("1024").unwrap();
        assert_eq!(a, b);
        assert!(Quantity::parse("999m").unwrap() < Quantity::parse("1").unwrap());
        assert!(Quantity::parse("1Gi").unwrap() > Quantity::parse("1G").unwrap());
        let mut v: Vec<Quantity> = ["2", "1m", "-1", "1Ki"]
            .iter()
            .map(|s| Quantity::parse(s).unwrap())
            .collect();
        v.sort();
        let sorted: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ["-1", "1m", "2", "1Ki"]);
    }

    #[test]
    fn arithmetic_keeps_the_left_format() {
        let a = Quantity::parse("1Gi").unwrap();
        let b = Quantity::parse("512Mi").unwrap();
        assert_eq!((a + b).to_string(), "1536Mi");
        assert_eq!((a - b).to_string(), "512Mi");
        let zero = Quantity::zero();
        assert_eq!((zero + b).format(), Format::BinarySI);
        let cpu = Quantity::parse("100m").unwrap() + Quantity::parse("1").unwrap();
        assert_eq!(cpu.to_string(), "1100m");
        let mut acc = Quantity::zero();
        acc += Quantity::parse("250m").unwrap();
        acc -= Quantity::parse("1").unwrap();
        assert_eq!(acc.to_string(), "-750m");
        assert_eq!((-acc).to_string(), "750m");
        assert_eq!(a.checked_add(&b), Some(Quantity::parse("1.5Gi").unwrap()));
        let huge = Quantity::parse("9E").unwrap();
        assert_eq!(
            Quantity::from_value(i128::MAX, Format::DecimalSI).checked_add(&huge),
            None
        );
    }

    #[test]
    fn round_up_to_milli() {
        let mut q = Quantity::parse("0.0001").unwrap();
        assert!(!q.round_up(3));
        assert_eq!(q.to_string(), "1m");
        let mut q = Quantity::parse("-1.0001").unwrap();
        q.round_up(3);
        assert_eq!(q.to_string(), "-1001m");
        let mut q = Quantity::parse("1Gi").unwrap();
        assert!(q.round_up(3));
        assert_eq!(q.to_string(), "1Gi");
    }

    #[test]
    fn constructors_and_wire_type() {
        assert_eq!(Quantity::from_milli(1500).to_string(), "1500m");
        assert_eq!(
            Quantity::from_value(1 << 30, Format::BinarySI).to_string(),
            "1Gi"
        );
        let wire = k8s_openapi::apimachinery::pkg::api::resource::Quantity("0.5Gi".into());
        let q = Quantity::try_from(&wire).unwrap();
        assert_eq!(q.to_k8s().0, "512Mi");
        assert_eq!("2k".parse::<Quantity>().unwrap().as_value(), 2000);
    }
}
