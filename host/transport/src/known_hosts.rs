//! The enrolled host keys: an OpenSSH `known_hosts` file.
//!
//! Understood: `host[,host…] keytype base64 [comment]` lines, `[host]:port` for ports other
//! than 22, `*`/`?` wildcards and `!` negations in host patterns, hashed host names
//! (`|1|salt|hash`, as written by `ssh-keygen -H` or `HashKnownHosts yes`), and the
//! `@revoked` marker. `@cert-authority` lines are ignored: the SSH transport does not
//! ask servers for host certificates. Lines that cannot be parsed are skipped with a
//! warning, as OpenSSH does.
//!
//! Only the address patchwave connects to is looked up (no `CheckHostIP`-style second
//! lookup by resolved IP address).

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

/// OpenSSH's `SHA256:base64-without-padding` fingerprint of a key.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The name a host is filed under: `address` on port 22, `[address]:port` otherwise.
pub fn host_entry_name(address: &str, port: u16) -> String {
    let address = address.to_ascii_lowercase();
    if port == 22 {
        address
    } else {
        format!("[{address}]:{port}")
    }
}

/// What the known_hosts file says about a key a host presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key is enrolled for this host.
    Trusted,
    /// Nothing is enrolled for this host.
    Unknown {
        /// Fingerprint of the presented key.
        fingerprint: String,
    },
    /// Other keys are enrolled for this host, not this one.
    Mismatch {
        /// Fingerprints of the enrolled keys, comma-separated.
        expected: String,
        /// Fingerprint of the presented key.
        presented: String,
    },
    /// The presented key is marked `@revoked`.
    Revoked {
        /// Fingerprint of the presented key.
        fingerprint: String,
    },
}

/// How [`KnownHosts::add`] treats a host that already has a different key enrolled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddMode {
    /// Fail with [`KnownHostsError::Conflict`]: never replace a key silently.
    RefuseIfDifferent,
    /// Remove every other key enrolled for this host, then add this one.
    Replace,
}

/// What [`KnownHosts::add`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// The key was added.
    Added,
    /// The key was already enrolled for this host; the file is unchanged.
    AlreadyTrusted,
    /// The key was added and these previously enrolled keys (fingerprints) removed.
    Replaced {
        /// Fingerprints of the removed keys.
        previous: Vec<String>,
    },
}

/// Reading or changing the known_hosts file failed.
#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    /// The file (or its lock or temporary file) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A different key is already enrolled for the host and replacing was not asked for.
    #[error(
        "{host} already has key(s) {existing} enrolled, not {new}; replace explicitly to change it"
    )]
    Conflict {
        /// The host entry name (`address` or `[address]:port`).
        host: String,
        /// Fingerprints of the enrolled keys, comma-separated.
        existing: String,
        /// Fingerprint of the key that was to be added.
        new: String,
    },
    /// Replacing would mean editing a wildcard pattern that covers other hosts too.
    #[error("{path}:{line}: {host} is matched by a wildcard pattern; edit that line by hand")]
    WildcardEntry {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The host entry name.
        host: String,
    },
    /// The key could not be written in OpenSSH format.
    #[error("cannot encode key: {0}")]
    Encode(String),
    /// The file, its lock or its temporary file could not be written safely: a symbolic
    /// link where the file or lock should be, or an IO error while replacing it.
    #[error("known_hosts: {0}")]
    Refused(#[source] patchwave_fs::FsError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Clone, Debug)]
struct Pattern {
    negated: bool,
    glob: String,
}

#[derive(Clone, Debug)]
enum Hosts {
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    Patterns(Vec<Pattern>),
}

/// How a host name matched a line's host field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostMatch {
    No,
    /// Hashed entry, or a literal pattern equal to the name.
    Exact,
    /// Through a pattern with `*` or `?`.
    Wildcard,
}

#[derive(Clone, Debug)]
struct Entry {
    /// 1-based line number in the file.
    line: usize,
    marker: Marker,
    hosts: Hosts,
    key: PublicKey,
}

impl Entry {
    fn matches(&self, name: &str) -> HostMatch {
        match &self.hosts {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return HostMatch::No;
                };
                mac.update(name.as_bytes());
                if mac.verify_slice(hash).is_ok() {
                    HostMatch::Exact
                } else {
                    HostMatch::No
                }
            }
            Hosts::Patterns(patterns) => {
                // OpenSSH: a matching negated pattern vetoes the line, whatever else matches.
                let mut found = HostMatch::No;
                for p in patterns {
                    if glob_match(p.glob.as_bytes(), name.as_bytes()) {
                        if p.negated {
                            return HostMatch::No;
                        }
                        if p.glob == name {
                            found = HostMatch::Exact;
                        } else if found == HostMatch::No {
                            found = HostMatch::Wildcard;
                        }
                    }
                }
                found
            }
        }
    }
}

