//! The apimachinery types whose JSON form is not the plain rendering of their proto message.
//!
//! Upstream gives each of these a hand-written `MarshalJSON`; this module reproduces what those
//! produce for a value decoded from protobuf:
//!
//! | type | proto | JSON |
//! |---|---|---|
//! | meta/v1 `Time` | `{seconds, nanos}` | RFC 3339 in UTC, whole seconds (upstream's proto decoder drops `nanos`) |
//! | meta/v1 `MicroTime` | `{seconds, nanos}` | RFC 3339 in UTC with exactly 6 fractional digits |
//! | meta/v1 `Duration` | `{duration}` (ns) | Go's `time.Duration` string, e.g. `1h0m0s` |
//! | resource `Quantity` | `{string}` | the string |
//! | intstr `IntOrString` | `{type, intVal, strVal}` | a number (type 0) or a string (type 1) |
//! | runtime `RawExtension`, meta/v1 `FieldsV1` | `{raw}` | the embedded JSON document |
//!
//! An empty `Time`/`MicroTime` message is the Go zero time, which upstream serializes as `null`;
//! it is left out here, which JSON consumers treat the same.

use base64::Engine;
use serde_json::Value;

use crate::debug::Node;

/// A definition with its own JSON form, named by its OpenAPI definition name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    Time,
    MicroTime,
    Quantity,
    IntOrString,
    /// `RawExtension` and `FieldsV1`: raw bytes holding a JSON document.
    Embedded,
}

impl Special {
    pub fn by_definition(name: &str) -> Option<Special> {
        Some(match name {
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
            "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
            "io.k8s.apimachinery.pkg.api.resource.Quantity" => Special::Quantity,
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
            "io.k8s.apimachinery.pkg.runtime.RawExtension"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1" => Special::Embedded,
            _ => return None,
        })
    }

    /// Converts the decoded message; `Ok(None)` means "leave the field out". `depth` is the
    /// embedding depth of the object holding it.
    pub fn convert(self, node: &Node, depth: usize) -> Result<Option<Value>, String> {
        let Node::Struct(_, fields) = node else {
            return Err("expected a message".into());
        };
        match self {
            Special::Time => {
                let (seconds, nanos) = (int(fields, "seconds")?, int(fields, "nanos")?);
                if seconds.is_none() && nanos.is_none() {
                    return Ok(None);
                }
                rfc3339(seconds.unwrap_or(0), 0, false).map(|s| Some(Value::String(s)))
            }
            Special::MicroTime => {
                let (seconds, nanos) = (int(fields, "seconds")?, int(fields, "nanos")?);
                if seconds.is_none() && nanos.is_none() {
                    return Ok(None);
                }
                rfc3339(seconds.unwrap_or(0), nanos.unwrap_or(0), true)
                    .map(|s| Some(Value::String(s)))
            }
            Special::Quantity => {
                let s = string(fields, "string")?.unwrap_or_default();
                // An unset quantity is Go's zero Quantity, which prints as "0".
                let s = if s.is_empty() { "0".to_string() } else { s };
                Ok(Some(Value::String(s)))
            }
            Special::IntOrString => match int(fields, "type")?.unwrap_or(0) {
                0 => Ok(Some(Value::from(int(fields, "int_val")?.unwrap_or(0)))),
                1 => Ok(Some(Value::String(
                    string(fields, "str_val")?.unwrap_or_default(),
                ))),
                other => Err(format!("impossible IntOrString type {other}")),
            },
            Special::Embedded => {
                let raw = match field(fields, "raw") {
                    Some(node) => bytes(node)?,
                    None => Vec::new(),
                };
                if raw.is_empty() {
                    return Ok(None);
                }
                embedded(&raw, depth).map(Some)
            }
        }
    }
}

/// A nested object: JSON as upstream clients send it, or (from a protobuf-only client) a
/// complete protobuf envelope of its own.
fn embedded(raw: &[u8], depth: usize) -> Result<Value, String> {
    if raw.starts_with(crate::MAGIC) {
        return crate::decode_embedded(raw, depth + 1).map_err(|e| format!("embedded object: {e}"));
    }
    serde_json::from_slice(raw).map_err(|e| format!("embedded object is not valid JSON: {e}"))
}

