//! The rule for ids patchwave hands to other programs and stores as keys: host ids and
//! rollout ids.
//!
//! An id is 1 to [`MAX_ID_LEN`] ASCII letters, digits, `-`, `_` and `.`, and does not
//! start with `-` (it would read as an option to a hook or a tool) or `.` (`.`, `..` and
//! hidden names are never what was meant).

/// The longest id accepted, in bytes (a DNS name's limit).
pub const MAX_ID_LEN: usize = 253;

/// Why an id is refused; each variant quotes it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Nothing was given.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`].
    #[error("`{id}` is {len} bytes long; at most 253")]
    TooLong {
        /// The id.
        id: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A character other than an ASCII letter, digit, `-`, `_` or `.`.
    #[error("`{id}` may only use letters, digits, `-`, `_` and `.`")]
    Charset {
        /// The id.
        id: String,
    },
    /// It starts with `-` or `.`.
    #[error("`{id}` must not start with `-` or `.`")]
    Start {
        /// The id.
        id: String,
    },
}

/// Check `id` against the rule in the [module docs](self).
pub fn check_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            id: id.to_string(),
            len: id.len(),
        });
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(IdError::Charset { id: id.to_string() });
    }
    if id.starts_with(['-', '.']) {
        return Err(IdError::Start { id: id.to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_names() {
        for ok in [
            "h01",
            "localhost",
            "web-1.prod_eu",
            "ro-3f2a-20260101120000",
            "a",
        ] {
            assert_eq!(check_id(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_id(""), Err(IdError::Empty));
        for bad in ["../x", "a/b", "a b", "h\u{1b}[2J", "é", "x;rm"] {
            assert_eq!(
                check_id(bad),
                Err(IdError::Charset { id: bad.into() }),
                "{bad}"
            );
        }
        for bad in ["-rf", ".hidden", "..", "."] {
            assert_eq!(
                check_id(bad),
                Err(IdError::Start { id: bad.into() }),
                "{bad}"
            );
        }
        let long = "a".repeat(254);
        assert_eq!(
            check_id(&long).unwrap_err().to_string(),
            format!("`{long}` is 254 bytes long; at most 253")
        );
        assert_eq!(check_id(&"a".repeat(253)), Ok(()));
    }
}
