//! cg-storage: the one storage crate of CodeGuardians Gateway.
//!
//! Relational data in PostgreSQL or an embedded SQLite file (one diesel schema and one set of
//! queries for both), a cache in Redis or in process, blobs in S3 or a local folder. Which backend
//! serves each role comes from the environment ([`config::StorageConfig`]); services ask for the
//! roles they need ([`config::Needs`]) and get a [`Storage`]. No HTTP in here.

pub mod blob;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod models;
pub mod outbox;
pub mod schema;
pub mod sql_types;
#[cfg(feature = "testing")]
pub mod testing;

pub use blob::BlobStore;
pub use cache::Cache;
pub use config::{Mode, Needs, StorageConfig};
pub use db::{Conn, Db};
pub use error::{Error, Result};
pub use outbox::Outbox;

use config::ResolvedStorage;

/// The backends one service uses (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Storage {
    pub db: Option<Db>,
    pub cache: Option<Cache>,
    pub blobs: Option<BlobStore>,
}

impl Storage {
    /// Connect to every resolved backend. The database and the cache must answer (a wrong
    /// address fails start-up with the variable named); an S3 bucket is opened without a request.
    pub async fn connect(resolved: &ResolvedStorage) -> Result<Self> {
        let db = match &resolved.database {
            Some(target) => Some(Db::connect(target).await?),
            None => None,
        };
        let cache = match &resolved.cache {
            Some(target) => Some(Cache::connect(target).await?),
            None => None,
        };
        let blobs = resolved.blobs.as_ref().map(BlobStore::open).transpose()?;
        Ok(Self { db, cache, blobs })
    }

    /// The database, for services that declared they need one.
    pub fn db(&self) -> Result<&Db> {
        self.db
            .as_ref()
            .ok_or(Error::Unsupported("a database in this service"))
    }

    /// The cache, for services that declared they need one.
    pub fn cache(&self) -> Result<&Cache> {
        self.cache
            .as_ref()
            .ok_or(Error::Unsupported("a cache in this service"))
    }

    /// The blob store, for services that declared they need one.
    pub fn blobs(&self) -> Result<&BlobStore> {
        self.blobs
            .as_ref()
            .ok_or(Error::Unsupported("a blob store in this service"))
    }
}
