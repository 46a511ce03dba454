//! From findings and model evidence to the response: score, level, types, severity reasoning,
//! rewrite and explanation.

use std::collections::{BTreeMap, BTreeSet};

use cg_learn::sigmoid;

use super::detect::{Findings, Replacement};
use super::model::MODEL;
use super::text::Tokens;
use super::{
    BiasAnalysis, BiasLevel, BiasRequest, BiasType, Entity, ProtectedClass, Role, Severity,
};

/// Scores at or above this are biased; the model's threshold maps here.
pub const DETECTION_SCORE: f64 = 5.0;
const MODERATE: f64 = 6.5;
const HIGH: f64 = 8.0;
/// Harm floors: a slur or a dehumanising generalisation is biased whatever the words around it,
/// unless quoted, reported, negated or asked.
const SLUR_FLOOR_BASE: f64 = 5.0;
const DEHUMANIZATION_FLOOR: f64 = 7.5;
const GENDERED_DEFAULT_FLOOR: f64 = 5.5;
/// The factor on the learned score when no group, pattern or cue word was found.
const UNTARGETED_DISCOUNT: f64 = 0.5;
const FEMALE_PRONOUNS: [&str; 5] = ["she", "her", "hers", "herself", "shes"];

fn level(score: f64) -> BiasLevel {
    if score < DETECTION_SCORE {
        BiasLevel::None
    } else if score < MODERATE {
        BiasLevel::Mild
    } else if score < HIGH {
        BiasLevel::Moderate
    } else {
        BiasLevel::High
    }
}

/// A readable name for a model feature.
fn describe(feature: &str) -> String {
    if let Some(w) = feature.strip_prefix("w:") {
        return format!("the word \"{w}\"");
    }
    if let Some(b) = feature.strip_prefix("b:") {
        return format!("the words \"{}\"", b.replacen('_', " ", 1));
    }
    if let Some(w) = feature.strip_prefix(super::detect::PREDICATE_PREFIX) {
        return format!("the word \"{w}\" in what is said of a group");
    }
    if let Some(class) = feature.strip_prefix("class_") {
        return format!("a mention of {}", class.replace('_', " "));
    }
    let text = match feature {
        "gen_trait" => "a generalisation ascribing a trait to a group",
        "gen_trait_mod" => "a generalisation softened by its context",
        "gen_trait_neg" => "a negated generalisation",
        "gen_trait_qual" => "a qualified generalisation (some, many…)",
        "gen_trait_rep" => "a reported or quoted generalisation",
        "gen_trait_q" => "a generalisation asked as a question",
        "gen_trait_endorsed" => "a generalisation the speaker endorses (\"I think…\")",
        "near_trait" => "a negative trait next to a group",
        "near_trait_mod" => "a negative trait next to a group, softened by context",
        "near_trait_endorsed" => "a trait next to a group, endorsed by the speaker",
        "gen_other" => "a generic statement about a group",
        "universal" => "universal wording (all, always, every…)",
        "comparative" => "comparative or statistical wording (more likely, most…)",
        "dehum" => "dehumanising language near a group",
        "female_role" => "a gender-role stereotype",
        "female_role_ind" => "a gender role attached to a particular woman",
        "individual" => "a particular person rather than a whole group",
        "hostile_group" => "hostile wording in a sentence about a group",
        "exclusion" => "exclusionary wording about a group",
        "unmarked_gen_trait" => "a generalisation about a dominant group",
        "unmarked_trait" => "a trait next to a dominant group",
        "implicit" => "a pronoun referring back to a group",
        "role_marked" => "a mention of a frequently targeted group",
        "role_unmarked" => "a mention of a dominant group",
        "role_coded" => "a coded term for a group",
        "cue_reporting" => "reporting words (says, thinks, the stereotype that…)",
        "cue_counter" => "counter-speech (racist, bigot, myth…)",
        "cue_question" => "question words",
        "cue_second_person" => "addressing the reader",
        "cue_third_person" => "talking about a third party",
        "cue_first_person" => "speaking in the first person",
        "cue_conditional" => "conditional wording (if, would)",
        "cue_negation" => "negation",
        "cue_qualifier" => "qualifiers (some, many, not all)",
        "cue_microaggression" => "microaggression wording",
        "cue_hostility" => "hostile words",
        "cue_trait" => "negative-trait words",
        "cue_role" => "gender-role words",
        "qmark" => "a question mark",
        "disclaimer" => "a disclaimer (\"I'm not racist, but…\")",
        "slur" => "a slur",
        "profanity" => "profanity",
        "gendered_default" => "a gendered default",
        "len" => "the length of the text",
        "n_ment" => "the number of group mentions",
        other => other,
    };
    text.to_owned()
}

