//! The dpkg package database, read through `dpkg-query`.
//!
//! Every query uses one format (see [`SHOW_FORMAT`]): one line per package instance,
//! five tab-separated fields `db:Status-Abbrev`, `Package`, `Version`, `Architecture`,
//! `source:Package`. The same parser serves the full inventory and the read-back of
//! named packages after an apply or rollback.

use std::fmt;

use patchwave_plugin_sdk::{Class, Installed, PackageTable, PluginError, TextSpans};

/// The `dpkg-query --showformat` argument used for every query. The escapes are expanded
/// by dpkg-query itself, so the argv holds no control characters.
pub const SHOW_FORMAT: &str =
    "--showformat=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\n";

/// A package's `db:Status-Abbrev`: desired action, current status, error flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// `u`nknown, `i`nstall, `h`old, `r`emove or `p`urge.
    pub want: u8,
    /// `n`ot-installed, `c`onfig-files, `H`alf-installed, `U`npacked,
    /// half-con`F`igured, triggers-a`W`aited, `t`riggers-pending or `i`nstalled.
    pub current: u8,
    /// `R` when dpkg requires a reinstallation, else a space.
    pub flag: u8,
}

impl Status {
    /// Parse the three-character abbreviation; `None` for anything dpkg does not print.
    pub fn parse(abbrev: &str) -> Option<Status> {
        let &[want, current, flag] = abbrev.as_bytes() else {
            return None;
        };
        let valid = b"uihrp".contains(&want)
            && b"ncHUFWti".contains(&current)
            && (flag == b' ' || flag == b'R');
        valid.then_some(Status {
            want,
            current,
            flag,
        })
    }

    /// The status of a package dpkg has never heard of (`dpkg-query` prints nothing).
    pub const UNKNOWN: Status = Status {
        want: b'u',
        current: b'n',
        flag: b' ',
    };

    /// A version of the package is on disk: installed, or on its way in or out
    /// (unpacked, half-installed, half-configured, awaiting or pending triggers).
    /// Not-installed and config-files-only packages are not.
    pub fn is_present(self) -> bool {
        !matches!(self.current, b'n' | b'c')
    }

    /// Fully installed and configured, with no reinstallation required.
    pub fn is_installed_ok(self) -> bool {
        self.current == b'i' && self.flag == b' '
    }

    /// Not installed, or only its configuration files remain.
    pub fn is_absent(self) -> bool {
        !self.is_present()
    }

    /// Half-way through an operation: dpkg was interrupted or a maintainer script failed.
    pub fn is_interrupted(self) -> bool {
        matches!(self.current, b'H' | b'U' | b'F' | b'W' | b't') || self.flag == b'R'
    }

    /// The selection is `hold` (what `apt-mark hold` sets and `apt-mark showhold` lists).
    pub fn is_held(self) -> bool {
        self.want == b'h'
    }
}

impl fmt::Display for Status {
    /// The abbreviation without its trailing blank, e.g. `ii`, `iF`, `iHR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars = [self.want, self.current, self.flag];
        let shown = if self.flag == b' ' {
            &chars[..2]
        } else {
            &chars[..]
        };
        f.write_str(std::str::from_utf8(shown).map_err(|_| fmt::Error)?)
    }
}

/// One line of `dpkg-query` output, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The package's state.
    pub status: Status,
    /// Binary package name, without an architecture qualifier.
    pub name: &'a str,
    /// The version dpkg records (empty for packages it only knows by name).
    pub version: &'a str,
    /// Architecture, e.g. `amd64` or `all` (empty for packages it only knows by name).
    pub arch: &'a str,
    /// Source package name (dpkg defaults it to the binary name).
    pub source: &'a str,
}

impl<'a> Record<'a> {
    /// Parse one line; `number` (1-based) only names the line in the error.
    pub fn parse(line: &'a str, number: usize) -> Result<Self, PluginError> {
        Self::from_fields(line, split_fields(line), number)
    }

