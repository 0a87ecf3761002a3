//! The one duration grammar of the configuration: `250ms`, `30s`, `15m`, `26h`, `2d`, `1w`
//! and sums of such terms like `1h30m`.
//!
//! Every duration in a config file (`[scan]`, `[ssh]`, `[rollout]`, `[[health.sources]]`,
//! `[snapshot]`) is read here, so they all accept the same spellings and the same range.
//! Arithmetic is checked: a number too large for its unit is refused, never wrapped.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The longest duration accepted, in seconds: ten years. Anything longer in a
/// configuration is a typo, and the bound keeps time arithmetic far from overflow.
pub const MAX_SECONDS: u64 = 3650 * DAY;

const MAX_MILLIS: u64 = MAX_SECONDS * 1000;
const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// The units, longest spelling first where one is a prefix of another, with their length
/// in milliseconds.
const UNITS: [(&str, u64); 6] = [
    ("ms", 1),
    ("s", 1000),
    ("m", MINUTE * 1000),
    ("h", HOUR * 1000),
    ("d", DAY * 1000),
    ("w", WEEK * 1000),
];

/// A whole number of milliseconds, written as one or more `<number><unit>` terms with the
/// units `ms`, `s`, `m`, `h`, `d` and `w` (`250ms`, `90s`, `15m`, `24h`, `2d`, `1w`,
/// `1h30m`), at most [`MAX_SECONDS`]. It serialises as its canonical spelling: the largest
/// units first up to days, zero terms left out (`90s` reads back as `1m30s`, `1w` as `7d`;
/// zero is `0s`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration {
    millis: u64,
}

/// Why a duration could not be read. Each variant quotes the text it was given.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration: write a number and a unit, e.g. `30s`, `15m`, `24h` or `2d`")]
    Empty,
    /// A number was not followed by a unit.
    #[error("duration `{text}`: the number `{number}` has no unit (ms, s, m, h, d or w)")]
    MissingUnit {
        /// The whole text.
        text: String,
        /// The number without a unit.
        number: String,
    },
    /// A unit was not preceded by a number.
    #[error("duration `{text}`: expected a number before `{rest}`")]
    MissingNumber {
        /// The whole text.
        text: String,
        /// Where a number was expected.
        rest: String,
    },
    /// A unit other than ms, s, m, h, d or w.
    #[error("duration `{text}`: unknown unit `{unit}` (use ms, s, m, h, d or w)")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// Longer than [`MAX_SECONDS`] (or a number too large to compute with at all).
    #[error("duration `{text}` is longer than the maximum of 3650d")]
    TooLong {
        /// The whole text.
        text: String,
    },
}

impl HumanDuration {
    /// The longest duration accepted ([`MAX_SECONDS`]).
    pub const MAX: HumanDuration = HumanDuration { millis: MAX_MILLIS };

    /// A duration of `millis` milliseconds, capped at [`HumanDuration::MAX`].
    pub const fn from_millis(millis: u64) -> HumanDuration {
        HumanDuration {
            millis: if millis > MAX_MILLIS {
                MAX_MILLIS
            } else {
                millis
            },
        }
    }

    /// A duration of `seconds` seconds, capped at [`HumanDuration::MAX`].
    pub const fn from_secs(seconds: u64) -> HumanDuration {
        HumanDuration::from_millis(seconds.saturating_mul(1000))
    }

    /// A duration of `hours` hours, capped at [`HumanDuration::MAX`].
    pub const fn from_hours(hours: u64) -> HumanDuration {
        HumanDuration::from_secs(hours.saturating_mul(HOUR))
    }

    /// The length in whole seconds (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.millis / 1000
    }

    /// The length in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Whether this is no time at all.
    pub const fn is_zero(self) -> bool {
        self.millis == 0
    }

    /// The same length as a standard-library duration, for timeouts.
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }

    /// The same length as a chrono delta, for adding to a `DateTime`.
    pub fn to_time_delta(self) -> TimeDelta {
        // At most MAX_MILLIS, far inside i64 and chrono's range.
        TimeDelta::milliseconds(i64::try_from(self.millis).unwrap_or(i64::MAX / 1000))
    }

    /// Reads `250ms`, `30s`, `15m`, `24h`, `2d`, `1w` or a sum of such terms such as
    /// `1h30m`. Surrounding whitespace is ignored; whitespace between terms is not allowed.
    pub fn parse(text: &str) -> Result<HumanDuration, DurationError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(DurationError::Empty);
        }
        let mut total: u64 = 0;
        let mut rest = trimmed;
        while !rest.is_empty() {
            let (term, after) = parse_term(trimmed, rest)?;
            total = total
                .checked_add(term)
                .filter(|t| *t <= MAX_MILLIS)
                .ok_or_else(|| DurationError::TooLong {
                    text: trimmed.to_string(),
                })?;
            rest = after;
        }
        Ok(HumanDuration { millis: total })
    }
}

