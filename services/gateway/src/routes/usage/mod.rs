//! `GET /api/v1/usage` (the organisation's usage by hour or day) and
//! `GET /api/v1/subscriptions/usage` (this month against the tier's quota). Figures come from
//! `usage_records`, which the replicas bring up to date every second.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use cg_storage::models::UsageRecord;
use cg_storage::sql_types::Timestamp;
use chrono::{Datelike, Duration, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::openapi::path::HttpMethod;

use crate::api_doc::Endpoint;
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::routes::query::{invalid_query, parse_time};
use crate::state::AppState;

/// The longest range one call may ask for, per granularity.
const MAX_HOURS: i64 = 31 * 24;
const MAX_DAYS: i64 = 366;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/usage",
            || web::get().to(usage),
            "usage",
            "Requests, guard calls, tokens, cost and latency by hour or day",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/subscriptions/usage",
            || web::get().to(month),
            "subscriptions",
            "This month's guard calls and cost against the tier's quota and budget",
        ),
    ]
}

/// `?from=&to=&granularity=hour|day`.
#[derive(Debug, Deserialize)]
pub struct UsageQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub granularity: Option<String>,
}

fn invalid(message: String, parameter: &str) -> GatewayError {
    invalid_query(message, json!({"parameter": parameter}))
}

fn micros_to_usd(m: i64) -> f64 {
    m as f64 / 1e6
}

/// One period's figures from its rows: the request rows (`guard` empty) by endpoint, the guard
/// rows by guard.
fn bucket(period: &str, rows: &[&UsageRecord]) -> Value {
    let requests: Vec<&&UsageRecord> = rows.iter().filter(|r| r.guard.is_empty()).collect();
    let calls: Vec<&&UsageRecord> = rows.iter().filter(|r| !r.guard.is_empty()).collect();
    let total =
        |f: fn(&UsageRecord) -> i64, of: &[&&UsageRecord]| of.iter().map(|r| f(r)).sum::<i64>();
    let n = total(|r| r.requests, &requests);
    let mut by_endpoint = BTreeMap::new();
    for r in &requests {
        by_endpoint.insert(
            r.endpoint.clone(),
            json!({"requests": r.requests, "errors": r.errors}),
        );
    }
    let mut by_guard = BTreeMap::new();
    for r in &calls {
        by_guard.insert(
            r.guard.clone(),
            json!({
                "calls": r.requests,
                "errors": r.errors,
                "tokens": r.tokens_input + r.tokens_output,
                "cost_usd": micros_to_usd(r.cost_usd_micros),
                "latency_ms_avg": if r.requests > 0 { r.latency_ms_total as f64 / r.requests as f64 } else { 0.0 },
                "latency_ms_max": r.latency_ms_max,
            }),
        );
    }
    json!({
        "period_start": period,
        "requests": n,
        "errors": total(|r| r.errors, &requests),
        "latency_ms_avg": if n > 0 { total(|r| r.latency_ms_total, &requests) as f64 / n as f64 } else { 0.0 },
        "latency_ms_max": requests.iter().map(|r| r.latency_ms_max).max().unwrap_or(0),
        "guard_calls": total(|r| r.requests, &calls),
        "tokens_input": total(|r| r.tokens_input, &calls),
        "tokens_output": total(|r| r.tokens_output, &calls),
        "cost_usd": micros_to_usd(total(|r| r.cost_usd_micros, &calls)),
        "by_endpoint": by_endpoint,
        "by_guard": by_guard,
    })
}

/// `GET /api/v1/usage`: default the last 24 hours by hour.
pub async fn usage(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse> {
    let granularity = query.granularity.as_deref().unwrap_or("hour");
    let (span, max) = match granularity {
        "hour" => (Duration::hours(1), MAX_HOURS),
        "day" => (Duration::days(1), MAX_DAYS),
        other => {
            return Err(invalid(
                format!("granularity {other:?} is not one of: hour, day"),
                "granularity",
            ));
        }
    };
    let to = match &query.to {
        Some(raw) => parse_time("to", raw)?,
        None => Utc::now(),
    };
    let from = match &query.from {
        Some(raw) => parse_time("from", raw)?,
        None => to - Duration::hours(24),
    };
    if from >= to {
        return Err(invalid("from must be before to".into(), "from"));
    }
    if (to - from).num_seconds() > max * span.num_seconds() {
        return Err(invalid(
            format!("at most {max} {granularity}s per call"),
            "to",
        ));
    }
    // Whole periods: the one `from` falls in up to the one before `to`.
    let secs = from.timestamp();
    let aligned = Utc
        .timestamp_opt(secs - secs.rem_euclid(span.num_seconds()), 0)
        .single()
        .unwrap_or(from);
    let mut pooled = state.db.get().await?;
    let rows = UsageRecord::list(
        &mut pooled.conn(),
        caller.organization_id,
        granularity,
        aligned.into(),
        to.into(),
    )
    .await?;
    let mut periods: BTreeMap<String, Vec<&UsageRecord>> = BTreeMap::new();
    for r in &rows {
        periods
            .entry(
                r.period_start
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .or_default()
            .push(r);
    }
    let buckets: Vec<Value> = periods.iter().map(|(p, rs)| bucket(p, rs)).collect();
    let all: Vec<&UsageRecord> = rows.iter().collect();
    let mut totals = bucket("", &all);
    if let Value::Object(m) = &mut totals {
        m.remove("period_start");
    }
    Ok(HttpResponse::Ok().json(json!({
        "granularity": granularity,
        "from": aligned.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "to": to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "buckets": buckets,
        "totals": totals,
    })))
}

/// `GET /api/v1/subscriptions/usage`: this calendar month (UTC).
pub async fn month(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    let profile = state.org_profiles.get(caller.organization_id).await?;
    let now = Utc::now();
    let start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    let used = state.usage.month_requests(caller.organization_id).await;
    let mut pooled = state.db.get().await?;
    let days = UsageRecord::list(
        &mut pooled.conn(),
        caller.organization_id,
        "day",
        start.into(),
        Timestamp::now(),
    )
    .await?;
    let all: Vec<&UsageRecord> = days.iter().collect();
    let figures = bucket("", &all);
    let quota = profile.requests_per_month;
    let budget = profile.monthly_budget_usd_micros;
    let spent = state.budgets.spent(caller.organization_id).await;
    Ok(HttpResponse::Ok().json(json!({
        "tier": profile.tier,
        "period_start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "guard_requests": used,
        "quota": quota,
        "remaining": if quota > 0 { json!((i64::try_from(quota).unwrap_or(i64::MAX) - used).max(0)) } else { Value::Null },
        "requests": figures["requests"],
        "guard_calls": figures["guard_calls"],
        "tokens_input": figures["tokens_input"],
        "cost_usd": figures["cost_usd"],
        "budget_usd": if budget > 0 { json!(budget as f64 / 1e6) } else { Value::Null },
        "budget_spent_usd": spent.map(|m| m as f64 / 1e6),
        "by_guard": figures["by_guard"],
    })))
}