    /// Validate a line already cut into its fields (`None`: not exactly five).
    fn from_fields(
        line: &'a str,
        fields: Option<[&'a str; 5]>,
        number: usize,
    ) -> Result<Self, PluginError> {
        let bad = |why: &str| {
            PluginError::Parse(format!("dpkg-query output line {number}: {why}: {line:?}"))
        };
        let Some([status, name, version, arch, source]) = fields else {
            return Err(bad("expected 5 tab-separated fields"));
        };
        let status = Status::parse(status).ok_or_else(|| bad("unknown package status"))?;
        if name.is_empty() {
            return Err(bad("empty package name"));
        }
        if status.is_present() && (version.is_empty() || arch.is_empty()) {
            return Err(bad("installed package without version or architecture"));
        }
        Ok(Record {
            status,
            name,
            version,
            arch,
            source,
        })
    }

    /// The package as an inventory entry.
    pub fn to_installed(&self) -> Installed {
        Installed {
            name: self.name.to_string(),
            version: self.version.to_string(),
            arch: self.arch.to_string(),
            source: (!self.source.is_empty()).then(|| self.source.to_string()),
        }
    }
}

/// Exactly five tab-separated fields, or `None`.
///
/// A plain byte loop: fields are a few bytes long, where a general substring search costs
/// more in setup than it saves (this is the inner loop of every inventory).
fn split_fields(line: &str) -> Option<[&str; 5]> {
    let mut tabs = [0usize; 4];
    let mut n = 0;
    for (i, &b) in line.as_bytes().iter().enumerate() {
        if b == b'\t' {
            *tabs.get_mut(n)? = i;
            n += 1;
        }
    }
    if n != 4 {
        return None;
    }
    let [a, b, c, d] = tabs;
    Some([
        line.get(..a)?,
        line.get(a + 1..b)?,
        line.get(b + 1..c)?,
        line.get(c + 1..d)?,
        line.get(d + 1..)?,
    ])
}

/// The lines of `text`, the last one with or without its `\n` (like `split_terminator`),
/// each cut into its tab-separated fields (`None` unless exactly five).
///
/// One pass over the text, eight bytes at a time: only tabs and newlines stop the scan.
/// Fields are a few bytes long, where a general substring search per field costs more in
/// setup than it saves; this is the inner loop of every inventory.
fn lines_with_fields(text: &str) -> impl Iterator<Item = (&str, Option<[&str; 5]>)> {
    Separators::new(text.as_bytes()).lines(text)
}

/// Positions of every `\t` and `\n` in a byte string, in order.
struct Separators<'a> {
    bytes: &'a [u8],
    /// Start of the next 8-byte word to load.
    next_word: usize,
    /// Start of the word `mask` describes.
    base: usize,
    /// High bit of each separator byte in the current word not yet returned.
    mask: u64,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of every zero byte of `x`, exactly (no borrow runs across bytes).
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

impl<'a> Separators<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Separators {
            bytes,
            next_word: 0,
            base: 0,
            mask: 0,
        }
    }

    /// Group separators into lines of `text` (the same bytes) and cut each line's fields.
    fn lines(mut self, text: &'a str) -> impl Iterator<Item = (&'a str, Option<[&'a str; 5]>)> {
        let mut start = 0usize;
        std::iter::from_fn(move || {
            let mut tabs = [0usize; 4];
            let mut n = 0usize;
            loop {
                let Some(pos) = self.next() else {
                    // The last line has no newline (or there is nothing left).
                    if start >= text.len() {
                        return None;
                    }
                    let line = text.get(start..)?;
                    let fields = cut(text, start, text.len(), &tabs, n);
                    start = text.len();
                    return Some((line, fields));
                };
                if self.bytes.get(pos) == Some(&b'\t') {
                    if let Some(t) = tabs.get_mut(n) {
                        *t = pos;
                    }
                    n += 1;
                    continue;
                }
                let line = text.get(start..pos)?;
                let fields = cut(text, start, pos, &tabs, n);
                start = pos + 1;
                return Some((line, fields));
            }
        })
    }
}

impl Iterator for Separators<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            let word = self.bytes.get(self.next_word..self.next_word + 8);
            match word.and_then(|w| <[u8; 8]>::try_from(w).ok()) {
                Some(w) => {
                    let x = u64::from_le_bytes(w);
                    self.mask = zero_bytes(x ^ (ONES * u64::from(b'\t')))
                        | zero_bytes(x ^ (ONES * u64::from(b'\n')));
                    self.base = self.next_word;
                    self.next_word += 8;
                }
                None => {
                    // Fewer than eight bytes left: one at a time.
                    let rest = self.bytes.get(self.next_word..)?;
                    let i = rest.iter().position(|&b| b == b'\t' || b == b'\n');
                    let Some(i) = i else {
                        self.next_word = self.bytes.len();
                        return None;
                    };
                    self.next_word += i + 1;
                    return Some(self.next_word - 1);
                }
            }
        }
        let byte = (self.mask.trailing_zeros() / 8) as usize;
        self.mask &= self.mask - 1;
        Some(self.base + byte)
    }
}

