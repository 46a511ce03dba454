//! The relational database: one pool over PostgreSQL or SQLite, and the [`Conn`] every query
//! function takes, so a query is written once and runs on either backend.
//!
//! ```ignore
//! pub async fn find(conn: &mut Conn<'_>, id: Uuid) -> Result<User> {
//!     with_conn!(conn, |c| users::table.find(id).first(c).await).map_err(Into::into)
//! }
//! ```

pub mod copy;
mod migrate;
mod pool;
mod retention;

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};

use crate::config::{DatabaseTarget, Mode};
use crate::error::{Error, Result};

pub use migrate::{applied_migrations, ensure_partitions, pending_migrations};
pub use retention::{Removed, apply_retention};

/// The embedded database connection: diesel's synchronous SQLite connection, each query run on
/// the blocking pool of the calling runtime by [`BlockingPool`].
pub type SqliteConnection = SyncConnectionWrapper<diesel::SqliteConnection, BlockingPool>;

/// Runs SQLite work on the current runtime's blocking pool. A query whose caller goes away is
/// still waited for before the connection can be reused (diesel-async needs sole ownership of the
/// connection again), but by parking the thread rather than with `block_in_place`, which panics
/// on a current-thread runtime such as each actix worker's: a request cancelled mid-query (client
/// gone, a sibling extractor failing, a timeout) would otherwise take the worker down.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlockingPool;

/// A blocking task that is waited for if dropped unfinished.
struct WaitOnDrop<R> {
    handle: tokio::task::JoinHandle<R>,
}

impl<R> Future for WaitOnDrop<R> {
    type Output = std::result::Result<R, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.handle).poll(cx)
    }
}

impl<R> Drop for WaitOnDrop<R> {
    fn drop(&mut self) {
        if !self.handle.is_finished() {
            // The task runs on a blocking-pool thread, so this wait cannot deadlock; SQLite
            // statements are short (at most `busy_timeout` when another process holds the lock).
            let _ = futures::executor::block_on(&mut self.handle);
        }
    }
}

impl diesel_async::sync_connection_wrapper::SpawnBlocking for BlockingPool {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures::future::BoxFuture<
        'a,
        std::result::Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>,
    >
    where
        R: Send + 'static,
    {
        let task = WaitOnDrop {
            handle: tokio::task::spawn_blocking(task),
        };
        Box::pin(async move {
            task.await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
    }

    fn get_runtime() -> Self {
        Self
    }
}

type PgPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;
type SqlitePool = bb8::Pool<AsyncDieselConnectionManager<SqliteConnection>>;

/// Run the same diesel expression on whichever backend `conn` is: the body is compiled once per
/// backend, with `$c` bound to that backend's connection.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {{
        let conn: &mut $crate::db::Conn<'_> = $conn;
        match conn {
            $crate::db::Conn::Postgres(inner) => {
                let $c = &mut **inner;
                $body
            }
            $crate::db::Conn::Sqlite(inner) => {
                let $c = &mut **inner;
                $body
            }
        }
    }};
}

/// A pool of database connections (cheap to clone).
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    target: Arc<DatabaseTarget>,
}

#[derive(Clone)]
enum DbPool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .field("target", &self.target.display())
            .finish()
    }
}

/// A connection checked out of the pool; [`PooledConn::conn`] lends it to query functions.
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack of one request; a box would allocate per checkout"
)]
pub enum PooledConn {
    Postgres(bb8::PooledConnection<'static, AsyncDieselConnectionManager<AsyncPgConnection>>),
    Sqlite(bb8::PooledConnection<'static, AsyncDieselConnectionManager<SqliteConnection>>),
}

impl std::fmt::Debug for PooledConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgres(_) => "PooledConn::Postgres",
            Self::Sqlite(_) => "PooledConn::Sqlite",
        })
    }
}

impl PooledConn {
    /// Borrow the connection for query functions.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(c) => Conn::Postgres(c),
            Self::Sqlite(c) => Conn::Sqlite(c),
        }
    }
}

/// A borrowed connection on either backend: what every query function takes, whether the
/// connection comes straight from the pool or is inside a transaction.
pub enum Conn<'a> {
    Postgres(&'a mut AsyncPgConnection),
    Sqlite(&'a mut SqliteConnection),
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgres(_) => "Conn::Postgres",
            Self::Sqlite(_) => "Conn::Sqlite",
        })
    }
}

