//! HealthGuard's pure analysis (PoisonGuard): poisoning in data and prompts. Per sample: hidden
//! characters, mixed-script homoglyphs, instructions hidden in data; per batch: backdoor triggers,
//! near-duplicates with conflicting labels, statistical outliers. Every finding carries its spans.

pub mod batch;
pub mod chars;
pub mod confusables;
pub mod instruction;

use std::ops::Range;

use serde::Serialize;

use self::batch::Item;
use self::chars::Hidden;

/// A sample's instruction score at or above this is an embedded instruction (chosen on the even
/// batches of the dev file; the odd ones are the report's held-out half).
pub const INSTRUCTION_THRESHOLD: f64 = 0.8;
/// Shingle similarity above which two samples are near-duplicates.
pub const DUPLICATE_THRESHOLD: f64 = 0.8;
/// Robust z-score beyond which a statistic marks an outlier.
pub const OUTLIER_Z: f64 = 8.0;
/// Confidence from which a sample counts as poisoned.
pub const POISONED_AT: f64 = 0.5;

/// A sample to analyse.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    pub id: &'a str,
    pub content: &'a str,
    pub label: Option<&'a str>,
}

/// A flagged span of a sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// One detector's finding on one sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// zero_width, bidi_control, tag_character, homoglyph, embedded_instruction, backdoor_trigger,
    /// conflicting_duplicate or outlier.
    pub kind: &'static str,
    pub confidence: f64,
    pub reason: String,
    pub spans: Vec<Span>,
}

/// The verdict on one sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleResult {
    pub sample_id: String,
    pub is_poisoned: bool,
    pub confidence: f64,
    /// The strongest finding's kind.
    pub kind: Option<&'static str>,
    pub findings: Vec<Finding>,
}

fn span(text: &str, r: Range<usize>) -> Span {
    Span {
        text: text[r.clone()].to_owned(),
        start: r.start,
        end: r.end,
    }
}

