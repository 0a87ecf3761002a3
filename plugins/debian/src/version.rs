//! Debian package versions: parsing and ordering exactly as dpkg does (deb-version(7)).
//!
//! A version is `[epoch:]upstream[-revision]`. Ordering compares the epoch as a number,
//! then the upstream part, then the revision, each of the latter two with dpkg's
//! "verrevcmp" rules: alternating runs of non-digits and digits; in a non-digit run `~`
//! sorts before everything (even the end of the string), then the end of the string and
//! digits, then letters, then every other character; digit runs compare as numbers of any
//! length.
//!
//! Validation follows dpkg's `parseversion` with one deliberate difference, chosen by the
//! project: dpkg only *warns* about characters outside the allowed set and still compares,
//! this module rejects them (a version that cannot exist in a dpkg database is an input
//! error, not something to rank). An upstream part that does not start with a digit is
//! accepted, as `dpkg --compare-versions` accepts it with a warning.

use std::cmp::Ordering;
use std::fmt;

/// A parsed version, borrowing from the string it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    /// The epoch; 0 when absent.
    pub epoch: u32,
    /// The upstream part (between the epoch colon and the last hyphen).
    pub upstream: &'a str,
    /// The Debian revision (after the last hyphen); empty when absent.
    pub revision: &'a str,
}

/// Why a string is not a valid version. The wording follows dpkg's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionError {
    /// Nothing but blanks.
    Empty,
    /// Blanks inside the version.
    EmbeddedSpaces,
    /// A colon with no digits before it.
    EpochEmpty,
    /// Something other than a number before the first colon.
    EpochNotNumber,
    /// A negative epoch.
    EpochNegative,
    /// An epoch above `i32::MAX`.
    EpochTooBig,
    /// Nothing after the epoch colon.
    NothingAfterColon,
    /// A trailing hyphen.
    RevisionEmpty,
    /// Nothing between the epoch and the revision.
    UpstreamEmpty,
    /// A character outside `[A-Za-z0-9.+~:-]` in the upstream part.
    InvalidUpstreamChar,
    /// A character outside `[A-Za-z0-9.+~]` in the revision.
    InvalidRevisionChar,
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "version string is empty",
            Self::EmbeddedSpaces => "version string has embedded spaces",
            Self::EpochEmpty => "epoch in version is empty",
            Self::EpochNotNumber => "epoch in version is not number",
            Self::EpochNegative => "epoch in version is negative",
            Self::EpochTooBig => "epoch in version is too big",
            Self::NothingAfterColon => "nothing after colon in version number",
            Self::RevisionEmpty => "revision number is empty",
            Self::UpstreamEmpty => "upstream version is empty",
            Self::InvalidUpstreamChar => "invalid character in version number",
            Self::InvalidRevisionChar => "invalid character in revision number",
        })
    }
}

/// dpkg's `c_isblank`: the only characters it trims around a version.
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// C `isspace` in the C locale: what `strtol` skips before a number.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

impl<'a> Version<'a> {
    /// Parse a version the way dpkg's `parseversion` does (see the module docs for the
    /// one deliberate difference). Leading and trailing blanks are ignored, as in dpkg.
    pub fn parse(text: &'a str) -> Result<Self, VersionError> {
        let s = text.trim_start_matches([' ', '\t']);
        if s.is_empty() {
            return Err(VersionError::Empty);
        }
        let end = s.bytes().position(is_blank).unwrap_or(s.len());
        let (s, after) = s.split_at(end);
        if !after.trim_start_matches([' ', '\t']).is_empty() {
            return Err(VersionError::EmbeddedSpaces);
        }

        let (epoch, rest) = match s.split_once(':') {
            Some((epoch, rest)) => {
                let epoch = parse_epoch(epoch)?;
                if rest.is_empty() {
                    return Err(VersionError::NothingAfterColon);
                }
                (epoch, rest)
            }
            None => (0, s),
        };

        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(VersionError::RevisionEmpty),
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(VersionError::UpstreamEmpty);
        }
        // dpkg warns (and carries on) when the upstream part does not start with a digit;
        // so do we, silently. Characters outside the allowed sets are rejected here.
        if !upstream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'~' | b':'))
        {
            return Err(VersionError::InvalidUpstreamChar);
        }
        if !revision
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~'))
        {
            return Err(VersionError::InvalidRevisionChar);
        }
        Ok(Version {
            epoch,
            upstream,
            revision,
        })
    }
}

