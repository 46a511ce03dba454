//! What an experiment is made of, as the API accepts it and the database stores it: variants with
//! their traffic split and guard overrides, the metrics to compare, and the audience. Checked
//! once here; the stored documents are always ones this module accepted.

use std::collections::HashSet;

use cg_guard_api::GuardKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{GatewayError, Result};

pub const MIN_VARIANTS: usize = 2;
pub const MAX_VARIANTS: usize = 10;
pub const MAX_SECONDARY_METRICS: usize = 20;
const MAX_NAME_CHARS: usize = 64;
/// Guard options are a few fields per guard; anything larger is a mistake.
const MAX_OPTIONS_BYTES: usize = 16 * 1024;
/// How far from 1 (or 100) the splits may add up to.
const SPLIT_TOLERANCE: f64 = 1e-6;
pub const CLIENT_TYPES: [&str; 4] = ["web", "vscode", "chrome", "api"];

/// Verdict thresholds a variant uses instead of the organisation's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<f64>,
}

/// How a variant changes the routing of its users' requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// The guards a multi-guard request (`service_type: "all"` or `services`) runs instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// The verdict thresholds of a multi-guard request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<ThresholdOverride>,
    /// Per guard, fields set on the request sent to it (e.g. `{"trustguard": {"threshold": 7}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub guard_options: Option<Map<String, Value>>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.services.is_none() && self.thresholds.is_none() && self.guard_options.is_none()
    }
}

/// One variant. The first one of an experiment is its control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    /// Share of the audience: fractions adding up to 1, or percentages adding up to 100.
    pub traffic_split: f64,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub overrides: Overrides,
}

/// `conversion` (each result 0/1 or false/true; compared by a two-proportion z-test) or `mean`
/// (any number; compared by Welch's t-test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Conversion,
    Mean,
}

/// A metric results report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MetricKind,
}

/// A metric as the API accepts it: a name (a mean) or `{name, type}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MetricSpec {
    Name(String),
    Full(Metric),
}

impl MetricSpec {
    fn into_metric(self) -> Metric {
        match self {
            Self::Name(name) => Metric {
                name,
                kind: MetricKind::Mean,
            },
            Self::Full(m) => m,
        }
    }
}

/// Who takes part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Share of users in the experiment, 0 < p ≤ 100 (default 100).
    #[serde(default = "all")]
    pub percentage: f64,
    /// Only requests from these clients (default: every client).
    #[serde(default)]
    pub client_types: Vec<String>,
}

fn all() -> f64 {
    100.0
}

impl Default for Audience {
    fn default() -> Self {
        Self {
            percentage: 100.0,
            client_types: Vec::new(),
        }
    }
}

/// A whole, checked design.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    pub variants: Vec<Variant>,
    pub primary_metric: Metric,
    pub secondary_metrics: Vec<Metric>,
    pub audience: Audience,
}

fn invalid(message: impl Into<String>) -> GatewayError {
    GatewayError::Invalid(message.into())
}

/// Names of variants and metrics: what can sit in a URL, a JSON key and a log line unescaped.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(invalid(format!(
            "{what} `{name}` must be 1 to {MAX_NAME_CHARS} letters, digits, `_`, `-` or `.`"
        )));
    }
    Ok(())
}

fn guard(name: &str) -> Option<GuardKind> {
    GuardKind::ALL.into_iter().find(|k| k.name() == name)
}

fn guard_names() -> String {
    GuardKind::ALL.map(GuardKind::name).join(", ")
}

