//! Schema migrations: an ordered list of versioned SQL scripts per backend, and the
//! backend-independent decision of which of them a database still needs.
//!
//! Each backend has its own list (`migrations/<backend>/NNNN_name.sql`, SQL dialects differ)
//! but the same version numbers mean the same schema change on every backend. A database
//! records what it has applied in `schema_migrations(version, name, applied_at)`.
//!
//! Rules for adding one: append a new file with the next version, never edit or renumber an
//! applied one (the name recorded in the database is checked against this list).

use crate::error::StoreError;

/// One versioned schema change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Version, starting at 1, one more than the previous.
    pub version: u32,
    /// Short name, from the file name.
    pub name: &'static str,
    /// The script, run in one transaction.
    pub sql: &'static str,
}

/// The SQLite schema, oldest first.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "hosts_inventory",
        sql: include_str!("../migrations/sqlite/0001_hosts_inventory.sql"),
    },
    Migration {
        version: 2,
        name: "host_changes",
        sql: include_str!("../migrations/sqlite/0002_host_changes.sql"),
    },
    Migration {
        version: 3,
        name: "advisories",
        sql: include_str!("../migrations/sqlite/0003_advisories.sql"),
    },
    Migration {
        version: 4,
        name: "rollouts",
        sql: include_str!("../migrations/sqlite/0004_rollouts.sql"),
    },
    Migration {
        version: 5,
        name: "change_rollout",
        sql: include_str!("../migrations/sqlite/0005_change_rollout.sql"),
    },
    Migration {
        version: 6,
        name: "audit_anchor",
        sql: include_str!("../migrations/sqlite/0006_audit_anchor.sql"),
    },
    Migration {
        version: 7,
        name: "change_undoes",
        sql: include_str!("../migrations/sqlite/0007_change_undoes.sql"),
    },
];

/// The highest version in `migrations`, 0 when empty.
pub fn latest(migrations: &[Migration]) -> u32 {
    migrations.last().map_or(0, |m| m.version)
}

/// The migrations still to apply to a database that has applied `applied` (version and
/// name, in any order).
///
/// Refuses a database that is ahead of this binary ([`StoreError::NewerSchema`]) or whose
/// history is not a prefix of `known` ([`StoreError::Corrupt`]: a gap, or a version applied
/// under another name, meaning a different build wrote it).
pub fn pending<'a>(
    known: &'a [Migration],
    applied: &[(u32, String)],
) -> Result<&'a [Migration], StoreError> {
    let supported = latest(known);
    let mut applied: Vec<&(u32, String)> = applied.iter().collect();
    applied.sort_by_key(|(v, _)| *v);
    if let Some((found, _)) = applied.last() {
        if *found > supported {
            return Err(StoreError::NewerSchema {
                found: *found,
                supported,
            });
        }
    }
    for (i, (version, name)) in applied.iter().enumerate() {
        match known.get(i) {
            Some(m) if m.version == *version && m.name == name => {}
            Some(m) if m.version == *version => {
                return Err(StoreError::corrupt(format!(
                    "schema migration {version} is recorded as `{name}`, but this binary's \
                     migration {version} is `{}`",
                    m.name
                )))
            }
            _ => {
                return Err(StoreError::corrupt(format!(
                    "schema migrations applied out of order: found {version} at position {}",
                    i + 1
                )))
            }
        }
    }
    Ok(&known[applied.len()..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration {
            version: 1,
            name: "a",
            sql: "",
        },
        Migration {
            version: 2,
            name: "b",
            sql: "",
        },
    ];

    #[test]
    fn lists_are_numbered_from_one_without_gaps() {
        for list in [SQLITE, KNOWN] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1, "{}", m.name);
                assert!(!m.name.is_empty());
            }
        }
    }

    #[test]
    fn pending_is_the_unapplied_tail() {
        assert_eq!(pending(KNOWN, &[]).unwrap().len(), 2);
        let one = [(1, "a".to_string())];
        assert_eq!(pending(KNOWN, &one).unwrap(), &KNOWN[1..]);
        let both = [(2, "b".to_string()), (1, "a".to_string())];
        assert!(pending(KNOWN, &both).unwrap().is_empty());
    }

    #[test]
    fn newer_gapped_or_renamed_histories_are_refused() {
        let newer = [(1, "a".to_string()), (3, "c".to_string())];
        assert!(matches!(
            pending(KNOWN, &newer),
            Err(StoreError::NewerSchema {
                found: 3,
                supported: 2
            })
        ));
        let gap = [(2, "b".to_string())];
        assert!(matches!(
            pending(KNOWN, &gap),
            Err(StoreError::Corrupt { .. })
        ));
        let renamed = [(1, "x".to_string())];
        let err = pending(KNOWN, &renamed).unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
    }
}
