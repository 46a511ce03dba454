//! Column types that exist on both backends under one name, so `schema.rs` and every query are
//! written once: PostgreSQL stores native `uuid` and `timestamptz`, SQLite stores text. JSON
//! columns use diesel's own `Jsonb`, which both backends support.
//!
//! Diesel's coherence rules let only local Rust types map to these SQL types, hence the two small
//! value types [`Id`] and [`Timestamp`]; both dereference to and convert from the usual
//! `uuid::Uuid` and `chrono::DateTime<Utc>`.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sqlite::Sqlite;
use diesel::{QueryId, SqlType};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// SQL type of ids: `uuid` on PostgreSQL, canonical hyphenated text on SQLite.
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbUuid;

/// SQL type of points in time: `timestamptz` on PostgreSQL, fixed-width RFC 3339 text in UTC on
/// SQLite (so text order is time order).
#[derive(Debug, Clone, Copy, Default, SqlType, QueryId)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct DbTimestamp;

impl diesel::sql_types::SqlOrd for DbTimestamp {}
impl diesel::sql_types::SqlOrd for DbUuid {}

/// A row id (UUIDv7 for new rows, so ids sort by creation time).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    AsExpression,
    FromSqlRow,
    Serialize,
    Deserialize,
)]
#[diesel(sql_type = DbUuid)]
#[serde(transparent)]
pub struct Id(pub Uuid);

impl Id {
    /// A fresh UUIDv7.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Deref for Id {
    type Target = Uuid;
    fn deref(&self) -> &Uuid {
        &self.0
    }
}

impl From<Uuid> for Id {
    fn from(u: Uuid) -> Self {
        Self(u)
    }
}

impl From<Id> for Uuid {
    fn from(id: Id) -> Self {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Id {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A point in time, always UTC, microsecond precision on both backends.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    AsExpression,
    FromSqlRow,
    Serialize,
    Deserialize,
)]
#[diesel(sql_type = DbTimestamp)]
#[serde(transparent)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Now, truncated to microseconds (what PostgreSQL keeps), so a value read back compares
    /// equal to the value written.
    pub fn now() -> Self {
        Self::from(Utc::now())
    }
}

impl Deref for Timestamp {
    type Target = DateTime<Utc>;
    fn deref(&self) -> &DateTime<Utc> {
        &self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        use chrono::{DurationRound, TimeDelta};
        Self(t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t))
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    }
}

// PostgreSQL: diesel's own binary encodings.

impl ToSql<DbUuid, Pg> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Uuid as ToSql<diesel::sql_types::Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<DbUuid, Pg> for Id {
    fn from_sql(
        bytes: <Pg as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        <Uuid as FromSql<diesel::sql_types::Uuid, Pg>>::from_sql(bytes).map(Self)
    }
}

impl ToSql<DbTimestamp, Pg> for Timestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<diesel::sql_types::Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<DbTimestamp, Pg> for Timestamp {
    fn from_sql(
        bytes: <Pg as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<diesel::sql_types::Timestamptz, Pg>>::from_sql(bytes).map(Self)
    }
}

// SQLite: text.

impl ToSql<DbUuid, Sqlite> for Id {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbUuid, Sqlite> for Id {
    fn from_sql(
        value: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(Self(Uuid::parse_str(&text)?))
    }
}

impl ToSql<DbTimestamp, Sqlite> for Timestamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<DbTimestamp, Sqlite> for Timestamp {
    fn from_sql(
        value: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(value)?;
        if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
            return Ok(Self(t.with_timezone(&Utc)));
        }
        // Written by SQLite itself (`CURRENT_TIMESTAMP`): `YYYY-MM-DD HH:MM:SS`, UTC.
        let naive = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")?;
        Ok(Self(naive.and_utc()))
    }
}
