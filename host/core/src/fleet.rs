//! Identity of hosts in the fleet.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A host's stable id, as named in the fleet config (or `localhost`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostId(pub String);

impl HostId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for HostId {
    fn from(s: &str) -> Self {
        HostId(s.to_string())
    }
}

/// Whether a host serves production. Critical and high patches reach non-prod first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    /// Serves production traffic.
    #[default]
    Prod,
    /// Canary / test / staging.
    NonProd,
}

impl Environment {
    /// The config spelling: `prod` or `non-prod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Prod => "prod",
            Environment::NonProd => "non-prod",
        }
    }

    /// Parse the config spelling.
    pub fn parse(s: &str) -> Option<Environment> {
        match s {
            "prod" => Some(Environment::Prod),
            "non-prod" => Some(Environment::NonProd),
            _ => None,
        }
    }
}
