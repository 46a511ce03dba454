//! Query-string helpers shared by the routes: the `invalid_query` error and RFC 3339 times.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{GatewayError, Result};

/// 400 `invalid_query` with `details` (at least `{"parameter": …}`).
pub fn invalid_query(message: String, details: Value) -> GatewayError {
    GatewayError::BadRequest {
        code: "invalid_query",
        message,
        details,
    }
}

/// `?limit=&offset=` as the list routes read them: `limit` defaults to `default` and is brought
/// into 1..=`max`, `offset` defaults to 0 and is at least 0 (the answer says which were used).
pub fn page(limit: Option<i64>, offset: Option<i64>, default: i64, max: i64) -> (i64, i64) {
    (
        limit.unwrap_or(default).clamp(1, max),
        offset.unwrap_or(0).max(0),
    )
}

/// An RFC 3339 time from a query string, where an unencoded `+` of the offset arrives as a space.
pub fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(raw).or_else(|e| match raw.rsplit_once(' ') {
        Some((head, offset)) if offset.len() == 5 && offset.as_bytes().get(2) == Some(&b':') => {
            DateTime::parse_from_rfc3339(&format!("{head}+{offset}"))
        }
        _ => Err(e),
    });
    parsed.map(|t| t.with_timezone(&Utc)).map_err(|e| {
        invalid_query(
            format!(
                "{field} must be an RFC 3339 time such as 2026-01-31T12:00:00Z ({e}); encode + as %2B"
            ),
            serde_json::json!({"parameter": field}),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_an_unencoded_plus_are_read() {
        let a = parse_time("since", "2026-01-31T12:00:00+01:00").unwrap();
        let b = parse_time("since", "2026-01-31T12:00:00 01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2026-01-31T11:00:00+00:00");
        assert!(parse_time("since", "yesterday").is_err());
    }
}
