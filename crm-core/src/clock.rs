//! Time and identifier sources, injected so that the core never reads the
//! system clock itself and tests can control time.

use chrono::{DateTime, Utc};
use std::sync::Mutex;
use uuid::Uuid;

/// The source of "now" for every operation.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// A clock that tests (and replays) set by hand.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock fixed at `now` until moved.
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut guard = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *guard += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The instant as stored: a leap second (chrono keeps `23:59:60.x` as
/// 1 000 000 000 nanoseconds and more) becomes the last microsecond of its
/// minute, `23:59:59.999999`, so every store keeps, compares and returns
/// the same instant for it. Any other instant is returned as it is.
pub fn without_leap_second(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    if t.nanosecond() < 1_000_000_000 {
        return t;
    }
    t.with_nanosecond(999_999_000).unwrap_or(t)
}

/// The counter an engine keeps its ids in order with (see [`new_uuid_in`]).
pub type IdContext = std::sync::Mutex<uuid::ContextV7>;

/// Builds a time-ordered (v7) UUID for `now`, so that records created later
/// sort after earlier ones. The random part comes from the `uuid` crate:
/// ids made within one millisecond come in any order (see
/// [`new_uuid_in`]).
pub fn new_uuid(now: DateTime<Utc>) -> Uuid {
    let secs = now.timestamp().max(0) as u64;
    let nanos = now.timestamp_subsec_nanos();
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos))
}

/// [`new_uuid`] in the order made, also within one millisecond: the
/// counter `context` (the `uuid` crate's `ContextV7`; an engine keeps one)
/// orders them, the rest is random.
pub fn new_uuid_in(context: &IdContext, now: DateTime<Utc>) -> Uuid {
    let secs = now.timestamp().max(0) as u64;
    let nanos = now.timestamp_subsec_nanos();
    Uuid::new_v7(uuid::Timestamp::from_unix(context, secs, nanos))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod leap_tests {
    use super::*;

    #[test]
    fn ids_made_within_one_millisecond_keep_their_order() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let context = IdContext::default();
        let ids: Vec<Uuid> = (0..1_000).map(|_| new_uuid_in(&context, now)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn a_leap_second_is_the_last_microsecond_of_its_minute() {
        let leap = DateTime::parse_from_rfc3339("2026-06-30T23:59:60.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let folded = without_leap_second(leap);
        assert_eq!(
            folded.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "2026-06-30T23:59:59.999999Z"
        );
        let plain = DateTime::parse_from_rfc3339("2026-06-30T23:59:59.25Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(without_leap_second(plain), plain);
        assert!(folded > plain);
    }
}
