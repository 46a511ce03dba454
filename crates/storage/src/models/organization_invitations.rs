//! `organization_invitations`: an address invited into an organisation with a role. The token goes
//! to the invitee; only its SHA-256 is stored.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::organization_invitations;
use crate::sql_types::{Id, Timestamp};

/// An invitation row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = organization_invitations)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Invitation {
    pub id: Id,
    pub organization_id: Id,
    pub email: String,
    pub role: String,
    pub token_hash: String,
    pub invited_by: Option<Id>,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl Invitation {
    /// Store; an open invitation for the same address is a conflict.
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(organization_invitations::table)
                .values(self)
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// An open (not accepted, not revoked, not expired) invitation by token hash.
    pub async fn find_open(
        conn: &mut Conn<'_>,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            organization_invitations::table
                .filter(organization_invitations::token_hash.eq(token_hash))
                .filter(organization_invitations::accepted_at.is_null())
                .filter(organization_invitations::revoked_at.is_null())
                .filter(organization_invitations::expires_at.gt(now))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Mark accepted; false when someone else accepted it first.
    pub async fn accept(conn: &mut Conn<'_>, id: Id, now: Timestamp) -> Result<bool> {
        let n = crate::with_conn!(conn, |c| {
            diesel::update(
                organization_invitations::table
                    .filter(organization_invitations::id.eq(id))
                    .filter(organization_invitations::accepted_at.is_null()),
            )
            .set(organization_invitations::accepted_at.eq(Some(now)))
            .execute(c)
            .await
        })?;
        Ok(n == 1)
    }

    /// Open invitations of an organisation, newest first.
    pub async fn list_open(
        conn: &mut Conn<'_>,
        organization_id: Id,
        now: Timestamp,
    ) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            organization_invitations::table
                .filter(organization_invitations::organization_id.eq(organization_id))
                .filter(organization_invitations::accepted_at.is_null())
                .filter(organization_invitations::revoked_at.is_null())
                .filter(organization_invitations::expires_at.gt(now))
                .order(organization_invitations::created_at.desc())
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// Revoke an open invitation of `organization_id`; false when there is none with that id
    /// (unknown, another organisation's, already accepted or revoked).
    pub async fn revoke(
        conn: &mut Conn<'_>,
        organization_id: Id,
        id: Id,
        now: Timestamp,
    ) -> Result<bool> {
        let n = crate::with_conn!(conn, |c| {
            diesel::update(
                organization_invitations::table
                    .filter(organization_invitations::id.eq(id))
                    .filter(organization_invitations::organization_id.eq(organization_id))
                    .filter(organization_invitations::accepted_at.is_null())
                    .filter(organization_invitations::revoked_at.is_null()),
            )
            .set(organization_invitations::revoked_at.eq(Some(now)))
            .execute(c)
            .await
        })?;
        Ok(n == 1)
    }

    /// Close the expired, unaccepted invitations of `email` to `organization_id` (marked revoked
    /// when they expired), so they no longer block a new one.
    pub async fn close_expired(
        conn: &mut Conn<'_>,
        organization_id: Id,
        email: &str,
        now: Timestamp,
    ) -> Result<usize> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(
                organization_invitations::table
                    .filter(organization_invitations::organization_id.eq(organization_id))
                    .filter(organization_invitations::email.eq(email))
                    .filter(organization_invitations::accepted_at.is_null())
                    .filter(organization_invitations::revoked_at.is_null())
                    .filter(organization_invitations::expires_at.le(now)),
            )
            .set(
                organization_invitations::revoked_at
                    .eq(organization_invitations::expires_at.nullable()),
            )
            .execute(c)
            .await
        })?)
    }
}
