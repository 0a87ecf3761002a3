//! Maintenance windows: when prod waves may start new hosts.

use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use cron::Schedule;

use crate::policy::{PolicyError, PolicyErrors, WindowSpec};

/// How many occurrences at or before the instant looked from are skipped at most. The cron
/// crate yields both instants of an ambiguous local time (the hour repeated when clocks go
/// back), the earlier first, so the first one or two may lie before the instant asked about.
const SKIP_LIMIT: usize = 8;

/// A compiled maintenance window. It is open at `now` iff some occurrence `o` of the cron
/// schedule, read in the window's time zone, has `o <= now < o + duration`.
///
/// Daylight saving time is handled by chrono-tz: an opening at 22:00 local time is 22:00 on
/// both sides of a change. A local time that does not exist on a spring-forward day (e.g.
/// 02:30 in Europe/Berlin on the last Sunday of March) does not occur that day; one that
/// occurs twice on a fall-back day opens the window twice. The duration is elapsed time, so
/// an 8-hour window that spans a change closes 8 real hours after it opened.
#[derive(Clone, Debug)]
pub struct Window {
    schedule: Schedule,
    duration: TimeDelta,
    tz: Tz,
}

impl Window {
    /// Compiles a window from its policy form, reporting every problem at once.
    pub fn from_spec(spec: &WindowSpec) -> Result<Window, PolicyErrors> {
        let never_open = spec
            .duration
            .is_zero()
            .then_some(PolicyError::WindowNeverOpen);
        let tz = Tz::from_str(&spec.tz).map_err(|_| PolicyError::WindowTimeZone {
            tz: spec.tz.clone(),
        });
        let schedule = match Schedule::from_str(&spec.cron) {
            Ok(schedule) => schedule,
            Err(e) => {
                let mut problems = PolicyErrors::one(PolicyError::WindowCron {
                    cron: spec.cron.clone(),
                    message: e.to_string(),
                });
                problems.extend(never_open);
                problems.extend(tz.err());
                return Err(problems);
            }
        };
        match (never_open, tz) {
            (None, Ok(tz)) => Ok(Window {
                schedule,
                duration: spec.duration.to_time_delta(),
                tz,
            }),
            (Some(never_open), tz) => {
                let mut problems = PolicyErrors::one(never_open);
                problems.extend(tz.err());
                Err(problems)
            }
            (None, Err(tz)) => Err(PolicyErrors::one(tz)),
        }
    }

    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.opening_containing(now).is_some()
    }

    /// The instant the window is next open: `now` itself when it is open, else the next
    /// opening. `None` when the schedule never fires again (e.g. a cron expression limited
    /// to past years).
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(now) {
            Some(now)
        } else {
            self.first_opening_after(now)
        }
    }

    /// When the window that is open at `now` closes; `None` when it is closed. Overlapping
    /// openings are not merged: this is the end of the earliest opening that covers `now`.
    pub fn closes_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.opening_containing(now).map(|o| o + self.duration)
    }

    /// The earliest opening `o` with `now - duration < o <= now`, if any.
    fn opening_containing(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let since = now - self.duration;
        self.first_opening_after(since).filter(|o| *o <= now)
    }

    /// The first opening strictly after `after`.
    fn first_opening_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.schedule
            .after(&local)
            .take(SKIP_LIMIT)
            .map(|o| o.with_timezone(&Utc))
            .find(|o| *o > after)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use patchwave_core::duration::HumanDuration;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn window(cron: &str, duration: &str, tz: &str) -> Window {
        Window::from_spec(&WindowSpec {
            cron: cron.into(),
            duration: HumanDuration::parse(duration).unwrap(),
            tz: tz.into(),
        })
        .unwrap()
    }

    #[test]
    fn open_from_the_opening_until_just_before_it_closes() {
        // 22:00-06:00 Berlin time on weeknights; CET is UTC+1 in January.
        let w = window("0 0 22 * * Mon-Fri *", "8h", "Europe/Berlin");
        // Wednesday 2024-01-10.
        assert!(!w.is_open(at("2024-01-10T20:59:59Z")));
        assert!(w.is_open(at("2024-01-10T21:00:00Z")));
        assert!(w.is_open(at("2024-01-11T04:59:59Z")));
        assert!(!w.is_open(at("2024-01-11T05:00:00Z")));
        assert_eq!(
            w.closes_at(at("2024-01-11T04:00:00Z")),
            Some(at("2024-01-11T05:00:00Z"))
        );
        assert_eq!(w.closes_at(at("2024-01-11T06:00:00Z")), None);
    }

    #[test]
    fn next_open_is_now_when_open_and_the_next_opening_otherwise() {
        let w = window("0 0 22 * * Mon-Fri *", "8h", "Europe/Berlin");
        let open = at("2024-01-10T23:00:00Z");
        assert_eq!(w.next_open(open), Some(open));
        assert_eq!(
            w.next_open(at("2024-01-10T12:00:00Z")),
            Some(at("2024-01-10T21:00:00Z"))
        );
        // Friday night's window ends Saturday 06:00; the next one opens Monday 22:00.
        assert_eq!(
            w.next_open(at("2024-01-13T05:00:00Z")),
            Some(at("2024-01-15T21:00:00Z"))
        );
    }

    #[test]
    fn openings_follow_local_time_across_spring_forward() {
        // New York moved from EST (UTC-5) to EDT (UTC-4) on Sunday 2024-03-10.
        let w = window("0 0 22 * * Mon-Fri *", "8h", "America/New_York");
        // Friday 2024-03-08 22:00 EST = Saturday 03:00 UTC.
        assert_eq!(
            w.next_open(at("2024-03-08T12:00:00Z")),
            Some(at("2024-03-09T03:00:00Z"))
        );
        // Monday 2024-03-11 22:00 EDT = Tuesday 02:00 UTC, not 03:00.
        assert_eq!(
            w.next_open(at("2024-03-09T12:00:00Z")),
            Some(at("2024-03-12T02:00:00Z"))
        );
    }

    #[test]
    fn a_local_time_skipped_by_spring_forward_does_not_open() {
        // 02:30 does not exist in Berlin on 2024-03-31 (02:00 CET -> 03:00 CEST).
        let w = window("0 30 2 * * * *", "1h", "Europe/Berlin");
        // Saturday 02:30 CET = 01:30 UTC; the next is Monday 02:30 CEST = 00:30 UTC.
        assert_eq!(
            w.next_open(at("2024-03-30T03:00:00Z")),
            Some(at("2024-04-01T00:30:00Z"))
        );
    }

    #[test]
    fn a_local_time_repeated_by_fall_back_opens_twice() {
        // London: 01:30 happens at 00:30 UTC (BST) and again at 01:30 UTC (GMT) on
        // 2024-10-27.
        let w = window("0 30 1 * * * *", "20m", "Europe/London");
        assert!(w.is_open(at("2024-10-27T00:40:00Z")));
        assert!(!w.is_open(at("2024-10-27T01:00:00Z")));
        assert_eq!(
            w.next_open(at("2024-10-27T01:00:00Z")),
            Some(at("2024-10-27T01:30:00Z"))
        );
        assert!(w.is_open(at("2024-10-27T01:40:00Z")));
        assert!(!w.is_open(at("2024-10-27T01:50:00Z")));
        assert_eq!(
            w.next_open(at("2024-10-27T02:00:00Z")),
            Some(at("2024-10-28T01:30:00Z"))
        );
    }

    #[test]
    fn a_window_limited_to_past_years_never_opens_again() {
        let w = window("0 0 22 * * * 2020", "1h", "UTC");
        assert_eq!(w.next_open(at("2024-01-01T00:00:00Z")), None);
        assert!(!w.is_open(at("2024-01-01T00:00:00Z")));
    }
}