fn check_overrides(variant: &str, o: &mut Overrides) -> Result<()> {
    if let Some(services) = &mut o.services {
        if services.is_empty() {
            return Err(invalid(format!(
                "variant `{variant}`: overrides.services must name at least one guard"
            )));
        }
        for s in services.iter() {
            if guard(s).is_none() {
                return Err(invalid(format!(
                    "variant `{variant}`: unknown guard `{s}` in overrides.services (valid: {})",
                    guard_names()
                )));
            }
        }
        services.sort_by_key(|s| guard(s));
        services.dedup();
    }
    if let Some(t) = o.thresholds {
        for v in [t.flag, t.block].into_iter().flatten() {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(format!(
                    "variant `{variant}`: thresholds must be between 0 and 1"
                )));
            }
        }
        if let (Some(flag), Some(block)) = (t.flag, t.block)
            && flag > block
        {
            return Err(invalid(format!(
                "variant `{variant}`: the flag threshold must not exceed the block threshold"
            )));
        }
    }
    if let Some(options) = &o.guard_options {
        for (name, fields) in options {
            if guard(name).is_none() {
                return Err(invalid(format!(
                    "variant `{variant}`: unknown guard `{name}` in overrides.guard_options (valid: {})",
                    guard_names()
                )));
            }
            let Some(fields) = fields.as_object() else {
                return Err(invalid(format!(
                    "variant `{variant}`: overrides.guard_options.{name} must be an object"
                )));
            };
            if let Some(input) = fields
                .keys()
                .find(|k| crate::guards::mapping::INPUT_FIELDS.contains(&k.as_str()))
            {
                return Err(invalid(format!(
                    "variant `{variant}`: overrides.guard_options.{name}.{input} would replace the caller's input; options may only change how the guard judges it"
                )));
            }
        }
        if Value::Object(options.clone()).to_string().len() > MAX_OPTIONS_BYTES {
            return Err(invalid(format!(
                "variant `{variant}`: overrides.guard_options must be at most {MAX_OPTIONS_BYTES} bytes of JSON"
            )));
        }
    }
    Ok(())
}

/// Check variants and bring their splits to fractions of 1.
pub fn check_variants(mut variants: Vec<Variant>) -> Result<Vec<Variant>> {
    if !(MIN_VARIANTS..=MAX_VARIANTS).contains(&variants.len()) {
        return Err(invalid(format!(
            "an experiment has {MIN_VARIANTS} to {MAX_VARIANTS} variants (the first is the control)"
        )));
    }
    let mut seen = HashSet::new();
    for v in &mut variants {
        check_name("variant name", &v.name)?;
        if !seen.insert(v.name.clone()) {
            return Err(invalid(format!("variant `{}` is named twice", v.name)));
        }
        if !(v.traffic_split.is_finite() && v.traffic_split > 0.0) {
            return Err(invalid(format!(
                "variant `{}`: traffic_split must be a positive number",
                v.name
            )));
        }
        v.description = v.description.trim().to_owned();
        if v.description.chars().count() > 500 {
            return Err(invalid(format!(
                "variant `{}`: description must be at most 500 characters",
                v.name
            )));
        }
        check_overrides(&v.name, &mut v.overrides)?;
    }
    let sum: f64 = variants.iter().map(|v| v.traffic_split).sum();
    let scale = if (sum - 1.0).abs() <= SPLIT_TOLERANCE {
        1.0
    } else if (sum - 100.0).abs() <= SPLIT_TOLERANCE * 100.0 {
        100.0
    } else {
        return Err(invalid(format!(
            "traffic splits must add up to 1 (or 100); these add up to {sum}"
        )));
    };
    for v in &mut variants {
        v.traffic_split /= scale;
    }
    Ok(variants)
}

/// Check the metrics: a primary one and up to twenty others, every name once.
pub fn check_metrics(
    primary: MetricSpec,
    secondary: Vec<MetricSpec>,
) -> Result<(Metric, Vec<Metric>)> {
    if secondary.len() > MAX_SECONDARY_METRICS {
        return Err(invalid(format!(
            "at most {MAX_SECONDARY_METRICS} secondary metrics"
        )));
    }
    let primary = primary.into_metric();
    let secondary: Vec<Metric> = secondary.into_iter().map(MetricSpec::into_metric).collect();
    let mut seen = HashSet::new();
    for m in std::iter::once(&primary).chain(&secondary) {
        check_name("metric name", &m.name)?;
        if !seen.insert(m.name.as_str()) {
            return Err(invalid(format!("metric `{}` is named twice", m.name)));
        }
    }
    Ok((primary, secondary))
}

pub fn check_audience(mut audience: Audience) -> Result<Audience> {
    if !(audience.percentage.is_finite()
        && audience.percentage > 0.0
        && audience.percentage <= 100.0)
    {
        return Err(invalid(
            "audience.percentage must be more than 0 and at most 100",
        ));
    }
    for c in &audience.client_types {
        if !CLIENT_TYPES.contains(&c.as_str()) {
            return Err(invalid(format!(
                "audience.client_types: `{c}` is not one of {}",
                CLIENT_TYPES.join(", ")
            )));
        }
    }
    audience.client_types.sort();
    audience.client_types.dedup();
    Ok(audience)
}

