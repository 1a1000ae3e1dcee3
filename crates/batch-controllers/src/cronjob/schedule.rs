//! CronJob schedules in absolute time: the API server's cron grammar
//! (`registry::workloads::cron`, robfig/cron semantics) evaluated in the CronJob's time zone
//! (`spec.timeZone`, a `TZ=`/`CRON_TZ=` prefix, or the controller's local zone), and
//! upstream's "which start time is due" rules.

use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::{AmbiguousOffset, TimeZone};
use registry::workloads::cron::{self, Schedule};

use crate::clock::{add_seconds, until};

/// Upstream refuses to catch up after more missed start times than this, and says so.
pub const MAX_MISSED: u64 = 100;
/// Requeues land this long after a start time, so the sync never runs a hair early.
const NEXT_DELTA: Duration = Duration::from_millis(100);
/// How far ahead [`CronSchedule::next_after`] looks for clocks going back (longer than any
/// time zone's repeated interval).
const LOOKAHEAD: jiff::SignedDuration = jiff::SignedDuration::from_hours(3);
/// Civil candidates examined before giving up on a next start time (a skipped or repeated
/// hour holds at most 60 minute-granular candidates per hour of its length).
const MAX_CANDIDATES: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("unparseable schedule: {schedule:?} : {message}")]
    Unparseable { schedule: String, message: String },
    #[error("invalid timeZone: {zone:?}: unknown time zone {zone}")]
    UnknownTimeZone { zone: String },
}

/// A parsed schedule bound to its time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    schedule: Schedule,
    tz: TimeZone,
}

fn zone(name: &str) -> Result<TimeZone, ScheduleError> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Ok(TimeZone::system()),
        _ => jiff::tz::db()
            .get(name)
            .map_err(|_| ScheduleError::UnknownTimeZone {
                zone: name.to_owned(),
            }),
    }
}

impl CronSchedule {
    /// Parses `spec` for a CronJob with `time_zone`. A `TZ=`/`CRON_TZ=` prefix in the
    /// schedule wins over `spec.timeZone` (as upstream, which warns about it); with neither,
    /// the controller's local zone is used.
    pub fn parse(spec: &str, time_zone: Option<&str>) -> Result<CronSchedule, ScheduleError> {
        let unparseable = |message: String| ScheduleError::Unparseable {
            schedule: spec.to_owned(),
            message,
        };
        let (tz, body) = match spec
            .strip_prefix("CRON_TZ=")
            .or_else(|| spec.strip_prefix("TZ="))
        {
            Some(rest) => {
                let (name, body) = rest.split_once(' ').ok_or_else(|| {
                    unparseable(format!("no schedule after the time zone in {spec}"))
                })?;
                let tz = zone(name).map_err(|_| {
                    unparseable(format!(
                        "provided bad location {name}: unknown time zone {name}"
                    ))
                })?;
                (tz, body.trim())
            }
            None => match time_zone {
                Some(name) => (zone(name)?, spec.trim()),
                None => (TimeZone::system(), spec.trim()),
            },
        };
        let schedule = cron::parse(body).map_err(unparseable)?;
        Ok(CronSchedule { schedule, tz })
    }

    /// The first start time strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        if let Schedule::Every(secs) = self.schedule {
            let whole = Timestamp::from_second(t.as_second()).ok()?;
            return Some(add_seconds(whole, i64::try_from(secs).ok()?));
        }
        // Civil start times map to instants the way robfig/cron (upstream) steps through
        // them: one in the hour clocks skip when they go forward does not run at all, one in
        // the hour they repeat when they go back runs in both occurrences. If `t` is in the
        // first occurrence of a repeated hour, civil times before its own come round again,
        // so the search starts from `t`'s civil time at the offset in force a little later.
        let here = t.to_zoned(self.tz.clone()).datetime();
        let ahead = add_seconds(t, LOOKAHEAD.as_secs())
            .to_zoned(self.tz.clone())
            .datetime()
            .checked_sub(LOOKAHEAD)
            .unwrap_or(here);
        let mut civil = here.min(ahead);
        let mut best: Option<Timestamp> = None;
        for _ in 0..MAX_CANDIDATES {
            let Some(next) = self.schedule.next_after(civil) else {
                return best;
            };
            civil = next;
            let (first, second) = match self.tz.to_ambiguous_timestamp(next).offset() {
                AmbiguousOffset::Unambiguous { offset } => (offset.to_timestamp(next).ok(), None),
                AmbiguousOffset::Gap { .. } => continue,
                AmbiguousOffset::Fold { before, after } => (
                    before.to_timestamp(next).ok(),
                    after.to_timestamp(next).ok(),
                ),
            };
            for at in [first, second].into_iter().flatten().filter(|at| *at > t) {
                best = Some(best.map_or(at, |b| b.min(at)));
            }
            // The earliest instant of each later civil time is later still: nothing after
            // this candidate can beat `best` once this one is past `t`.
            if first.is_some_and(|at| at > t) {
                return best;
            }
        }
        best
    }

    /// `t` as the CronJob's scheduled-timestamp annotation shows it (RFC 3339 in the
    /// schedule's zone, `Z` for UTC, as Go's `time.RFC3339`).
    pub fn format(&self, t: Timestamp) -> String {
        let z = t.to_zoned(self.tz.clone());
        if z.offset().seconds() == 0 {
            z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        } else {
            z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
        }
    }
}

