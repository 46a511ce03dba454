//! Uploads: direct (multipart, streamed through the gateway), presigned (the client sends the
//! bytes to a signed URL, then confirms), and the gateway's own signed PUT (embedded mode).

use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, web};
use cg_storage::blob::Method;
use cg_storage::models::files::status;
use cg_storage::models::{Role, StoredFile};
use cg_storage::sql_types::{Id, Timestamp};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{FileView, base_url, owned};
use crate::auth::Caller;
use crate::domain::FileName;
use crate::error::{GatewayError, Result};
use crate::files::Files;
use crate::state::AppState;

/// Room for the multipart boundaries and part headers around the file itself.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

fn too_large(files: &Files) -> GatewayError {
    crate::files::IngestError::TooLarge {
        max: files.limits.max_size,
    }
    .into()
}

/// A declared `Content-Length` already over the limit is refused before reading anything.
fn check_declared_length(req: &HttpRequest, files: &Files, overhead: u64) -> Result<()> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > files.limits.max_size.saturating_add(overhead) => Err(too_large(files)),
        _ => Ok(()),
    }
}

/// Stream `body` into storage for the row `file` (inserted when `insert`, else updated).
async fn store<S, E>(
    state: &AppState,
    file: StoredFile,
    insert: bool,
    body: S,
) -> Result<StoredFile>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let files = &state.files;
    let ingested = files
        .ingest(&file.storage_key, &file.filename, body)
        .await?;
    let stored = Files::stored(&ingested, files.backend_of(&ingested));
    let saved = async {
        let mut pooled = state.db.get().await?;
        let conn = &mut pooled.conn();
        if insert {
            let row = StoredFile {
                content_type: stored.content_type.clone(),
                size_bytes: stored.size_bytes,
                stored_size_bytes: stored.stored_size_bytes,
                checksum_sha256: stored.checksum_sha256.clone(),
                etag: stored.etag.clone(),
                compression: stored.compression.clone(),
                storage_backend: stored.storage_backend.clone(),
                status: stored.status.clone(),
                ..file.clone()
            };
            row.insert(conn).await.map(|()| row)
        } else {
            StoredFile::record_stored(conn, file.id, &stored).await
        }
    }
    .await;
    match saved {
        Ok(row) => Ok(row),
        Err(e) => {
            // No row, no file: the client was not told it was stored.
            let written = StoredFile {
                storage_backend: stored.storage_backend.clone(),
                ..file
            };
            if let Err(cleanup) = files.remove(&written).await {
                tracing::warn!(error = %cleanup, "removing an upload whose record failed");
            }
            Err(e.into())
        }
    }
}

/// `POST /api/v1/upload/direct`: the first part with a file name (conventionally `file`) is
/// stored; other parts are ignored.
pub async fn direct(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    mut form: Multipart,
) -> Result<HttpResponse> {
    caller.require(Role::Member)?;
    check_declared_length(&req, &state.files, MULTIPART_OVERHEAD)?;
    while let Some(field) = form.next().await {
        let field = field.map_err(|e| bad_upload(e.to_string()))?;
        let Some(name) = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(FileName::sanitise)
        else {
            continue;
        };
        let row = StoredFile::new(
            caller.organization_id,
            caller.user_id,
            name.as_str(),
            status::STORED,
            state.files.store().backend(),
        );
        let saved = store(&state, row, true, field).await?;
        tracing::info!(file.id = %saved.id, file.size = saved.size_bytes, file.status = %saved.status, "file uploaded");
        return Ok(HttpResponse::Ok().json(FileView::new(&saved, &base_url(&req))));
    }
    Err(bad_upload(
        "no file in the form: send multipart/form-data with a part named file that has a filename"
            .into(),
    ))
}

fn bad_upload(message: String) -> GatewayError {
    GatewayError::BadRequest {
        code: "invalid_upload",
        message,
        details: serde_json::json!({}),
    }
}

/// `POST /api/v1/upload/presigned`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PresignRequest {
    pub filename: String,
    /// The type the client will send; refused up front when ALLOWED_FILE_TYPES cannot accept it
    /// (the content itself is checked on confirmation).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Seconds; at most (and by default) UPLOAD_EXPIRY_MINUTES.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// The answer to a presigned upload request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PresignResponse {
    /// PUT the file's bytes here.
    pub upload_url: String,
    pub file_url: String,
    #[schema(value_type = String, format = Uuid)]
    pub file_id: Id,
    pub filename: String,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
    /// Call this after the upload (or let the first read confirm it).
    pub complete_url: String,
}

/// A requested validity in seconds brought into 1..=`UPLOAD_EXPIRY_MINUTES`.
pub fn expiry(requested: Option<u64>, cap: Duration) -> Result<Duration> {
    match requested {
        None => Ok(cap),
        Some(0) => Err(GatewayError::Invalid("expires_in must be positive".into())),
        Some(s) => Ok(Duration::from_secs(s).min(cap)),
    }
}

