//! The on-disk cache of precompiled components.
//!
//! A cache entry is native code that runs outside the sandbox once deserialized, so the
//! cache is part of the sandbox:
//! * its directories are private to the runner ([`PrivateDir`]: owned by it, `0700`,
//!   refused when someone else owns them or can write to them);
//! * every entry carries an HMAC-SHA256, under a 32-byte key kept in the cache directory
//!   (`cache.key`, `0600`, created once and exclusively), over the entry's name (engine
//!   settings and wasm digest) and its bytes. An entry this runner did not write (a copy
//!   of another plugin's artifact renamed, a file dropped in, a truncated write) fails the
//!   check and is recompiled and overwritten;
//! * an entry is read into memory once, checked, and those same bytes are deserialized.

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use patchwave_fs::{FsError, PrivateDir};
use sha2_mac::Sha256;
use zeroize::Zeroizing;

/// The key's file name inside the cache directory.
pub(crate) const KEY_FILE: &str = "cache.key";
const KEY_LEN: usize = 32;
/// First bytes of every entry: the format, so a future layout is never misread.
const MAGIC: &[u8; 8] = b"PWCWASM1";
const MAC_LEN: usize = 32;
/// Domain separation for the MAC input.
const CONTEXT: &[u8] = b"patchwave compiled-plugin cache v1\0";

/// Why the cache cannot be used at all (the runtime then refuses to start).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A directory or the key file was refused or could not be created.
    #[error("compiled-plugin cache: {0}")]
    Fs(#[from] FsError),
    /// The key file does not hold a key.
    #[error("compiled-plugin cache: key {path} holds {len} bytes, not {KEY_LEN}; remove it (a new key is made and every cached plugin is compiled again)")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The cache path has no file name of its own.
    #[error("compiled-plugin cache: {0} is not a directory name")]
    BadPath(PathBuf),
}

/// The cache of one engine: `<cache>/<engine tag>/<wasm sha256>.cwasm`.
pub(crate) struct CompiledCache {
    dir: PrivateDir,
    engine_tag: String,
    /// HMAC-SHA256 keyed with the cache key, cloned for every entry.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for CompiledCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledCache")
            .field("dir", &self.dir.path())
            .field("key", &"**REDACTED**")
            .finish()
    }
}

impl CompiledCache {
    /// Open (creating them private) `cache_dir` and its `engine_tag` subdirectory, and
    /// load or create the key.
    pub(crate) fn open(cache_dir: &Path, engine_tag: &str) -> Result<CompiledCache, CacheError> {
        if cache_dir.file_name().is_none() {
            return Err(CacheError::BadPath(cache_dir.to_path_buf()));
        }
        let root = PrivateDir::ensure(cache_dir)?;
        let key = load_or_create_key(&root)?;
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&key[..]).map_err(|_| {
            CacheError::BadKey {
                path: root.path().join(KEY_FILE),
                len: key.len(),
            }
        })?;
        let dir = root.subdir(engine_tag)?;
        Ok(CompiledCache {
            dir,
            engine_tag: engine_tag.to_string(),
            keyed,
        })
    }

    fn file_name(digest: &str) -> String {
        format!("{digest}.cwasm")
    }

    /// Where the entry for `digest` is.
    pub(crate) fn path(&self, digest: &str) -> PathBuf {
        self.dir.path().join(Self::file_name(digest))
    }

    fn mac(&self, digest: &str) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(CONTEXT);
        mac.update(self.engine_tag.as_bytes());
        mac.update(b"\0");
        mac.update(digest.as_bytes());
        mac.update(b"\0");
        mac
    }

    /// The verified artifact for `digest`, or `None` (missing, refused or not written by
    /// this runner: each but the first is logged).
    pub(crate) fn get(&self, digest: &str) -> Option<Vec<u8>> {
        let file = self.path(digest);
        let bytes = match self.dir.read(Self::file_name(digest)) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "refusing cache entry; compiling the plugin again");
                return None;
            }
        };
        let header = MAGIC.len() + MAC_LEN;
        let verified = bytes.len() > header && bytes.starts_with(MAGIC) && {
            let mut mac = self.mac(digest);
            mac.update(&bytes[header..]);
            mac.verify_slice(&bytes[MAGIC.len()..header]).is_ok()
        };
        if !verified {
            tracing::warn!(file = %file.display(), "cache entry was not written by this runner (integrity check failed); compiling the plugin again");
            return None;
        }
        let mut bytes = bytes;
        bytes.drain(..header);
        Some(bytes)
    }

    /// Store `artifact` for `digest`, with its MAC, replacing whatever was there.
    pub(crate) fn put(&self, digest: &str, artifact: &[u8]) -> Result<(), FsError> {
        let mut mac = self.mac(digest);
        mac.update(artifact);
        let tag = mac.finalize().into_bytes();
        let mut entry = Vec::with_capacity(MAGIC.len() + MAC_LEN + artifact.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&tag);
        entry.extend_from_slice(artifact);
        self.dir.write_atomically(Self::file_name(digest), &entry)
    }
}

/// The key in `root`, created (random, `0600`, exclusively) when missing. A key file that
/// is a link, owned by someone else, readable by others or of the wrong size is refused.
fn load_or_create_key(root: &PrivateDir) -> Result<Zeroizing<[u8; KEY_LEN]>, CacheError> {
    let path = root.path().join(KEY_FILE);
    let mut fresh = Zeroizing::new([0u8; KEY_LEN]);
    if root.read_secret(KEY_FILE)?.is_none() {
        patchwave_fs::random_bytes(&mut fresh[..]).map_err(|source| FsError::Io {
            path: path.clone(),
            op: "generate a key",
            source,
        })?;
        // Losing a race with another runner is fine: its key is read below.
        root.create_new(KEY_FILE, &fresh[..])?;
    }
    let stored = Zeroizing::new(root.read_secret(KEY_FILE)?.unwrap_or_default());
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if stored.len() != KEY_LEN {
        return Err(CacheError::BadKey {
            path,
            len: stored.len(),
        });
    }
    key.copy_from_slice(&stored);
    Ok(key)
}