/// `*` matches any run of characters, `?` any one character; everything else itself.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn parse_line(line_no: usize, line: &str) -> Result<Option<Entry>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next().ok_or("empty line")?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return Err(format!("unknown marker {m}")),
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next().ok_or("no host field")?;
    }
    let hosts = parse_hosts(first)?;
    let key_type = fields.next().ok_or("no key type")?;
    let blob = fields.next().ok_or("no key")?;
    let key = PublicKey::from_openssh(&format!("{key_type} {blob}"))
        .map_err(|e| format!("bad key: {e}"))?;
    Ok(Some(Entry {
        line: line_no,
        marker,
        hosts,
        key,
    }))
}

fn parse_hosts(field: &str) -> Result<Hosts, String> {
    if let Some(rest) = field.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|').ok_or("bad hashed host")?;
        let salt = BASE64
            .decode(salt.as_bytes())
            .map_err(|e| format!("bad hashed host salt: {e}"))?;
        let hash = BASE64
            .decode(hash.as_bytes())
            .map_err(|e| format!("bad hashed host hash: {e}"))?;
        return Ok(Hosts::Hashed { salt, hash });
    }
    if field.starts_with('|') {
        return Err("unsupported hashed host format".into());
    }
    let patterns = field
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (negated, glob) = match p.strip_prefix('!') {
                Some(g) => (true, g),
                None => (false, p),
            };
            Pattern {
                negated,
                glob: glob.to_ascii_lowercase(),
            }
        })
        .collect::<Vec<_>>();
    if patterns.is_empty() {
        return Err("empty host field".into());
    }
    Ok(Hosts::Patterns(patterns))
}

fn parse(path: &Path, text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(i + 1, line) {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => {}
            Err(why) => {
                tracing::warn!(file = %path.display(), line = i + 1, "known_hosts: skipping line: {why}")
            }
        }
    }
    entries
}

fn read_to_string_or_empty(path: &Path) -> Result<String, KnownHostsError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(KnownHostsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn fingerprints<'a>(keys: impl Iterator<Item = &'a PublicKey>) -> String {
    keys.map(fingerprint)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(", ")
}

/// An OpenSSH known_hosts file, parsed once and consulted for every connection.
///
/// Changes made through [`KnownHosts::add`] are seen at once; changes made by others
/// (another process, an editor) after [`KnownHosts::reload`].
#[derive(Debug)]
pub struct KnownHosts {
    path: PathBuf,
    entries: RwLock<Vec<Entry>>,
}

