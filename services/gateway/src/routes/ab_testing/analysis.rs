//! `GET /api/v1/ab-testing/experiments/{id}/analysis`: per variant the users assigned, the
//! results and each metric's count, mean, standard deviation (or conversions and rate); then
//! every other variant against the control (the first) on every metric: a two-proportion z-test
//! for conversions, Welch's t-test for means, with p-value, difference, relative lift and a
//! confidence interval at the experiment's level.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use cg_storage::models::{Assignment, ExperimentResult, MetricTotal};
use cg_storage::sql_types::Id;
use serde_json::{Value, json};

use super::experiments::find;
use super::require_feature;
use crate::auth::Caller;
use crate::error::Result;
use crate::experiments::Live;
use crate::experiments::design::{Design, MetricKind};
use crate::experiments::stats::{Totals, two_proportion_z, welch_t};
use crate::state::AppState;

type TotalsByVariant = HashMap<(String, String), Totals>;

fn metric_summary(kind: MetricKind, t: &Totals) -> Value {
    match kind {
        MetricKind::Conversion => json!({
            "type": "conversion",
            "n": t.n,
            "conversions": t.sum.round() as u64,
            "rate": t.mean(),
        }),
        MetricKind::Mean => json!({
            "type": "mean",
            "n": t.n,
            "mean": t.mean(),
            "std_dev": t.variance().map(f64::sqrt),
        }),
    }
}

/// Every comparison of a variant with the control.
fn comparisons(design: &Design, totals: &TotalsByVariant, confidence: f64) -> Vec<Value> {
    let Some(control) = design.variants.first() else {
        return Vec::new();
    };
    let get = |variant: &str, metric: &str| {
        totals
            .get(&(variant.to_owned(), metric.to_owned()))
            .copied()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for variant in design.variants.iter().skip(1) {
        for (i, metric) in design.metrics().enumerate() {
            let (c, t) = (
                get(&control.name, &metric.name),
                get(&variant.name, &metric.name),
            );
            let test = match metric.kind {
                MetricKind::Conversion => two_proportion_z(
                    c.sum.round() as u64,
                    c.n,
                    t.sum.round() as u64,
                    t.n,
                    confidence,
                ),
                MetricKind::Mean => welch_t(&c, &t, confidence),
            };
            let relative_lift = match (c.mean(), t.mean()) {
                (Some(cm), Some(tm)) if cm != 0.0 => Some((tm - cm) / cm.abs()),
                _ => None,
            };
            let mut row = json!({
                "variant": variant.name,
                "control": control.name,
                "metric": metric.name,
                "type": metric.kind,
                "primary": i == 0,
                "control_value": c.mean(),
                "variant_value": t.mean(),
                "relative_lift": relative_lift,
            });
            match test {
                Some(test) => {
                    if let (Value::Object(row), Ok(Value::Object(test))) =
                        (&mut row, serde_json::to_value(test))
                    {
                        row.extend(test);
                    }
                }
                None => {
                    row["test"] = Value::Null;
                    row["significant"] = json!(false);
                    row["reason"] = json!(match metric.kind {
                        MetricKind::Conversion =>
                            "needs results on both sides and not every result the same",
                        MetricKind::Mean =>
                            "needs at least two results on each side and some variation",
                    });
                }
            }
            out.push(row);
        }
    }
    out
}

/// The analysis.
pub async fn analysis(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    require_feature(&state, &caller).await?;
    let experiment = find(&state, caller.organization_id, id.into_inner()).await?;
    let live = Live::from_row(&experiment)?;
    let mut pooled = state.db.get().await?;
    let conn = &mut pooled.conn();
    let assigned: HashMap<String, i64> = Assignment::counts(conn, live.id)
        .await?
        .into_iter()
        .collect();
    let results: HashMap<String, i64> = ExperimentResult::counts(conn, live.id)
        .await?
        .into_iter()
        .collect();
    let totals: TotalsByVariant = MetricTotal::list(conn, live.id)
        .await?
        .into_iter()
        .map(|t| {
            (
                (t.variant_name, t.metric),
                Totals {
                    n: u64::try_from(t.n).unwrap_or(0),
                    sum: t.total,
                    sum_sq: t.total_sq,
                },
            )
        })
        .collect();
    let design = &live.design;
    let variants: Vec<Value> = design
        .variants
        .iter()
        .map(|v| {
            let metrics: serde_json::Map<String, Value> = design
                .metrics()
                .map(|m| {
                    let t = totals
                        .get(&(v.name.clone(), m.name.clone()))
                        .copied()
                        .unwrap_or_default();
                    (m.name.clone(), metric_summary(m.kind, &t))
                })
                .collect();
            json!({
                "name": v.name,
                "traffic_split": v.traffic_split,
                "assigned_users": assigned.get(&v.name).copied().unwrap_or(0),
                "results": results.get(&v.name).copied().unwrap_or(0),
                "metrics": metrics,
            })
        })
        .collect();
    let comparisons = comparisons(design, &totals, experiment.confidence_level);
    // The variant that beats the control significantly on the primary metric by the most (a
    // higher value is better; read `comparisons` when lower is).
    let leader = comparisons
        .iter()
        .filter(|c| c["primary"] == true && c["significant"] == true)
        .filter(|c| c["difference"].as_f64().is_some_and(|d| d > 0.0))
        .max_by(|a, b| {
            a["difference"]
                .as_f64()
                .partial_cmp(&b["difference"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .map(|c| c["variant"].clone());
    Ok(HttpResponse::Ok().json(json!({
        "experiment_id": live.id,
        "name": live.name,
        "status": experiment.status,
        "confidence_level": experiment.confidence_level,
        "control": design.variants.first().map(|v| v.name.clone()),
        "primary_metric": design.primary_metric,
        "variants": variants,
        "comparisons": comparisons,
        "significant_improvement": leader,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::design::{Audience, Metric, Overrides, Variant};

    #[test]
    fn comparisons_test_each_variant_against_the_control() {
        let variant = |name: &str| Variant {
            name: name.into(),
            traffic_split: 0.5,
            description: String::new(),
            overrides: Overrides::default(),
        };
        let design = Design {
            variants: vec![variant("control"), variant("strict")],
            primary_metric: Metric {
                name: "blocked".into(),
                kind: MetricKind::Conversion,
            },
            secondary_metrics: vec![Metric {
                name: "latency".into(),
                kind: MetricKind::Mean,
            }],
            audience: Audience::default(),
        };
        let mut totals = TotalsByVariant::new();
        let conv = |x: u64, n: u64| Totals {
            n,
            sum: x as f64,
            sum_sq: x as f64,
        };
        totals.insert(("control".into(), "blocked".into()), conv(200, 1000));
        totals.insert(("strict".into(), "blocked".into()), conv(250, 1000));
        totals.insert(
            ("control".into(), "latency".into()),
            Totals::of(&[1.0, 2.0, 3.0, 4.0, 5.0]),
        );
        let rows = comparisons(&design, &totals, 0.95);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["test"], "two_proportion_z");
        assert_eq!(rows[0]["primary"], true);
        assert!((rows[0]["p_value"].as_f64().unwrap() - 0.007_419_649).abs() < 1e-6);
        assert!((rows[0]["relative_lift"].as_f64().unwrap() - 0.25).abs() < 1e-12);
        // No latency results for the variant: no test, and said why.
        assert_eq!(rows[1]["test"], Value::Null);
        assert_eq!(rows[1]["significant"], false);
        assert!(rows[1]["reason"].is_string());
    }
}