/// Reads one `<number><unit>` term from the front of `rest`; returns its milliseconds and
/// what follows it.
fn parse_term<'a>(text: &str, rest: &'a str) -> Result<(u64, &'a str), DurationError> {
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (number, after_number) = rest.split_at(digits_end);
    if number.is_empty() {
        return Err(DurationError::MissingNumber {
            text: text.to_string(),
            rest: rest.to_string(),
        });
    }
    let unit_end = after_number
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(after_number.len());
    let (unit, after_unit) = after_number.split_at(unit_end);
    if unit.is_empty() {
        return Err(DurationError::MissingUnit {
            text: text.to_string(),
            number: number.to_string(),
        });
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(DurationError::UnknownUnit {
            text: text.to_string(),
            unit: unit.to_string(),
        });
    };
    let too_long = || DurationError::TooLong {
        text: text.to_string(),
    };
    // Only digits are left, so the one way `parse` fails is a number too large for u64.
    let value: u64 = number.parse().map_err(|_| too_long())?;
    let millis = value.checked_mul(scale).ok_or_else(too_long)?;
    Ok((millis, after_unit))
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HumanDuration::parse(s)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis == 0 {
            return f.write_str("0s");
        }
        let mut left = self.millis;
        for (scale, unit) in [
            (DAY * 1000, "d"),
            (HOUR * 1000, "h"),
            (MINUTE * 1000, "m"),
            (1000, "s"),
            (1, "ms"),
        ] {
            let count = left / scale;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                left -= count * scale;
            }
        }
        Ok(())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn reads_every_unit_and_sums_of_them() {
        for (text, millis) in [
            ("250ms", 250),
            ("0ms", 0),
            ("30s", 30_000),
            ("90s", 90_000),
            ("15m", 900_000),
            ("24h", 86_400_000),
            ("26h", 93_600_000),
            ("2d", 172_800_000),
            ("1w", 604_800_000),
            ("1h30m", 5_400_000),
            ("1s500ms", 1_500),
            (" 0s ", 0),
            ("1d2h3m4s", 93_784_000),
            ("3650d", MAX_MILLIS),
        ] {
            assert_eq!(
                HumanDuration::parse(text).unwrap().as_millis(),
                millis,
                "{text}"
            );
        }
        assert_eq!(
            HumanDuration::parse("26h").unwrap().to_std(),
            std::time::Duration::from_secs(26 * 3600)
        );
        assert_eq!(
            HumanDuration::parse("1s500ms").unwrap().to_time_delta(),
            TimeDelta::milliseconds(1500)
        );
    }

    #[test]
    fn writes_the_canonical_spelling() {
        for (millis, text) in [
            (0, "0s"),
            (90_000, "1m30s"),
            (86_400_000, "1d"),
            (604_800_000, "7d"),
            (93_784_000, "1d2h3m4s"),
            (3_600_000, "1h"),
            (250, "250ms"),
            (1_500, "1s500ms"),
        ] {
            let d = HumanDuration::from_millis(millis);
            assert_eq!(d.to_string(), text);
            assert_eq!(HumanDuration::parse(text).unwrap(), d, "round trip {text}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_read_and_names_it() {
        assert_eq!(HumanDuration::parse("  "), Err(DurationError::Empty));
        assert_eq!(
            HumanDuration::parse("30"),
            Err(DurationError::MissingUnit {
                text: "30".into(),
                number: "30".into()
            })
        );
        assert_eq!(
            HumanDuration::parse("h"),
            Err(DurationError::MissingNumber {
                text: "h".into(),
                rest: "h".into()
            })
        );
        assert_eq!(
            HumanDuration::parse("5y").unwrap_err().to_string(),
            "duration `5y`: unknown unit `y` (use ms, s, m, h, d or w)"
        );
        assert_eq!(
            HumanDuration::parse("1 h"),
            Err(DurationError::UnknownUnit {
                text: "1 h".into(),
                unit: " h".into()
            })
        );
        assert_eq!(
            HumanDuration::parse("-5s"),
            Err(DurationError::MissingNumber {
                text: "-5s".into(),
                rest: "-5s".into()
            })
        );
    }

    /// The numbers from the issue: each overflowed (a panic in debug builds, a silent wrap
    /// in release builds) before the grammar checked its arithmetic.
    #[test]
    fn too_long_is_refused_never_wrapped() {
        for text in [
            "307445734561825861m",
            "18446744073709551615d",
            "99999999999999999999999s",
            "3651d",
            "3650d1ms",
            "521w4d",
        ] {
            assert_eq!(
                HumanDuration::parse(text),
                Err(DurationError::TooLong { text: text.into() }),
                "{text}"
            );
        }
        assert_eq!(HumanDuration::from_secs(u64::MAX), HumanDuration::MAX);
        assert_eq!(HumanDuration::from_hours(u64::MAX), HumanDuration::MAX);
    }

    #[test]
    fn serde_uses_the_text_form() {
        let d: HumanDuration = serde_json::from_str("\"90s\"").unwrap();
        assert_eq!(d.as_secs(), 90);
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1m30s\"");
        let err = serde_json::from_str::<HumanDuration>("\"ten minutes\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "duration `ten minutes`: expected a number before `ten minutes`"
        );
    }
}