/// What is due at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The most recent start time in `(earliest, now]`, if any.
    pub scheduled: Option<Timestamp>,
    /// How many start times fell in that range (an estimate above [`MAX_MISSED`]).
    pub missed: u64,
    /// When to look again: just after the next start time.
    pub requeue: Option<Duration>,
}

/// Upstream's `mostRecentScheduleTime` plus the requeue delay. `earliest` is the last
/// schedule time (else the creation time); with a starting deadline, start times older
/// than `now - deadline` are not considered at all.
pub fn due(
    sched: &CronSchedule,
    earliest: Timestamp,
    starting_deadline: Option<i64>,
    now: Timestamp,
) -> Due {
    let earliest = match starting_deadline {
        Some(d) => earliest.max(add_seconds(now, d.saturating_neg())),
        None => earliest,
    };
    let requeue = sched
        .next_after(now)
        .map(|next| until(now, next) + NEXT_DELTA);
    let none = Due {
        scheduled: None,
        missed: 0,
        requeue,
    };
    let Some(t1) = sched.next_after(earliest).filter(|t| *t <= now) else {
        return none;
    };
    // Walk forward while that is cheap; past MAX_MISSED, find the latest start time by
    // looking back from `now` in growing windows instead of walking the whole gap.
    let mut latest = t1;
    let mut missed = 1u64;
    while let Some(t) = sched.next_after(latest).filter(|t| *t <= now) {
        latest = t;
        missed += 1;
        if missed > MAX_MISSED {
            let interval = until(t1, t).as_secs().max(1) / (missed - 1).max(1);
            let estimate = until(t1, now).as_secs() / interval.max(1) + 1;
            return Due {
                scheduled: Some(latest_before(sched, latest, now)),
                missed: estimate.max(MAX_MISSED + 1),
                requeue,
            };
        }
    }
    Due {
        scheduled: Some(latest),
        missed,
        requeue,
    }
}

