//! Conversations and drift: `POST /v1/drift` (score a turn against the session's running topic,
//! then remember it), `POST /analyze` (code drift between two versions; conversation drift too
//! when a `session_id` is given), the session's window, the earlier turns relevant to a query, and
//! the drift thresholds every replica follows.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use cg_service_kit::ApiError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::analysis::{DriftSettings, Topic, code_drift};
use crate::retrieval::{estimate_tokens, rank};
use crate::state::{ContextState, DRIFT_CONFIG_KEY, namespace};

/// One remembered turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Turn {
    pub id: String,
    pub role: String,
    pub content: String,
    pub tokens: usize,
    pub at: DateTime<Utc>,
}

fn conversation_key(ns: &str, session: &str) -> String {
    format!("conv:{ns}:{session}")
}

fn check_session(session: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&session.len())
        && session
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "session_id must be 1–128 characters of A–Z, a–z, 0–9, '-', '_', '.', ':'",
        ))
    }
}

fn check_role(role: &str) -> Result<(), ApiError> {
    if (1..=32).contains(&role.len()) && role.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "role must be 1–32 characters of A–Z, a–z, 0–9, '_'",
        ))
    }
}

/// Every stored turn of a session, oldest first (ids are UUIDv7: time order).
async fn load(state: &ContextState, ns: &str, session: &str) -> Result<Vec<Turn>, ApiError> {
    let raw = state.store.hgetall(&conversation_key(ns, session)).await?;
    let mut turns: Vec<Turn> = raw
        .into_values()
        .filter_map(|v| serde_json::from_slice(&v).ok())
        .collect();
    turns.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(turns)
}

/// The most recent turns within both window bounds (at least the newest one).
pub fn window(turns: &[Turn], max_turns: usize, max_tokens: usize) -> &[Turn] {
    let mut tokens = 0;
    let mut start = turns.len();
    while start > 0 {
        let next = &turns[start - 1];
        let taken = turns.len() - start;
        if taken >= max_turns || (taken > 0 && tokens + next.tokens > max_tokens) {
            break;
        }
        tokens += next.tokens;
        start -= 1;
    }
    &turns[start..]
}

/// The running topic of a window.
fn topic_of(turns: &[Turn], settings: &DriftSettings) -> Topic {
    let mut topic = Topic::default();
    for t in turns {
        topic.absorb(&t.content, settings);
    }
    topic
}

/// Score `text` against the session, remember it (unless `remember` is false) and answer.
async fn conversation_drift(
    state: &ContextState,
    ns: &str,
    session: &str,
    text: &str,
    role: &str,
    remember: bool,
) -> Result<Value, ApiError> {
    check_session(session)?;
    check_role(role)?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("text must not be empty"));
    }
    if text.len() > state.limits.max_turn_bytes {
        return Err(ApiError::payload_too_large(format!(
            "a turn is limited to {} bytes",
            state.limits.max_turn_bytes
        )));
    }
    let settings = state.drift_settings();
    let turns = load(state, ns, session).await?;
    let window = window(
        &turns,
        state.limits.window_turns,
        state.limits.window_tokens,
    );
    let topic = topic_of(window, &settings);
    let drift = topic.score(text, &settings);
    let mut stored_turns = turns.len();
    let mut turn_id = None;
    if remember {
        let turn = Turn {
            id: uuid::Uuid::now_v7().to_string(),
            role: role.to_owned(),
            content: text.to_owned(),
            tokens: estimate_tokens(text),
            at: Utc::now(),
        };
        let key = conversation_key(ns, session);
        let encoded = serde_json::to_vec(&turn).map_err(ApiError::internal)?;
        state.store.hset(&key, &turn.id, &encoded).await?;
        state.store.expire(&key, state.default_ttl).await?;
        let excess = (turns.len() + 1).saturating_sub(state.limits.max_turns);
        for old in turns.iter().take(excess) {
            state.store.hdel(&key, &old.id).await?;
        }
        stored_turns = turns.len() + 1 - excess;
        turn_id = Some(turn.id);
    }
    let mut answer = serde_json::to_value(&drift).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut answer {
        map.insert("session_id".into(), json!(session));
        map.insert("session_turns".into(), json!(stored_turns));
        map.insert("window_turns".into(), json!(window.len()));
        map.insert("turn_id".into(), json!(turn_id));
        map.insert("thresholds".into(), json!(settings));
    }
    Ok(answer)
}

#[derive(Debug, Deserialize)]
pub struct DriftRequest {
    pub session_id: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    /// Remember the turn (default true); false only scores it.
    #[serde(default)]
    pub store: Option<bool>,
}

