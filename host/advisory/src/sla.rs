//! SLA windows: when a finding of each class is due.
//!
//! - critical: `critical_days` (default 7) after the clock starts;
//! - high: `high_days` (default 30) after;
//! - moderate: "next cycle": due at the END of the cycle after the one containing the
//!   clock start. Cycles are calendar months in UTC by default (clock start 2026-11-10 →
//!   due 2027-01-01T00:00Z), or fixed periods of `days` days counted from an `anchor` date
//!   (midnight UTC), before or after it;
//! - low: "at convenience": no due date, never overdue.
//!
//! A due date beyond chrono's range saturates to the latest representable instant instead
//! of disappearing.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::PatchClass;
use crate::timestamp::midnight;

/// The SLA windows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sla {
    /// Days allowed for a critical finding.
    pub critical_days: u32,
    /// Days allowed for a high finding.
    pub high_days: u32,
    /// The patch cycle that moderate findings wait for.
    pub cycle: Cycle,
}

impl Default for Sla {
    /// 7 days, 30 days, calendar months.
    fn default() -> Sla {
        Sla {
            critical_days: 7,
            high_days: 30,
            cycle: Cycle::Monthly,
        }
    }
}

/// The patch cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Cycle {
    /// Calendar months, UTC.
    Monthly,
    /// Periods of `days` days; one starts at midnight UTC of `anchor`.
    Days {
        /// The period length, at least 1.
        days: u32,
        /// A date on which a cycle starts.
        anchor: NaiveDate,
    },
}

impl Sla {
    /// When a finding of `class` whose clock started at `start` is due; `None` for low.
    pub fn due_at(&self, class: PatchClass, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match class {
            PatchClass::Critical => Some(add_days(start, self.critical_days)),
            PatchClass::High => Some(add_days(start, self.high_days)),
            PatchClass::Moderate => Some(self.cycle.end_of_next(start)),
            PatchClass::Low => None,
        }
    }
}

impl Cycle {
    /// The end of the cycle after the one containing `t` (the start of the one after that).
    pub fn end_of_next(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Cycle::Monthly => month_start(t.year(), t.month0(), 2),
            Cycle::Days { days, anchor } => period_end_of_next(t, *days, *anchor),
        }
    }
}

fn add_days(t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    t.checked_add_signed(Duration::days(i64::from(days)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Midnight UTC on the first day of the month `ahead` months after `year`/`month0`.
fn month_start(year: i32, month0: u32, ahead: i64) -> DateTime<Utc> {
    let total = i64::from(year) * 12 + i64::from(month0) + ahead;
    let (y, m0) = (total.div_euclid(12), total.rem_euclid(12));
    i32::try_from(y)
        .ok()
        .zip(u32::try_from(m0 + 1).ok())
        .and_then(|(y, m)| NaiveDate::from_ymd_opt(y, m, 1))
        .map(midnight)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn period_end_of_next(t: DateTime<Utc>, days: u32, anchor: NaiveDate) -> DateTime<Utc> {
    let period = i64::from(days.max(1)) * 86_400;
    let origin = midnight(anchor);
    let index = (t - origin).num_seconds().div_euclid(period);
    index
        .checked_add(2)
        .and_then(|k| k.checked_mul(period))
        .and_then(|secs| origin.checked_add_signed(Duration::seconds(secs)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn critical_and_high_count_days_from_the_start() {
        let sla = Sla::default();
        let start = utc(2026, 11, 10, 9, 30);
        assert_eq!(
            sla.due_at(PatchClass::Critical, start),
            Some(utc(2026, 11, 17, 9, 30))
        );
        assert_eq!(
            sla.due_at(PatchClass::High, start),
            Some(utc(2026, 12, 10, 9, 30))
        );
        assert_eq!(sla.due_at(PatchClass::Low, start), None);
    }

    #[test]
    fn moderate_is_due_at_the_end_of_the_next_month() {
        let sla = Sla::default();
        assert_eq!(
            sla.due_at(PatchClass::Moderate, utc(2026, 11, 10, 0, 0)),
            Some(utc(2027, 1, 1, 0, 0))
        );
        assert_eq!(
            sla.due_at(PatchClass::Moderate, utc(2026, 12, 31, 23, 59)),
            Some(utc(2027, 2, 1, 0, 0))
        );
        assert_eq!(
            sla.due_at(PatchClass::Moderate, utc(2027, 1, 1, 0, 0)),
            Some(utc(2027, 3, 1, 0, 0))
        );
    }

    #[test]
    fn fixed_period_cycles_count_from_the_anchor_both_ways() {
        let cycle = Cycle::Days {
            days: 14,
            anchor: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
        };
        // Cycle [Jan 5, Jan 19) contains Jan 10; the next is [Jan 19, Feb 2).
        assert_eq!(
            cycle.end_of_next(utc(2026, 1, 10, 12, 0)),
            utc(2026, 2, 2, 0, 0)
        );
        // A start exactly on a boundary belongs to the cycle it opens.
        assert_eq!(
            cycle.end_of_next(utc(2026, 1, 19, 0, 0)),
            utc(2026, 2, 16, 0, 0)
        );
        // Before the anchor: cycle [Dec 22, Jan 5) contains Dec 25; the next ends Jan 19.
        assert_eq!(
            cycle.end_of_next(utc(2025, 12, 25, 8, 0)),
            utc(2026, 1, 19, 0, 0)
        );
    }

    #[test]
    fn far_future_dates_saturate_instead_of_vanishing() {
        let sla = Sla {
            critical_days: u32::MAX,
            ..Sla::default()
        };
        let far = DateTime::<Utc>::MAX_UTC - Duration::days(3);
        assert_eq!(
            sla.due_at(PatchClass::Critical, far),
            Some(DateTime::<Utc>::MAX_UTC)
        );
        assert_eq!(
            sla.due_at(PatchClass::Moderate, far),
            Some(DateTime::<Utc>::MAX_UTC)
        );
    }
}
