//! The memory API: `POST /memory`, `GET /memory/{key}`, `GET /memory`, `DELETE /memory/{key}`.
//! Items live per organisation (`X-Organization-ID`), each with its TTL; an index per
//! organisation lists them and bounds how many there are.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use cg_service_kit::ApiError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::state::{ContextState, namespace};

/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 255;
/// Longest TTL, seconds (a year).
pub const MAX_TTL_SECS: u64 = 31_536_000;

#[derive(Debug, Deserialize)]
pub struct PutItem {
    pub key: String,
    pub value: Value,
    /// Seconds; 0 keeps the item until it is deleted; absent means `CONTEXTGUARD_DEFAULT_TTL`.
    #[serde(default)]
    pub ttl: Option<u64>,
}

/// What is stored under an item's key.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    value: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    ttl: u64,
}

/// What the index holds per key.
#[derive(Debug, Serialize, Deserialize)]
struct IndexEntry {
    bytes: usize,
    expires_at: Option<DateTime<Utc>>,
}

fn item_key(ns: &str, key: &str) -> String {
    format!("mem:{ns}:{key}")
}

fn index_key(ns: &str) -> String {
    format!("idx:{ns}")
}

fn check_key(key: &str) -> Result<(), ApiError> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_KEY_CHARS {
        return Err(ApiError::bad_request(format!(
            "key must be 1–{MAX_KEY_CHARS} characters (got {chars})"
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "key must not contain control characters",
        ));
    }
    Ok(())
}

/// The live index entries, dropping the expired ones from the index as it goes.
async fn live_index(state: &ContextState, ns: &str) -> Result<Vec<(String, IndexEntry)>, ApiError> {
    let now = Utc::now();
    let mut live = Vec::new();
    for (key, raw) in state.store.hgetall(&index_key(ns)).await? {
        match serde_json::from_slice::<IndexEntry>(&raw) {
            Ok(entry) if entry.expires_at.is_none_or(|t| t > now) => live.push((key, entry)),
            _ => state.store.hdel(&index_key(ns), &key).await?,
        }
    }
    live.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(live)
}

pub async fn put(
    req: HttpRequest,
    state: web::Data<ContextState>,
    body: web::Json<PutItem>,
) -> Result<HttpResponse, ApiError> {
    let ns = namespace(&req)?;
    let PutItem { key, value, ttl } = body.into_inner();
    check_key(&key)?;
    let ttl = ttl.unwrap_or(state.default_ttl.as_secs());
    if ttl > MAX_TTL_SECS {
        return Err(ApiError::bad_request(format!(
            "ttl must be 0–{MAX_TTL_SECS} seconds"
        )));
    }
    let bytes = serde_json::to_vec(&value)
        .map_err(ApiError::internal)?
        .len();
    if bytes > state.limits.max_value_bytes {
        return Err(ApiError::payload_too_large(format!(
            "value is {bytes} bytes; the limit is {}",
            state.limits.max_value_bytes
        )));
    }
    let full = item_key(&ns, &key);
    let previous = state.store.get(&full).await?;
    let now = Utc::now();
    let created_at = previous
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Stored>(b).ok())
        .map_or(now, |s| s.created_at);
    if previous.is_none() {
        let live = live_index(&state, &ns).await?;
        if live.len() >= state.limits.max_items && !live.iter().any(|(k, _)| *k == key) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "item_limit_reached",
                format!(
                    "this organisation already holds {} memory items (the limit); delete some first",
                    live.len()
                ),
            ));
        }
    }
    let lifetime = (ttl > 0).then(|| Duration::from_secs(ttl));
    let stored = Stored {
        value,
        created_at,
        updated_at: now,
        ttl,
    };
    let encoded = serde_json::to_vec(&stored).map_err(ApiError::internal)?;
    state.store.set(&full, &encoded, lifetime).await?;
    let expires_at = lifetime
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now + d);
    let entry =
        serde_json::to_vec(&IndexEntry { bytes, expires_at }).map_err(ApiError::internal)?;
    state.store.hset(&index_key(&ns), &key, &entry).await?;
    let status = if previous.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(json!({
        "key": key,
        "stored": true,
        "created": previous.is_none(),
        "ttl": ttl,
        "expires_at": expires_at,
        "bytes": bytes,
    })))
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<ContextState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ns = namespace(&req)?;
    check_key(&key)?;
    let full = item_key(&ns, &key);
    let Some(raw) = state.store.get(&full).await? else {
        return Err(ApiError::not_found(format!("no memory item {key:?}")));
    };
    let stored: Stored = serde_json::from_slice(&raw).map_err(ApiError::internal)?;
    let ttl_remaining = state.store.ttl(&full).await?.map(|d| d.as_secs());
    Ok(HttpResponse::Ok().json(json!({
        "key": key.as_str(),
        "value": stored.value,
        "ttl": stored.ttl,
        "ttl_remaining": ttl_remaining,
        "created_at": stored.created_at,
        "updated_at": stored.updated_at,
    })))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<ContextState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let ns = namespace(&req)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let offset = query.offset.unwrap_or(0);
    let live = live_index(&state, &ns).await?;
    let matching: Vec<&(String, IndexEntry)> = live
        .iter()
        .filter(|(k, _)| query.prefix.as_deref().is_none_or(|p| k.starts_with(p)))
        .collect();
    let items: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(k, e)| json!({"key": k, "bytes": e.bytes, "expires_at": e.expires_at}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "items": items,
        "total": matching.len(),
        "limit": limit,
        "offset": offset,
    })))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<ContextState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ns = namespace(&req)?;
    check_key(&key)?;
    let full = item_key(&ns, &key);
    let existed = state.store.get(&full).await?.is_some();
    state.store.delete(&full).await?;
    state.store.hdel(&index_key(&ns), &key).await?;
    if !existed {
        return Err(ApiError::not_found(format!("no memory item {key:?}")));
    }
    Ok(HttpResponse::Ok().json(json!({"key": key.as_str(), "deleted": true})))
}