/// The epoch as dpkg reads it with `strtol`: optional C whitespace, an optional sign,
/// digits, and nothing else before the colon. `-0` is a valid (zero) epoch.
fn parse_epoch(text: &str) -> Result<u32, VersionError> {
    let bytes = text.as_bytes();
    let mut i = bytes.iter().take_while(|b| is_c_space(**b)).count();
    let mut negative = false;
    match bytes.get(i) {
        Some(b'-') => {
            negative = true;
            i += 1;
        }
        Some(b'+') => i += 1,
        _ => {}
    }
    let digits = bytes.get(i..).unwrap_or_default();
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 {
        return Err(VersionError::EpochEmpty);
    }
    if len != digits.len() {
        return Err(VersionError::EpochNotNumber);
    }
    let mut value: u64 = 0;
    for d in digits {
        value = value.saturating_mul(10).saturating_add(u64::from(d - b'0'));
    }
    if negative && value != 0 {
        return Err(VersionError::EpochNegative);
    }
    if value > i32::MAX as u64 {
        return Err(VersionError::EpochTooBig);
    }
    u32::try_from(value).map_err(|_| VersionError::EpochTooBig)
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream, other.upstream))
            .then_with(|| verrevcmp(self.revision, other.revision))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Weight of one character inside a non-digit run; `None` is the end of the string.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Compare two upstream versions or two revisions with dpkg's rules.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let non_digit = |s: &[u8], k: usize| s.get(k).is_some_and(|c| !c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        // Non-digit run, character by character. Both sides advance together: when the
        // weights are equal, neither side can be at its end or at a digit.
        while non_digit(a, i) || non_digit(b, j) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // Digit run, as a number: skip leading zeros, then the longer run is larger,
        // then the first differing digit decides.
        i += a
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| **c == b'0')
            .count();
        j += b
            .get(j..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| **c == b'0')
            .count();
        let da = digit_run(a, i);
        let db = digit_run(b, j);
        let order = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if order != Ordering::Equal {
            return order;
        }
        i += da.len();
        j += db.len();
    }
    Ordering::Equal
}

/// The run of ASCII digits starting at `from`.
fn digit_run(s: &[u8], from: usize) -> &[u8] {
    let rest = s.get(from..).unwrap_or_default();
    let len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    rest.get(..len).unwrap_or_default()
}

/// Compare two version strings; an invalid one gives an error naming it, in dpkg's words.
pub fn compare(a: &str, b: &str) -> Result<Ordering, String> {
    let va = Version::parse(a).map_err(|e| bad_syntax(a, e))?;
    let vb = Version::parse(b).map_err(|e| bad_syntax(b, e))?;
    Ok(va.cmp(&vb))
}

/// `true` when both strings are valid versions that dpkg considers equal.
pub fn same(a: &str, b: &str) -> bool {
    a == b || compare(a, b) == Ok(Ordering::Equal)
}

