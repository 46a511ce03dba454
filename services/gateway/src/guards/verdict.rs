//! One verdict over several guards: each guard's result reduced to a risk in 0–1, the highest risk
//! compared with the organisation's thresholds (`settings.verdict.flag` / `.block`, defaults 0.5
//! and 0.8).

use cg_guard_api::GuardKind;
use serde::Serialize;
use serde_json::Value;

pub const DEFAULT_FLAG: f64 = 0.5;
pub const DEFAULT_BLOCK: f64 = 0.8;

/// allow, flag or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Flag,
    Block,
}

/// Thresholds from the organisation's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub flag: f64,
    pub block: f64,
}

impl Thresholds {
    pub fn from_settings(settings: &Value) -> Self {
        let get = |k: &str, d: f64| {
            settings["verdict"][k]
                .as_f64()
                .filter(|v| (0.0..=1.0).contains(v))
                .unwrap_or(d)
        };
        let (flag, block) = (get("flag", DEFAULT_FLAG), get("block", DEFAULT_BLOCK));
        Self {
            flag: flag.min(block),
            block,
        }
    }

    pub fn verdict(&self, risk: f64) -> Verdict {
        if risk >= self.block {
            Verdict::Block
        } else if risk >= self.flag {
            Verdict::Flag
        } else {
            Verdict::Allow
        }
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

/// The risk a guard's result expresses, 0–1, per the guards' contracts: TrustGuard's and
/// BiasGuard's 0–10 scores scaled down (1 when one of the organisation's policies denies), ContextGuard's drift score (or confidence when drift was
/// detected), HealthGuard's highest confidence over poisoned samples. TokenGuard measures cost,
/// not risk: 0.
pub fn risk(kind: GuardKind, data: &Value) -> f64 {
    let r = match kind {
        GuardKind::TokenGuard => Some(0.0),
        GuardKind::TrustGuard => num(&data["overall_score"]).map(|s| s / 10.0),
        // A policy of the organisation that denies is a block whatever the score.
        GuardKind::BiasGuard if data["decision"] == "deny" => Some(1.0),
        GuardKind::BiasGuard => num(&data["bias_score"]).map(|s| s / 10.0),
        GuardKind::ContextGuard => num(&data["drift_score"]).or_else(|| {
            (data["drift_detected"] == Value::Bool(true))
                .then(|| num(&data["confidence"]).unwrap_or(1.0))
        }),
        GuardKind::HealthGuard => {
            data["results"]
                .as_array()
                .or_else(|| data.as_array())
                .map(|samples| {
                    samples
                        .iter()
                        .filter(|s| s["is_poisoned"] == Value::Bool(true))
                        .filter_map(|s| num(&s["confidence"]).or(Some(1.0)))
                        .fold(0.0, f64::max)
                })
        }
    };
    r.unwrap_or(0.0).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn risks_and_thresholds() {
        assert_eq!(
            risk(GuardKind::BiasGuard, &json!({"bias_score": 7.5})),
            0.75
        );
        assert_eq!(
            risk(GuardKind::TrustGuard, &json!({"overall_score": 12})),
            1.0
        );
        assert_eq!(
            risk(
                GuardKind::ContextGuard,
                &json!({"drift_detected": true, "confidence": 0.6})
            ),
            0.6
        );
        let poisoned = json!({"results": [{"is_poisoned": false, "confidence": 0.9}, {"is_poisoned": true, "confidence": 0.7}]});
        assert_eq!(risk(GuardKind::HealthGuard, &poisoned), 0.7);
        assert_eq!(risk(GuardKind::TokenGuard, &json!({"token_count": 9})), 0.0);

        let t = Thresholds::from_settings(&json!({}));
        assert_eq!(
            (t.verdict(0.49), t.verdict(0.5), t.verdict(0.8)),
            (Verdict::Allow, Verdict::Flag, Verdict::Block)
        );
        let strict = Thresholds::from_settings(&json!({"verdict": {"flag": 0.2, "block": 0.4}}));
        assert_eq!(strict.verdict(0.45), Verdict::Block);
        let nonsense = Thresholds::from_settings(&json!({"verdict": {"flag": 3, "block": "x"}}));
        assert_eq!(
            nonsense,
            Thresholds {
                flag: DEFAULT_FLAG,
                block: DEFAULT_BLOCK
            }
        );
    }
}
