//! `files`: what organisations uploaded. The bytes live in the blob store under `storage_key`
//! (`org/<uuid>`, never derived from the client's name); this row says whose they are, what they
//! were, how they are stored and where.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::schema::files;
use crate::sql_types::{Id, Timestamp};

/// Where a file's bytes are.
pub mod status {
    /// A presigned upload was handed out; the bytes may not be there yet.
    pub const PENDING: &str = "pending";
    /// In the configured store (S3, or the local folder in embedded mode).
    pub const STORED: &str = "stored";
    /// On a replica's local disk (S3 was away), waiting for the background sync.
    pub const SYNCING: &str = "syncing";
    /// Removed (the row is kept for audit).
    pub const DELETED: &str = "deleted";
    /// Every status, for filters.
    pub const ALL: [&str; 4] = [PENDING, STORED, SYNCING, DELETED];
}

/// A `files` row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = files)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct StoredFile {
    pub id: Id,
    pub organization_id: Id,
    pub uploaded_by: Option<Id>,
    /// The client's name, sanitised.
    pub filename: String,
    pub content_type: String,
    /// Original length in bytes (before compression).
    pub size_bytes: Option<i64>,
    pub storage_key: String,
    /// `s3` or `local`.
    pub storage_backend: String,
    /// One of [`status`].
    pub status: String,
    pub etag: Option<String>,
    /// SHA-256 of the original content, hex.
    pub checksum_sha256: Option<String>,
    pub synced_at: Option<Timestamp>,
    /// When a pending (presigned) upload stops being accepted.
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
    /// `none` or `zstd`.
    pub compression: String,
    /// Bytes in the store (after compression).
    pub stored_size_bytes: Option<i64>,
}

/// What storing a file's bytes established.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = files)]
pub struct FileStored {
    pub content_type: String,
    pub size_bytes: Option<i64>,
    pub stored_size_bytes: Option<i64>,
    pub checksum_sha256: Option<String>,
    pub etag: Option<String>,
    pub compression: String,
    pub storage_backend: String,
    pub status: String,
    pub synced_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// Filters of a listing.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    /// One of [`status`]; deleted files are listed only when asked for.
    pub status: Option<String>,
    pub content_type: Option<String>,
}

impl StoredFile {
    /// A new file of an organisation, not yet stored anywhere: its object key is `org/<uuid>`,
    /// never derived from the client's name.
    pub fn new(
        organization_id: Id,
        uploaded_by: Option<Id>,
        filename: &str,
        status: &str,
        storage_backend: &str,
    ) -> Self {
        let id = Id::new();
        let now = Timestamp::now();
        Self {
            id,
            organization_id,
            uploaded_by,
            filename: filename.to_owned(),
            content_type: "application/octet-stream".into(),
            size_bytes: None,
            storage_key: format!("{organization_id}/{id}"),
            storage_backend: storage_backend.to_owned(),
            status: status.to_owned(),
            etag: None,
            checksum_sha256: None,
            synced_at: None,
            expires_at: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            compression: "none".into(),
            stored_size_bytes: None,
        }
    }

