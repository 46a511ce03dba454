//! Policy evaluation: an analysis against an organisation's active policies, highest priority
//! first. Pure; the rules are [`PolicyRules`], the type the gateway validates them with.

use cg_guard_api::biasguard::{PolicyAction, PolicyRules};
use cg_storage::models::Policy;
use cg_storage::sql_types::Id;
use serde::Serialize;

use crate::analysis::{BiasAnalysis, BiasType};

/// The verdict of the policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    ReviewRequired,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::ReviewRequired => "review_required",
            Self::Deny => "deny",
        }
    }
}

/// A policy the analysis failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub policy_id: Id,
    pub policy_name: String,
    pub enforcement_type: String,
    pub action: PolicyAction,
    /// The first condition that failed: `max_bias_score`, `blocked_bias_type` or `blocked_level`.
    pub violation_type: &'static str,
    /// Every condition that failed, in words.
    pub reasons: Vec<String>,
    /// low|medium|high|critical, from the harm found (see [`severity`]).
    pub severity: &'static str,
    /// 0–10: the bias score weighted by the analysis's confidence.
    pub impact_score: f64,
}

/// All policies' verdict on one analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub decision: Decision,
    pub failures: Vec<Failure>,
    pub warnings: Vec<String>,
    /// The policies that were evaluated (applicable or not).
    pub policies_evaluated: Vec<Id>,
}

/// Severity of a violation: slurs and dehumanisation are critical, then by score.
pub fn severity(analysis: &BiasAnalysis) -> &'static str {
    let grave = analysis
        .bias_types
        .iter()
        .any(|t| matches!(t, BiasType::Slur | BiasType::Dehumanization));
    match analysis.bias_score {
        _ if grave && analysis.bias_detected => "critical",
        s if s >= 8.5 => "critical",
        s if s >= 7.0 => "high",
        s if s >= 5.5 => "medium",
        _ => "low",
    }
}

/// Impact 0–10: the score, discounted by up to half when the analysis is unsure.
pub fn impact(analysis: &BiasAnalysis) -> f64 {
    let v = analysis.bias_score * (0.5 + 0.5 * analysis.confidence.clamp(0.0, 1.0));
    (v.clamp(0.0, 10.0) * 100.0).round() / 100.0
}

