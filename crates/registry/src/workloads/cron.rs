//! CronJob schedules with the semantics of the parser upstream uses (robfig/cron v3
//! `ParseStandard`): five fields (minute hour day-of-month month day-of-week) with `*`/`?`,
//! ranges, steps, lists and month/weekday names; the `@yearly` ... `@hourly` and
//! `@every <duration>` descriptors; an optional `TZ=`/`CRON_TZ=` prefix. Error texts are the
//! parser's, because the API server returns them verbatim.
//!
//! [`Schedule::next_after`] gives the next activation in civil (wall-clock) time, for the
//! CronJob controller.

use jiff::ToSpan;
use jiff::civil::DateTime;

/// Set in a field's bits when it was written as `*` or `?` (day matching depends on it).
const STAR: u64 = 1 << 63;

#[derive(Clone, Copy)]
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of `names[0]`.
    first_name_value: u32,
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    first_name_value: 0,
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    first_name_value: 0,
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    first_name_value: 0,
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    first_name_value: 1,
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    first_name_value: 0,
};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Field bit sets (bit n = value n, plus [`STAR`]).
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every <duration>`, in whole seconds (at least one).
    Every(u64),
}

fn all(b: Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

fn bits(min: u32, max: u32, step: u32) -> u64 {
    let mut out = 0;
    let mut i = min;
    while i <= max {
        out |= 1 << i;
        i += step;
    }
    out
}

/// Go's `strconv.Atoi` error text.
fn atoi(expr: &str) -> Result<i64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {expr:?}: invalid syntax"));
    }
    expr.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {expr:?}: value out of range"))
}

fn must_parse_int(expr: &str) -> Result<u32, String> {
    let n = atoi(expr).map_err(|e| format!("failed to parse int from {expr}: {e}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| format!("end of range ({n}) above maximum: {expr}"))
}

fn int_or_name(expr: &str, b: Bounds) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(b.first_name_value + i as u32);
    }
    must_parse_int(expr)
}

fn range(expr: &str, b: Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (mut start, mut end, mut extra);
    if low_high[0] == "*" || low_high[0] == "?" {
        (start, end, extra) = (b.min, b.max, STAR);
    } else {
        start = int_or_name(low_high[0], b)?;
        extra = 0;
        end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    start = start.min(63);
    Ok(bits(start, end, step) | extra)
}

fn field(f: &str, b: Bounds) -> Result<u64, String> {
    let mut out = 0;
    for expr in f.split(',').filter(|e| !e.is_empty()) {
        out |= range(expr, b)?;
    }
    Ok(out)
}

/// Go's `time.ParseDuration`, in seconds.
fn parse_duration(s: &str) -> Result<f64, String> {
    let err = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0.0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Ok(if neg { -total } else { total })
}

fn descriptor(d: &str) -> Result<Schedule, String> {
    let fields = |minute, hour, dom, month, dow| Schedule::Fields {
        minute,
        hour,
        dom,
        month,
        dow,
    };
    let one = |b: Bounds| 1u64 << b.min;
    match d {
        "@yearly" | "@annually" => Ok(fields(
            one(MINUTES),
            one(HOURS),
            one(DOM),
            one(MONTHS),
            all(DOW),
        )),
        "@monthly" => Ok(fields(
            one(MINUTES),
            one(HOURS),
            one(DOM),
            all(MONTHS),
            all(DOW),
        )),
        "@weekly" => Ok(fields(
            one(MINUTES),
            one(HOURS),
            all(DOM),
            all(MONTHS),
            one(DOW),
        )),
        "@daily" | "@midnight" => Ok(fields(
            one(MINUTES),
            one(HOURS),
            all(DOM),
            all(MONTHS),
            all(DOW),
        )),
        "@hourly" => Ok(fields(
            one(MINUTES),
            all(HOURS),
            all(DOM),
            all(MONTHS),
            all(DOW),
        )),
        _ => match d.strip_prefix("@every ") {
            Some(dur) => {
                let secs = parse_duration(dur)
                    .map_err(|e| format!("failed to parse duration {d}: {e}"))?;
                // Upstream rounds to whole seconds, with a one-second minimum.
                Ok(Schedule::Every(secs.floor().max(1.0) as u64))
            }
            None => Err(format!("unrecognized descriptor: {d}")),
        },
    }
}

/// Whether `name` is a time zone this host knows (`time.LoadLocation`).
pub fn known_time_zone(name: &str) -> bool {
    name.is_empty() || name == "UTC" || name == "Local" || jiff::tz::db().get(name).is_ok()
}

/// Parses a schedule as upstream's `ParseCronScheduleWithPanicRecovery` does.
pub fn parse(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let Some(space) = spec.find(' ') else {
            // Upstream's parser panics here and the panic is reported.
            return Err(format!(
                "failed to parse cron schedule {spec}: runtime error: slice bounds out of range [:-1]"
            ));
        };
        let eq = spec.find('=').unwrap_or(0);
        let zone = &spec[eq + 1..space];
        if !known_time_zone(zone) {
            return Err(format!(
                "provided bad location {zone}: unknown time zone {zone}"
            ));
        }
        spec = spec[space..].trim();
    }
    if spec.starts_with('@') {
        return descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    Ok(Schedule::Fields {
        minute: field(fields[0], MINUTES)?,
        hour: field(fields[1], HOURS)?,
        dom: field(fields[2], DOM)?,
        month: field(fields[3], MONTHS)?,
        dow: field(fields[4], DOW)?,
    })
}

fn has(set: u64, v: i64) -> bool {
    (0..63).contains(&v) && set & (1 << v) != 0
}

impl Schedule {
    /// The first activation strictly after `t` (civil time), or `None` if there is none
    /// within five years (e.g. February 30th).
    pub fn next_after(&self, t: DateTime) -> Option<DateTime> {
        let (minute, hour, dom, month, dow) = match *self {
            Schedule::Every(secs) => {
                let secs = i64::try_from(secs).ok()?;
                let next = t.checked_add(secs.seconds()).ok()?;
                return next.with().subsec_nanosecond(0).build().ok();
            }
            Schedule::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
            } => (minute, hour, dom, month, dow),
        };
        let day_matches = |d: DateTime| {
            let dom_match = has(dom, i64::from(d.day()));
            let dow_match = has(dow, i64::from(d.weekday().to_sunday_zero_offset()));
            if dom & STAR != 0 || dow & STAR != 0 {
                dom_match && dow_match
            } else {
                dom_match || dow_match
            }
        };
        let mut t = t
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = t.year() + 5;
        'wrap: loop {
            if t.year() > limit {
                return None;
            }
            while !has(month, i64::from(t.month())) {
                t = t
                    .date()
                    .first_of_month()
                    .to_datetime(jiff::civil::Time::midnight());
                t = t.checked_add(1.month()).ok()?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !day_matches(t) {
                t = t
                    .date()
                    .to_datetime(jiff::civil::Time::midnight())
                    .checked_add(1.day())
                    .ok()?;
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !has(hour, i64::from(t.hour())) {
                t = t
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !has(minute, i64::from(t.minute())) {
                t = t.checked_add(1.minute()).ok()?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            return Some(t);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn accepts_standard_forms() {
        for s in [
            "*/5 * * * *",
            "0 0 * * 0",
            "15 2 1-15/2 jan-jun MON,Wed",
            "@hourly",
            "@every 1h30m",
            "0 9 ? * *",
            "CRON_TZ=UTC 0 * * * *",
            "TZ=Europe/Berlin @daily",
        ] {
            assert!(parse(s).is_ok(), "{s}: {:?}", parse(s));
        }
    }

    #[test]
    fn errors_are_upstreams() {
        let cases = [
            ("foo", "expected exactly 5 fields, found 1: [foo]"),
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("@often", "unrecognized descriptor: @often"),
            (
                "@every x",
                "failed to parse duration @every x: time: invalid duration \"x\"",
            ),
            (
                "TZ=Mars/Olympus * * * * *",
                "provided bad location Mars/Olympus: unknown time zone Mars/Olympus",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Err(want.to_string()), "{input}");
        }
    }

    #[test]
    fn next_activation() {
        let s = parse("*/15 * * * *").unwrap();
        let t = date(2025, 1, 1).at(10, 7, 30, 0);
        assert_eq!(s.next_after(t), Some(date(2025, 1, 1).at(10, 15, 0, 0)));
        let s = parse("0 0 29 2 *").unwrap();
        assert_eq!(s.next_after(t), Some(date(2028, 2, 29).at(0, 0, 0, 0)));
        // Day-of-month and day-of-week restricted: either matches.
        let s = parse("0 12 1 * mon").unwrap();
        assert_eq!(
            s.next_after(date(2025, 1, 1).at(13, 0, 0, 0)),
            Some(date(2025, 1, 6).at(12, 0, 0, 0))
        );
        let s = parse("@hourly").unwrap();
        assert_eq!(s.next_after(t), Some(date(2025, 1, 1).at(11, 0, 0, 0)));
        assert_eq!(parse("0 0 30 2 *").unwrap().next_after(t), None);
        assert_eq!(parse("@every 90s").unwrap(), Schedule::Every(90));
    }
}
