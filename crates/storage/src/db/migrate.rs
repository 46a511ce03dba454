//! Embedded migrations for both backends, applied by `codeguardians migrate` (a Kubernetes Job in
//! production) or by embedded-mode services at start-up. Concurrent migrators wait for each other:
//! an advisory lock on PostgreSQL, a lock file beside the SQLite database.

use diesel::migration::MigrationSource;
use diesel_async::{AsyncMigrationHarness, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Conn, Db, DbPool};
use crate::config::DatabaseTarget;
use crate::error::{Error, Result};
use crate::schema::PARTITIONED_TABLES;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Advisory-lock key taken while migrating PostgreSQL ("cgmigrat").
const MIGRATION_LOCK_KEY: i64 = 0x6367_6d69_6772_6174;

/// Months of partitions kept ahead of today (and one behind, for late writes).
const PARTITION_MONTHS_AHEAD: i32 = 3;
const PARTITION_MONTHS_BACK: i32 = 1;

pub(super) async fn run(db: &Db) -> Result<Vec<String>> {
    let applied = match &db.pool {
        DbPool::Postgres(pool) => {
            let mut conn = pool
                .dedicated_connection()
                .await
                .map_err(|e| Error::unavailable("postgres", e))?;
            conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .await?;
            let (conn, applied) = tokio::task::spawn_blocking(move || {
                let mut harness = AsyncMigrationHarness::new(conn);
                let applied = harness
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .map_err(|e| Error::Migration(e.to_string()));
                (harness.into_inner(), applied)
            })
            .await
            .map_err(|e| Error::Migration(e.to_string()))?;
            let mut conn = conn;
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .await?;
            applied?
        }
        DbPool::Sqlite(pool) => {
            let DatabaseTarget::Sqlite { path, .. } = &*db.target else {
                return Err(Error::Migration(
                    "SQLite pool without an SQLite target".into(),
                ));
            };
            let lock_path = path.with_extension("migrate.lock");
            let conn = pool
                .dedicated_connection()
                .await
                .map_err(|e| Error::unavailable("sqlite", e))?;
            tokio::task::spawn_blocking(move || {
                let lock = std::fs::File::create(&lock_path)
                    .and_then(|f| f.lock().map(|()| f))
                    .map_err(|e| Error::Migration(format!("lock {}: {e}", lock_path.display())))?;
                let mut harness = AsyncMigrationHarness::new(conn);
                let applied = harness
                    .run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .map_err(|e| Error::Migration(e.to_string()));
                drop(lock);
                applied
            })
            .await
            .map_err(|e| Error::Migration(e.to_string()))??
        }
    };
    ensure_partitions(db).await?;
    if !applied.is_empty() {
        tracing::info!(db.backend = db.backend(), migrations = ?applied, "applied migrations");
    }
    Ok(applied)
}

/// Versions of the embedded migrations not yet applied (a replica refuses to start against a
/// database that is behind: `codeguardians migrate` runs first).
pub async fn pending_migrations(db: &Db) -> Result<Vec<String>> {
    let applied = match applied_migrations(db).await {
        Ok(v) => v,
        Err(e @ Error::Unavailable { .. }) => return Err(e),
        // No bookkeeping table yet: nothing applied.
        Err(_) => Vec::new(),
    };
    let embedded: Vec<String> = match &db.pool {
        DbPool::Postgres(_) => MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect()),
        DbPool::Sqlite(_) => {
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
                .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
        }
    }
    .map_err(|e| Error::Migration(e.to_string()))?;
    let mut pending: Vec<String> = embedded
        .into_iter()
        .filter(|v| !applied.contains(v))
        .collect();
    pending.sort();
    Ok(pending)
}

/// Versions of the migrations already applied, oldest first.
pub async fn applied_migrations(db: &Db) -> Result<Vec<String>> {
    let mut pooled = db.get().await?;
    let mut conn = pooled.conn();
    let mut versions: Vec<String> = crate::with_conn!(&mut conn, |c| {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<MigrationRow>(c)
            .await
    })?
    .into_iter()
    .map(|r| r.version)
    .collect();
    versions.sort();
    Ok(versions)
}

#[derive(diesel::QueryableByName)]
struct MigrationRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

/// Create the monthly partitions of the append-only tables ahead of time (PostgreSQL only;
/// a no-op on SQLite). Idempotent and safe to run from several replicas at once.
pub async fn ensure_partitions(db: &Db) -> Result<usize> {
    let mut pooled = db.get().await?;
    let Conn::Postgres(conn) = pooled.conn() else {
        return Ok(0);
    };
    let mut created = 0;
    for table in PARTITIONED_TABLES {
        let row: PartitionsCreated =
            diesel::sql_query("SELECT cg_ensure_monthly_partitions($1, $2, $3) AS created")
                .bind::<diesel::sql_types::Text, _>(*table)
                .bind::<diesel::sql_types::Integer, _>(PARTITION_MONTHS_BACK)
                .bind::<diesel::sql_types::Integer, _>(PARTITION_MONTHS_AHEAD)
                .get_result(conn)
                .await?;
        created += usize::try_from(row.created).unwrap_or(0);
    }
    Ok(created)
}

#[derive(diesel::QueryableByName)]
struct PartitionsCreated {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    created: i32,
}