/// Evaluate `policies` (already the ones asked for; inactive ones are skipped with a warning).
pub fn evaluate(analysis: &BiasAnalysis, policies: &[Policy]) -> Evaluation {
    let mut sorted: Vec<&Policy> = policies.iter().collect();
    sorted.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.name.cmp(&b.name)));
    let mut out = Evaluation {
        decision: Decision::Allow,
        failures: Vec::new(),
        warnings: Vec::new(),
        policies_evaluated: Vec::new(),
    };
    for policy in sorted {
        if !policy.is_active {
            out.warnings.push(format!(
                "policy \"{}\" is inactive and was skipped",
                policy.name
            ));
            continue;
        }
        let rules = match PolicyRules::parse(&policy.rules, &policy.enforcement_type) {
            Ok(r) => r,
            Err(e) => {
                out.warnings.push(format!(
                    "policy \"{}\" has rules BiasGuard cannot evaluate ({e}); skipped",
                    policy.name
                ));
                continue;
            }
        };
        out.policies_evaluated.push(policy.id);
        let applies = rules.protected_classes.is_empty()
            || analysis
                .protected_classes
                .iter()
                .any(|c| rules.protected_classes.iter().any(|r| r == c.as_str()));
        if !applies {
            continue;
        }
        let mut failed: Vec<(&'static str, String)> = Vec::new();
        if let Some(max) = rules.max_bias_score
            && analysis.bias_score > max
        {
            failed.push((
                "max_bias_score",
                format!(
                    "bias score {:.2} is above the maximum {max}",
                    analysis.bias_score
                ),
            ));
        }
        for t in &analysis.bias_types {
            if rules.blocked_bias_types.iter().any(|b| b == t.as_str()) {
                failed.push((
                    "blocked_bias_type",
                    format!("bias type {} is blocked", t.as_str()),
                ));
            }
        }
        let level = analysis.bias_level.as_str();
        if rules.blocked_levels.iter().any(|l| l == level) {
            failed.push(("blocked_level", format!("bias level {level} is blocked")));
        }
        let Some((violation_type, _)) = failed.first().cloned() else {
            continue;
        };
        if let Some(min) = rules.min_confidence
            && analysis.confidence < min
        {
            out.warnings.push(format!(
                "policy \"{}\" would fail ({}) but the analysis's confidence {:.2} is below its minimum {min}",
                policy.name,
                failed.iter().map(|f| f.1.as_str()).collect::<Vec<_>>().join("; "),
                analysis.confidence
            ));
            continue;
        }
        let action = rules.action_for(&policy.enforcement_type);
        let decision = match action {
            PolicyAction::Deny => Decision::Deny,
            PolicyAction::Review => Decision::ReviewRequired,
            PolicyAction::Warn => {
                out.warnings.push(format!(
                    "policy \"{}\" failed (recorded only): {}",
                    policy.name,
                    failed
                        .iter()
                        .map(|f| f.1.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
                Decision::Allow
            }
        };
        out.decision = out.decision.max(decision);
        out.failures.push(Failure {
            policy_id: policy.id,
            policy_name: policy.name.clone(),
            enforcement_type: policy.enforcement_type.clone(),
            action,
            violation_type,
            reasons: failed.into_iter().map(|f| f.1).collect(),
            severity: severity(analysis),
            impact_score: impact(analysis),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{BiasRequest, analyze};
    use cg_storage::sql_types::Timestamp;
    use serde_json::json;

    fn policy(name: &str, kind: &str, priority: i32, rules: serde_json::Value) -> Policy {
        Policy {
            id: Id::new(),
            organization_id: Id::new(),
            name: name.into(),
            description: String::new(),
            enforcement_type: kind.into(),
            rules,
            priority,
            is_active: true,
            created_by: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    fn run(text: &str) -> BiasAnalysis {
        analyze(&BiasRequest {
            text,
            context: None,
            detailed: false,
        })
    }

    #[test]
    fn a_biased_text_fails_a_score_limit_and_is_denied() {
        let a = run("All women are too emotional to lead.");
        assert!(a.bias_detected);
        let e = evaluate(
            &a,
            &[policy(
                "limit",
                "compliance",
                10,
                json!({"max_bias_score": 4.0}),
            )],
        );
        assert_eq!(e.decision, Decision::Deny);
        assert_eq!(e.failures.len(), 1);
        assert_eq!(e.failures[0].violation_type, "max_bias_score");
        assert!(e.failures[0].impact_score > 0.0 && e.failures[0].impact_score <= 10.0);
        // The same text passes a policy about another class, and a fine text passes this one.
        let other = evaluate(
            &a,
            &[policy(
                "religion only",
                "attribute_based",
                1,
                json!({"max_bias_score": 1.0, "protected_classes": ["religion"]}),
            )],
        );
        assert_eq!(other.decision, Decision::Allow);
        let fine = evaluate(
            &run("Please send the figures by Friday."),
            &[policy(
                "limit",
                "compliance",
                1,
                json!({"max_bias_score": 4.0}),
            )],
        );
        assert_eq!(fine.decision, Decision::Allow);
        assert!(fine.failures.is_empty());
    }

    #[test]
    fn actions_combine_to_the_strictest_decision() {
        let a = run("All women are too emotional to lead.");
        let audit = policy("audit", "audit", 1, json!({"max_bias_score": 1.0}));
        let review = policy(
            "review",
            "fairness_check",
            2,
            json!({"blocked_levels": ["mild", "moderate", "high"], "action": "review"}),
        );
        let e = evaluate(&a, std::slice::from_ref(&audit));
        assert_eq!(e.decision, Decision::Allow);
        assert_eq!(e.failures.len(), 1, "an audit failure is still a violation");
        assert!(!e.warnings.is_empty());
        let e = evaluate(&a, &[audit, review]);
        assert_eq!(e.decision, Decision::ReviewRequired);
        assert_eq!(e.failures.len(), 2);
    }

    #[test]
    fn unusable_inactive_and_unsure_policies_do_not_fail() {
        let a = run("All women are too emotional to lead.");
        let mut inactive = policy("off", "compliance", 1, json!({"max_bias_score": 0.0}));
        inactive.is_active = false;
        let broken = policy("broken", "compliance", 2, json!({"max_score": 0.0}));
        let unsure = policy(
            "unsure",
            "compliance",
            3,
            json!({"max_bias_score": 0.0, "min_confidence": 1.0}),
        );
        let e = evaluate(&a, &[inactive, broken, unsure]);
        assert_eq!(e.decision, Decision::Allow);
        assert!(e.failures.is_empty());
        assert_eq!(e.warnings.len(), 3, "{:?}", e.warnings);
    }

    #[test]
    fn severity_follows_the_harm() {
        let mut a = run("Please send the figures by Friday.");
        assert_eq!(severity(&a), "low");
        a.bias_score = 7.2;
        assert_eq!(severity(&a), "high");
        a.bias_detected = true;
        a.bias_types = vec![BiasType::Dehumanization];
        assert_eq!(severity(&a), "critical");
    }
}
