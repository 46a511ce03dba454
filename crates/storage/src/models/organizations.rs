//! `organizations`: tenants. Every other tenant-owned row carries an `organization_id`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::organizations;
use crate::sql_types::{Id, Timestamp};

/// An organisation row; `settings` holds per-organisation options (verdict thresholds, whether
/// analysed text is stored, …).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = organizations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Organization {
    pub id: Id,
    pub name: String,
    pub slug: String,
    pub owner_id: Option<Id>,
    pub settings: serde_json::Value,
    pub is_active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An organisation to create.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrganization<'a> {
    pub id: Id,
    pub name: &'a str,
    pub slug: &'a str,
    pub owner_id: Option<Id>,
    pub settings: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields an organisation update may change.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = organizations)]
pub struct OrganizationUpdate<'a> {
    pub name: Option<&'a str>,
    pub settings: Option<serde_json::Value>,
    pub is_active: Option<bool>,
    pub updated_at: Option<Timestamp>,
}

impl<'a> NewOrganization<'a> {
    /// A new organisation with empty settings.
    pub fn new(name: &'a str, slug: &'a str, owner_id: Option<Id>) -> Self {
        let now = Timestamp::now();
        Self {
            id: Id::new(),
            name,
            slug,
            owner_id,
            settings: serde_json::json!({}),
            created_at: now,
            updated_at: now,
        }
    }

    /// Insert; a taken slug is [`Error::Conflict`](crate::Error::Conflict).
    #[tracing::instrument(skip_all, fields(org.id = %self.id))]
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<Organization> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::insert_into(organizations::table)
                .values(self)
                .returning(Organization::as_returning())
                .get_result(c)
                .await
        })?)
    }
}

impl Organization {
    /// By id.
    pub async fn find(conn: &mut Conn<'_>, id: Id) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            organizations::table
                .find(id)
                .select(Self::as_select())
                .first(c)
                .await
        })?)
    }

    /// By slug.
    pub async fn find_by_slug(conn: &mut Conn<'_>, slug: &str) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            organizations::table
                .filter(organizations::slug.eq(slug))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Delete an organisation and everything it owns.
    pub async fn delete(conn: &mut Conn<'_>, id: Id) -> Result<bool> {
        let n = crate::with_conn!(conn, |c| {
            diesel::delete(organizations::table.find(id))
                .execute(c)
                .await
        })?;
        Ok(n == 1)
    }

    /// Apply `update`; returns the updated row.
    pub async fn update(
        conn: &mut Conn<'_>,
        id: Id,
        update: &OrganizationUpdate<'_>,
    ) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(organizations::table.find(id))
                .set(update)
                .returning(Self::as_returning())
                .get_result(c)
                .await
        })?)
    }
}