/// The value of field `name` (Rust spelling, without `r#`), looking through `Some`.
pub fn field<'a>(fields: &'a [(String, Node)], name: &str) -> Option<&'a Node> {
    let (_, node) = fields
        .iter()
        .find(|(f, _)| f.strip_prefix("r#").unwrap_or(f) == name)?;
    match node {
        Node::None => None,
        Node::Some(inner) => Some(inner),
        other => Some(other),
    }
}

fn int(fields: &[(String, Node)], name: &str) -> Result<Option<i64>, String> {
    match field(fields, name) {
        None => Ok(None),
        Some(Node::Num(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}: {n} is not an integer")),
        Some(_) => Err(format!("{name}: expected an integer")),
    }
}

fn string(fields: &[(String, Node)], name: &str) -> Result<Option<String>, String> {
    match field(fields, name) {
        None => Ok(None),
        Some(Node::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{name}: expected a string")),
    }
}

/// The bytes of a `bytes` field, which `Debug` prints as a list of numbers.
pub fn bytes(node: &Node) -> Result<Vec<u8>, String> {
    match node {
        Node::Ints(items) => items
            .iter()
            .map(|&n| u8::try_from(n).map_err(|_| format!("{n} is not a byte")))
            .collect(),
        Node::List(items) if items.is_empty() => Ok(Vec::new()),
        _ => Err("expected bytes".into()),
    }
}

/// Standard base64 with padding: Go's encoding of `[]byte` in JSON.
pub fn base64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// `seconds`/`nanos` since the epoch in RFC 3339, UTC. `micros` selects MicroTime's layout
/// (`2006-01-02T15:04:05.000000Z07:00`), otherwise Time's (`2006-01-02T15:04:05Z07:00`).
/// Out-of-range nanos carry into seconds, as Go's `time.Unix` does.
fn rfc3339(seconds: i64, nanos: i64, micros: bool) -> Result<String, String> {
    let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    let secs = i64::try_from(total.div_euclid(1_000_000_000));
    let nanos = total.rem_euclid(1_000_000_000) as i32; // < 1e9, fits
    let out_of_range = || format!("time {seconds}s {nanos}ns is out of range");
    let ts = secs
        .ok()
        .and_then(|s| jiff::Timestamp::new(s, nanos).ok())
        .ok_or_else(out_of_range)?;
    let utc = ts.to_zoned(jiff::tz::TimeZone::UTC);
    if !(0..=9999).contains(&utc.year()) {
        return Err(out_of_range());
    }
    let whole = utc.strftime("%Y-%m-%dT%H:%M:%S");
    Ok(if micros {
        format!("{whole}.{:06}Z", nanos / 1000)
    } else {
        format!("{whole}Z")
    })
}

/// Go's `time.Duration.String()`: `0s`, `1.5s`, `1h2m3s`, `100ms`, `12µs`, `-3ns`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, scale, digits) = match u {
            0..1_000 => ("ns", 1, 0),
            1_000..1_000_000 => ("µs", 1_000, 3),
            _ => ("ms", 1_000_000, 6),
        };
        return format!("{sign}{}{unit}", decimal(u / scale, u % scale, digits));
    }
    let whole = u / 1_000_000_000;
    let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
    let secs = format!("{}s", decimal(s, u % 1_000_000_000, 9));
    if h > 0 {
        format!("{sign}{h}h{m}m{secs}")
    } else if m > 0 {
        format!("{sign}{m}m{secs}")
    } else {
        format!("{sign}{secs}")
    }
}

