//! Organisation set-up shared by registration and explicit creation: the organisation, its owner
//! and a subscription to the free tier, in one transaction.

use cg_storage::Conn;
use cg_storage::models::{
    NewMember, NewOrganization, Organization, Role, Subscription, SubscriptionTier,
};
use cg_storage::sql_types::{Id, Timestamp};

use crate::domain::OrgName;

/// The tier every new organisation starts on.
pub const DEFAULT_TIER: &str = "free";
/// Subscription periods are one calendar month long.
const PERIOD_MONTHS: u32 = 1;

/// Create an organisation owned by `owner` on the free tier. Run inside a transaction.
pub async fn create_organization(
    conn: &mut Conn<'_>,
    name: &OrgName,
    owner: Id,
) -> cg_storage::Result<Organization> {
    let slug = name.slug();
    let org = NewOrganization::new(name.as_str(), &slug, Some(owner))
        .insert(conn)
        .await?;
    NewMember::new(org.id, owner, Role::Owner, None)
        .insert(conn)
        .await?;
    let tier = SubscriptionTier::find_by_name(conn, DEFAULT_TIER).await?;
    let now = Timestamp::now();
    let end = now
        .checked_add_months(chrono::Months::new(PERIOD_MONTHS))
        .map_or(now, Timestamp::from);
    Subscription {
        id: Id::new(),
        organization_id: org.id,
        tier_id: tier.id,
        status: "active".into(),
        current_period_start: now,
        current_period_end: end,
        cancel_at_period_end: false,
        canceled_at: None,
        created_at: now,
        updated_at: now,
    }
    .insert(conn)
    .await?;
    Ok(org)
}
