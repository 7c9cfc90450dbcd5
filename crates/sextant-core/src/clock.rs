//! The one source of time: controllers read "now" from a [`Clock`] they are
//! given, so tests drive time with a [`ManualClock`] instead of sleeping on
//! the wall clock while a bake, an alarm window, a lease or a cache entry
//! runs out.
//!
//! A clock has two faces: the wall clock (`now_ms`, Unix milliseconds, what
//! is stored and shown) and a monotonic instant (`instant`, what durations
//! are measured with, immune to the wall clock being set back).

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where time comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The wall clock, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// A monotonic instant for measuring how long something has lasted.
    fn instant(&self) -> Instant;
}

/// A clock shared between the parts that read it.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// The machine's clocks, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// The wall clock in Unix milliseconds, for code with no clock to be given
/// (stores stamping rows, the CLI). A clock before 1970 reads as 0.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A clock that moves only when told to: both faces advance together.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<Manual>,
}

#[derive(Debug, Clone, Copy)]
struct Manual {
    wall_ms: i64,
    instant: Instant,
}

impl ManualClock {
    /// A clock stopped at `wall_ms` (Unix milliseconds).
    pub fn at(wall_ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            state: Mutex::new(Manual {
                wall_ms,
                instant: Instant::now(),
            }),
        })
    }

    /// A clock stopped at the machine's current time.
    pub fn now() -> Arc<ManualClock> {
        Self::at(now_ms())
    }

    /// Moves both faces forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.wall_ms = state
            .wall_ms
            .saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
        state.instant += by;
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).wall_ms
    }
    fn instant(&self) -> Instant {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).instant
    }
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC, with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    // Howard Hinnant's civil_from_days: exact for the proleptic Gregorian calendar.
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::at(1_000);
        let (wall, mono) = (clock.now_ms(), clock.instant());
        assert_eq!((clock.now_ms(), clock.instant()), (wall, mono));
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now_ms(), 2_500);
        assert_eq!(clock.instant() - mono, Duration::from_millis(1_500));
    }

    #[test]
    fn system_clock_reads_the_epoch_in_milliseconds() {
        // 2020-01-01 in ms: any machine running this is later.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }
}