impl KnownHosts {
    /// Read `path`; a file that does not exist yet means nothing is enrolled.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, KnownHostsError> {
        let path = path.into();
        let entries = parse(&path, &read_to_string_or_empty(&path)?);
        Ok(KnownHosts {
            path,
            entries: RwLock::new(entries),
        })
    }

    /// The file this store reads and writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the file again.
    pub fn reload(&self) -> Result<(), KnownHostsError> {
        let entries = parse(&self.path, &read_to_string_or_empty(&self.path)?);
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = entries;
        Ok(())
    }

    /// Check the key `address:port` presented.
    pub fn verify(&self, address: &str, port: u16, presented: &PublicKey) -> HostKeyStatus {
        let name = host_entry_name(address, port);
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let matching: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.matches(&name) != HostMatch::No)
            .collect();
        let same = |e: &&Entry| e.key.key_data() == presented.key_data();
        if matching
            .iter()
            .filter(|e| e.marker == Marker::Revoked)
            .any(same)
        {
            return HostKeyStatus::Revoked {
                fingerprint: fingerprint(presented),
            };
        }
        let enrolled: Vec<&Entry> = matching
            .into_iter()
            .filter(|e| e.marker == Marker::None)
            .collect();
        if enrolled.iter().any(same) {
            HostKeyStatus::Trusted
        } else if enrolled.is_empty() {
            HostKeyStatus::Unknown {
                fingerprint: fingerprint(presented),
            }
        } else {
            HostKeyStatus::Mismatch {
                expected: fingerprints(enrolled.iter().map(|e| &e.key)),
                presented: fingerprint(presented),
            }
        }
    }

    /// Algorithms of the keys enrolled for `address:port`, so the client can ask the
    /// server for one of those (as OpenSSH does) rather than for a type it has not enrolled.
    pub fn enrolled_algorithms(&self, address: &str, port: u16) -> Vec<Algorithm> {
        let name = host_entry_name(address, port);
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let mut algs: Vec<Algorithm> = Vec::new();
        for e in entries
            .iter()
            .filter(|e| e.marker == Marker::None && e.matches(&name) != HostMatch::No)
        {
            let alg = e.key.algorithm();
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        algs
    }

    /// Enrol `key` for `address:port` by writing a line `NAME keytype base64` (NAME as in
    /// [`host_entry_name`]). The file is rewritten atomically (temporary file in the same
    /// directory, fsync, rename, fsync of the directory) under an exclusive lock on
    /// `PATH.lock`, so concurrent `add`s from several processes do not lose lines.
    /// Existing lines, comments included, are kept as they were.
    ///
    /// This does blocking file I/O; it is meant for enrolment commands, not hot paths.
    pub fn add(
        &self,
        address: &str,
        port: u16,
        key: &PublicKey,
        mode: AddMode,
    ) -> Result<AddOutcome, KnownHostsError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| KnownHostsError::Io { path, source }
        };
        let name = host_entry_name(address, port);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let lock_path = sibling(&self.path, ".lock");
        let lock = patchwave_fs::open_lock_file(&lock_path).map_err(KnownHostsError::Refused)?;
        lock.lock().map_err(io_err(&lock_path))?;

        // Decide from what is on disk now, not from this process's possibly stale copy.
        let text = read_to_string_or_empty(&self.path)?;
        let entries = parse(&self.path, &text);
        let matching: Vec<(&Entry, HostMatch)> = entries
            .iter()
            .filter(|e| e.marker == Marker::None)
            .map(|e| (e, e.matches(&name)))
            .filter(|(_, m)| *m != HostMatch::No)
            .collect();
        let others: Vec<&(&Entry, HostMatch)> = matching
            .iter()
            .filter(|(e, _)| e.key.key_data() != key.key_data())
            .collect();
        let already = matching.len() > others.len();

        if others.is_empty() && already {
            self.replace_entries(entries);
            return Ok(AddOutcome::AlreadyTrusted);
        }
        if !others.is_empty() && mode == AddMode::RefuseIfDifferent {
            if already {
                self.replace_entries(entries);
                return Ok(AddOutcome::AlreadyTrusted);
            }
            return Err(KnownHostsError::Conflict {
                host: name,
                existing: fingerprints(others.iter().map(|(e, _)| &e.key)),
                new: fingerprint(key),
            });
        }

        // `None` marks a line removed entirely (every host on it was this one).
        let mut lines: Vec<Option<String>> = text.lines().map(|l| Some(l.to_string())).collect();
        let mut previous = Vec::new();
        for (entry, how) in &others {
            if *how == HostMatch::Wildcard {
                return Err(KnownHostsError::WildcardEntry {
                    path: self.path.clone(),
                    line: entry.line,
                    host: name,
                });
            }
            previous.push(fingerprint(&entry.key));
            if let Some(slot) = lines.get_mut(entry.line - 1) {
                *slot = slot
                    .as_deref()
                    .and_then(|line| without_host(line, &entry.hosts, &name));
            }
        }
        let mut bare = key.clone();
        bare.set_comment("");
        let encoded = bare
            .to_openssh()
            .map_err(|e| KnownHostsError::Encode(e.to_string()))?;
        lines.push(Some(format!("{name} {}", encoded.trim_end())));

        let mut new_text = String::new();
        for line in lines.iter().flatten() {
            new_text.push_str(line);
            new_text.push('\n');
        }
        self.write_atomically(&new_text)?;
        self.replace_entries(parse(&self.path, &new_text));
        previous.sort();
        previous.dedup();
        Ok(if previous.is_empty() {
            AddOutcome::Added
        } else {
            AddOutcome::Replaced { previous }
        })
    }

    fn replace_entries(&self, entries: Vec<Entry>) {
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = entries;
    }

    /// Replace the file: a temporary file created exclusively (random name, never through
    /// a link) in the same directory, fsynced and renamed into place. A symbolic link at
    /// the path is refused, never written through. A new file is `0644` (host keys are
    /// public, and the service user must read a file root enrolled); an existing one keeps
    /// its mode, minus group and other write.
    fn write_atomically(&self, text: &str) -> Result<(), KnownHostsError> {
        patchwave_fs::replace_file(&self.path, text.as_bytes(), 0o644)
            .map_err(KnownHostsError::Refused)
    }
}

