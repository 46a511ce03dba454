//! The five guards: names, default ports and the variables that locate them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A guard service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardKind {
    TokenGuard,
    TrustGuard,
    ContextGuard,
    BiasGuard,
    HealthGuard,
}

impl GuardKind {
    /// Every guard, in port order.
    pub const ALL: [Self; 5] = [
        Self::TokenGuard,
        Self::TrustGuard,
        Self::ContextGuard,
        Self::BiasGuard,
        Self::HealthGuard,
    ];

    /// The name used in URLs, requests (`service_type`) and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::TokenGuard => "tokenguard",
            Self::TrustGuard => "trustguard",
            Self::ContextGuard => "contextguard",
            Self::BiasGuard => "biasguard",
            Self::HealthGuard => "healthguard",
        }
    }

    /// The port the guard listens on by default.
    pub fn default_port(self) -> u16 {
        match self {
            Self::TokenGuard => 8001,
            Self::TrustGuard => 8002,
            Self::ContextGuard => 8003,
            Self::BiasGuard => 8004,
            Self::HealthGuard => 8005,
        }
    }

    /// The variable giving the gateway the guard's base URL (`TOKENGUARD_URL`, …).
    pub fn url_variable(self) -> &'static str {
        match self {
            Self::TokenGuard => "TOKENGUARD_URL",
            Self::TrustGuard => "TRUSTGUARD_URL",
            Self::ContextGuard => "CONTEXTGUARD_URL",
            Self::BiasGuard => "BIASGUARD_URL",
            Self::HealthGuard => "HEALTHGUARD_URL",
        }
    }

    /// The base URL when the variable is not set: the guard on this machine.
    pub fn default_url(self) -> String {
        format!("http://127.0.0.1:{}", self.default_port())
    }
}

impl fmt::Display for GuardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a guard; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {given:?}; valid services: {}", GuardKind::ALL.map(GuardKind::name).join(", "))]
pub struct UnknownGuard {
    pub given: String,
}

impl FromStr for GuardKind {
    type Err = UnknownGuard;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownGuard {
                given: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_lists_valid_ones() {
        for kind in GuardKind::ALL {
            assert_eq!(kind.name().parse::<GuardKind>().unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        assert_eq!(
            "BiasGuard".parse::<GuardKind>().unwrap(),
            GuardKind::BiasGuard
        );
        let err = "nope".parse::<GuardKind>().unwrap_err().to_string();
        assert!(
            err.contains("tokenguard, trustguard, contextguard, biasguard, healthguard"),
            "{err}"
        );
    }
}
