//! `organization_members`: who belongs to which organisation, with which role.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::schema::{organization_members, organizations};

use super::Organization;
use crate::sql_types::{Id, Timestamp};

/// A role inside an organisation, strongest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    /// Whether this role may do what `required` may do.
    pub fn at_least(self, required: Self) -> bool {
        self <= required
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            "viewer" => Ok(Self::Viewer),
            other => Err(Error::Corrupt(format!("unknown role {other:?}"))),
        }
    }
}

/// A membership row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = organization_members)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Member {
    pub id: Id,
    pub organization_id: Id,
    pub user_id: Id,
    pub role: String,
    pub invited_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Member {
    /// The parsed role.
    pub fn role(&self) -> Result<Role> {
        self.role.parse()
    }

    /// The membership of `user_id` in `organization_id`, if any.
    pub async fn find(
        conn: &mut Conn<'_>,
        organization_id: Id,
        user_id: Id,
    ) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            organization_members::table
                .filter(organization_members::organization_id.eq(organization_id))
                .filter(organization_members::user_id.eq(user_id))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Every member of an organisation, oldest first.
    pub async fn list(conn: &mut Conn<'_>, organization_id: Id) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            organization_members::table
                .filter(organization_members::organization_id.eq(organization_id))
                .order(organization_members::created_at.asc())
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }
}

impl Member {
    /// The organisations a user belongs to, with the membership, oldest membership first (the
    /// first is the user's default organisation).
    pub async fn organizations_of(
        conn: &mut Conn<'_>,
        user_id: Id,
    ) -> Result<Vec<(Self, Organization)>> {
        Ok(crate::with_conn!(conn, |c| {
            organization_members::table
                .inner_join(organizations::table)
                .filter(organization_members::user_id.eq(user_id))
                .filter(organizations::is_active.eq(true))
                .order(organization_members::created_at.asc())
                .select((Self::as_select(), Organization::as_select()))
                .load(c)
                .await
        })?)
    }

    /// Change a member's role; returns the updated membership.
    pub async fn set_role(
        conn: &mut Conn<'_>,
        organization_id: Id,
        user_id: Id,
        role: Role,
        now: Timestamp,
    ) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(
                organization_members::table
                    .filter(organization_members::organization_id.eq(organization_id))
                    .filter(organization_members::user_id.eq(user_id)),
            )
            .set((
                organization_members::role.eq(role.as_str()),
                organization_members::updated_at.eq(now),
            ))
            .returning(Self::as_returning())
            .get_result(c)
            .await
        })?)
    }

    /// Remove a member; false when there was no such membership.
    pub async fn remove(conn: &mut Conn<'_>, organization_id: Id, user_id: Id) -> Result<bool> {
        let n = crate::with_conn!(conn, |c| {
            diesel::delete(
                organization_members::table
                    .filter(organization_members::organization_id.eq(organization_id))
                    .filter(organization_members::user_id.eq(user_id)),
            )
            .execute(c)
            .await
        })?;
        Ok(n == 1)
    }

    /// How many owners an organisation has (the last one may not leave or be demoted).
    pub async fn count_owners(conn: &mut Conn<'_>, organization_id: Id) -> Result<i64> {
        Ok(crate::with_conn!(conn, |c| {
            organization_members::table
                .filter(organization_members::organization_id.eq(organization_id))
                .filter(organization_members::role.eq(Role::Owner.as_str()))
                .count()
                .get_result(c)
                .await
        })?)
    }
}

/// A membership to create.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = organization_members)]
pub struct NewMember {
    pub id: Id,
    pub organization_id: Id,
    pub user_id: Id,
    pub role: &'static str,
    pub invited_by: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl NewMember {
    pub fn new(organization_id: Id, user_id: Id, role: Role, invited_by: Option<Id>) -> Self {
        let now = Timestamp::now();
        Self {
            id: Id::new(),
            organization_id,
            user_id,
            role: role.as_str(),
            invited_by,
            created_at: now,
            updated_at: now,
        }
    }

    /// Insert; an existing membership is [`Error::Conflict`].
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<Member> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::insert_into(organization_members::table)
                .values(self)
                .returning(Member::as_returning())
                .get_result(c)
                .await
        })?)
    }
}