/// `int.frac` with `frac` written in `digits` digits, trailing zeros (and a bare point) removed.
fn decimal(int: u64, frac: u64, digits: usize) -> String {
    if frac == 0 || digits == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0digits$}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(fields: &[(&str, Option<i64>)]) -> Node {
        Node::Struct(
            "Time".into(),
            fields
                .iter()
                .map(|(n, v)| {
                    let v = match v {
                        Some(v) => Node::Some(Box::new(Node::Num(v.to_string()))),
                        None => Node::None,
                    };
                    (n.to_string(), v)
                })
                .collect(),
        )
    }

    #[test]
    fn time_is_whole_seconds_and_micro_time_has_six_digits() {
        let node = time(&[
            ("seconds", Some(1_700_000_000)),
            ("nanos", Some(123_456_789)),
        ]);
        assert_eq!(
            Special::Time.convert(&node, 0),
            Ok(Some(Value::from("2023-11-14T22:13:20Z")))
        );
        assert_eq!(
            Special::MicroTime.convert(&node, 0),
            Ok(Some(Value::from("2023-11-14T22:13:20.123456Z")))
        );
        let epoch = time(&[("seconds", Some(0)), ("nanos", None)]);
        assert_eq!(
            Special::MicroTime.convert(&epoch, 0),
            Ok(Some(Value::from("1970-01-01T00:00:00.000000Z")))
        );
        // Nanos outside [0, 1e9) carry, as time.Unix does.
        let carry = time(&[("seconds", Some(10)), ("nanos", Some(-1_000))]);
        assert_eq!(
            Special::MicroTime.convert(&carry, 0),
            Ok(Some(Value::from("1970-01-01T00:00:09.999999Z")))
        );
    }

    #[test]
    fn zero_time_is_left_out_and_absurd_time_is_an_error() {
        let zero = time(&[("seconds", None), ("nanos", None)]);
        assert_eq!(Special::Time.convert(&zero, 0), Ok(None));
        assert_eq!(Special::MicroTime.convert(&zero, 0), Ok(None));
        let far = time(&[("seconds", Some(i64::MAX)), ("nanos", Some(0))]);
        assert!(Special::Time.convert(&far, 0).is_err());
        let negative_year = time(&[("seconds", Some(-70_000_000_000)), ("nanos", None)]);
        assert!(Special::Time.convert(&negative_year, 0).is_err());
    }

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (-3, "-3ns"),
            (1_500, "1.5µs"),
            (12_000, "12µs"),
            (100_000_000, "100ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_001, "1h2m3.000000001s"),
            (-5_400_000_000_000, "-1h30m0s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(nanos), want, "{nanos}ns");
        }
    }

    #[test]
    fn int_or_string_and_quantity() {
        let ios = |t: i64, i: i64, s: &str| {
            Node::Struct(
                "IntOrString".into(),
                vec![
                    (
                        "r#type".into(),
                        Node::Some(Box::new(Node::Num(t.to_string()))),
                    ),
                    (
                        "int_val".into(),
                        Node::Some(Box::new(Node::Num(i.to_string()))),
                    ),
                    ("str_val".into(), Node::Some(Box::new(Node::Str(s.into())))),
                ],
            )
        };
        assert_eq!(
            Special::IntOrString.convert(&ios(0, 8080, ""), 0),
            Ok(Some(Value::from(8080)))
        );
        assert_eq!(
            Special::IntOrString.convert(&ios(1, 0, "50%"), 0),
            Ok(Some(Value::from("50%")))
        );
        assert!(Special::IntOrString.convert(&ios(2, 0, ""), 0).is_err());
        let q = |s: Option<&str>| {
            let v = s.map_or(Node::None, |s| Node::Some(Box::new(Node::Str(s.into()))));
            Node::Struct("Quantity".into(), vec![("string".into(), v)])
        };
        assert_eq!(
            Special::Quantity.convert(&q(Some("1Gi")), 0),
            Ok(Some(Value::from("1Gi")))
        );
        assert_eq!(
            Special::Quantity.convert(&q(None), 0),
            Ok(Some(Value::from("0")))
        );
    }

    #[test]
    fn embedded_raw_is_json_or_nothing() {
        let raw = |b: &[u8]| {
            // As the parser renders them: `[]` is an empty list, anything else integers.
            let list = if b.is_empty() {
                Node::List(vec![])
            } else {
                Node::Ints(b.iter().map(|&x| i64::from(x)).collect())
            };
            Node::Struct(
                "RawExtension".into(),
                vec![("raw".into(), Node::Some(Box::new(list)))],
            )
        };
        assert_eq!(
            Special::Embedded.convert(&raw(br#"{"a":[1]}"#), 0),
            Ok(Some(serde_json::json!({"a": [1]})))
        );
        assert_eq!(Special::Embedded.convert(&raw(b""), 0), Ok(None));
        assert!(Special::Embedded.convert(&raw(b"{not json"), 0).is_err());
        assert!(Special::Embedded.convert(&raw(b"k8s\0garbage"), 0).is_err());
    }
}