pub async fn drift(
    req: HttpRequest,
    state: web::Data<ContextState>,
    body: web::Json<DriftRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let ns = namespace(&req)?;
    let text = body
        .text
        .as_deref()
        .or(body.content.as_deref())
        .ok_or_else(|| ApiError::bad_request("text is required"))?;
    let mut answer = conversation_drift(
        &state,
        &ns,
        &body.session_id,
        text,
        body.role.as_deref().unwrap_or("user"),
        body.store.unwrap_or(true),
    )
    .await?;
    answer["processing_time_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Debug, Deserialize)]
pub struct AnalyzeRequest {
    #[serde(default)]
    pub current_code: Option<String>,
    /// Aliases of `current_code` (the gateway may send several; `current_code` wins).
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub previous_code: Option<String>,
    #[serde(default)]
    pub context: Option<Value>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

pub async fn analyze(
    req: HttpRequest,
    state: web::Data<ContextState>,
    body: web::Json<AnalyzeRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let ns = namespace(&req)?;
    let current = body
        .current_code
        .as_deref()
        .or(body.text.as_deref())
        .or(body.content.as_deref())
        .ok_or_else(|| ApiError::bad_request("current_code (or text) is required"))?;
    let mut answer = match (&body.session_id, &body.previous_code) {
        // A conversation turn: drift against the session's topic.
        (Some(session), None) => {
            conversation_drift(
                &state,
                &ns,
                session,
                current,
                body.role.as_deref().unwrap_or("user"),
                true,
            )
            .await?
        }
        // Two versions (an empty previous one included): the line diff, plus the session's
        // drift when one is named.
        (session, previous) => {
            let mut code =
                serde_json::to_value(code_drift(previous.as_deref().unwrap_or(""), current))
                    .map_err(ApiError::internal)?;
            if let Some(session) = session {
                let turn = conversation_drift(
                    &state,
                    &ns,
                    session,
                    current,
                    body.role.as_deref().unwrap_or("user"),
                    true,
                )
                .await?;
                code["conversation"] = turn;
            }
            code
        }
    };
    if let Some(context) = &body.context {
        answer["context"] = context.clone();
    }
    answer["processing_time_ms"] = json!(started.elapsed().as_secs_f64() * 1000.0);
    Ok(HttpResponse::Ok().json(answer))
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<ContextState>,
    session: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ns = namespace(&req)?;
    check_session(&session)?;
    let turns = load(&state, &ns, &session).await?;
    if turns.is_empty() {
        return Err(ApiError::not_found(format!(
            "no conversation {:?}",
            session.as_str()
        )));
    }
    let settings = state.drift_settings();
    let window = window(
        &turns,
        state.limits.window_turns,
        state.limits.window_tokens,
    );
    let topic = topic_of(window, &settings);
    Ok(HttpResponse::Ok().json(json!({
        "session_id": session.as_str(),
        "session_turns": turns.len(),
        "window": window,
        "window_tokens": window.iter().map(|t| t.tokens).sum::<usize>(),
        "topic_terms": topic.top_terms(10).into_iter().map(|(t, w)| json!({"term": t, "weight": w})).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
pub struct RelevantQuery {
    pub query: String,
    #[serde(default)]
    pub k: Option<usize>,
}

pub async fn relevant(
    req: HttpRequest,
    state: web::Data<ContextState>,
    session: web::Path<String>,
    query: web::Query<RelevantQuery>,
) -> Result<HttpResponse, ApiError> {
    let ns = namespace(&req)?;
    check_session(&session)?;
    if query.query.trim().is_empty() {
        return Err(ApiError::bad_request("query must not be empty"));
    }
    let k = query.k.unwrap_or(3).clamp(1, 50);
    let turns = load(&state, &ns, &session).await?;
    let documents: Vec<&str> = turns.iter().map(|t| t.content.as_str()).collect();
    let hits: Vec<Value> = rank(&documents, &query.query, k)
        .into_iter()
        .filter_map(|h| {
            turns
                .get(h.index)
                .map(|t| json!({"turn": t, "score": h.score, "matched_terms": h.matched_terms}))
        })
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"session_id": session.as_str(), "query": query.query, "results": hits})))
}

pub async fn forget(
    req: HttpRequest,
    state: web::Data<ContextState>,
    session: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ns = namespace(&req)?;
    check_session(&session)?;
    let turns = load(&state, &ns, &session).await?;
    if turns.is_empty() {
        return Err(ApiError::not_found(format!(
            "no conversation {:?}",
            session.as_str()
        )));
    }
    state.store.delete(&conversation_key(&ns, &session)).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"session_id": session.as_str(), "deleted_turns": turns.len()})))
}

pub async fn get_thresholds(state: web::Data<ContextState>) -> Result<HttpResponse, ApiError> {
    state.refresh_drift().await?;
    Ok(HttpResponse::Ok().json(state.drift_settings()))
}

pub async fn put_thresholds(
    state: web::Data<ContextState>,
    body: web::Json<DriftSettings>,
) -> Result<HttpResponse, ApiError> {
    let settings = body.into_inner();
    settings.validate().map_err(ApiError::bad_request)?;
    let encoded = serde_json::to_vec(&settings).map_err(ApiError::internal)?;
    state.store.set(DRIFT_CONFIG_KEY, &encoded, None).await?;
    if let Ok(mut d) = state.drift.write() {
        *d = settings.clone();
    }
    Ok(HttpResponse::Ok().json(settings))
}
