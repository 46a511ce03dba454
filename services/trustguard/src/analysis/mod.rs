//! TrustGuard's pure analysis: how far model output can be trusted. Grounding against supplied
//! context (a logistic model over interpretable figures, [`grounding`] and [`model`]) and
//! source-free signals ([`detectors`]) combine into one risk with the evidence behind it.

pub mod detectors;
pub mod grounding;
pub mod model;
pub mod tokens;
pub mod training;

use std::collections::BTreeMap;

use serde::Serialize;

pub use model::Task;

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Input<'a> {
    pub content: &'a str,
    pub context: Option<&'a str>,
    pub question: Option<&'a str>,
    /// Overrides detection of the kind of text.
    pub task: Option<Task>,
}

/// Grounding as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroundingReport {
    pub task: Task,
    /// Probability that the content is not supported by the context.
    pub risk: f64,
    pub content_words: usize,
    pub unsupported_words: usize,
    pub supported_pair_ratio: f64,
    pub longest_quoted_run: usize,
    /// The figures and answer words that pushed the risk up most ([`MAIN_FACTORS`] of them), with
    /// their push on the log-odds.
    pub main_factors: Vec<(String, f64)>,
    pub unsupported: Vec<grounding::Unsupported>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    /// Risk 0–10.
    pub overall_score: f64,
    /// 1 − risk, 0–1.
    pub trust_score: f64,
    /// low, medium or high.
    pub risk_level: &'static str,
    /// Each detector's score, 0–1.
    pub pattern_detections: BTreeMap<&'static str, f64>,
    /// Each detector's spans.
    pub evidence: BTreeMap<&'static str, Vec<detectors::Span>>,
    pub grounding: Option<GroundingReport>,
    pub recommendations: Vec<String>,
}

/// How many of the largest pushes on the grounding risk are reported.
pub const MAIN_FACTORS: usize = 5;

/// A source-free detector: how much it may add to the risk (grounding counts fully), and what to
/// advise when it fires.
struct Detector {
    name: &'static str,
    weight: f64,
    advice: &'static str,
    run: fn(&str) -> detectors::Signal,
}

const DETECTORS: [Detector; 5] = [
    Detector {
        name: "self_contradiction",
        weight: 0.9,
        advice: "the answer contradicts itself; ask the model to reconcile the conflicting sentences",
        run: detectors::contradiction,
    },
    Detector {
        name: "stub_code",
        weight: 0.8,
        advice: "the code has unfinished parts (TODO markers, empty bodies, stand-ins); complete them before use",
        run: detectors::stub_code,
    },
    Detector {
        name: "overconfidence",
        weight: 0.5,
        advice: "the answer states certainty it cannot show; ask for sources",
        run: detectors::overconfidence,
    },
    Detector {
        name: "duplication",
        weight: 0.4,
        advice: "the answer repeats itself; prune repeated sentences",
        run: detectors::duplication,
    },
    Detector {
        name: "hedging",
        weight: 0.3,
        advice: "the answer is uncertain; verify before relying on it",
        run: detectors::hedging,
    },
];

fn grounding_report(input: &Input<'_>, context: &str) -> GroundingReport {
    let question = input.question.unwrap_or("");
    let task = input
        .task
        .unwrap_or_else(|| Task::detect(question, context));
    let g = grounding::measure(input.content, context, question);
    let x = g.vector();
    let (risk, main_factors) = match model::shipped(task) {
        Some(m) => {
            let scored = m.score(&x, input.content);
            let round = |c: f64| (c * 1000.0).round() / 1000.0;
            let mut pushes: Vec<(String, f64)> = grounding::FEATURE_NAMES
                .iter()
                .zip(&scored.figures)
                .map(|(n, c)| ((*n).to_owned(), round(*c)))
                .chain(
                    scored
                        .words
                        .iter()
                        .map(|(f, c)| (model::describe_lexical(f), round(*c))),
                )
                .collect();
            pushes.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            pushes.truncate(MAIN_FACTORS);
            (scored.probability, pushes)
        }
        // Without a model, the share of unsupported content words is the risk.
        None => (g.unsupported_ratio(), Vec::new()),
    };
    GroundingReport {
        task,
        risk,
        content_words: g.content_words,
        unsupported_words: g.unsupported_words,
        supported_pair_ratio: g.supported_pair_ratio,
        longest_quoted_run: g.longest_quoted_run,
        main_factors,
        unsupported: g.evidence,
    }
}

/// Check `input`.
pub fn validate(input: &Input<'_>) -> Validation {
    let grounding = input
        .context
        .filter(|c| !c.trim().is_empty())
        .map(|context| grounding_report(input, context));
    let mut pattern_detections = BTreeMap::new();
    let mut evidence = BTreeMap::new();
    let mut recommendations = Vec::new();
    // Independent signals combine like independent chances of a problem.
    let mut keep = 1.0;
    if let Some(g) = &grounding {
        keep *= 1.0 - g.risk;
        pattern_detections.insert("grounding", g.risk);
        if g.risk >= 0.5 {
            recommendations.push(format!(
                "{} of {} content words are not in the context; check the claims against the source",
                g.unsupported_words, g.content_words
            ));
        }
    }
    for d in &DETECTORS {
        let signal = (d.run)(input.content);
        keep *= 1.0 - d.weight * signal.score;
        if signal.score >= 0.5 {
            recommendations.push(d.advice.to_owned());
        }
        pattern_detections.insert(d.name, signal.score);
        evidence.insert(d.name, signal.evidence);
    }
    let risk = (1.0 - keep).clamp(0.0, 1.0);
    Validation {
        overall_score: risk * 10.0,
        trust_score: 1.0 - risk,
        risk_level: if risk < 0.35 {
            "low"
        } else if risk < 0.65 {
            "medium"
        } else {
            "high"
        },
        pattern_detections,
        evidence,
        grounding,
        recommendations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grounded_answers_score_low_and_invented_ones_high() {
        let context = "The Eiffel Tower was completed in 1889 in Paris. It is 330 metres tall.";
        let good = validate(&Input {
            content: "The Eiffel Tower was completed in 1889.",
            context: Some(context),
            question: Some("When was the Eiffel Tower completed?"),
            task: None,
        });
        let bad = validate(&Input {
            content: "The Eiffel Tower was completed in 1921 by Gustave Martin, who also designed the Louvre pyramid in Lyon.",
            context: Some(context),
            question: Some("When was the Eiffel Tower completed?"),
            task: None,
        });
        assert!(good.overall_score < bad.overall_score, "{good:?}\n{bad:?}");
        assert_eq!(bad.risk_level, "high", "{bad:?}");
        let unsupported: Vec<_> = bad
            .grounding
            .as_ref()
            .unwrap()
            .unsupported
            .iter()
            .map(|u| u.text.as_str())
            .collect();
        assert!(
            unsupported.contains(&"1921") && unsupported.contains(&"Lyon"),
            "{unsupported:?}"
        );
        assert!((good.trust_score + good.overall_score / 10.0 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn without_context_only_the_source_free_signals_count() {
        let v = validate(&Input {
            content: "def f():\n    # TODO: write this\n    pass\n",
            ..Input::default()
        });
        assert!(v.grounding.is_none());
        assert!(v.pattern_detections["stub_code"] > 0.5);
        assert!(v.overall_score > 4.0, "{v:?}");
        assert!(!v.recommendations.is_empty());
        let calm = validate(&Input {
            content: "Water boils at 100 degrees Celsius at sea level.",
            ..Input::default()
        });
        assert_eq!(calm.risk_level, "low");
    }
}
