//! Listing, metadata, deletion and the file-storage health answer.

use actix_web::{HttpRequest, HttpResponse, web};
use cg_storage::models::files::status;
use cg_storage::models::{FileFilter, Role, StoredFile};
use cg_storage::sql_types::Id;
use serde::Deserialize;
use serde_json::json;

use super::{FileView, base_url, not_found, owned};
use crate::auth::Caller;
use crate::error::Result;
use crate::files::content_type_filter;
use crate::routes::query::{invalid_query, page};
use crate::state::AppState;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// `GET /api/v1/upload/list` query.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// pending, stored, syncing or deleted (default: all but deleted).
    pub status: Option<String>,
    /// A MIME type or an extension (`pdf`, `text/csv`).
    #[serde(rename = "type", alias = "content_type")]
    pub content_type: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) if status::ALL.contains(&s) => Some(s.to_owned()),
        Some(s) => {
            return Err(invalid_query(
                format!("status {s:?} must be one of {}", status::ALL.join(", ")),
                json!({"parameter": "status"}),
            ));
        }
    };
    let filter = FileFilter {
        status,
        content_type: query.content_type.as_deref().and_then(content_type_filter),
    };
    let (limit, offset) = page(query.limit, query.offset, DEFAULT_PAGE, MAX_PAGE);
    let mut pooled = state.db.get().await?;
    let (rows, total) = StoredFile::list(
        &mut pooled.conn(),
        caller.organization_id,
        &filter,
        limit,
        offset,
    )
    .await?;
    let base = base_url(&req);
    Ok(HttpResponse::Ok().json(json!({
        "files": rows.iter().map(|f| FileView::new(f, &base)).collect::<Vec<_>>(),
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

/// `GET /api/v1/upload/metadata/{id}`.
pub async fn metadata(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    let file = owned(&state, caller.organization_id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(FileView::new(&file, &base_url(&req))))
}

/// `DELETE /api/v1/upload/{id}`: the row is marked deleted first, so the file disappears from
/// the API even if removing the bytes fails (that failure is logged and reported as 503).
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    caller.require(Role::Member)?;
    let file = {
        let mut pooled = state.db.get().await?;
        StoredFile::mark_deleted(&mut pooled.conn(), caller.organization_id, id.into_inner())
            .await
            .map_err(not_found)?
    };
    state.files.remove(&file).await?;
    Ok(HttpResponse::Ok().json(json!({
        "deleted": true,
        "file": FileView::new(&file, &base_url(&req)),
    })))
}

/// `GET /api/v1/upload/health` (for callers of the organisation: it names the backend and the
/// limits, which anonymous callers are not told).
pub async fn health(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse> {
    let files = &state.files;
    let store = files.store();
    let reachable = store.ping().await.is_ok();
    let waiting = files.waiting().await;
    let status = match (reachable, files.has_fallback()) {
        (true, _) => "healthy",
        (false, true) => "degraded",
        (false, false) => "unhealthy",
    };
    Ok(HttpResponse::Ok().json(json!({
        "status": status,
        "backend": store.backend(),
        "store_reachable": reachable,
        "local_fallback": files.has_fallback(),
        "waiting_for_s3": waiting,
        "max_file_size": files.limits.max_size,
        "allowed_file_types": files.limits.allowed.entries(),
        "url_expiry_seconds": files.limits.url_expiry.as_secs(),
        "compression": if files.limits.compress { "zstd" } else { "none" },
    })))
}
