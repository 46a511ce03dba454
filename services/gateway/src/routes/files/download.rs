//! Downloads: streamed with the original type and length (decompressed when stored compressed),
//! one `Range` supported, and time-limited URLs to download without credentials.

use std::ops::Range;

use actix_web::http::StatusCode;
use actix_web::http::header::{
    ACCEPT_RANGES, CONTENT_RANGE, CONTENT_TYPE, Charset, ContentDisposition, DispositionParam,
    DispositionType, ETAG, ExtendedValue, HeaderValue, RANGE,
};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use cg_service_kit::ApiError;
use cg_storage::blob::Method;
use cg_storage::models::StoredFile;
use cg_storage::models::files::status;
use cg_storage::sql_types::{Id, Timestamp};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::upload::{Signed, expiry, gateway_signed_url, signed_file};
use super::{base_url, owned};
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range (or one this server answers with the whole file, e.g. several ranges).
    Whole,
    Part(Range<u64>),
    /// Outside the file: 416.
    Unsatisfiable,
}

/// Parse one `bytes=` range (`a-b`, `a-`, `-n`) against a file of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        match last.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => size.saturating_sub(n)..size,
            Err(_) => return RangeRequest::Whole,
        }
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        let end = if last.is_empty() {
            size
        } else {
            match last.parse::<u64>() {
                Ok(l) if l >= start => l.saturating_add(1).min(size),
                _ => return RangeRequest::Whole,
            }
        };
        start..end
    };
    if range.start >= size || range.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(range)
    }
}

/// Stream `file` to the client, honouring `Range`.
async fn respond(state: &AppState, req: &HttpRequest, file: &StoredFile) -> Result<HttpResponse> {
    let size = u64::try_from(file.size_bytes.unwrap_or(0)).unwrap_or(0);
    let header = req.headers().get(RANGE).and_then(|v| v.to_str().ok());
    let (mut builder, range) = match parse_range(header, size) {
        RangeRequest::Whole => (HttpResponse::Ok(), None),
        RangeRequest::Part(r) => {
            let mut b = HttpResponse::PartialContent();
            b.insert_header((
                CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            ));
            (b, Some(r))
        }
        RangeRequest::Unsatisfiable => {
            let content_range = HeaderValue::from_str(&format!("bytes */{size}"))
                .map_err(|e| GatewayError::Internal(e.into()))?;
            return Ok(ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range is outside the file ({size} bytes)"),
            )
            .with_details(serde_json::json!({"size": size}))
            .with_header(CONTENT_RANGE, content_range)
            .error_response());
        }
    };
    let length = range.as_ref().map_or(size, |r| r.end - r.start);
    let stream = if length == 0 {
        futures::stream::empty().boxed_local()
    } else {
        state
            .files
            .read(file, range)
            .await?
            // Headers are sent by now: the client sees a short body, and the error is logged.
            .map_err(|e| {
                tracing::error!(error = %e, "reading a file failed during its download");
                actix_web::error::ErrorInternalServerError("reading the file failed")
            })
            .boxed_local()
    };
    builder
        .insert_header((CONTENT_TYPE, file.content_type.clone()))
        .insert_header((ACCEPT_RANGES, "bytes"))
        .insert_header(attachment(&file.filename))
        .no_chunking(length);
    if let Some(sha) = &file.checksum_sha256 {
        builder.insert_header((ETAG, format!("\"{sha}\"")));
    }
    Ok(builder.streaming(stream))
}

/// `Content-Disposition: attachment` with the name as it is (RFC 6266 `filename*`) and an ASCII
/// stand-in for old clients: a header value cannot carry raw UTF-8.
fn attachment(name: &str) -> ContentDisposition {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() && c != '"' { c } else { '_' })
        .collect();
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![
            DispositionParam::Filename(ascii),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".into()),
                language_tag: None,
                value: name.as_bytes().to_vec(),
            }),
        ],
    }
}

/// `GET /api/v1/upload/download/{id}`.
pub async fn download(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    let file = owned(&state, caller.organization_id, id.into_inner()).await?;
    respond(&state, &req, &file).await
}

/// `GET /api/v1/upload/signed/{id}?expires=&signature=`.
pub async fn signed_get(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<Id>,
    signed: web::Query<Signed>,
) -> Result<HttpResponse> {
    let file = signed_file(&state, "GET", id.into_inner(), &signed).await?;
    let file = state.files.confirm(file).await?;
    respond(&state, &req, &file).await
}

/// The answer of `GET /api/v1/upload/download/{id}/url`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DownloadUrl {
    pub download_url: String,
    #[schema(value_type = String, format = Uuid)]
    pub file_id: Id,
    pub filename: String,
    pub expires_in: u64,
    #[schema(value_type = String)]
    pub expires_at: Timestamp,
}

/// `?expires_in=` seconds.
#[derive(Debug, serde::Deserialize)]
pub struct UrlQuery {
    pub expires_in: Option<u64>,
}

/// `GET /api/v1/upload/download/{id}/url`: an S3 presigned URL when S3 holds the bytes as the
/// client should get them; otherwise (compressed, waiting on local disk, embedded mode) a URL
/// the gateway signs and serves itself.
pub async fn download_url(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<Id>,
    query: web::Query<UrlQuery>,
) -> Result<HttpResponse> {
    let file = owned(&state, caller.organization_id, id.into_inner()).await?;
    let valid_for = expiry(query.expires_in, state.files.limits.url_expiry)?;
    let expires_at = *Timestamp::now() + chrono::Duration::seconds(valid_for.as_secs() as i64);
    let s3_serves_it = file.status == status::STORED && file.compression == "none";
    let url = if s3_serves_it {
        match state
            .files
            .store()
            .presign(Method::GET, &file.storage_key, valid_for)
            .await
        {
            Ok(url) => Some(url.to_string()),
            Err(cg_storage::Error::Unsupported(_)) => None,
            Err(e) => return Err(GatewayError::from(e)),
        }
    } else {
        None
    };
    let url = url.unwrap_or_else(|| {
        gateway_signed_url(
            &state,
            &base_url(&req),
            "GET",
            &file,
            expires_at.timestamp(),
        )
    });
    Ok(HttpResponse::Ok().json(DownloadUrl {
        download_url: url,
        file_id: file.id,
        filename: file.filename.clone(),
        expires_in: valid_for.as_secs(),
        expires_at: Timestamp::from(expires_at),
    }))
}

#[cfg(test)]
mod tests {
    use super::{RangeRequest, parse_range};

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), RangeRequest::Part(0..5));
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeRequest::Part(5..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeRequest::Part(7..10));
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            RangeRequest::Part(0..10)
        );
        assert_eq!(
            parse_range(Some("bytes=8-100"), 10),
            RangeRequest::Part(8..10)
        );
        assert_eq!(
            parse_range(Some("bytes=10-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=0-0"), 0),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), RangeRequest::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Whole);
    }
}