fn per_sample(content: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let hidden = chars::find(content);
    for (kind, name, what) in [
        (Hidden::ZeroWidth, "zero_width", "invisible characters"),
        (
            Hidden::BidiControl,
            "bidi_control",
            "bidirectional control characters",
        ),
        (
            Hidden::TagCharacter,
            "tag_character",
            "Unicode tag characters",
        ),
    ] {
        let found: Vec<_> = hidden.iter().filter(|h| h.kind == kind).collect();
        if found.is_empty() {
            continue;
        }
        let codes: std::collections::BTreeSet<&str> =
            found.iter().map(|h| h.code_point.as_str()).collect();
        let mut reason = format!(
            "{} {what} ({})",
            found.len(),
            codes.into_iter().collect::<Vec<_>>().join(", ")
        );
        if kind == Hidden::TagCharacter {
            reason.push_str(&format!(" spelling {:?}", chars::tag_message(content)));
        }
        findings.push(Finding {
            kind: name,
            confidence: 0.97,
            reason,
            spans: found
                .iter()
                .map(|h| span(content, h.span.clone()))
                .collect(),
        });
    }
    let mixed = confusables::mixed_words(content);
    if !mixed.is_empty() {
        findings.push(Finding {
            kind: "homoglyph",
            confidence: 0.95,
            reason: format!(
                "{} word(s) mix scripts with look-alike letters: {}",
                mixed.len(),
                mixed
                    .iter()
                    .take(5)
                    .map(|w| format!("{:?} reads as {:?}", w.word, w.skeleton))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            spans: mixed
                .iter()
                .map(|w| span(content, w.span.clone()))
                .collect(),
        });
    }
    if let Some(model) = instruction::shipped()
        && let Some((score, s)) = instruction::strongest(model, content)
        && score >= INSTRUCTION_THRESHOLD
    {
        findings.push(Finding {
            kind: "embedded_instruction",
            // At the threshold 0.5 (poisoned), rising linearly to 1.
            confidence: 0.5 + 0.5 * (score - INSTRUCTION_THRESHOLD) / (1.0 - INSTRUCTION_THRESHOLD),
            reason: format!("a sentence reads as an instruction to a model (score {score:.2})"),
            spans: vec![span(content, s)],
        });
    }
    findings
}

/// Analyse a batch.
pub fn analyze(samples: &[Sample<'_>]) -> Vec<SampleResult> {
    let mut findings: Vec<Vec<Finding>> = samples.iter().map(|s| per_sample(s.content)).collect();
    let items: Vec<Item<'_>> = samples
        .iter()
        .map(|s| Item {
            content: s.content,
            label: s.label,
        })
        .collect();
    for t in batch::triggers(&items) {
        for &i in &t.samples {
            findings[i].push(Finding {
                kind: "backdoor_trigger",
                confidence: t.confidence,
                reason: format!(
                    "the token {:?} recurs in {} samples{}",
                    t.token,
                    t.samples.len(),
                    t.label
                        .as_deref()
                        .map(|l| format!(", all labelled {l:?}"))
                        .unwrap_or_default()
                ),
                spans: batch::token_spans(samples[i].content, &t.token)
                    .into_iter()
                    .map(|r| span(samples[i].content, r))
                    .collect(),
            });
        }
    }
    for (a, b, j) in batch::conflicting_duplicates(&items, DUPLICATE_THRESHOLD) {
        for (me, other) in [(a, b), (b, a)] {
            findings[me].push(Finding {
                kind: "conflicting_duplicate",
                confidence: 0.8,
                reason: format!(
                    "near-duplicate (similarity {j:.2}) of sample {:?} but labelled {:?} instead of {:?}",
                    samples[other].id,
                    samples[me].label.unwrap_or(""),
                    samples[other].label.unwrap_or("")
                ),
                spans: Vec::new(),
            });
        }
    }
    for (i, stat, z) in batch::outliers(&items, OUTLIER_Z) {
        findings[i].push(Finding {
            kind: "outlier",
            // Unusual is not poisoned: reported, below the poisoned mark unless something else fires.
            confidence: 0.4,
            reason: format!("{stat} is {z:+.1} robust standard deviations from the batch"),
            spans: Vec::new(),
        });
    }
    samples
        .iter()
        .zip(findings)
        .map(|(s, f)| {
            let strongest = f
                .iter()
                .max_by(|a, b| a.confidence.total_cmp(&b.confidence));
            let confidence = strongest.map_or(0.0, |x| x.confidence);
            SampleResult {
                sample_id: s.id.to_owned(),
                is_poisoned: confidence >= POISONED_AT,
                confidence,
                kind: strongest
                    .filter(|x| x.confidence >= POISONED_AT)
                    .map(|x| x.kind),
                findings: f,
            }
        })
        .collect()
}

/// What `/mitigate` does to a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    None,
    Flag,
    Sanitize,
    Redact,
}

/// Apply `action` to a sample given its result: `sanitize` strips hidden characters, maps
/// look-alikes back to Latin and drops the instruction sentence; `redact` replaces every flagged
/// span with `[REDACTED]`; `flag` and `none` leave the text alone.
pub fn mitigate(content: &str, result: &SampleResult, action: Action) -> String {
    match action {
        Action::None | Action::Flag => content.to_owned(),
        Action::Sanitize => {
            let mut text = content.to_owned();
            if let Some(f) = result
                .findings
                .iter()
                .find(|f| f.kind == "embedded_instruction")
                && let Some(s) = f.spans.first()
            {
                text.replace_range(s.start..s.end, " ");
            }
            let text = confusables::restore(&chars::strip(&text));
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        }
        Action::Redact => {
            let mut spans: Vec<(usize, usize)> = result
                .findings
                .iter()
                .flat_map(|f| f.spans.iter().map(|s| (s.start, s.end)))
                .collect();
            spans.sort_unstable();
            let mut out = String::with_capacity(content.len());
            let mut last = 0;
            for (start, end) in spans {
                if start < last {
                    continue;
                }
                out.push_str(&content[last..start]);
                out.push_str("[REDACTED]");
                last = end;
            }
            out.push_str(&content[last..]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(content: &str) -> SampleResult {
        analyze(&[Sample {
            id: "s",
            content,
            label: None,
        }])
        .remove(0)
    }

    #[test]
    fn each_per_sample_kind_is_found() {
        assert_eq!(one("a r\u{200B}ock band").kind, Some("zero_width"));
        assert_eq!(
            one("name \u{202E}eman\u{202C} here").kind,
            Some("bidi_control")
        );
        assert_eq!(one("the sсrеenwriter wrote").kind, Some("homoglyph"));
        let clean = one("The cathedral was completed in 1345 and restored in 1890.");
        assert!(!clean.is_poisoned && clean.findings.is_empty(), "{clean:?}");
    }

    #[test]
    fn sanitize_and_redact() {
        let text = "the sсrеenwriter r\u{200B}ocks";
        let r = one(text);
        assert_eq!(
            mitigate(text, &r, Action::Sanitize),
            "the screenwriter rocks"
        );
        let redacted = mitigate(text, &r, Action::Redact);
        assert!(
            redacted.contains("[REDACTED]") && !redacted.contains('\u{200B}'),
            "{redacted}"
        );
        assert_eq!(mitigate(text, &r, Action::Flag), text);
    }
}