/// `PATH` + `suffix`, in the same directory (so a rename is atomic).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// `line` with `name` taken out of its host field; `None` if nothing else was on it.
fn without_host(line: &str, hosts: &Hosts, name: &str) -> Option<String> {
    let Hosts::Patterns(patterns) = hosts else {
        return None;
    };
    let kept: Vec<&Pattern> = patterns
        .iter()
        .filter(|p| p.negated || p.glob != name)
        .collect();
    if kept.iter().all(|p| p.negated) {
        return None;
    }
    // Only unmarked lines are rewritten, so the host field is the first field.
    let rest = line
        .trim_start()
        .split_once(char::is_whitespace)
        .map(|(_, r)| r)
        .unwrap_or_default();
    let host_field = kept
        .iter()
        .map(|p| {
            if p.negated {
                format!("!{}", p.glob)
            } else {
                p.glob.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    Some(format!("{host_field} {}", rest.trim_start()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ED1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPm/TAZ5kaCZzgWg+9MD6cHSa9pc5yLsqRDWSv7kbjP1";
    const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFJL8edHlhIJg9W8WlM9wffmqs6US14bTsT6nrNFTR3w";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn store(dir: &tempfile::TempDir, text: &str) -> KnownHosts {
        let path = dir.path().join("known_hosts");
        fs::write(&path, text).unwrap();
        KnownHosts::load(path).unwrap()
    }

    #[test]
    fn glob() {
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"web-??.example", b"web-01.example"));
        assert!(!glob_match(b"web-??.example", b"web-1.example"));
        assert!(glob_match(b"[10.0.*]:2222", b"[10.0.3.4]:2222"));
        assert!(!glob_match(b"[10.0.*]:2222", b"[10.0.3.4]:22"));
        assert!(glob_match(b"a*b*c", b"aXbYbc"));
    }

    #[test]
    fn plain_port_and_pattern_entries() {
        let dir = tempfile::tempdir().unwrap();
        let kh = store(
            &dir,
            &format!("# comment\n\nalpha,beta {ED1}\n[gamma]:2222 {ED1} with comment\n*.lab,!bad.lab {ED1}\ngarbage line\n"),
        );
        let k = key(ED1);
        assert_eq!(kh.verify("alpha", 22, &k), HostKeyStatus::Trusted);
        assert_eq!(kh.verify("BETA", 22, &k), HostKeyStatus::Trusted);
        assert_eq!(kh.verify("gamma", 2222, &k), HostKeyStatus::Trusted);
        assert!(matches!(
            kh.verify("gamma", 22, &k),
            HostKeyStatus::Unknown { .. }
        ));
        assert!(matches!(
            kh.verify("alpha", 2222, &k),
            HostKeyStatus::Unknown { .. }
        ));
        assert_eq!(kh.verify("x.lab", 22, &k), HostKeyStatus::Trusted);
        assert!(matches!(
            kh.verify("bad.lab", 22, &k),
            HostKeyStatus::Unknown { .. }
        ));
        match kh.verify("alpha", 22, &key(ED2)) {
            HostKeyStatus::Mismatch {
                expected,
                presented,
            } => {
                assert_eq!(expected, fingerprint(&k));
                assert_eq!(presented, fingerprint(&key(ED2)));
                assert!(presented.starts_with("SHA256:") && !presented.ends_with('='));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revoked_wins() {
        let dir = tempfile::tempdir().unwrap();
        let kh = store(&dir, &format!("alpha {ED1}\n@revoked * {ED1}\n"));
        assert!(matches!(
            kh.verify("alpha", 22, &key(ED1)),
            HostKeyStatus::Revoked { .. }
        ));
    }

    #[test]
    fn hashed_entry() {
        // HMAC-SHA1 over "[127.0.0.1]:2222" with this salt, as `ssh-keygen -H` writes it.
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let hash = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} {ED1}\n",
            BASE64.encode(&salt),
            BASE64.encode(&hash)
        );
        let dir = tempfile::tempdir().unwrap();
        let kh = store(&dir, &line);
        assert_eq!(
            kh.verify("127.0.0.1", 2222, &key(ED1)),
            HostKeyStatus::Trusted
        );
        assert!(matches!(
            kh.verify("127.0.0.1", 22, &key(ED1)),
            HostKeyStatus::Unknown { .. }
        ));
    }

    #[test]
    fn add_refuses_then_replaces_keeping_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let kh = store(&dir, &format!("# keep me\nalpha,other {ED1}\n"));
        assert_eq!(
            kh.add("beta", 22, &key(ED1), AddMode::RefuseIfDifferent)
                .unwrap(),
            AddOutcome::Added
        );
        assert_eq!(
            kh.add("alpha", 22, &key(ED1), AddMode::RefuseIfDifferent)
                .unwrap(),
            AddOutcome::AlreadyTrusted
        );
        let err = kh
            .add("alpha", 22, &key(ED2), AddMode::RefuseIfDifferent)
            .unwrap_err();
        assert!(matches!(err, KnownHostsError::Conflict { .. }), "{err}");
        assert_eq!(kh.verify("alpha", 22, &key(ED1)), HostKeyStatus::Trusted);

        let out = kh.add("alpha", 22, &key(ED2), AddMode::Replace).unwrap();
        assert_eq!(
            out,
            AddOutcome::Replaced {
                previous: vec![fingerprint(&key(ED1))]
            }
        );
        assert_eq!(kh.verify("alpha", 22, &key(ED2)), HostKeyStatus::Trusted);
        assert_eq!(kh.verify("other", 22, &key(ED1)), HostKeyStatus::Trusted);
        let text = fs::read_to_string(kh.path()).unwrap();
        assert_eq!(
            text,
            format!("# keep me\nother {ED1}\nbeta {ED1}\nalpha {ED2}\n")
        );
        // A fresh load of the file agrees with the in-memory view.
        let again = KnownHosts::load(kh.path()).unwrap();
        assert_eq!(again.verify("alpha", 22, &key(ED2)), HostKeyStatus::Trusted);
    }

    #[test]
    fn add_creates_the_file_and_refuses_wildcard_edits() {
        let dir = tempfile::tempdir().unwrap();
        let kh = KnownHosts::load(dir.path().join("sub/known_hosts")).unwrap();
        assert_eq!(
            kh.add("10.0.0.1", 2200, &key(ED1), AddMode::Replace)
                .unwrap(),
            AddOutcome::Added
        );
        assert_eq!(
            fs::read_to_string(kh.path()).unwrap(),
            format!("[10.0.0.1]:2200 {ED1}\n")
        );
        let kh = store(&dir, &format!("*.lab {ED1}\n"));
        let err = kh
            .add("x.lab", 22, &key(ED2), AddMode::Replace)
            .unwrap_err();
        assert!(
            matches!(err, KnownHostsError::WildcardEntry { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn add_never_writes_through_a_symbolic_link() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();

        // The file itself is a link: refused, the link and its target left as they were.
        let path = dir.path().join("known_hosts");
        symlink(&victim, &path).unwrap();
        let kh = KnownHosts::load(&path).unwrap();
        let err = kh
            .add("10.0.0.1", 22, &key(ED1), AddMode::Replace)
            .unwrap_err();
        assert!(
            matches!(&err, KnownHostsError::Refused(e) if e.refusal() == Some(patchwave_fs::Refusal::Symlink)),
            "{err}"
        );
        assert!(fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");

        // Links planted at the lock and at the temporary name a writer used to pick
        // (`known_hosts.tmp.<pid>`): the lock is refused, the temporary name never used.
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let path = sub.join("known_hosts");
        symlink(
            &victim,
            sub.join(format!("known_hosts.tmp.{}", std::process::id())),
        )
        .unwrap();
        let kh = KnownHosts::load(&path).unwrap();
        assert_eq!(
            kh.add("10.0.0.1", 22, &key(ED1), AddMode::Replace).unwrap(),
            AddOutcome::Added
        );
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("10.0.0.1 {ED1}\n")
        );
        // A new file is readable by the service user but writable by no one else.
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );

        fs::remove_file(sub.join("known_hosts.lock")).unwrap();
        symlink(&victim, sub.join("known_hosts.lock")).unwrap();
        let err = kh
            .add("10.0.0.2", 22, &key(ED2), AddMode::Replace)
            .unwrap_err();
        assert!(matches!(err, KnownHostsError::Refused(_)), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("10.0.0.1 {ED1}\n")
        );
    }

    #[test]
    fn add_takes_write_access_away_from_group_and_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let kh = store(&dir, &format!("alpha {ED1}\n"));
        fs::set_permissions(kh.path(), fs::Permissions::from_mode(0o666)).unwrap();
        kh.add("beta", 22, &key(ED2), AddMode::Replace).unwrap();
        assert_eq!(
            fs::metadata(kh.path()).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
}
