//! `users`: people who log in with email and password.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::Result;
use crate::schema::users;
use crate::sql_types::{Id, Timestamp};

/// A user row. `password_hash` is an argon2id PHC string, never the password.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct User {
    pub id: Id,
    pub email: String,
    pub password_hash: String,
    pub full_name: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    pub failed_login_count: i32,
    pub locked_until: Option<Timestamp>,
    pub last_login_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A user to create; `email` must already be normalised to lower case.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: Id,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub full_name: &'a str,
    pub is_superuser: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Fields a user update may change (`None` leaves a field alone).
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserUpdate<'a> {
    pub full_name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub is_active: Option<bool>,
    pub last_login_at: Option<Option<Timestamp>>,
    pub updated_at: Option<Timestamp>,
}

impl<'a> NewUser<'a> {
    /// A new user with a fresh UUIDv7 and both timestamps set to now.
    pub fn new(email: &'a str, password_hash: &'a str, full_name: &'a str) -> Self {
        let now = Timestamp::now();
        Self {
            id: Id::new(),
            email,
            password_hash,
            full_name,
            is_superuser: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// Insert; a taken email is [`Error::Conflict`](crate::Error::Conflict).
    #[tracing::instrument(skip_all, fields(user.id = %self.id))]
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<User> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::insert_into(users::table)
                .values(self)
                .returning(User::as_returning())
                .get_result(c)
                .await
        })?)
    }
}

impl User {
    /// Make an account a platform administrator (`is_superuser`), or no longer one; returns
    /// whether an account has that address.
    pub async fn set_superuser(conn: &mut Conn<'_>, email: &str, superuser: bool) -> Result<bool> {
        let n = crate::with_conn!(conn, |c| {
            diesel::update(users::table.filter(users::email.eq(email)))
                .set((
                    users::is_superuser.eq(superuser),
                    users::updated_at.eq(Timestamp::now()),
                ))
                .execute(c)
                .await
        })?;
        Ok(n == 1)
    }

    /// By id; [`Error::NotFound`](crate::Error::NotFound) when absent.
    pub async fn find(conn: &mut Conn<'_>, id: Id) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            users::table
                .find(id)
                .select(Self::as_select())
                .first(c)
                .await
        })?)
    }

    /// By normalised email.
    pub async fn find_by_email(conn: &mut Conn<'_>, email: &str) -> Result<Option<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            users::table
                .filter(users::email.eq(email))
                .select(Self::as_select())
                .first(c)
                .await
                .optional()
        })?)
    }

    /// Users, oldest first, a page at a time.
    pub async fn list(conn: &mut Conn<'_>, limit: i64, offset: i64) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            users::table
                .order(users::created_at.asc())
                .limit(limit)
                .offset(offset)
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// Delete a user (memberships and sessions go with it).
    pub async fn delete(conn: &mut Conn<'_>, id: Id) -> Result<bool> {
        let n = crate::with_conn!(conn, |c| diesel::delete(users::table.find(id))
            .execute(c)
            .await)?;
        Ok(n == 1)
    }

    /// Apply `update`; returns the updated row.
    pub async fn update(conn: &mut Conn<'_>, id: Id, update: &UserUpdate<'_>) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            diesel::update(users::table.find(id))
                .set(update)
                .returning(Self::as_returning())
                .get_result(c)
                .await
        })?)
    }
}
