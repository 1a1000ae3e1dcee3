//! Where the batch controllers get the time from. Production code uses [`SystemClock`];
//! tests use [`FakeClock`] to step through schedules, deadlines and TTLs instantly.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct FakeClock(Mutex<Timestamp>);

impl FakeClock {
    pub fn new(at: Timestamp) -> FakeClock {
        FakeClock(Mutex::new(at))
    }

    pub fn set(&self, at: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Moves the clock forward by `d` (saturating at the end of time).
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let span = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
        *t = t.saturating_add(span).unwrap_or(*t);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `later - earlier` as a [`Duration`], zero if `later` is not after `earlier`.
pub fn until(earlier: Timestamp, later: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(earlier)).unwrap_or(Duration::ZERO)
}

/// `t + seconds`, saturating.
pub fn add_seconds(t: Timestamp, seconds: i64) -> Timestamp {
    t.saturating_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_told() {
        let t0: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap_or_default();
        let c = FakeClock::new(t0);
        assert_eq!(c.now(), t0);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now().to_string(), "2025-01-01T00:01:30Z");
        assert_eq!(until(t0, c.now()), Duration::from_secs(90));
        assert_eq!(until(c.now(), t0), Duration::ZERO);
        assert_eq!(add_seconds(t0, 60).to_string(), "2025-01-01T00:01:00Z");
    }
}