impl Conn<'_> {
    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// Run `f` in a transaction (a savepoint when already inside one): committed when it returns
    /// `Ok`, rolled back when it returns `Err`. Any error type that storage errors convert into
    /// works, so a service's own error can abort the transaction.
    pub async fn transaction<T, E, F>(&mut self, f: F) -> std::result::Result<T, E>
    where
        F: AsyncFnOnce(&mut Self) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        self.begin().await.map_err(Error::from)?;
        match f(self).await {
            Ok(value) => {
                self.commit().await.map_err(Error::from)?;
                Ok(value)
            }
            Err(user_error) => match self.rollback().await {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(user_error),
                Err(rollback_error) => Err(Error::from(rollback_error).into()),
            },
        }
    }

    pub(crate) async fn begin(&mut self) -> diesel::QueryResult<()> {
        match self {
            Self::Postgres(c) => {
                <AsyncPgConnection as AsyncConnection>::TransactionManager::begin_transaction(
                    &mut **c,
                )
                .await
            }
            Self::Sqlite(c) => {
                <SqliteConnection as AsyncConnection>::TransactionManager::begin_transaction(
                    &mut **c,
                )
                .await
            }
        }
    }

    pub(crate) async fn commit(&mut self) -> diesel::QueryResult<()> {
        match self {
            Self::Postgres(c) => {
                <AsyncPgConnection as AsyncConnection>::TransactionManager::commit_transaction(
                    &mut **c,
                )
                .await
            }
            Self::Sqlite(c) => {
                <SqliteConnection as AsyncConnection>::TransactionManager::commit_transaction(
                    &mut **c,
                )
                .await
            }
        }
    }

    pub(crate) async fn rollback(&mut self) -> diesel::QueryResult<()> {
        match self {
            Self::Postgres(c) => {
                <AsyncPgConnection as AsyncConnection>::TransactionManager::rollback_transaction(
                    &mut **c,
                )
                .await
            }
            Self::Sqlite(c) => {
                <SqliteConnection as AsyncConnection>::TransactionManager::rollback_transaction(
                    &mut **c,
                )
                .await
            }
        }
    }
}

/// Connection-pool figures for `/metrics`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max_size: u32,
    pub gets_waited: u64,
    pub gets_timed_out: u64,
}

impl Db {
    /// Build the pool and open one connection, so a wrong URL or a server that is down fails at
    /// start-up with a message naming the variable.
    #[tracing::instrument(skip_all, fields(db.backend = target_backend(target), db.target = %target.display()))]
    pub async fn connect(target: &DatabaseTarget) -> Result<Self> {
        let pool = match target {
            DatabaseTarget::Postgres { .. } => DbPool::Postgres(pool::postgres(target)?),
            DatabaseTarget::Sqlite { path, .. } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Config(format!(
                            "cannot create the folder of {} ({}): {e}",
                            target.source(),
                            dir.display()
                        ))
                    })?;
                }
                DbPool::Sqlite(pool::sqlite(target)?)
            }
        };
        let db = Self {
            pool,
            target: Arc::new(target.clone()),
        };
        db.ping().await.map_err(|e| match e {
            Error::Unavailable { backend, message } => Error::Unavailable {
                backend,
                message: format!(
                    "cannot connect to {} ({}) given by {}: {message}",
                    db.backend(),
                    target.display(),
                    target.source()
                ),
            },
            other => other,
        })?;
        Ok(db)
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        target_backend(&self.target)
    }

    /// Embedded (SQLite) or centralized (PostgreSQL).
    pub fn mode(&self) -> Mode {
        self.target.mode()
    }

    /// Where it points, safe to log.
    pub fn display(&self) -> String {
        self.target.display()
    }

    /// Check out a connection.
    pub async fn get(&self) -> Result<PooledConn> {
        let backend = self.backend();
        match &self.pool {
            DbPool::Postgres(p) => p.get_owned().await.map(PooledConn::Postgres),
            DbPool::Sqlite(p) => p.get_owned().await.map(PooledConn::Sqlite),
        }
        .map_err(|e| match e {
            bb8::RunError::User(e) => Error::unavailable(backend, e),
            bb8::RunError::TimedOut => {
                Error::unavailable(backend, "timed out waiting for a pooled connection")
            }
        })
    }

    /// Round trip `SELECT 1`; returns how long it took.
    pub async fn ping(&self) -> Result<Duration> {
        let started = Instant::now();
        let mut pooled = self.get().await?;
        let mut conn = pooled.conn();
        crate::with_conn!(&mut conn, |c| diesel::sql_query("SELECT 1")
            .execute(c)
            .await)
        .map_err(|e| Error::unavailable(self.backend(), e))?;
        Ok(started.elapsed())
    }

    /// Pool figures.
    pub fn pool_stats(&self) -> PoolStats {
        let state = match &self.pool {
            DbPool::Postgres(p) => p.state(),
            DbPool::Sqlite(p) => p.state(),
        };
        let max_size = match &*self.target {
            DatabaseTarget::Postgres { pool, .. } | DatabaseTarget::Sqlite { pool, .. } => {
                pool.max_size
            }
        };
        PoolStats {
            size: state.connections,
            idle: state.idle_connections,
            max_size,
            gets_waited: state.statistics.get_waited,
            gets_timed_out: state.statistics.get_timed_out,
        }
    }

    /// Apply pending migrations; returns the versions applied.
    pub async fn run_migrations(&self) -> Result<Vec<String>> {
        migrate::run(self).await
    }
}

fn target_backend(target: &DatabaseTarget) -> &'static str {
    match target {
        DatabaseTarget::Postgres { .. } => "postgres",
        DatabaseTarget::Sqlite { .. } => "sqlite",
    }
}