    /// Store a new row.
    pub async fn insert(&self, conn: &mut Conn<'_>) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::insert_into(files::table)
                .values(self)
                .execute(c)
                .await
        })?;
        Ok(())
    }

    /// One live (not deleted) file of an organisation; another organisation's file is not found.
    pub async fn find(conn: &mut Conn<'_>, organization_id: Id, id: Id) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            files::table
                .filter(files::organization_id.eq(organization_id))
                .filter(files::id.eq(id))
                .filter(files::status.ne(status::DELETED))
                .select(Self::as_select())
                .first(c)
                .await
        })?)
    }

    /// One live file by id alone, for URLs whose signature already names it.
    pub async fn find_by_id(conn: &mut Conn<'_>, id: Id) -> Result<Self> {
        Ok(crate::with_conn!(conn, |c| {
            files::table
                .filter(files::id.eq(id))
                .filter(files::status.ne(status::DELETED))
                .select(Self::as_select())
                .first(c)
                .await
        })?)
    }

    /// An organisation's files matching `filter`, newest first, a page at a time, with the total.
    pub async fn list(
        conn: &mut Conn<'_>,
        organization_id: Id,
        filter: &FileFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Self>, i64)> {
        macro_rules! filtered {
            () => {{
                let mut query = files::table
                    .filter(files::organization_id.eq(organization_id))
                    .into_boxed();
                query = match &filter.status {
                    Some(s) => query.filter(files::status.eq(s.clone())),
                    None => query.filter(files::status.ne(status::DELETED)),
                };
                if let Some(t) = &filter.content_type {
                    query = query.filter(files::content_type.eq(t.clone()));
                }
                query
            }};
        }
        let rows = crate::with_conn!(conn, |c| {
            filtered!()
                .order((files::created_at.desc(), files::id.desc()))
                .limit(limit)
                .offset(offset)
                .select(Self::as_select())
                .load(c)
                .await
        })?;
        let total: i64 = crate::with_conn!(conn, |c| filtered!().count().get_result(c).await)?;
        Ok((rows, total))
    }

    /// Record where and how the bytes of file `id` were stored, unless it was deleted meanwhile.
    pub async fn record_stored(conn: &mut Conn<'_>, id: Id, stored: &FileStored) -> Result<Self> {
        let updated = crate::with_conn!(conn, |c| {
            diesel::update(
                files::table
                    .filter(files::id.eq(id))
                    .filter(files::status.ne(status::DELETED)),
            )
            .set(stored)
            .returning(Self::as_returning())
            .get_result(c)
            .await
            .optional()
        })?;
        updated.ok_or(Error::NotFound)
    }

    /// Claim the upload of a pending file for one request: a pending file nobody is uploading
    /// has `updated_at == created_at`; the first claim moves `updated_at` on, so of several
    /// uploads racing on one signed URL only one writes the file. Returns false for the others.
    pub async fn claim_upload(conn: &mut Conn<'_>, file: &Self) -> Result<bool> {
        let now = Timestamp::from(
            (*Timestamp::now()).max(*file.created_at + chrono::Duration::milliseconds(1)),
        );
        let n = crate::with_conn!(conn, |c| {
            diesel::update(
                files::table
                    .filter(files::id.eq(file.id))
                    .filter(files::status.eq(status::PENDING))
                    .filter(files::updated_at.eq(file.created_at)),
            )
            .set(files::updated_at.eq(now))
            .execute(c)
            .await
        })?;
        Ok(n == 1)
    }

    /// Give back a claim whose upload failed, so the URL can be used again until it expires.
    pub async fn release_upload(conn: &mut Conn<'_>, file: &Self) -> Result<()> {
        crate::with_conn!(conn, |c| {
            diesel::update(
                files::table
                    .filter(files::id.eq(file.id))
                    .filter(files::status.eq(status::PENDING)),
            )
            .set(files::updated_at.eq(file.created_at))
            .execute(c)
            .await
        })?;
        Ok(())
    }

    /// A file that was `syncing` is now in S3 (checked by the caller). Returns false when another
    /// replica got there first or the file was deleted meanwhile.
    pub async fn mark_synced(conn: &mut Conn<'_>, id: Id, etag: Option<String>) -> Result<bool> {
        let now = Timestamp::now();
        let n = crate::with_conn!(conn, |c| {
            diesel::update(
                files::table
                    .filter(files::id.eq(id))
                    .filter(files::status.eq(status::SYNCING)),
            )
            .set((
                files::status.eq(status::STORED),
                files::storage_backend.eq("s3"),
                files::etag.eq(etag.clone()),
                files::synced_at.eq(Some(now)),
                files::updated_at.eq(now),
            ))
            .execute(c)
            .await
        })?;
        Ok(n == 1)
    }

    /// Files waiting on local disk for S3, oldest first.
    pub async fn syncing(conn: &mut Conn<'_>, limit: i64) -> Result<Vec<Self>> {
        Ok(crate::with_conn!(conn, |c| {
            files::table
                .filter(files::status.eq(status::SYNCING))
                .order(files::created_at.asc())
                .limit(limit)
                .select(Self::as_select())
                .load(c)
                .await
        })?)
    }

    /// How many files wait for S3.
    pub async fn count_syncing(conn: &mut Conn<'_>) -> Result<i64> {
        Ok(crate::with_conn!(conn, |c| {
            files::table
                .filter(files::status.eq(status::SYNCING))
                .count()
                .get_result(c)
                .await
        })?)
    }

    /// Mark a file of an organisation deleted; returns the row as it was.
    pub async fn mark_deleted(conn: &mut Conn<'_>, organization_id: Id, id: Id) -> Result<Self> {
        let now = Timestamp::now();
        let updated = crate::with_conn!(conn, |c| {
            diesel::update(
                files::table
                    .filter(files::organization_id.eq(organization_id))
                    .filter(files::id.eq(id))
                    .filter(files::status.ne(status::DELETED)),
            )
            .set((
                files::status.eq(status::DELETED),
                files::deleted_at.eq(Some(now)),
                files::updated_at.eq(now),
            ))
            .returning(Self::as_returning())
            .get_result(c)
            .await
            .optional()
        })?;
        updated.ok_or(Error::NotFound)
    }
}
