//! Durations written the way people write them in config files: `30s`, `15m`, `24h`, `2d`.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The longest duration accepted: ten years. Anything longer in a rollout policy is a typo,
/// and the bound keeps time arithmetic far from overflow.
pub const MAX_SECONDS: u64 = 3650 * DAY;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// A whole number of seconds, written as one or more `<number><unit>` terms with the units
/// `s`, `m`, `h`, `d` and `w` (`90s`, `15m`, `24h`, `2d`, `1h30m`). It serialises as its
/// canonical spelling: the largest units first, zero terms left out (`90s` reads back as
/// `1m30s`; zero is `0s`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration {
    seconds: u64,
}

/// Why a duration could not be read. Each variant quotes the text it was given.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DurationError {
    /// Nothing was written.
    #[error("empty duration: write a number and a unit, e.g. `30s`, `15m`, `24h` or `2d`")]
    Empty,
    /// A number was not followed by a unit.
    #[error("duration `{text}`: the number `{number}` has no unit (s, m, h, d or w)")]
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
    /// A unit other than s, m, h, d or w.
    #[error("duration `{text}`: unknown unit `{unit}` (use s, m, h, d or w)")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// Longer than [`MAX_SECONDS`].
    #[error("duration `{text}` is longer than the maximum of 3650d")]
    TooLong {
        /// The whole text.
        text: String,
    },
}

impl HumanDuration {
    /// A duration of `seconds` seconds, capped at [`MAX_SECONDS`].
    pub const fn from_secs(seconds: u64) -> HumanDuration {
        HumanDuration {
            seconds: if seconds > MAX_SECONDS {
                MAX_SECONDS
            } else {
                seconds
            },
        }
    }

    /// A duration of `hours` hours.
    pub const fn from_hours(hours: u64) -> HumanDuration {
        HumanDuration::from_secs(hours.saturating_mul(HOUR))
    }

    /// The length in seconds.
    pub const fn as_secs(self) -> u64 {
        self.seconds
    }

    /// The same length as a chrono delta, for adding to a `DateTime`.
    pub fn to_time_delta(self) -> TimeDelta {
        // At most MAX_SECONDS, far inside i64 and chrono's range.
        TimeDelta::seconds(i64::try_from(self.seconds).unwrap_or(i64::MAX / 1000))
    }

    /// Reads `30s`, `15m`, `24h`, `2d`, `1w` or a sum of such terms such as `1h30m`.
    /// Surrounding whitespace is ignored; whitespace between terms is not allowed.
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
                .filter(|t| *t <= MAX_SECONDS)
                .ok_or_else(|| DurationError::TooLong {
                    text: trimmed.to_string(),
                })?;
            rest = after;
        }
        Ok(HumanDuration { seconds: total })
    }
}

/// Reads one `<number><unit>` term from the front of `rest`; returns its seconds and what
/// follows it.
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
    let scale = match unit {
        "s" => 1,
        "m" => MINUTE,
        "h" => HOUR,
        "d" => DAY,
        "w" => WEEK,
        "" => {
            return Err(DurationError::MissingUnit {
                text: text.to_string(),
                number: number.to_string(),
            })
        }
        other => {
            return Err(DurationError::UnknownUnit {
                text: text.to_string(),
                unit: other.to_string(),
            })
        }
    };
    let too_long = || DurationError::TooLong {
        text: text.to_string(),
    };
    let value: u64 = number.parse().map_err(|_| too_long())?;
    let seconds = value.checked_mul(scale).ok_or_else(too_long)?;
    Ok((seconds, after_unit))
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HumanDuration::parse(s)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            return f.write_str("0s");
        }
        let mut left = self.seconds;
        for (scale, unit) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (1, "s")] {
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
    fn reads_the_humane_spellings() {
        for (text, seconds) in [
            ("30s", 30),
            ("90s", 90),
            ("15m", 900),
            ("24h", 86_400),
            ("2d", 172_800),
            ("1w", 604_800),
            ("1h30m", 5_400),
            (" 0s ", 0),
            ("1d2h3m4s", 93_784),
        ] {
            assert_eq!(
                HumanDuration::parse(text).unwrap().as_secs(),
                seconds,
                "{text}"
            );
        }
    }

    #[test]
    fn writes_the_canonical_spelling() {
        for (seconds, text) in [
            (0, "0s"),
            (90, "1m30s"),
            (86_400, "1d"),
            (93_784, "1d2h3m4s"),
            (3_600, "1h"),
        ] {
            assert_eq!(HumanDuration::from_secs(seconds).to_string(), text);
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
            "duration `5y`: unknown unit `y` (use s, m, h, d or w)"
        );
        assert_eq!(
            HumanDuration::parse("1 h"),
            Err(DurationError::UnknownUnit {
                text: "1 h".into(),
                unit: " h".into()
            })
        );
        assert_eq!(
            HumanDuration::parse("3651d"),
            Err(DurationError::TooLong {
                text: "3651d".into()
            })
        );
        assert_eq!(
            HumanDuration::parse("99999999999999999999999s"),
            Err(DurationError::TooLong {
                text: "99999999999999999999999s".into()
            })
        );
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
