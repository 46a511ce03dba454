//! BiasGuard's policy rules: what an organisation admin writes into a policy (through the
//! gateway, which validates it with [`PolicyRules::parse`]) and what BiasGuard evaluates every
//! analysis against. One definition, so the two cannot disagree about what a rule means.

use serde::{Deserialize, Serialize};

/// The cache channel the gateway announces a changed policy set on (the organisation id as the
/// message), so every BiasGuard replica drops its cached copy at once.
pub const POLICIES_CHANNEL: &str = "biasguard:policies";

/// The bias types an analysis reports (BiasGuard's `BiasType`, by serde name).
pub const BIAS_TYPES: [&str; 7] = [
    "hostility",
    "slur",
    "dehumanization",
    "stereotyping",
    "microaggression",
    "exclusion",
    "gendered_default",
];

/// The protected classes an analysis reports (BiasGuard's `ProtectedClass`, by serde name).
pub const PROTECTED_CLASSES: [&str; 8] = [
    "gender",
    "race_ethnicity",
    "religion",
    "age",
    "disability",
    "sexual_orientation",
    "nationality",
    "socioeconomic",
];

/// Bias levels a rule can block, mildest first (`none` is never a failure).
pub const BIAS_LEVELS: [&str; 3] = ["mild", "moderate", "high"];

/// What a failed policy does to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    /// The text is refused (`decision: deny`).
    Deny,
    /// The text passes but is marked for a person to look at (`decision: review_required`).
    Review,
    /// Recorded as a violation only (`decision: allow`, a warning).
    Warn,
}

/// A policy's `rules` object. A policy fails when ANY of its conditions holds (and the text is
/// about one of `protected_classes`, when that list is not empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRules {
    /// Fails when the bias score (0–10) is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bias_score: Option<f64>,
    /// Fails when the analysis finds any of these bias types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_bias_types: Vec<String>,
    /// Fails when the bias level is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_levels: Vec<String>,
    /// The policy only applies to texts about these classes (required for `attribute_based`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_classes: Vec<String>,
    /// A failure counts only when the analysis is at least this confident (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    /// What a failure does; the default follows the enforcement type (`audit` warns, every
    /// other type denies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<PolicyAction>,
}

impl PolicyRules {
    /// Parse and check a policy's rules for its enforcement type; the error says what is wrong.
    pub fn parse(rules: &serde_json::Value, enforcement_type: &str) -> Result<Self, String> {
        let parsed: Self = serde_json::from_value(rules.clone()).map_err(|e| {
            format!(
                "rules: {e} (known fields: max_bias_score, blocked_bias_types, blocked_levels, protected_classes, min_confidence, action)"
            )
        })?;
        parsed.check(enforcement_type)?;
        Ok(parsed)
    }

    fn check(&self, enforcement_type: &str) -> Result<(), String> {
        if let Some(max) = self.max_bias_score
            && !(0.0..=10.0).contains(&max)
        {
            return Err("rules.max_bias_score must be between 0 and 10".into());
        }
        if let Some(c) = self.min_confidence
            && !(0.0..=1.0).contains(&c)
        {
            return Err("rules.min_confidence must be between 0 and 1".into());
        }
        for (field, values, allowed) in [
            (
                "blocked_bias_types",
                &self.blocked_bias_types,
                &BIAS_TYPES[..],
            ),
            ("blocked_levels", &self.blocked_levels, &BIAS_LEVELS[..]),
            (
                "protected_classes",
                &self.protected_classes,
                &PROTECTED_CLASSES[..],
            ),
        ] {
            if let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str())) {
                return Err(format!(
                    "rules.{field}: unknown value {bad:?}; allowed: {}",
                    allowed.join(", ")
                ));
            }
        }
        if self.max_bias_score.is_none()
            && self.blocked_bias_types.is_empty()
            && self.blocked_levels.is_empty()
        {
            return Err(
                "rules must set at least one condition: max_bias_score, blocked_bias_types or blocked_levels"
                    .into(),
            );
        }
        if enforcement_type == "attribute_based" && self.protected_classes.is_empty() {
            return Err("an attribute_based policy needs rules.protected_classes".into());
        }
        Ok(())
    }

    /// The action a failure takes under `enforcement_type`.
    pub fn action_for(&self, enforcement_type: &str) -> PolicyAction {
        self.action.unwrap_or(if enforcement_type == "audit" {
            PolicyAction::Warn
        } else {
            PolicyAction::Deny
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_a_complete_rule_set() {
        let r = PolicyRules::parse(
            &json!({"max_bias_score": 6.5, "blocked_bias_types": ["slur"], "blocked_levels": ["high"],
                    "protected_classes": ["religion"], "min_confidence": 0.4, "action": "review"}),
            "attribute_based",
        )
        .unwrap();
        assert_eq!(r.max_bias_score, Some(6.5));
        assert_eq!(r.action_for("attribute_based"), PolicyAction::Review);
    }

    #[test]
    fn rejects_what_it_cannot_evaluate() {
        let bad = [
            (json!({}), "fairness_check", "at least one condition"),
            (
                json!({"max_bias_score": 11}),
                "compliance",
                "between 0 and 10",
            ),
            (
                json!({"blocked_bias_types": ["rudeness"]}),
                "compliance",
                "unknown value",
            ),
            (json!({"max_score": 5}), "compliance", "unknown field"),
            (
                json!({"max_bias_score": 5}),
                "attribute_based",
                "protected_classes",
            ),
            (
                json!({"max_bias_score": 5, "action": "explode"}),
                "audit",
                "unknown variant",
            ),
            (json!([1, 2]), "audit", "rules"),
        ];
        for (rules, kind, needle) in bad {
            let err = PolicyRules::parse(&rules, kind).unwrap_err();
            assert!(err.contains(needle), "{rules}: {err}");
        }
    }

    #[test]
    fn default_action_follows_the_enforcement_type() {
        let r = PolicyRules::parse(&json!({"max_bias_score": 5}), "audit").unwrap();
        assert_eq!(r.action_for("audit"), PolicyAction::Warn);
        assert_eq!(r.action_for("compliance"), PolicyAction::Deny);
    }
}
