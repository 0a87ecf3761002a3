//! Writing (and, for tests, reading) the packed [`PackageTable`] that `inventory` and
//! `upgradable` return: one text plus eight byte offsets per package (start and end of the
//! name, version, architecture and source).

use crate::PackageTable;

/// One installed package as a plugin's parsers see it. The contract carries packages packed
/// in a [`PackageTable`]; this type is for plugin code and tests that want whole records.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Installed {
    /// Package name.
    pub name: String,
    /// Exact installed (or candidate) version.
    pub version: String,
    /// Architecture.
    pub arch: String,
    /// Source package, when the package manager records one.
    pub source: Option<String>,
}

/// Offsets of fields cut from one text, without copying them: parse the package manager's
/// output, [`push`](Self::push) the `&str` fields you found in it, then hand the same
/// `String` back with [`into_table`](Self::into_table).
///
/// Offsets are computed from where each field lies in memory relative to the text. A field
/// that does not lie inside the text gives offsets the host refuses (`malformed`), never a
/// wrong package.
#[derive(Debug)]
pub struct TextSpans {
    base: usize,
    spans: Vec<u32>,
}

impl TextSpans {
    /// Start recording fields that lie inside `text`, with room for `packages` packages.
    pub fn new(text: &str, packages: usize) -> Self {
        TextSpans {
            base: text.as_ptr() as usize,
            spans: Vec::with_capacity(packages.saturating_mul(8)),
        }
    }

    fn push_field(&mut self, field: &str) {
        let start = (field.as_ptr() as usize).wrapping_sub(self.base);
        let start = u32::try_from(start).unwrap_or(u32::MAX);
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        self.spans.push(start);
        self.spans.push(start.saturating_add(len));
    }

    /// Record one package whose fields are slices of the text. A `None` source is an
    /// empty span.
    pub fn push(&mut self, name: &str, version: &str, arch: &str, source: Option<&str>) {
        self.push_field(name);
        self.push_field(version);
        self.push_field(arch);
        match source {
            Some(s) => self.push_field(s),
            None => self.spans.extend([0, 0]),
        }
    }

    /// Packages recorded so far.
    pub fn len(&self) -> usize {
        self.spans.len() / 8
    }

    /// No package recorded yet.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The table: `text` must be the string the fields were cut from.
    pub fn into_table(self, text: String) -> PackageTable {
        PackageTable {
            text,
            spans: self.spans,
        }
    }
}

/// Builds a [`PackageTable`] from fields that are not slices of one text, copying each
/// field once into the table's text.
#[derive(Debug, Default)]
pub struct PackageTableBuilder {
    text: String,
    spans: Vec<u32>,
}

impl PackageTableBuilder {
    /// Append one package. `None` and `Some("")` sources are the same: no source recorded.
    pub fn push(&mut self, name: &str, version: &str, arch: &str, source: Option<&str>) {
        for field in [name, version, arch, source.unwrap_or("")] {
            let start = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
            self.text.push_str(field);
            let end = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
            self.spans.extend([start, end]);
        }
    }

    /// Append one [`Installed`].
    pub fn push_installed(&mut self, p: &Installed) {
        self.push(&p.name, &p.version, &p.arch, p.source.as_deref());
    }

    /// The finished table.
    pub fn finish(self) -> PackageTable {
        PackageTable {
            text: self.text,
            spans: self.spans,
        }
    }
}

impl<'a> FromIterator<&'a Installed> for PackageTable {
    fn from_iter<I: IntoIterator<Item = &'a Installed>>(iter: I) -> Self {
        let mut b = PackageTableBuilder::default();
        for p in iter {
            b.push_installed(p);
        }
        b.finish()
    }
}

impl PackageTable {
    /// Read the packages back (for tests and tools; the host has its own reader).
    /// Fails on offsets that are reversed, out of bounds or split a character.
    pub fn unpack(&self) -> Result<Vec<Installed>, String> {
        if !self.spans.len().is_multiple_of(8) {
            return Err(format!(
                "{} offsets is not eight per package",
                self.spans.len()
            ));
        }
        let field = |s: &[u32]| -> Result<String, String> {
            self.text
                .get(s[0] as usize..s[1] as usize)
                .map(str::to_string)
                .ok_or_else(|| format!("bad span {}..{}", s[0], s[1]))
        };
        self.spans
            .chunks_exact(8)
            .map(|s| {
                let source = field(&s[6..8])?;
                Ok(Installed {
                    name: field(&s[0..2])?,
                    version: field(&s[2..4])?,
                    arch: field(&s[4..6])?,
                    source: (!source.is_empty()).then_some(source),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Installed> {
        vec![
            Installed {
                name: "libc6".into(),
                version: "2.36-9+deb12u4".into(),
                arch: "amd64".into(),
                source: Some("glibc".into()),
            },
            Installed {
                name: "zäh".into(),
                version: "1:1.0~rc1".into(),
                arch: "all".into(),
                source: None,
            },
        ]
    }

    #[test]
    fn copied_fields_round_trip() {
        let t: PackageTable = sample().iter().collect();
        assert_eq!(t.spans.len(), 16);
        assert_eq!(t.unpack().unwrap(), sample());
    }

    #[test]
    fn spans_cut_from_the_text_round_trip() {
        let text = String::from("ii libc6 2.36-9+deb12u4 amd64 glibc\nii zäh 1:1.0~rc1 all\n");
        let mut spans = TextSpans::new(&text, 2);
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            spans.push(f[1], f[2], f[3], f.get(4).copied());
        }
        assert_eq!(spans.len(), 2);
        let t = spans.into_table(text);
        assert_eq!(t.unpack().unwrap(), sample());
    }

    #[test]
    fn a_field_from_another_text_gives_offsets_that_do_not_read() {
        let text = String::from("abc");
        let other = String::from("elsewhere");
        let mut spans = TextSpans::new(&text, 1);
        spans.push(&other, &text[0..1], &text[1..2], None);
        assert!(spans.into_table(text).unpack().is_err());
    }

    #[test]
    fn bad_offsets_are_refused() {
        let t = PackageTable {
            text: "abc".into(),
            spans: vec![0, 1, 1, 2, 2, 3],
        };
        assert!(t.unpack().unwrap_err().contains("eight per package"));
        let t = PackageTable {
            text: "é".into(),
            spans: vec![0, 1, 0, 2, 0, 2, 0, 0],
        };
        assert!(t.unpack().is_err(), "splitting a character is refused");
    }
}
