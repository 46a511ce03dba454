//! `api_keys`: machine credentials of an organisation. Only the SHA-256 of a key is stored, with a
//! short visible prefix so people can tell keys apart.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::api_keys;
use crate::sql_types::{Id, Timestamp};

/// An API key row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = api_keys)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ApiKey {
    pub id: Id,
    pub organization_id: Id,
    pub created_by: Option<Id>,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub role: String,
    pub scopes: serde_json::Value,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl ApiKey {
    /// Store a new key.
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(api_keys::table)
                .values(self)
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// By key hash (the authentication lookup, behind the caches).
    pub async fn find_by_hash(conn: &mut Conn<'_>, hash: &str) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            api_keys::table
                .filter(api_keys::key_hash.eq(hash))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// One key of an organisation.
    pub async fn find_in_org(conn: &mut Conn<'_>, organization_id: Id, id: Id) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            api_keys::table
                .filter(api_keys::organization_id.eq(organization_id))
                .filter(api_keys::id.eq(id))
                .select(Self::as_select())
                .first(c)
                .await
        })?)
    }

    /// An organisation's keys, newest first.
    pub async fn list(conn: &mut Conn<'_>, organization_id: Id) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            api_keys::table
                .filter(api_keys::organization_id.eq(organization_id))
                .order(api_keys::created_at.desc())
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// Revoke a key of an organisation; returns the key (with `revoked_at` set).
    pub async fn revoke(
        conn: &mut Conn<'_>,
        organization_id: Id,
        id: Id,
        now: Timestamp,
    ) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(
                api_keys::table
                    .filter(api_keys::organization_id.eq(organization_id))
                    .filter(api_keys::id.eq(id)),
            )
            .set(api_keys::revoked_at.eq(Some(now)))
            .returning(Self::as_returning())
            .get_result(c)
            .await
        })?)
    }

    /// Record when keys were last used (a batch flushed from the cache); never moves a time back.
    pub async fn touch(conn: &mut Conn<'_>, id: Id, at: Timestamp) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::update(
                api_keys::table.filter(api_keys::id.eq(id)).filter(
                    api_keys::last_used_at
                        .is_null()
                        .or(api_keys::last_used_at.lt(at)),
                ),
            )
            .set(api_keys::last_used_at.eq(Some(at)))
            .execute(c)
            .await
        })?;
        Ok(())
    }
}