/// The five fields of the line `text[start..end]` with tabs at `tabs` (`n` tabs seen).
fn cut<'a>(
    text: &'a str,
    start: usize,
    end: usize,
    tabs: &[usize; 4],
    n: usize,
) -> Option<[&'a str; 5]> {
    if n != 4 {
        return None;
    }
    let [a, b, c, d] = *tabs;
    Some([
        text.get(start..a)?,
        text.get(a + 1..b)?,
        text.get(b + 1..c)?,
        text.get(c + 1..d)?,
        text.get(d + 1..end)?,
    ])
}

/// Parse `dpkg-query` output into records, failing on the first malformed line.
pub fn parse_records(text: &str) -> Result<Vec<Record<'_>>, PluginError> {
    lines_with_fields(text)
        .enumerate()
        .map(|(i, (line, fields))| Record::from_fields(line, fields, i + 1))
        .collect()
}

/// The inventory: every package instance with a version on disk.
///
/// Semantics: a package is listed when the current-status character of its
/// `db:Status-Abbrev` (the second one) is anything but `n` (not-installed) and `c`
/// (config-files), i.e. `i`, and also the in-between states `U`, `F`, `H`, `W`, `t`,
/// because a version of the package is present on disk and may carry vulnerabilities.
/// The desired-action character (`i`, `h`, `r`, ...) and the reinstreq flag do not
/// matter. Plain `dpkg-query -W` differs only in also listing `rc` packages (removed,
/// configuration files left), which have no installed code and are left out here.
/// Multi-arch instances (`libc6:amd64`, `libc6:i386`) are separate entries.
pub fn parse_inventory(text: &str) -> Result<Vec<Installed>, PluginError> {
    let mut out = Vec::with_capacity(text.len() / 64);
    for_each_present(text, |rec| out.push(rec.to_installed()))?;
    Ok(out)
}

/// [`parse_inventory`] as the packed table the contract returns: the fields are offsets
/// into `text` itself, so nothing is copied or allocated per package.
pub fn parse_inventory_table(text: String) -> Result<PackageTable, PluginError> {
    let mut spans = TextSpans::new(&text, text.len() / 64);
    for_each_present(&text, |r| {
        spans.push(r.name, r.version, r.arch, Some(r.source))
    })?;
    Ok(spans.into_table(text))
}

/// Call `f` with every present package of `dpkg-query` output, failing on the first
/// malformed line.
fn for_each_present<'a>(text: &'a str, mut f: impl FnMut(&Record<'a>)) -> Result<(), PluginError> {
    for (i, (line, fields)) in lines_with_fields(text).enumerate() {
        let rec = Record::from_fields(line, fields, i + 1)?;
        if rec.status.is_present() {
            f(&rec);
        }
    }
    Ok(())
}

/// A package as the caller names it: `name` or `name:arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageRef<'a> {
    /// The spelling the caller used, passed on to apt and dpkg as is.
    pub spec: &'a str,
    /// The package name.
    pub name: &'a str,
    /// The architecture qualifier, if any.
    pub arch: Option<&'a str>,
}

impl<'a> PackageRef<'a> {
    /// Validate a package name exactly as the host checks a `<package>` argument (Debian
    /// policy: `[a-z0-9][a-z0-9+.-]+`, optionally qualified with `:arch`), so a name
    /// refused there is refused here, before anything runs. A name ending in `+` or `-`
    /// (apt's install/remove modifiers) is only accepted with its architecture.
    pub fn parse(spec: &'a str) -> Result<Self, PluginError> {
        if !Class::Package.accepts(spec, true) {
            return Err(PluginError::InvalidInput(format!(
                "invalid package name {spec:?}: expected [a-z0-9][a-z0-9+.-]+ with an optional \
                 :arch, not ending in `+` or `-` (apt reads those as \"install\" and \
                 \"remove\": name such a package with its architecture, e.g. `g++:amd64`) nor \
                 in a package file extension (`.deb`)"
            )));
        }
        let (name, arch) = match spec.split_once(':') {
            Some((name, arch)) => (name, Some(arch)),
            None => (spec, None),
        };
        Ok(PackageRef { spec, name, arch })
    }