pub fn check_confidence(level: f64) -> Result<f64> {
    if (0.5..=0.999).contains(&level) {
        Ok(level)
    } else {
        Err(invalid("confidence_level must be between 0.5 and 0.999"))
    }
}

impl Design {
    /// Read back what was stored (it was checked on the way in).
    pub fn from_stored(
        variants: &Value,
        primary_metric: &Value,
        secondary_metrics: &Value,
        audience: &Value,
    ) -> Result<Self> {
        let read = |what: &str, e: serde_json::Error| {
            GatewayError::Internal(anyhow::anyhow!("stored experiment {what} unreadable: {e}"))
        };
        Ok(Self {
            variants: serde_json::from_value(variants.clone()).map_err(|e| read("variants", e))?,
            primary_metric: serde_json::from_value(primary_metric.clone())
                .map_err(|e| read("primary metric", e))?,
            secondary_metrics: serde_json::from_value(secondary_metrics.clone())
                .map_err(|e| read("secondary metrics", e))?,
            audience: serde_json::from_value(audience.clone()).map_err(|e| read("audience", e))?,
        })
    }

    /// Every metric, the primary first.
    pub fn metrics(&self) -> impl Iterator<Item = &Metric> {
        std::iter::once(&self.primary_metric).chain(&self.secondary_metrics)
    }

    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics().find(|m| m.name == name)
    }

    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn variants(v: Value) -> Result<Vec<Variant>> {
        check_variants(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn splits_are_fractions_or_percentages() {
        let v = variants(
            json!([{"name": "a", "traffic_split": 50}, {"name": "b", "traffic_split": 50}]),
        )
        .unwrap();
        assert_eq!(v[0].traffic_split, 0.5);
        let v = variants(
            json!([{"name": "a", "traffic_split": 0.2}, {"name": "b", "traffic_split": 0.8}]),
        )
        .unwrap();
        assert_eq!(v[1].traffic_split, 0.8);
        for bad in [
            json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.6}]),
            json!([{"name": "a", "traffic_split": 1.0}]),
            json!([{"name": "a", "traffic_split": 0.5}, {"name": "a", "traffic_split": 0.5}]),
            json!([{"name": "a", "traffic_split": 1.5}, {"name": "b", "traffic_split": -0.5}]),
            json!([{"name": "a b", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.5}]),
            json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.5, "overrides": {"services": ["nope"]}}]),
            json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.5, "overrides": {"services": []}}]),
            json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.5, "overrides": {"thresholds": {"flag": 0.9, "block": 0.5}}}]),
            json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.5, "overrides": {"thresholds": {"block": 2}}}]),
            json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.5, "overrides": {"guard_options": {"trustguard": 3}}}]),
            json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.5, "overrides": {"guard_options": {"tokenguard": {"content": "ok"}}}}]),
        ] {
            assert!(variants(bad.clone()).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn services_are_put_in_guard_order_once() {
        let v = variants(json!([
            {"name": "a", "traffic_split": 0.5},
            {"name": "b", "traffic_split": 0.5, "overrides": {"services": ["trustguard", "biasguard", "trustguard"]}}
        ]))
        .unwrap();
        let services = v[1].overrides.services.clone().unwrap();
        let mut expected = vec![
            guard("biasguard").unwrap().name().to_owned(),
            guard("trustguard").unwrap().name().to_owned(),
        ];
        expected.sort_by_key(|s| guard(s));
        assert_eq!(services, expected);
    }

    #[test]
    fn metrics_accept_names_and_refuse_repeats() {
        let (p, s) = check_metrics(
            serde_json::from_value(json!({"name": "blocked", "type": "conversion"})).unwrap(),
            serde_json::from_value(json!(["latency_ms"])).unwrap(),
        )
        .unwrap();
        assert_eq!(p.kind, MetricKind::Conversion);
        assert_eq!(s[0].kind, MetricKind::Mean);
        assert!(
            check_metrics(
                MetricSpec::Name("x".into()),
                vec![MetricSpec::Name("x".into())]
            )
            .is_err()
        );
    }

    #[test]
    fn audience_bounds() {
        assert!(check_audience(Audience::default()).is_ok());
        for (p, c) in [
            (0.0, vec![]),
            (101.0, vec![]),
            (50.0, vec!["fax".to_owned()]),
        ] {
            assert!(
                check_audience(Audience {
                    percentage: p,
                    client_types: c
                })
                .is_err()
            );
        }
    }
}
