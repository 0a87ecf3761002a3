//! Lenient timestamp and date parsing for feeds that differ in precision and offset style.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Parse a timestamp as feeds write it, into UTC.
///
/// Accepted, in this order:
/// - RFC 3339 with any fractional precision and any offset (`2024-05-28T13:39:27.536163Z`,
///   `2025-07-16T04:44:46Z`, `2024-01-01T10:00:00+02:00`);
/// - an offset without a colon (`2023-03-08T00:00:00+0000`, as older EPSS files write it);
/// - no offset at all (`2024-05-28T13:39:27`, with or without fractional seconds), read as UTC;
/// - a bare date (`2024-05-28`), read as midnight UTC.
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    parse_date(text).map(midnight)
}

/// Parse a calendar date written `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// Midnight UTC at the start of `date`.
pub(crate) fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn whole_seconds_with_z() {
        assert_eq!(
            parse_timestamp("2025-07-16T04:44:46Z"),
            Some(utc(2025, 7, 16, 4, 44, 46))
        );
    }

    #[test]
    fn microseconds_with_z_keep_the_fraction() {
        let t = parse_timestamp("2024-05-28T13:39:27.536163Z").unwrap();
        assert_eq!(t.timestamp(), utc(2024, 5, 28, 13, 39, 27).timestamp());
        assert_eq!(t.timestamp_subsec_micros(), 536_163);
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(
            parse_timestamp("2024-01-01T10:00:00+02:00"),
            Some(utc(2024, 1, 1, 8, 0, 0))
        );
        assert_eq!(
            parse_timestamp("2023-03-08T00:00:00+0000"),
            Some(utc(2023, 3, 8, 0, 0, 0))
        );
    }

    #[test]
    fn no_offset_is_utc() {
        assert_eq!(
            parse_timestamp("2024-05-28T13:39:27"),
            Some(utc(2024, 5, 28, 13, 39, 27))
        );
        assert_eq!(
            parse_timestamp("2024-05-28T13:39:27.5")
                .unwrap()
                .timestamp_subsec_millis(),
            500
        );
    }

    #[test]
    fn a_bare_date_is_midnight() {
        assert_eq!(
            parse_timestamp("2024-05-28"),
            Some(utc(2024, 5, 28, 0, 0, 0))
        );
    }

    #[test]
    fn garbage_and_impossible_dates_are_refused() {
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2024-02-30"), None);
        assert_eq!(parse_timestamp(""), None);
    }
}