    /// The records (of a read-back) that are this package.
    pub fn matching<'r>(
        &self,
        records: &'r [Record<'r>],
    ) -> impl Iterator<Item = &'r Record<'r>> + use<'r, '_> {
        records
            .iter()
            .filter(move |r| r.name == self.name && self.arch.is_none_or(|a| a == r.arch))
    }

    /// What the package database says about this package: the first present instance
    /// that fails `good`, else the first present instance, else the first record (e.g.
    /// `rc`), else [`Status::UNKNOWN`]. Several instances only occur for a multi-arch
    /// package named without a qualifier.
    pub fn state_in<'r>(
        &self,
        records: &'r [Record<'r>],
        good: impl Fn(&Record<'_>) -> bool,
    ) -> (Status, Option<&'r str>) {
        let mut first = None;
        let mut first_present = None;
        for rec in self.matching(records) {
            first.get_or_insert(rec);
            if rec.status.is_present() {
                if !good(rec) {
                    return (rec.status, Some(rec.version));
                }
                first_present.get_or_insert(rec);
            }
        }
        match (first_present, first) {
            (Some(rec), _) => (rec.status, Some(rec.version)),
            (None, Some(rec)) => (rec.status, None),
            (None, None) => (Status::UNKNOWN, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_abbreviations() {
        let ii = Status::parse("ii ").unwrap();
        assert!(ii.is_present() && ii.is_installed_ok() && !ii.is_held() && !ii.is_interrupted());
        assert_eq!(ii.to_string(), "ii");
        let hi = Status::parse("hi ").unwrap();
        assert!(hi.is_held() && hi.is_installed_ok());
        let rc = Status::parse("rc ").unwrap();
        assert!(rc.is_absent() && !rc.is_present());
        let ihr = Status::parse("iHR").unwrap();
        assert!(ihr.is_present() && !ihr.is_installed_ok() && ihr.is_interrupted());
        assert_eq!(ihr.to_string(), "iHR");
        let iir = Status::parse("iiR").unwrap();
        assert!(!iir.is_installed_ok() && iir.is_interrupted());
        for s in ["iU ", "iF ", "iW ", "it "] {
            let st = Status::parse(s).unwrap();
            assert!(
                st.is_present() && st.is_interrupted() && !st.is_installed_ok(),
                "{s}"
            );
        }
        for bad in ["", "ii", "ii  ", "xi ", "ix ", "iiX", "ïi"] {
            assert_eq!(Status::parse(bad), None, "{bad:?}");
        }
    }

    /// `dpkg-query` output from a synthetic status database covering every state
    /// (made with `--admindir`, see `tests/data/README.md`).
    #[test]
    fn inventory_keeps_present_packages_only() {
        let text = include_str!("../tests/data/dpkg-query-states.txt");
        let inv = parse_inventory(text).unwrap();
        let names: Vec<(&str, &str)> = inv
            .iter()
            .map(|p| (p.name.as_str(), p.arch.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("alpha", "amd64"),
                ("delta", "amd64"),
                ("eta", "all"),
                ("gamma", "amd64"),
                ("theta", "all"),
                ("zeta", "amd64"),
                ("zeta", "i386"),
            ]
        );
        let gamma = &inv[3];
        assert_eq!(gamma.version, "1.5-1+b1");
        assert_eq!(gamma.source.as_deref(), Some("gsrc"));
        assert_eq!(inv[5].version, "4:1.2~rc1");
    }

    /// The whole package database of the machine the plugin was written on.
    #[test]
    fn zero_byte_masks_are_exact() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            // splitmix64, with some bytes forced to 0, 0x80 and 0x01 to hit the edge cases.
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let mut bytes = (z ^ (z >> 31)).to_le_bytes();
            for (i, b) in bytes.iter_mut().enumerate() {
                match (x >> (i * 3)) & 7 {
                    0 => *b = 0,
                    1 => *b = 0x80,
                    2 => *b = 1,
                    _ => {}
                }
            }
            let naive = bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == 0)
                .fold(0u64, |m, (i, _)| m | 0x80 << (8 * i));
            assert_eq!(zero_bytes(u64::from_le_bytes(bytes)), naive, "{bytes:?}");
        }
    }

    #[test]
    fn line_and_field_splitting_match_the_standard_library() {
        let long = "ii \tlibfoo-long-name\t1:2.3.4-5+deb12u1\tamd64\tfoo\n".repeat(3);
        let texts = [
            "",
            "\n",
            "\n\n",
            "a",
            "a\n",
            "a\nb",
            "a\n\nb\n",
            "é\tü\n",
            "1234567\n",
            "12345678\n",
            "123456789\n\t",
            "a\tb\tc\td\te",
            "a\tb\tc\td\te\tf\n",
            &long,
        ];
        for text in texts {
            let ours: Vec<_> = lines_with_fields(text).collect();
            let std: Vec<_> = text
                .split_terminator('\n')
                .map(|l| (l, split_fields(l)))
                .collect();
            assert_eq!(ours, std, "{text:?}");
        }
        assert_eq!(
            split_fields("ii \tnå\t1\tall\t"),
            Some(["ii ", "nå", "1", "all", ""])
        );
        for bad in ["", "a\tb\tc\td", "a\tb\tc\td\te\tf", "\t\t\t\t\t"] {
            assert_eq!(split_fields(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_packed_table_holds_exactly_the_parsed_inventory() {
        let text = include_str!("../tests/data/dpkg-query-states.txt");
        let table = parse_inventory_table(text.to_string()).unwrap();
        assert_eq!(table.unpack().unwrap(), parse_inventory(text).unwrap());
        let text = include_str!("../tests/data/dpkg-query-debian12.txt");
        let table = parse_inventory_table(text.to_string()).unwrap();
        assert_eq!(table.unpack().unwrap(), parse_inventory(text).unwrap());
        assert!(parse_inventory_table("ii \tfoo\n".into()).is_err());
    }

    #[test]
    fn inventory_of_a_real_machine() {
        let text = include_str!("../tests/data/dpkg-query-debian12.txt");
        let inv = parse_inventory(text).unwrap();
        assert_eq!(inv.len(), text.lines().count());
        let bash = inv.iter().find(|p| p.name == "bash").unwrap();
        assert_eq!(
            (
                bash.version.as_str(),
                bash.arch.as_str(),
                bash.source.as_deref()
            ),
            ("5.2.15-2+b8", "amd64", Some("bash"))
        );
        let ssl = inv.iter().find(|p| p.name == "libssl3").unwrap();
        assert_eq!(ssl.source.as_deref(), Some("openssl"));
        assert!(inv
            .iter()
            .all(|p| !p.name.is_empty() && !p.version.is_empty()));
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let cases = [
            "ii \tfoo\t1.0\tamd64\n",
            "ii \tfoo\t1.0\tamd64\tfoo\textra\n",
            "zz \tfoo\t1.0\tamd64\tfoo\n",
            "ii \t\t1.0\tamd64\tfoo\n",
            "ii \tfoo\t\tamd64\tfoo\n",
            "\n",
        ];
        for case in cases {
            let text = format!("ii \tok\t1\tall\tok\n{case}");
            match parse_inventory(&text) {
                Err(PluginError::Parse(msg)) => assert!(msg.contains("line 2"), "{msg}"),
                other => panic!("{case:?}: {other:?}"),
            }
        }
        assert!(parse_inventory("").unwrap().is_empty());
        // A package dpkg only knows by name has no version: fine outside the inventory.
        assert!(parse_inventory("un \tfoo\t\t\tfoo\n").unwrap().is_empty());
    }

    #[test]
    fn package_refs() {
        for ok in [
            "libc6",
            "g++:amd64",
            "libstdc++6",
            "0ad",
            "python3.11",
            "zeta:i386",
            "x1:arm-64",
        ] {
            assert!(PackageRef::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "-x",
            "+x",
            "Foo",
            "foo bar",
            "foo=1",
            "foo/bookworm",
            "foo:",
            "foo:-x",
            "foo:a:b",
            "foo*",
            "../x",
            "foo\n",
            "ünï",
            // apt's modifiers: `g++` is a package, but `openssh-server-` removes sshd.
            "g++",
            "openssh-server-",
            "x.deb",
        ] {
            assert!(
                matches!(PackageRef::parse(bad), Err(PluginError::InvalidInput(_))),
                "{bad:?}"
            );
        }
        let r = PackageRef::parse("zeta:i386").unwrap();
        assert_eq!(
            (r.name, r.arch, r.spec),
            ("zeta", Some("i386"), "zeta:i386")
        );
    }

    #[test]
    fn read_back_picks_the_worst_instance() {
        let text =
            "iU \tzeta\t2.0\tamd64\tz\nii \tzeta\t2.0\ti386\tz\nrc \tgone\t1.0\tamd64\tgone\n";
        let recs = parse_records(text).unwrap();
        let ok = |r: &Record<'_>| r.status.is_installed_ok() && r.version == "2.0";
        let zeta = PackageRef::parse("zeta").unwrap();
        let (st, found) = zeta.state_in(&recs, ok);
        assert_eq!((st.to_string().as_str(), found), ("iU", Some("2.0")));
        let zeta386 = PackageRef::parse("zeta:i386").unwrap();
        let (st, found) = zeta386.state_in(&recs, ok);
        assert_eq!((st.to_string().as_str(), found), ("ii", Some("2.0")));
        let gone = PackageRef::parse("gone").unwrap();
        let (st, found) = gone.state_in(&recs, ok);
        assert_eq!((st.to_string().as_str(), found), ("rc", None));
        let never = PackageRef::parse("never").unwrap();
        assert_eq!(never.state_in(&recs, ok), (Status::UNKNOWN, None));
    }
}
