//! What an API key may do, besides what its role allows: `process` (send text or files to the
//! guards), `read` (read the organisation's resources) and `admin` (change its configuration:
//! policies, experiments, settings). A key never changes credentials, memberships or billing: those need
//! a logged-in person ([`super::Caller::user`]), so a leaked key cannot mint keys, invite
//! members or cancel the subscription.

use actix_web::http::Method;
use cg_storage::models::Role;
use serde::{Deserialize, Serialize};

/// One scope of an API key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Process,
    Read,
    Admin,
}

/// Requests that process text (or route it) rather than change the organisation.
const PROCESSING: [&str; 4] = [
    "/api/v1/guards/process",
    "/api/v1/guards/scan",
    "/api/v1/ab-testing/assign-user",
    "/api/v1/ab-testing/results",
];

/// Handing the guards a file (uploading, confirming or deleting one of the organisation's
/// uploads) is processing, not administration: a member's `process` key uploads what it then
/// scans with `payload.file_id`.
fn is_upload(method: &Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/upload/") else {
        return false;
    };
    match *method {
        Method::POST => {
            matches!(rest, "direct" | "presigned")
                || rest
                    .strip_suffix("/complete")
                    .is_some_and(|id| !id.is_empty() && !id.contains('/'))
        }
        Method::DELETE => !rest.is_empty() && !rest.contains('/'),
        _ => false,
    }
}

impl Scope {
    /// The name in requests and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    /// The scope a request needs.
    pub fn needed(method: &Method, path: &str) -> Self {
        if (*method == Method::POST && PROCESSING.contains(&path)) || is_upload(method, path) {
            Self::Process
        } else if *method == Method::GET || *method == Method::HEAD {
            Self::Read
        } else {
            Self::Admin
        }
    }

    /// The weakest role a key with this scope may have.
    pub fn least_role(self) -> Role {
        match self {
            Self::Process => Role::Member,
            Self::Read => Role::Viewer,
            Self::Admin => Role::Admin,
        }
    }

    /// What a new key of `role` gets when its creator names no scopes: the narrowest set that
    /// lets it do what keys are mostly for.
    pub fn default_for(role: Role) -> Vec<Self> {
        if role.at_least(Self::Process.least_role()) {
            vec![Self::Process]
        } else {
            vec![Self::Read]
        }
    }

    /// What a key created before keys had scopes (its stored list is empty) may do: process and
    /// read, as its role allows, but not administer.
    pub fn legacy_for(role: Role) -> Vec<Self> {
        [Self::Process, Self::Read]
            .into_iter()
            .filter(|s| role.at_least(s.least_role()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_the_narrowest_scope_that_covers_them() {
        let process = Scope::needed(&Method::POST, "/api/v1/guards/process");
        assert_eq!(process, Scope::Process);
        assert_eq!(Scope::needed(&Method::GET, "/api/v1/usage"), Scope::Read);
        for (method, path) in [
            (Method::POST, "/api/v1/upload/direct"),
            (Method::POST, "/api/v1/upload/presigned"),
            (Method::POST, "/api/v1/upload/0190/complete"),
            (Method::DELETE, "/api/v1/upload/0190"),
        ] {
            assert_eq!(
                Scope::needed(&method, path),
                Scope::Process,
                "{method} {path}"
            );
        }
        assert_eq!(
            Scope::needed(&Method::GET, "/api/v1/upload/0190/download"),
            Scope::Read
        );
        for (method, path) in [
            (Method::POST, "/api/v1/biasguard/policies"),
            (Method::DELETE, "/api/v1/api-keys/x"),
            (Method::PUT, "/api/v1/guards/process"),
            (Method::POST, "/api/v1/upload/0190/other"),
            (Method::DELETE, "/api/v1/upload/0190/download"),
        ] {
            assert_eq!(
                Scope::needed(&method, path),
                Scope::Admin,
                "{method} {path}"
            );
        }
        assert_eq!(Scope::default_for(Role::Member), vec![Scope::Process]);
        assert_eq!(Scope::default_for(Role::Viewer), vec![Scope::Read]);
        assert_eq!(Scope::legacy_for(Role::Viewer), vec![Scope::Read]);
    }
}
