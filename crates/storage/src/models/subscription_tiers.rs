//! `subscription_tiers`: free, pro and enterprise, seeded by the first migration; platform
//! administrators create and edit others.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::subscription_tiers;
use crate::sql_types::{Id, Timestamp};

/// A tier: its limits and the guards it may use (`guards_allowed` is a JSON array of names).
#[derive(
    Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable, serde::Serialize,
)]
#[diesel(table_name = subscription_tiers)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct SubscriptionTier {
    pub id: Id,
    pub name: String,
    pub display_name: String,
    pub requests_per_minute: i32,
    pub requests_per_month: i64,
    pub monthly_budget_usd_micros: i64,
    pub guards_allowed: serde_json::Value,
    pub price_usd_cents_monthly: i64,
    pub features: serde_json::Value,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields a tier update may change (its name stays: subscriptions and configuration name it).
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = subscription_tiers)]
pub struct SubscriptionTierUpdate {
    pub display_name: Option<String>,
    pub requests_per_minute: Option<i32>,
    pub requests_per_month: Option<i64>,
    pub monthly_budget_usd_micros: Option<i64>,
    pub guards_allowed: Option<serde_json::Value>,
    pub price_usd_cents_monthly: Option<i64>,
    pub features: Option<serde_json::Value>,
    pub is_active: Option<bool>,
    pub updated_at: Option<Timestamp>,
}

impl SubscriptionTier {
    /// Store a new tier; a taken name is [`Error::Conflict`](crate::Error::Conflict).
    #[tracing::instrument(skip_all, fields(tier.name = %self.name))]
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::insert_into(subscription_tiers::table)
                .values(self)
                .returning(Self::as_returning())
                .get_result(c)
                .await
        })?)
    }

    /// Apply `update` to the tier named `name`; [`Error::NotFound`](crate::Error::NotFound) when
    /// there is none.
    #[tracing::instrument(skip_all, fields(tier.name = name))]
    pub async fn update(
        conn: &mut Conn<'_>,
        name: &str,
        update: &SubscriptionTierUpdate,
    ) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(subscription_tiers::table.filter(subscription_tiers::name.eq(name)))
                .set(update)
                .returning(Self::as_returning())
                .get_result(c)
                .await
        })?)
    }

    /// Active tiers, cheapest limits first.
    pub async fn list_active(conn: &mut Conn<'_>) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            subscription_tiers::table
                .filter(subscription_tiers::is_active.eq(true))
                .order(subscription_tiers::requests_per_month.asc())
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// By name (`free`, `pro`, `enterprise`).
    pub async fn find_by_name(conn: &mut Conn<'_>, name: &str) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            subscription_tiers::table
                .filter(subscription_tiers::name.eq(name))
                .select(Self::as_select())
                .first(c)
                .await
        })?)
    }

    /// Whether the tier lets an organisation call `guard`.
    pub fn allows_guard(&self, guard: &str) -> bool {
        self.guards_allowed
            .as_array()
            .is_some_and(|a| a.iter().any(|g| g == guard || g == "*"))
    }
}
