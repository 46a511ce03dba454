//! Who is calling: passwords, access tokens, refresh sessions, API keys, and the extractors that
//! turn a request's credentials into a [`Caller`].

pub mod api_keys;
pub mod caller;
pub mod limits;
pub mod memberships;
pub mod password;
pub mod revocations;
pub mod scopes;
pub mod secrets;
pub mod sessions;
pub mod tokens;

pub use caller::{AuthUser, Caller, Credential};
