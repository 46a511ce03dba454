//! One module per table: the row (`X`), the insert (`NewX`), the update (`XUpdate`) and the
//! queries on it as async functions taking a [`Conn`](crate::db::Conn), so each works on a
//! pooled connection and inside a transaction, on PostgreSQL and SQLite alike.
//!
//! Tables get their models with the feature that uses them; the foundation carries the ones the
//! storage tests exercise.

pub mod api_keys;
pub mod biasguard;
pub mod biasguard_audit_logs;
pub mod experiments;
pub mod files;
pub mod organization_invitations;
pub mod organization_members;
pub mod organizations;
pub mod poisonguard;
pub mod sessions;
pub mod subscription_tiers;
pub mod subscriptions;
pub mod trustguard_audit_logs;
pub mod usage;
pub mod users;

pub use api_keys::ApiKey;
pub use biasguard::{Policy, PolicyChanges, Resolution, Violation, ViolationFilter};
pub use biasguard_audit_logs::{AuditLog, NewAuditLog};
pub use experiments::{
    Assignment, Experiment, ExperimentChanges, ExperimentResult, MetricTotal, Recorded,
};
pub use files::{FileFilter, FileStored, StoredFile};
pub use organization_invitations::Invitation;
pub use organization_members::{Member, NewMember, Role};
pub use organizations::{NewOrganization, Organization, OrganizationUpdate};
pub use poisonguard::{HealthSample, PoisonResult};
pub use sessions::{Rotation, Session};
pub use subscription_tiers::{SubscriptionTier, SubscriptionTierUpdate};
pub use subscriptions::Subscription;
pub use trustguard_audit_logs::TrustAudit;
pub use usage::UsageRecord;
pub use users::{NewUser, User, UserUpdate};
