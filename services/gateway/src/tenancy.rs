//! Organisation set-up shared by registration and explicit creation: the organisation, its owner
//! and a subscription to the default tier (`DEFAULT_TIER`), in one transaction.

use cg_storage::Conn;
use cg_storage::models::{
    NewMember, NewOrganization, Organization, Role, Subscription, SubscriptionTier,
};
use cg_storage::sql_types::{Id, Timestamp};

use crate::domain::OrgName;

/// Create an organisation owned by `owner` on the tier named `tier` (`DEFAULT_TIER`). Run inside a
/// transaction.
pub async fn create_organization(
    conn: &mut Conn<'_>,
    name: &OrgName,
    owner: Id,
    tier: &str,
) -> cg_storage::Result<Organization> {
    let slug = name.slug();
    let org = NewOrganization::new(name.as_str(), &slug, Some(owner))
        .insert(conn)
        .await?;
    NewMember::new(org.id, owner, Role::Owner, None)
        .insert(conn)
        .await?;
    let tier = SubscriptionTier::find_by_name(conn, tier).await?;
    Subscription::new_active(org.id, tier.id, Timestamp::now())
        .insert(conn)
        .await?;
    Ok(org)
}
