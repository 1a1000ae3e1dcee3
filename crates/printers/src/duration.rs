//! `HumanDuration`: the short "how long" strings of the AGE, DURATION and LAST SEEN columns.
//!
//! The rules are apimachinery's `duration.HumanDuration`, which aims for two or three significant
//! figures: seconds up to two minutes, then minutes (with seconds below ten minutes), hours (with
//! minutes below eight hours), days (with hours below eight days), and years (with days below eight
//! years). A clock up to two seconds behind prints `0s`; further behind prints `<invalid>`.

use jiff::SignedDuration;

/// The longest span Go's `time.Duration` can hold, in whole seconds. Upstream subtracts times into
/// a `time.Duration`, which saturates there (about 292 years); we clamp the same way so absurd
/// timestamps print the same figure.
const GO_DURATION_MAX_SECS: i64 = i64::MAX / 1_000_000_000;

/// Formats `d` the way Kubernetes prints ages: `0s`, `59s`, `119s`, `2m`, `2m3s`, `10m`, `179m`,
/// `3h`, `3h5m`, `8h`, `47h`, `2d`, `2d3h`, `8d`, `729d`, `2y`, `2y5d`, `8y`.
pub fn human_duration(d: SignedDuration) -> String {
    // Go converts with int(d.Seconds()), which truncates toward zero, as as_secs does.
    let seconds = d
        .as_secs()
        .clamp(-GO_DURATION_MAX_SECS, GO_DURATION_MAX_SECS);
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days_into_year = (hours / 24) % 365;
        return if days_into_year == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days_into_year}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> String {
        human_duration(SignedDuration::from_secs(s))
    }

    #[test]
    fn seconds_up_to_two_minutes() {
        assert_eq!(secs(0), "0s");
        assert_eq!(secs(1), "1s");
        assert_eq!(secs(59), "59s");
        assert_eq!(secs(60), "60s");
        assert_eq!(secs(119), "119s");
    }

    #[test]
    fn minutes_with_seconds_below_ten_minutes() {
        assert_eq!(secs(120), "2m");
        assert_eq!(secs(123), "2m3s");
        assert_eq!(secs(9 * 60 + 59), "9m59s");
        assert_eq!(secs(10 * 60), "10m");
        assert_eq!(secs(10 * 60 + 59), "10m");
        assert_eq!(secs(179 * 60 + 59), "179m");
    }

    #[test]
    fn hours_with_minutes_below_eight_hours() {
        assert_eq!(secs(3 * 3600), "3h");
        assert_eq!(secs(3 * 3600 + 5 * 60 + 7), "3h5m");
        assert_eq!(secs(7 * 3600 + 59 * 60), "7h59m");
        assert_eq!(secs(8 * 3600 + 59 * 60), "8h");
        assert_eq!(secs(47 * 3600 + 3599), "47h");
    }

    #[test]
    fn days_and_years() {
        assert_eq!(secs(48 * 3600), "2d");
        assert_eq!(secs(51 * 3600), "2d3h");
        assert_eq!(secs(8 * 24 * 3600 - 1), "7d23h");
        assert_eq!(secs(8 * 24 * 3600), "8d");
        assert_eq!(secs(729 * 24 * 3600 + 23 * 3600), "729d");
        assert_eq!(secs(730 * 24 * 3600), "2y");
        assert_eq!(secs(735 * 24 * 3600), "2y5d");
        assert_eq!(secs(8 * 365 * 24 * 3600 - 3600), "7y364d");
        assert_eq!(secs(8 * 365 * 24 * 3600), "8y");
        assert_eq!(secs(40 * 365 * 24 * 3600 + 3600), "40y");
    }

    #[test]
    fn clock_skew() {
        assert_eq!(human_duration(SignedDuration::from_millis(-1500)), "0s");
        assert_eq!(secs(-1), "0s");
        assert_eq!(secs(-2), "<invalid>");
    }

    #[test]
    fn saturates_like_go_durations() {
        assert_eq!(secs(i64::MAX), "292y");
    }
}
