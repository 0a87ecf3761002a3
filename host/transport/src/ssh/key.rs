//! The client's private key: where it comes from, and a wrapper that never prints it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::known_hosts::fingerprint;

/// Where the client private key comes from.
///
/// New sources (a key decrypted by a KMS, an agent) become new variants; everything
/// downstream only sees the loaded [`ClientKey`].
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// An unencrypted private key file (OpenSSH, PKCS#8 or PEM format).
    File(PathBuf),
    /// The text of an unencrypted private key already in memory (for instance just
    /// decrypted by a key-management service). Zeroed when dropped.
    Inline(Zeroizing<String>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(path) => f.debug_tuple("File").field(path).finish(),
            KeySource::Inline(_) => f.write_str("Inline(**REDACTED**)"),
        }
    }
}

/// Loading the client key failed. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read private key {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a private key this transport understands, or it is encrypted.
    #[error("cannot use private key from {origin}: {detail}")]
    Decode {
        /// Where it came from (a path, or `inline`).
        origin: String,
        /// What was wrong.
        detail: String,
    },
}

/// The client private key, loaded. `Debug` prints `**REDACTED**`; the key material is
/// zeroed when the last clone is dropped (the key types of the `ssh-key` crate zeroize
/// themselves).
#[derive(Clone)]
pub struct ClientKey {
    key: Arc<PrivateKey>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(**REDACTED**)")
    }
}

impl ClientKey {
    /// Load the key from `source`. Encrypted keys are refused: decrypt them into a
    /// [`KeySource::Inline`] first.
    pub fn load(source: &KeySource) -> Result<ClientKey, KeyError> {
        let (origin, text) = match source {
            KeySource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                    path: path.clone(),
                    source,
                })?;
                (path.display().to_string(), Zeroizing::new(text))
            }
            KeySource::Inline(text) => ("inline".to_string(), text.clone()),
        };
        // The decode error of this crate never echoes the input; still, keep only its kind.
        let key = russh::keys::decode_secret_key(&text, None).map_err(|e| KeyError::Decode {
            origin: origin.clone(),
            detail: match e {
                russh::keys::Error::KeyIsEncrypted => {
                    "the key is encrypted (passphrase-protected)".to_string()
                }
                other => other.to_string(),
            },
        })?;
        Ok(ClientKey { key: Arc::new(key) })
    }

    /// The public half (safe to show).
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// `SHA256:…` fingerprint of the public half, for messages.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.key.public_key())
    }

    pub(crate) fn private(&self) -> Arc<PrivateKey> {
        Arc::clone(&self.key)
    }
}

/// A throwaway key, made for tests only with `ssh-keygen -t ed25519 -N ''`.
#[cfg(test)]
pub(crate) const TEST_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACD5v0wGeZGgmc4FoPvTA+nB0mvaXOci7KkQ1kr+5G4z9QAAAJDuRK747kSu
+AAAAAtzc2gtZWQyNTUxOQAAACD5v0wGeZGgmc4FoPvTA+nB0mvaXOci7KkQ1kr+5G4z9Q
AAAEDaXl/3hQhx0xhXzBZ0i7EGfnfzo4HCyJUTgKLkECVZCfm/TAZ5kaCZzgWg+9MD6cHS
a9pc5yLsqRDWSv7kbjP1AAAAB3Jvb3RAdm0BAgMEBQY=
-----END OPENSSH PRIVATE KEY-----
";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key =
            ClientKey::load(&KeySource::Inline(Zeroizing::new(TEST_KEY.to_string()))).unwrap();
        assert_eq!(format!("{key:?}"), "ClientKey(**REDACTED**)");
        let source = KeySource::Inline(Zeroizing::new(TEST_KEY.to_string()));
        assert_eq!(format!("{source:?}"), "Inline(**REDACTED**)");
        assert!(key.fingerprint().starts_with("SHA256:"));
    }

    #[test]
    fn garbage_and_missing_files_are_errors() {
        let err =
            ClientKey::load(&KeySource::Inline(Zeroizing::new("not a key".into()))).unwrap_err();
        assert!(matches!(err, KeyError::Decode { .. }));
        let err = ClientKey::load(&KeySource::File("/nonexistent/key".into())).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }));
    }
}