/// The latest start time in `[floor, now]`, given `floor` is one.
fn latest_before(sched: &CronSchedule, floor: Timestamp, now: Timestamp) -> Timestamp {
    let mut window: i64 = 3600;
    loop {
        let from = add_seconds(now, -window).max(floor);
        let from = if from == floor {
            add_seconds(floor, -1)
        } else {
            from
        };
        if let Some(first) = sched.next_after(from).filter(|t| *t <= now) {
            let mut latest = first;
            while let Some(t) = sched.next_after(latest).filter(|t| *t <= now) {
                latest = t;
            }
            return latest;
        }
        if from <= floor {
            return floor;
        }
        window = window.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn time_zones_move_start_times() {
        let utc = CronSchedule::parse("0 9 * * *", Some("UTC")).unwrap();
        let berlin = CronSchedule::parse("0 9 * * *", Some("Europe/Berlin")).unwrap();
        let prefixed = CronSchedule::parse("CRON_TZ=America/New_York 0 9 * * *", None).unwrap();
        let t = ts("2025-01-15T00:00:00Z");
        assert_eq!(utc.next_after(t), Some(ts("2025-01-15T09:00:00Z")));
        assert_eq!(berlin.next_after(t), Some(ts("2025-01-15T08:00:00Z")));
        assert_eq!(prefixed.next_after(t), Some(ts("2025-01-15T14:00:00Z")));
        // Summer time in Berlin: 09:00 is 07:00 UTC.
        assert_eq!(
            berlin.next_after(ts("2025-07-01T00:00:00Z")),
            Some(ts("2025-07-01T07:00:00Z"))
        );
        assert_eq!(
            berlin.format(ts("2025-07-01T07:00:00Z")),
            "2025-07-01T09:00:00+02:00"
        );
        assert_eq!(
            utc.format(ts("2025-07-01T07:00:00Z")),
            "2025-07-01T07:00:00Z"
        );
    }

    #[test]
    fn descriptors_and_every() {
        let hourly = CronSchedule::parse("@hourly", Some("UTC")).unwrap();
        assert_eq!(
            hourly.next_after(ts("2025-01-01T10:59:59Z")),
            Some(ts("2025-01-01T11:00:00Z"))
        );
        let every = CronSchedule::parse("@every 90s", Some("UTC")).unwrap();
        assert_eq!(
            every.next_after(ts("2025-01-01T10:00:00.5Z")),
            Some(ts("2025-01-01T10:01:30Z"))
        );
    }

    #[test]
    fn a_repeated_hour_does_not_fire_into_the_past() {
        // 2025-10-26 02:30 happens twice in Berlin; the second one is 01:30 UTC.
        let s = CronSchedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let first = s.next_after(ts("2025-10-26T00:00:00Z")).unwrap();
        assert_eq!(first, ts("2025-10-26T00:30:00Z"));
        assert!(s.next_after(first).unwrap() > first);
    }

    #[test]
    fn the_repeated_hour_still_has_a_next_start_time() {
        // 02:10 CET on 2025-10-26 is the second 02:10 (01:10 UTC): the next */5 start time
        // is 02:15 CET, not "none" (which would stop the CronJob from ever being requeued).
        let s = CronSchedule::parse("*/5 * * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            s.next_after(ts("2025-10-26T01:10:00Z")),
            Some(ts("2025-10-26T01:15:00Z"))
        );
        // As robfig/cron, minutes in the repeated hour fire in both of its occurrences.
        assert_eq!(
            s.next_after(ts("2025-10-26T00:55:00Z")),
            Some(ts("2025-10-26T01:00:00Z"))
        );
        let hourly = CronSchedule::parse("15 * * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            hourly.next_after(ts("2025-10-26T00:15:00Z")),
            Some(ts("2025-10-26T01:15:00Z"))
        );
    }

    #[test]
    fn start_times_in_the_skipped_hour_do_not_run() {
        // 2025-03-30 02:00-03:00 does not exist in Berlin. robfig/cron (upstream) skips a
        // start time that falls there instead of moving it to 03:30.
        let daily = CronSchedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            daily.next_after(ts("2025-03-29T23:00:00Z")),
            Some(ts("2025-03-31T00:30:00Z"))
        );
        // Many candidates in the gap: still found, no "no next time".
        let often = CronSchedule::parse("*/5 2 * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            often.next_after(ts("2025-03-29T23:00:00Z")),
            Some(ts("2025-03-31T00:00:00Z"))
        );
    }

    #[test]
    fn bad_input_is_reported_like_upstream() {
        assert_eq!(
            CronSchedule::parse("* * * *", Some("UTC"))
                .unwrap_err()
                .to_string(),
            "unparseable schedule: \"* * * *\" : expected exactly 5 fields, found 4: [* * * *]"
        );
        assert_eq!(
            CronSchedule::parse("* * * * *", Some("Mars/Olympus")).unwrap_err(),
            ScheduleError::UnknownTimeZone {
                zone: "Mars/Olympus".into()
            }
        );
        assert!(CronSchedule::parse("TZ=Nowhere/None * * * * *", None).is_err());
    }

    #[test]
    fn due_start_times_follow_upstream() {
        let s = CronSchedule::parse("*/1 * * * *", Some("UTC")).unwrap();
        let created = ts("2025-01-01T10:00:30Z");
        // Before the first start time: nothing due, look again just after it.
        let d = due(&s, created, None, ts("2025-01-01T10:00:45Z"));
        assert_eq!((d.scheduled, d.missed), (None, 0));
        assert_eq!(d.requeue, Some(Duration::from_millis(15_100)));
        // One due.
        let d = due(&s, created, None, ts("2025-01-01T10:01:05Z"));
        assert_eq!(
            (d.scheduled, d.missed),
            (Some(ts("2025-01-01T10:01:00Z")), 1)
        );
        assert_eq!(d.requeue, Some(Duration::from_millis(55_100)));
        // Three missed: the latest is due.
        let d = due(&s, created, None, ts("2025-01-01T10:03:59Z"));
        assert_eq!(
            (d.scheduled, d.missed),
            (Some(ts("2025-01-01T10:03:00Z")), 3)
        );
        // A starting deadline hides start times older than it.
        let d = due(&s, created, Some(30), ts("2025-01-01T10:03:59Z"));
        assert_eq!((d.scheduled, d.missed), (None, 0));
        let d = due(&s, created, Some(120), ts("2025-01-01T10:03:59Z"));
        assert_eq!(
            (d.scheduled, d.missed),
            (Some(ts("2025-01-01T10:03:00Z")), 2)
        );
        // A deadline no API server would accept must not panic.
        let d = due(&s, created, Some(i64::MIN), ts("2025-01-01T10:03:59Z"));
        assert_eq!(d.scheduled, None);
        // Already scheduled at the last start time: nothing new.
        let d = due(
            &s,
            ts("2025-01-01T10:03:00Z"),
            None,
            ts("2025-01-01T10:03:59Z"),
        );
        assert_eq!(d.scheduled, None);
    }

    #[test]
    fn too_many_missed_start_times_are_counted_and_the_latest_found() {
        let s = CronSchedule::parse("* * * * *", Some("UTC")).unwrap();
        let d = due(
            &s,
            ts("2025-01-01T00:00:00Z"),
            None,
            ts("2025-01-08T12:34:56Z"),
        );
        assert_eq!(d.scheduled, Some(ts("2025-01-08T12:34:00Z")));
        assert!(d.missed > MAX_MISSED, "{}", d.missed);
        assert_eq!(d.missed, 7 * 1440 + 12 * 60 + 34);
        let monthly = CronSchedule::parse("0 0 1 * *", Some("UTC")).unwrap();
        let d = due(
            &monthly,
            ts("2000-01-15T00:00:00Z"),
            None,
            ts("2025-03-20T00:00:00Z"),
        );
        assert_eq!(d.scheduled, Some(ts("2025-03-01T00:00:00Z")));
        assert!(d.missed > MAX_MISSED);
    }
}