/// A URL the gateway signs for `method` on `file` until `expires_at`.
pub fn gateway_signed_url(
    state: &AppState,
    base: &str,
    method: &str,
    file: &StoredFile,
    expires_at: i64,
) -> String {
    let signature = state
        .files
        .signer()
        .sign(method, &file.storage_key, expires_at);
    format!(
        "{base}/api/v1/upload/signed/{}?expires={expires_at}&signature={signature}",
        file.id
    )
}

pub async fn presigned(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<PresignRequest>,
) -> Result<HttpResponse> {
    caller.require(Role::Member)?;
    let files = &state.files;
    if body.filename.trim().is_empty() {
        return Err(GatewayError::Invalid("filename is required".into()));
    }
    if let Some(declared) = &body.content_type
        && !files.limits.allowed.allows_mime(declared)
    {
        return Err(GatewayError::Refused {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "file_type_not_allowed",
            message: format!("files of type {declared} are not accepted (ALLOWED_FILE_TYPES)"),
        });
    }
    let valid_for = expiry(body.expires_in, files.limits.url_expiry)?;
    let name = FileName::sanitise(&body.filename);
    let mut row = StoredFile::new(
        caller.organization_id,
        caller.user_id,
        name.as_str(),
        status::PENDING,
        files.store().backend(),
    );
    let expires_at = *row.created_at + chrono::Duration::seconds(valid_for.as_secs() as i64);
    row.expires_at = Some(Timestamp::from(expires_at));
    if let Some(declared) = &body.content_type {
        row.content_type = declared.trim().to_ascii_lowercase();
    }
    let base = base_url(&req);
    let upload_url = match files
        .store()
        .presign(
            Method::PUT,
            &crate::files::staging_key(&row.storage_key),
            valid_for,
        )
        .await
    {
        Ok(url) => url.to_string(),
        Err(cg_storage::Error::Unsupported(_)) => {
            gateway_signed_url(&state, &base, "PUT", &row, expires_at.timestamp())
        }
        Err(e) => return Err(e.into()),
    };
    {
        let mut pooled = state.db.get().await?;
        row.insert(&mut pooled.conn()).await?;
    }
    Ok(HttpResponse::Ok().json(PresignResponse {
        upload_url,
        file_url: FileView::new(&row, &base).file_url,
        file_id: row.id,
        filename: row.filename.clone(),
        expires_in: valid_for.as_secs(),
        expires_at: Timestamp::from(expires_at),
        complete_url: format!("{base}/api/v1/upload/{}/complete", row.id),
    }))
}

/// `POST /api/v1/upload/{id}/complete`: confirm a presigned upload (size, type, hash).
pub async fn complete(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    caller.require(Role::Member)?;
    let file = owned(&state, caller.organization_id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(FileView::new(&file, &base_url(&req))))
}

/// `?expires=&signature=` of a gateway-signed URL.
#[derive(Debug, Deserialize)]
pub struct Signed {
    pub expires: i64,
    pub signature: String,
}

/// Check a gateway-signed URL for `method` on file `id`; returns the file.
pub async fn signed_file(
    state: &AppState,
    method: &str,
    id: Id,
    signed: &Signed,
) -> Result<StoredFile> {
    use crate::files::signing::Refusal;
    let file = {
        let mut pooled = state.db.get().await?;
        StoredFile::find_by_id(&mut pooled.conn(), id).await
    };
    // A missing file and a bad signature look alike to the holder of a URL.
    let refused = |code: &'static str, message: &str| GatewayError::Refused {
        status: StatusCode::FORBIDDEN,
        code,
        message: message.into(),
    };
    let file = match file {
        Ok(f) => f,
        Err(cg_storage::Error::NotFound) => {
            return Err(refused(
                "invalid_signature",
                "the URL's signature is not valid",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let now = Timestamp::now().timestamp();
    match state.files.signer().verify(
        method,
        &file.storage_key,
        signed.expires,
        &signed.signature,
        now,
    ) {
        Ok(()) => Ok(file),
        Err(Refusal::Expired) => Err(refused("url_expired", "the URL has expired")),
        Err(Refusal::BadSignature) => Err(refused(
            "invalid_signature",
            "the URL's signature is not valid",
        )),
    }
}

/// `PUT /api/v1/upload/signed/{id}?expires=&signature=`: the body is the file.
pub async fn signed_put(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Id>,
    signed: web::Query<Signed>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let file = signed_file(&state, "PUT", id.into_inner(), &signed).await?;
    let used = || GatewayError::Conflict("this upload URL was already used".into());
    if file.status != status::PENDING {
        return Err(used());
    }
    check_declared_length(&req, &state.files, 0)?;
    let claimed = {
        let mut pooled = state.db.get().await?;
        StoredFile::claim_upload(&mut pooled.conn(), &file).await?
    };
    if !claimed {
        return Err(used());
    }
    let saved = match store(&state, file.clone(), false, payload).await {
        Ok(saved) => saved,
        Err(e) => {
            if let Ok(mut pooled) = state.db.get().await
                && let Err(release) = StoredFile::release_upload(&mut pooled.conn(), &file).await
            {
                tracing::warn!(error = %release, file = %file.id, "an upload's claim was not given back");
            }
            return Err(e);
        }
    };
    Ok(HttpResponse::Ok().json(FileView::new(&saved, &base_url(&req))))
}