/// Contributions summed per base feature (a feature and its per-class copy are one reason).
fn reasons(contributions: Vec<(String, f64)>, detailed: bool) -> Vec<String> {
    let mut by_base: BTreeMap<String, f64> = BTreeMap::new();
    for (name, value) in contributions {
        let base = name.split_once('@').map_or(name.as_str(), |(_, b)| b);
        *by_base.entry(base.to_owned()).or_default() += value;
    }
    let mut sorted: Vec<(String, f64)> = by_base
        .into_iter()
        .filter(|(_, v)| v.abs() >= 0.05)
        .collect();
    sorted.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
    let (raise, lower) = if detailed { (12, 12) } else { (4, 3) };
    let up = sorted.iter().filter(|(_, v)| *v > 0.0).take(raise);
    let down = sorted.iter().filter(|(_, v)| *v < 0.0).take(lower);
    up.chain(down)
        .map(|(k, v)| {
            let verb = if *v > 0.0 { "raised by" } else { "lowered by" };
            format!("{verb} {} ({v:+.2})", describe(k))
        })
        .collect()
}

fn apply(text: &str, replacements: &[Replacement]) -> Option<String> {
    let mut sorted: Vec<&Replacement> = replacements.iter().collect();
    sorted.sort_by_key(|r| (r.bytes.start, r.bytes.end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in sorted {
        if r.bytes.start < at || r.bytes.end > text.len() {
            continue;
        }
        out.push_str(text.get(at..r.bytes.start)?);
        out.push_str(&r.with);
        at = r.bytes.end;
    }
    out.push_str(text.get(at..)?);
    (out != text).then_some(out)
}

fn entities(text: &str, tokens: &Tokens, findings: &Findings) -> Vec<Entity> {
    let mut out: Vec<Entity> = findings
        .mentions
        .iter()
        .map(|m| {
            let start = tokens.words[m.words.start].span.start;
            let end = tokens.words[m.words.end - 1].span.end;
            Entity {
                text: text.get(start..end).unwrap_or_default().to_owned(),
                class: m.class,
                start,
                end,
                implicit: m.implicit || m.role == Role::Coded,
            }
        })
        .collect();
    // "she"/"her" after a woman or girl is named refers back to her.
    if let Some(first) = findings
        .mentions
        .iter()
        .filter(|m| m.class == ProtectedClass::Gender && m.role == Role::Marked && !m.implicit)
        .map(|m| m.words.end)
        .min()
    {
        for w in tokens.words.iter().skip(first) {
            if FEMALE_PRONOUNS.contains(&w.norm.as_str()) {
                out.push(Entity {
                    text: text.get(w.span.clone()).unwrap_or_default().to_owned(),
                    class: ProtectedClass::Gender,
                    start: w.span.start,
                    end: w.span.end,
                    implicit: true,
                });
            }
        }
    }
    out.sort_by_key(|e| (e.start, e.end));
    out
}

pub fn assemble(
    req: &BiasRequest<'_>,
    tokens: &Tokens,
    findings: &Findings,
    logit: f64,
    contributions: Vec<(String, f64)>,
) -> BiasAnalysis {
    let text = req.text;
    let entities_detected = entities(text, tokens, findings);
    let mut patterns = findings.patterns.clone();
    patterns.sort_by_key(|p| (p.span.start, p.span.end));
    if tokens.is_empty() {
        return BiasAnalysis {
            bias_detected: false,
            bias_score: 0.0,
            bias_level: BiasLevel::None,
            bias_types: Vec::new(),
            protected_classes: Vec::new(),
            entities_detected,
            bias_patterns: patterns,
            severity: Severity {
                score: 0.0,
                reasoning: vec!["no words to analyse".into()],
            },
            suggested_rewrite: None,
            explanation: "No bias detected: the text has no words.".into(),
            confidence: 1.0,
        };
    }

    let p = sigmoid(logit - MODEL.threshold);
    let model_score = 10.0 * p;
    let mut reasoning = vec![format!(
        "learned evidence {:.1}/10 (logit {logit:.2}, threshold {:.2})",
        model_score, MODEL.threshold
    )];
    reasoning.extend(reasons(contributions, req.detailed));

    // Bias needs a target: with no group named or referred to, no pattern and no cue word found,
    // the words alone (learned from comments that all name a group) are weak evidence.
    let mut score = model_score;
    let cues = findings
        .features
        .keys()
        .any(|k| k.starts_with("cue_") || k == "slur" || k == "profanity");
    if entities_detected.is_empty() && patterns.is_empty() && !cues {
        score *= UNTARGETED_DISCOUNT;
        reasoning.push(format!(
            "scaled by {UNTARGETED_DISCOUNT}: no protected group, pattern or cue word was found"
        ));
    }
    // Harm floors.
    let mut floor_reasons = Vec::new();
    for pat in patterns.iter().filter(|p| p.qualifier.is_none()) {
        let floor = match pat.category {
            BiasType::Slur => {
                let severity = super::lexicon::LEXICONS
                    .profanity
                    .match_at(&super::text::tokenize(&pat.span.text).norms(), 0)
                    .and_then(|(_, v)| v.first().map(|p| p.severity))
                    .unwrap_or(1.0);
                SLUR_FLOOR_BASE + severity
            }
            BiasType::Dehumanization if pat.pattern == "generalisation" => DEHUMANIZATION_FLOOR,
            BiasType::GenderedDefault => GENDERED_DEFAULT_FLOOR,
            _ => continue,
        };
        if floor > score {
            floor_reasons.push(format!(
                "raised to at least {floor:.1}: {} \"{}\"",
                pat.category.as_str().replace('_', " "),
                pat.span.text
            ));
            score = floor;
        }
    }
    reasoning.extend(floor_reasons.iter().cloned());
    for note in &findings.context {
        reasoning.push(format!("context: {note}"));
    }
    let score = (score * 100.0).round() / 100.0;
    let detected = score >= DETECTION_SCORE;
    let bias_level = level(score);

    let active: Vec<&super::Pattern> = {
        let unqualified: Vec<&super::Pattern> =
            patterns.iter().filter(|p| p.qualifier.is_none()).collect();
        if unqualified.is_empty() {
            patterns.iter().collect()
        } else {
            unqualified
        }
    };
    let mut types: BTreeSet<BiasType> = BTreeSet::new();
    if detected {
        types.extend(active.iter().map(|p| p.category));
        if types.is_empty() && findings.primary.is_some() {
            types.insert(BiasType::Stereotyping);
        }
    }
    let mut classes: BTreeSet<ProtectedClass> = entities_detected.iter().map(|e| e.class).collect();
    classes.extend(patterns.iter().filter_map(|p| p.group));

    let suggested_rewrite = if detected {
        apply(text, &findings.replacements)
    } else {
        None
    };
    let confidence = if floor_reasons.is_empty() {
        p.max(1.0 - p)
    } else {
        (score / 10.0).max(p)
    };
    let explanation = explain(
        detected,
        bias_level,
        score,
        &active,
        &classes,
        findings,
        req.detailed,
    );
    BiasAnalysis {
        bias_detected: detected,
        bias_score: score,
        bias_level,
        bias_types: types.into_iter().collect(),
        protected_classes: classes.into_iter().collect(),
        entities_detected,
        bias_patterns: patterns.clone(),
        severity: Severity { score, reasoning },
        suggested_rewrite,
        explanation,
        confidence: (confidence * 1000.0).round() / 1000.0,
    }
}

fn explain(
    detected: bool,
    level: BiasLevel,
    score: f64,
    active: &[&super::Pattern],
    classes: &BTreeSet<ProtectedClass>,
    findings: &Findings,
    detailed: bool,
) -> String {
    let groups: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
    let limit = if detailed { active.len() } else { 3 };
    let found: Vec<String> = active
        .iter()
        .take(limit)
        .map(|p| {
            let q = p
                .qualifier
                .as_deref()
                .map(|q| format!(", {q}"))
                .unwrap_or_default();
            format!("{} \"{}\"{q}", p.pattern, p.span.text)
        })
        .collect();
    let mut s = if detected {
        format!("Bias detected ({}, {score:.1}/10)", level.as_str())
    } else {
        format!("No bias detected ({score:.1}/10)")
    };
    if !groups.is_empty() {
        s.push_str(&format!("; groups: {}", groups.join(", ")));
    }
    if !found.is_empty() {
        s.push_str(&format!("; {}", found.join("; ")));
        if active.len() > limit {
            s.push_str(&format!(" and {} more", active.len() - limit));
        }
    } else if detected {
        s.push_str(
            "; no single pattern, but the wording resembles biased comments about this group",
        );
    }
    if !detected && !findings.patterns.is_empty() {
        s.push_str(
            "; the context (qualifiers, negation, reporting or counter-speech) outweighs it",
        );
    }
    s.push('.');
    s
}
