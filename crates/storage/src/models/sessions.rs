//! `sessions`: refresh sessions kept in the database (`SESSION_STORAGE_TYPE=database`, or while
//! Redis is unreachable). Only the SHA-256 of a refresh token is stored.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::sessions;
use crate::sql_types::{Id, Timestamp};

/// A session row; rotation links it to its successor through `replaced_by`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Session {
    pub id: Id,
    pub user_id: Id,
    /// Every session rotated from one login shares a family; reuse of a rotated token revokes it.
    pub family_id: Id,
    pub refresh_token_hash: String,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub replaced_by: Option<Id>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    /// When the family's login happened; rotation keeps it.
    pub family_started_at: Timestamp,
}

/// What a rotation found.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The old session is closed and the new one stored.
    Rotated,
    /// The token was already rotated or revoked: its whole family is now revoked.
    Reused,
    /// No live session has that token.
    Unknown,
}

impl Session {
    /// Store a new session.
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(sessions::table)
                .values(self)
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// By id.
    pub async fn find(conn: &mut Conn<'_>, id: Id) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            sessions::table
                .find(id)
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// By refresh-token hash.
    pub async fn find_by_hash(conn: &mut Conn<'_>, hash: &str) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            sessions::table
                .filter(sessions::refresh_token_hash.eq(hash))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Replace the session holding `old_hash` by `next` in one transaction. A token that was
    /// already rotated or revoked revokes its whole family (someone replayed it).
    pub async fn rotate(
        conn: &mut Conn<'_>,
        old_hash: &str,
        next: &Self,
        now: Timestamp,
    ) -> Result<Rotation> {
        conn.transaction(async |tx: &mut Conn<'_>| {
            let Some(old) = Self::find_by_hash(tx, old_hash).await? else {
                return Ok(Rotation::Unknown);
            };
            if old.revoked_at.is_some() || old.replaced_by.is_some() {
                Self::revoke_family(tx, old.family_id, now).await?;
                return Ok(Rotation::Reused);
            }
            if old.expires_at <= now {
                return Ok(Rotation::Unknown);
            }
            // Guarded by `revoked_at IS NULL`: of two concurrent rotations only one closes it.
            let closed = crate::with_conn!(tx, |c| {
                diesel::update(
                    sessions::table
                        .filter(sessions::id.eq(old.id))
                        .filter(sessions::revoked_at.is_null()),
                )
                .set((
                    sessions::revoked_at.eq(Some(now)),
                    sessions::replaced_by.eq(Some(next.id)),
                    sessions::last_used_at.eq(Some(now)),
                ))
                .execute(c)
                .await
            })?;
            if closed == 0 {
                Self::revoke_family(tx, old.family_id, now).await?;
                return Ok(Rotation::Reused);
            }
            next.insert(tx).await?;
            Ok::<_, crate::Error>(Rotation::Rotated)
        })
        .await
    }

    /// Revoke every live session of a family.
    pub async fn revoke_family(
        conn: &mut Conn<'_>,
        family_id: Id,
        now: Timestamp,
    ) -> Result<usize> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(
                sessions::table
                    .filter(sessions::family_id.eq(family_id))
                    .filter(sessions::revoked_at.is_null()),
            )
            .set(sessions::revoked_at.eq(Some(now)))
            .execute(c)
            .await
        })?)
    }

    /// Revoke every live session of a user (password change, account deletion).
    pub async fn revoke_user(conn: &mut Conn<'_>, user_id: Id, now: Timestamp) -> Result<usize> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(
                sessions::table
                    .filter(sessions::user_id.eq(user_id))
                    .filter(sessions::revoked_at.is_null()),
            )
            .set(sessions::revoked_at.eq(Some(now)))
            .execute(c)
            .await
        })?)
    }

    /// Sessions that can still be refreshed at `now` (not expired, revoked or rotated), in id
    /// order after `after`, `limit` at a time.
    pub async fn live_page(
        conn: &mut Conn<'_>,
        now: Timestamp,
        after: Option<Id>,
        limit: i64,
    ) -> Result<Vec<Self>> {
        let after = after.unwrap_or(Id(uuid::Uuid::nil()));
        Ok(crate::with_conn!(conn, |c| {
            sessions::table
                .filter(sessions::expires_at.gt(now))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::replaced_by.is_null())
                .filter(sessions::id.gt(after))
                .order(sessions::id)
                .limit(limit)
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// How many sessions had expired by `now` (still in the table until the next sweep).
    pub async fn count_expired(conn: &mut Conn<'_>, now: Timestamp) -> Result<i64> {
        Ok(crate::with_conn!(conn, |c| {
            sessions::table
                .filter(sessions::expires_at.le(now))
                .count()
                .get_result(c)
                .await
        })?)
    }

    /// Delete one session; returns whether it existed.
    pub async fn delete(conn: &mut Conn<'_>, id: Id) -> Result<bool> {
        let n = crate::with_conn!(conn, |c| {
            diesel::delete(sessions::table.find(id)).execute(c).await
        })?;
        Ok(n > 0)
    }

    /// Delete sessions that expired before `now`; returns how many.
    pub async fn delete_expired(conn: &mut Conn<'_>, now: Timestamp) -> Result<usize> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::delete(sessions::table.filter(sessions::expires_at.lt(now)))
                .execute(c)
                .await
        })?)
    }
}