/// dpkg's wording for an invalid version.
pub fn bad_syntax(version: &str, err: VersionError) -> String {
    format!("version '{version}' has bad syntax: {err}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    fn cmp(a: &str, b: &str) -> Ordering {
        match compare(a, b) {
            Ok(o) => o,
            Err(e) => panic!("{a} vs {b}: {e}"),
        }
    }

    #[test]
    fn parses_parts() {
        let v = Version::parse("1:2.30-1ubuntu0.1").unwrap();
        assert_eq!((v.epoch, v.upstream, v.revision), (1, "2.30", "1ubuntu0.1"));
        let v = Version::parse("2.0-rc1-3").unwrap();
        assert_eq!((v.epoch, v.upstream, v.revision), (0, "2.0-rc1", "3"));
        let v = Version::parse("1:2:3").unwrap();
        assert_eq!((v.epoch, v.upstream, v.revision), (1, "2:3", ""));
        let v = Version::parse("  7.1\t ").unwrap();
        assert_eq!((v.epoch, v.upstream, v.revision), (0, "7.1", ""));
        let v = Version::parse("+1:2").unwrap();
        assert_eq!(v.epoch, 1);
        let v = Version::parse("-0:2").unwrap();
        assert_eq!(v.epoch, 0);
        let v = Version::parse("0002147483647:1").unwrap();
        assert_eq!(v.epoch, 2_147_483_647);
    }

    /// Each case checked with `dpkg --compare-versions` (dpkg 1.21.22).
    #[test]
    fn known_orderings() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~~a", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-1+b1", Less),
            ("1.0.", "1.0+", Greater),
            ("1.0", "1.0a", Less),
            ("1.0", "1.0+", Less),
            ("1.0", "1.0.", Less),
            ("2.30", "2.4", Greater),
            ("0001", "1", Equal),
            ("1.0-0", "1.0", Equal),
            ("1.0-00", "1.0-0", Equal),
            ("0:1.0", "1.0", Equal),
            ("1.0", "1.00", Equal),
            ("1.01", "1.1", Equal),
            ("1.0.0", "1.0", Greater),
            ("a", "b", Less),
            ("a", "A", Greater),
            ("Z", "a", Less),
            ("1.2.3", "1.2.3~", Greater),
            ("1.2-3", "1.2-3~", Greater),
            ("1.2-3~", "1.2-3", Less),
            ("1:1.0", "0:9.9", Greater),
            ("10:1", "9:2", Greater),
            ("1.0-1ubuntu1", "1.0-1", Greater),
            ("1.0-1ubuntu0.1", "1.0-1", Greater),
            ("1.0-1~deb12u1", "1.0-1", Less),
            ("1.0-1+deb12u1", "1.0-1", Greater),
            ("1.0-1+deb12u1", "1.0-1+deb12u10", Less),
            ("3.0.19-1~deb12u2", "3.0.22-1~deb12u2", Less),
            ("252.38-1~deb12u1", "252.39-1~deb12u2", Less),
            ("5.2.15-2+b8", "5.2.15-2+b13", Less),
            ("1:9.2p1-2+deb12u10", "1:9.2p1-2+deb12u3", Greater),
            ("2.0-rc1-3", "2.0-3", Greater),
            ("1.0+dfsg-1", "1.0-1", Greater),
            ("1.0.", "1.0+", Greater),
            ("1.0-1", "1.0.1", Less),
            (
                "1.999999999999999999999999999999",
                "1.1000000000000000000000000000000",
                Less,
            ),
            (
                "99999999999999999999999",
                "99999999999999999999998",
                Greater,
            ),
            ("1.000000000000000000000000002", "1.2", Equal),
            ("~~", "~", Less),
            ("a1", "1", Greater),
            ("~1", "1", Less),
            (".1", "1", Greater),
            ("1a", "1.", Less),
            ("1:2:3", "1:2:4", Less),
            ("1:2:3-1", "1:2-1", Greater),
            ("7.1", " 7.1 ", Equal),
            ("+1:2", "1:2", Equal),
            ("-0:1", "1", Equal),
            ("1.0~beta", "1.0~alpha", Greater),
            ("1.0~beta", "1.0~beta1", Less),
            ("0.9", "1:0.1", Less),
            ("2:1.2.3", "1:3.0", Greater),
        ];
        for (a, b, want) in cases {
            let (a, b) = (*a, *b);
            assert_eq!(cmp(a, b), *want, "{a} vs {b}");
            assert_eq!(cmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// The part comparison on its own, including empty parts (an absent revision is
    /// empty). `dpkg --compare-versions` cannot show these directly: it treats an empty
    /// argument as "no version", which sorts specially.
    #[test]
    fn part_comparison() {
        assert_eq!(verrevcmp("~", ""), Less);
        assert_eq!(verrevcmp("", "~"), Greater);
        assert_eq!(verrevcmp("", ""), Equal);
        assert_eq!(verrevcmp("0", ""), Equal);
        assert_eq!(verrevcmp("000", "0"), Equal);
        assert_eq!(verrevcmp("a", ""), Greater);
        assert_eq!(verrevcmp("+", "a"), Greater);
        assert_eq!(verrevcmp("1", ""), Greater);
        assert_eq!(verrevcmp("10", "9"), Greater);
        assert_eq!(verrevcmp("1.10", "1.9"), Greater);
        assert_eq!(
            verrevcmp("18446744073709551616", "18446744073709551615"),
            Greater
        );
    }

    /// Each rejection checked with `dpkg --compare-versions` (error, exit 2), except the
    /// invalid-character ones, where dpkg only warns (see the module docs).
    #[test]
    fn rejects_invalid() {
        let cases: &[(&str, VersionError)] = &[
            ("", VersionError::Empty),
            (" \t ", VersionError::Empty),
            ("1 2", VersionError::EmbeddedSpaces),
            ("1.0 -1", VersionError::EmbeddedSpaces),
            (":1", VersionError::EpochEmpty),
            ("+:1", VersionError::EpochEmpty),
            ("1:", VersionError::NothingAfterColon),
            ("1a:1", VersionError::EpochNotNumber),
            ("a:1", VersionError::EpochEmpty),
            ("1.0:1", VersionError::EpochNotNumber),
            ("-1:2", VersionError::EpochNegative),
            ("2147483648:1", VersionError::EpochTooBig),
            ("99999999999999999999999:1", VersionError::EpochTooBig),
            ("1-", VersionError::RevisionEmpty),
            ("-1", VersionError::UpstreamEmpty),
            ("1:-1", VersionError::UpstreamEmpty),
            ("1.0_1", VersionError::InvalidUpstreamChar),
            ("1.0/1", VersionError::InvalidUpstreamChar),
            ("é", VersionError::InvalidUpstreamChar),
            ("1.0\n", VersionError::InvalidUpstreamChar),
            ("1.0-a_b", VersionError::InvalidRevisionChar),
            ("1:1.0-1:2", VersionError::InvalidRevisionChar),
        ];
        for (text, want) in cases {
            assert_eq!(Version::parse(text), Err(*want), "{text:?}");
        }
        let err = compare("1.0", "1:").unwrap_err();
        assert_eq!(
            err,
            "version '1:' has bad syntax: nothing after colon in version number"
        );
    }

    #[test]
    fn same_is_dpkg_equality() {
        assert!(same("1.0-0", "1.0"));
        assert!(same("0:1.0", "1.0"));
        assert!(!same("1.0", "1.0-1"));
        assert!(!same("x y", "1"));
    }

    /// Pairs and verdicts recorded from `dpkg --compare-versions` on a Debian 12 machine
    /// (dpkg 1.21.22) by `tests/data/gen-dpkg-compare.py`. Where dpkg compared without a
    /// warning we must give the same order; where it refused we must refuse; where it only
    /// warned we must give its order or refuse for an invalid character.
    #[test]
    fn agrees_with_dpkg_on_recorded_pairs() {
        let data = include_str!("../tests/data/dpkg-compare-versions.tsv");
        let mut checked = 0;
        for (n, line) in data.lines().enumerate() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let [a, b, verdict, warned] = f[..] else {
                panic!("bad fixture line {}", n + 1)
            };
            let got = compare(a, b);
            let want = match verdict {
                "<" => Ok(Less),
                "=" => Ok(Equal),
                ">" => Ok(Greater),
                "error" => {
                    assert!(got.is_err(), "{a:?} vs {b:?}: dpkg refused, got {got:?}");
                    checked += 1;
                    continue;
                }
                other => panic!("bad verdict {other} on line {}", n + 1),
            };
            match (&got, warned) {
                (Err(e), "1") => assert!(e.contains("invalid character"), "{a:?} vs {b:?}: {e}"),
                _ => assert_eq!(got, want, "{a:?} vs {b:?}"),
            }
            checked += 1;
        }
        assert!(checked > 1000, "only {checked} recorded pairs");
    }
}
