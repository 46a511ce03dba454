//! A subscription tier as a platform administrator defines it: validated here, so a stored tier
//! always has a usable name, positive limits, known guards and an object of features.

use cg_guard_api::GuardKind;
use cg_storage::models::SubscriptionTierUpdate;
use serde::Deserialize;

use crate::error::GatewayError;

/// Longest tier name.
const MAX_NAME_CHARS: usize = 32;
/// Highest per-minute limit a tier may set.
const MAX_PER_MINUTE: i64 = 1_000_000;
/// Highest amount (USD) a budget or price may take.
const MAX_USD: f64 = 1_000_000_000.0;

/// A tier's name: 1 to 32 lower-case letters, digits, `_` or `-`, starting with a letter (it
/// appears in configuration such as `DEFAULT_TIER` and `rate_limits.tiers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierName(String);

impl TierName {
    pub fn parse(raw: &str) -> Result<Self, GatewayError> {
        let ok = raw.len() <= MAX_NAME_CHARS
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(GatewayError::Invalid(format!(
                "a tier name is 1 to {MAX_NAME_CHARS} lower-case letters, digits, _ or -, starting with a letter"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tier as sent: every field optional, since an update sends a subset. A creation must send
/// `name`, `requests_per_minute`, `requests_per_month` and `guards_allowed` (`display_name`
/// defaults to the name, budget and price to 0, `features` to `{}`, `is_active` to true); an
/// update may not send `name` (subscriptions and configuration refer to it).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierFields {
    /// 1–32 lower-case letters, digits, `_` or `-`, starting with a letter (creation only).
    pub name: Option<String>,
    /// Shown to people (1–200 characters).
    pub display_name: Option<String>,
    /// Guard calls per minute (1–1,000,000); rate limits scale from it.
    pub requests_per_minute: Option<i64>,
    /// Guard calls per calendar month (≥ 1).
    pub requests_per_month: Option<i64>,
    /// Monthly budget in USD (0 for none).
    pub monthly_budget_usd: Option<f64>,
    /// Guard names the tier may call, or `["*"]` for every guard.
    pub guards_allowed: Option<Vec<String>>,
    /// Monthly price in USD (informational).
    pub price_usd_monthly: Option<f64>,
    /// Feature flags, e.g. `{"ab_testing": true}`.
    #[schema(value_type = Option<Object>)]
    pub features: Option<serde_json::Value>,
    /// Whether it is offered (listed) and may be assigned.
    pub is_active: Option<bool>,
}

fn usd(value: f64, field: &str, scale: f64) -> Result<i64, GatewayError> {
    if !value.is_finite() || !(0.0..=MAX_USD).contains(&value) {
        return Err(GatewayError::Invalid(format!(
            "{field} must be between 0 and {MAX_USD}"
        )));
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "bounded above: at most 1e9 × 1e6, well inside i64"
    )]
    Ok((value * scale).round() as i64)
}

impl TierFields {
    /// Check every field that is present (not `name`), converted to what is stored.
    pub fn validate(&self) -> Result<SubscriptionTierUpdate, GatewayError> {
        let display_name = match &self.display_name {
            Some(name) => Some(crate::domain::OrgName::parse(name).map_err(|_| {
                GatewayError::Invalid(
                    "display_name must be 1 to 200 characters without control characters".into(),
                )
            })?),
            None => None,
        };
        let requests_per_minute = match self.requests_per_minute {
            Some(n) if (1..=MAX_PER_MINUTE).contains(&n) => Some(i32::try_from(n).unwrap_or(0)),
            Some(_) => {
                return Err(GatewayError::Invalid(format!(
                    "requests_per_minute must be between 1 and {MAX_PER_MINUTE}"
                )));
            }
            None => None,
        };
        if self.requests_per_month.is_some_and(|n| n < 1) {
            return Err(GatewayError::Invalid(
                "requests_per_month must be at least 1".into(),
            ));
        }
        let guards_allowed = match &self.guards_allowed {
            Some(guards) => Some(guard_list(guards)?),
            None => None,
        };
        if self.features.as_ref().is_some_and(|f| !f.is_object()) {
            return Err(GatewayError::Invalid(
                "features must be an object of flags".into(),
            ));
        }
        Ok(SubscriptionTierUpdate {
            display_name: display_name.map(|n| n.as_str().to_owned()),
            requests_per_minute,
            requests_per_month: self.requests_per_month,
            monthly_budget_usd_micros: self
                .monthly_budget_usd
                .map(|v| usd(v, "monthly_budget_usd", 1e6))
                .transpose()?,
            guards_allowed,
            price_usd_cents_monthly: self
                .price_usd_monthly
                .map(|v| usd(v, "price_usd_monthly", 100.0))
                .transpose()?,
            features: self.features.clone(),
            is_active: self.is_active,
            updated_at: None,
        })
    }
}

/// Known guard names (each once), or `*` alone.
fn guard_list(guards: &[String]) -> Result<serde_json::Value, GatewayError> {
    if guards.iter().any(|g| g == "*") {
        return if guards.len() == 1 {
            Ok(serde_json::json!(["*"]))
        } else {
            Err(GatewayError::Invalid(
                "guards_allowed: \"*\" stands alone".into(),
            ))
        };
    }
    let mut names: Vec<&'static str> = Vec::with_capacity(guards.len());
    for g in guards {
        let kind: GuardKind = g
            .parse()
            .map_err(|e: cg_guard_api::UnknownGuard| GatewayError::Invalid(e.to_string()))?;
        if names.contains(&kind.name()) {
            return Err(GatewayError::Invalid(format!(
                "guards_allowed names {g} twice"
            )));
        }
        names.push(kind.name());
    }
    Ok(serde_json::json!(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lower_case_identifiers() {
        for ok in ["free", "team-2", "self_hosted"] {
            assert!(TierName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Team", "2fast", "a b", &"x".repeat(33)] {
            assert!(TierName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fields_are_checked_and_converted() {
        let fields: TierFields = serde_json::from_value(serde_json::json!({
            "requests_per_minute": 300,
            "monthly_budget_usd": 12.5,
            "price_usd_monthly": 29.99,
            "guards_allowed": ["TokenGuard", "biasguard"],
        }))
        .unwrap();
        let valid = fields.validate().unwrap();
        assert_eq!(valid.requests_per_minute, Some(300));
        assert_eq!(valid.monthly_budget_usd_micros, Some(12_500_000));
        assert_eq!(valid.price_usd_cents_monthly, Some(2999));
        assert_eq!(
            valid.guards_allowed,
            Some(serde_json::json!(["tokenguard", "biasguard"]))
        );
    }

    #[test]
    fn bad_fields_are_refused() {
        for bad in [
            serde_json::json!({"requests_per_minute": 0}),
            serde_json::json!({"requests_per_month": 0}),
            serde_json::json!({"monthly_budget_usd": -1.0}),
            serde_json::json!({"guards_allowed": ["nosuchguard"]}),
            serde_json::json!({"guards_allowed": ["*", "tokenguard"]}),
            serde_json::json!({"guards_allowed": ["tokenguard", "tokenguard"]}),
            serde_json::json!({"features": [1]}),
            serde_json::json!({"display_name": ""}),
        ] {
            let fields: TierFields = serde_json::from_value(bad.clone()).unwrap();
            assert!(fields.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<TierFields>(serde_json::json!({"nmae": "x"})).is_err());
    }
}
