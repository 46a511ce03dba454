//! `subscriptions`: which tier an organisation is on, and since when.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::{subscription_tiers, subscriptions};
use crate::sql_types::{Id, Timestamp};

use super::SubscriptionTier;

/// Statuses that keep a subscription in force.
pub const CURRENT_STATUSES: [&str; 3] = ["active", "trialing", "past_due"];
/// Subscription periods are one calendar month long.
const PERIOD_MONTHS: u32 = 1;

/// A subscription row.
#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable, serde::Serialize,
)]
#[diesel(table_name = subscriptions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Subscription {
    pub id: Id,
    pub organization_id: Id,
    pub tier_id: Id,
    pub status: String,
    pub current_period_start: Timestamp,
    pub current_period_end: Timestamp,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Subscription {
    /// An active subscription of `organization_id` to `tier_id` whose first period starts `now`.
    pub fn new_active(organization_id: Id, tier_id: Id, now: Timestamp) -> Self {
        let end = now
            .checked_add_months(chrono::Months::new(PERIOD_MONTHS))
            .map_or(now, Timestamp::from);
        Self {
            id: Id::new(),
            organization_id,
            tier_id,
            status: "active".into(),
            current_period_start: now,
            current_period_end: end,
            cancel_at_period_end: false,
            canceled_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Put an organisation on `tier_id`: its subscription in force moves to that tier, or, when
    /// none is in force (cancelled, lapsed), a new active one starts. One transaction; returns
    /// the subscription in force afterwards.
    #[tracing::instrument(skip_all, fields(org.id = %organization_id))]
    pub async fn set_tier(
        conn: &mut Conn<'_>,
        organization_id: Id,
        tier_id: Id,
        now: Timestamp,
    ) -> Result<(Self, SubscriptionTier)> {
        conn.transaction(async |tx: &mut Conn<'_>| {
            if Self::change_tier(tx, organization_id, tier_id, now).await? == 0 {
                Self::new_active(organization_id, tier_id, now)
                    .insert(tx)
                    .await?;
            }
            Self::current(tx, organization_id)
                .await?
                .ok_or(crate::Error::NotFound)
        })
        .await
    }

    /// Store a new subscription.
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(subscriptions::table)
                .values(self)
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// The subscription in force for an organisation, with its tier.
    pub async fn current(
        conn: &mut Conn<'_>,
        organization_id: Id,
    ) -> Result<Option<(Self, SubscriptionTier)>> {
        Ok(crate::with_conn!(conn, |c| {
            subscriptions::table
                .inner_join(subscription_tiers::table)
                .filter(subscriptions::organization_id.eq(organization_id))
                .filter(subscriptions::status.eq_any(CURRENT_STATUSES))
                .select((Self::as_select(), SubscriptionTier::as_select()))
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Every subscription an organisation has had, newest first.
    pub async fn history(
        conn: &mut Conn<'_>,
        organization_id: Id,
    ) -> Result<Vec<(Self, SubscriptionTier)>> {
        Ok(crate::with_conn!(conn, |c| {
            subscriptions::table
                .inner_join(subscription_tiers::table)
                .filter(subscriptions::organization_id.eq(organization_id))
                .order(subscriptions::created_at.desc())
                .select((Self::as_select(), SubscriptionTier::as_select()))
                .load(c)
                .await
        })?)
    }

    /// Move an organisation's subscription in force to another tier.
    pub async fn change_tier(
        conn: &mut Conn<'_>,
        organization_id: Id,
        tier_id: Id,
        now: Timestamp,
    ) -> Result<usize> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(
                subscriptions::table
                    .filter(subscriptions::organization_id.eq(organization_id))
                    .filter(subscriptions::status.eq_any(CURRENT_STATUSES)),
            )
            .set((
                subscriptions::tier_id.eq(tier_id),
                subscriptions::updated_at.eq(now),
            ))
            .execute(c)
            .await
        })?)
    }

    /// Set whether the subscription ends with its period (cancel / reactivate).
    pub async fn set_cancel_at_period_end(
        conn: &mut Conn<'_>,
        id: Id,
        cancel: bool,
        now: Timestamp,
    ) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(subscriptions::table.find(id))
                .set((
                    subscriptions::cancel_at_period_end.eq(cancel),
                    subscriptions::canceled_at.eq(cancel.then_some(now)),
                    subscriptions::updated_at.eq(now),
                ))
                .returning(Self::as_returning())
                .get_result(c)
                .await
        })?)
    }
}
