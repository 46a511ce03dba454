//! `/api/v1/upload/*`: files an organisation stores for the guards to check. Only the owning
//! organisation sees a file; anyone else gets 404.

mod download;
mod manage;
pub mod scan;
mod upload;

use actix_web::{HttpRequest, web};
use cg_storage::models::StoredFile;
use cg_storage::sql_types::{Id, Timestamp};
use serde::Serialize;
use utoipa::openapi::path::HttpMethod;

use crate::api_doc::{Access, Endpoint, body};
use crate::error::Result;
use crate::state::AppState;

const TAG: &str = "files";

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/upload/direct",
            || web::post().to(upload::direct),
            TAG,
            "Upload a file (multipart/form-data, field `file`), streamed to storage",
        )
        .raw_body("multipart/form-data"),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/upload/presigned",
            || web::post().to(upload::presigned),
            TAG,
            "A URL to upload one file to directly (S3 SigV4, or signed by the gateway)",
        )
        .body(body::<upload::PresignRequest>()),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/upload/{id}/complete",
            || web::post().to(upload::complete),
            TAG,
            "Confirm a presigned upload: its size, type and SHA-256 are checked and recorded",
        ),
        Endpoint::new(
            HttpMethod::Put,
            "/api/v1/upload/signed/{id}",
            || web::put().to(upload::signed_put),
            TAG,
            "Upload through a URL the gateway signed (embedded mode; ?expires=&signature=)",
        )
        .access(Access::Public)
        .raw_body("application/octet-stream"),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/upload/signed/{id}",
            || web::get().to(download::signed_get),
            TAG,
            "Download through a URL the gateway signed (?expires=&signature=; Range supported)",
        )
        .access(Access::Public),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/upload/download/{id}",
            || web::get().to(download::download),
            TAG,
            "Download a file (streamed, original type and length, Range supported)",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/upload/download/{id}/url",
            || web::get().to(download::download_url),
            TAG,
            "A time-limited URL to download a file without credentials",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/upload/metadata/{id}",
            || web::get().to(manage::metadata),
            TAG,
            "A file's metadata",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/upload/list",
            || web::get().to(manage::list),
            TAG,
            "The organisation's files, newest first (?status=&type=&limit=&offset=)",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/upload/health",
            || web::get().to(manage::health),
            TAG,
            "File storage status: backend, S3 reachability, uploads waiting for S3, limits",
        ),
        Endpoint::new(
            HttpMethod::Delete,
            "/api/v1/upload/{id}",
            || web::delete().to(manage::delete),
            TAG,
            "Delete a file (its bytes and its record)",
        ),
    ]
}

/// A file as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FileView {
    #[schema(value_type = String, format = Uuid)]
    pub file_id: Id,
    pub filename: String,
    pub content_type: String,
    /// Original length in bytes (null until a presigned upload is confirmed).
    pub file_size: Option<i64>,
    /// Bytes in storage (after compression).
    pub stored_size: Option<i64>,
    /// `none` or `zstd`.
    pub compression: String,
    /// Original size over stored size (1 when stored as is).
    pub compression_ratio: Option<f64>,
    pub sha256: Option<String>,
    pub etag: Option<String>,
    /// pending, stored, syncing or deleted.
    pub status: String,
    /// `s3` or `local`.
    pub storage_location: String,
    pub file_url: String,
    #[schema(value_type = String)]
    pub upload_timestamp: Timestamp,
    #[schema(value_type = Option<String>)]
    pub synced_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
}

impl FileView {
    pub fn new(file: &StoredFile, base: &str) -> Self {
        let ratio = match (file.size_bytes, file.stored_size_bytes) {
            (Some(size), Some(stored)) if stored > 0 => {
                Some(((size as f64 / stored as f64) * 1000.0).round() / 1000.0)
            }
            _ => None,
        };
        Self {
            file_id: file.id,
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            file_size: file.size_bytes,
            stored_size: file.stored_size_bytes,
            compression: file.compression.clone(),
            compression_ratio: ratio,
            sha256: file.checksum_sha256.clone(),
            etag: file.etag.clone(),
            status: file.status.clone(),
            storage_location: file.storage_backend.clone(),
            file_url: format!("{base}/api/v1/upload/download/{}", file.id),
            upload_timestamp: file.created_at,
            synced_at: file.synced_at,
            expires_at: file.expires_at,
        }
    }
}

/// `scheme://host` the client reached this gateway at, for the URLs in answers.
pub fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// One live file of the caller's organisation; a presigned upload is confirmed on first read.
pub async fn owned(state: &AppState, organization_id: Id, id: Id) -> Result<StoredFile> {
    let file = {
        let mut pooled = state.db.get().await?;
        StoredFile::find(&mut pooled.conn(), organization_id, id)
            .await
            .map_err(not_found)?
    };
    state.files.confirm(file).await
}

/// Another organisation's file and a missing one are the same answer.
fn not_found(e: cg_storage::Error) -> crate::error::GatewayError {
    match e {
        cg_storage::Error::NotFound => crate::error::GatewayError::NotFound("file"),
        e => e.into(),
    }
}
