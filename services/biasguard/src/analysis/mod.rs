//! BiasGuard's analysis: pure, deterministic and explainable.
//!
//! Layers, each inspectable in the output:
//! 1. [`text`]: words with byte spans, sentences, clauses, quotations, questions.
//! 2. [`detect`]: protected-class entities (explicit terms from `model/groups.tsv`, implicit
//!    pronouns that refer back, coded terms), the patterns that attach a trait, role, hostility or
//!    exclusion to a group ("all X are Y", "X are more likely to…", "typical X"), slurs from the
//!    profanity lexicon, gendered defaults; and the context that softens them: qualifiers
//!    ("some", "not all"), negation, reported or quoted speech, questions, counter-speech.
//! 3. [`model`]: a logistic regression over those named findings and the words of the text,
//!    trained on the non-held-out RedditBias and CrowS-Pairs rows; its largest contributions
//!    are the reasoning.
//! 4. [`report`]: severity (0–10, with harm floors for slurs and dehumanisation), level, bias
//!    types, the suggested rewrite and the explanation.

pub mod detect;
pub mod lexicon;
pub mod model;
mod report;
pub mod text;
pub mod training;
mod types;

use std::collections::BTreeMap;

pub use types::{BiasLevel, BiasType, Entity, Pattern, ProtectedClass, Role, Severity, Span};

/// What to analyse.
#[derive(Debug, Clone, Copy)]
pub struct BiasRequest<'a> {
    pub text: &'a str,
    /// Text that came before (a conversation, the document around it): groups named there are
    /// what "they" in `text` refers to. It is not itself analysed.
    pub context: Option<&'a str>,
    /// Longer reasoning: every contribution rather than the main ones.
    pub detailed: bool,
}

/// The verdict, with the evidence for it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BiasAnalysis {
    pub bias_detected: bool,
    /// 0–10; 5 and above is biased.
    pub bias_score: f64,
    pub bias_level: BiasLevel,
    pub bias_types: Vec<BiasType>,
    pub protected_classes: Vec<ProtectedClass>,
    pub entities_detected: Vec<Entity>,
    pub bias_patterns: Vec<Pattern>,
    pub severity: Severity,
    pub suggested_rewrite: Option<String>,
    pub explanation: String,
    /// 0–1: how far the evidence is from the decision boundary.
    pub confidence: f64,
}

/// Analyse one text. Pure: no I/O, same input, same output.
pub fn analyze(req: &BiasRequest<'_>) -> BiasAnalysis {
    let tokens = text::tokenize(req.text);
    let referent = req.context.and_then(last_group);
    let findings = detect::detect(req.text, &tokens, referent);
    let features = model::features(&findings, &tokens);
    let (logit, contributions) = model::MODEL.score(&features);
    report::assemble(req, &tokens, &findings, logit, contributions)
}

/// The model's full feature vector for a text (training uses the same path as [`analyze`]).
pub fn analysis_features(text: &str) -> BTreeMap<String, f64> {
    let tokens = text::tokenize(text);
    let findings = detect::detect(text, &tokens, None);
    model::features(&findings, &tokens)
}

/// The last group named in `context`, for "they" in the analysed text.
fn last_group(context: &str) -> Option<(ProtectedClass, Role)> {
    let tokens = text::tokenize(context);
    let findings = detect::detect(context, &tokens, None);
    findings
        .mentions
        .iter()
        .filter(|m| !m.implicit && (m.plural || m.class != ProtectedClass::Gender))
        .max_by_key(|m| m.words.start)
        .map(|m| (m.class, m.role))
}

#[cfg(test)]
mod tests;
