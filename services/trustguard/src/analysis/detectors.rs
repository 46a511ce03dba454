//! Reliability signals that need no source: overconfidence, hedging, self-contradiction,
//! duplication and stub code. Each gives a score in 0–1 and the spans that earned it.

use std::collections::HashMap;
use std::ops::Range;

use serde::Serialize;

use super::tokens::{is_stop_word, numbers, words};

/// A span of the content and why it was flagged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span {
    pub text: String,
    pub span: Range<usize>,
    pub rule: &'static str,
}

/// One detector's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signal {
    pub score: f64,
    pub evidence: Vec<Span>,
}

const OVERCONFIDENT: &[&str] = &[
    "definitely",
    "certainly",
    "undoubtedly",
    "undeniably",
    "unquestionably",
    "absolutely",
    "guaranteed",
    "without a doubt",
    "without any doubt",
    "beyond doubt",
    "100%",
    "proven fact",
    "it is certain",
    "everyone knows",
    "there is no question",
    "always",
    "never fails",
    "i am certain",
    "i'm certain",
    "i am sure",
    "i'm sure",
    "no doubt",
];

const HEDGES: &[&str] = &[
    "might",
    "may be",
    "maybe",
    "possibly",
    "perhaps",
    "probably",
    "likely",
    "i think",
    "i believe",
    "i guess",
    "not sure",
    "it seems",
    "seems to",
    "could be",
    "as far as i know",
    "i'm not certain",
    "i am not certain",
    "if i recall",
    "roughly",
    "approximately",
    "unclear",
];

/// Phrase matches on word boundaries, case-insensitively.
fn phrase_hits(text: &str, phrases: &[&str], rule: &'static str) -> Vec<Span> {
    let lower = text.to_lowercase();
    // Lower-casing can shift byte offsets for some scripts; only report spans that map back.
    let same_offsets = lower.len() == text.len();
    let mut out = Vec::new();
    for phrase in phrases {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(phrase) {
            let start = from + pos;
            let end = start + phrase.len();
            let before_ok = lower[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            let after_ok = lower[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
            if before_ok && after_ok && same_offsets {
                out.push(Span {
                    text: text[start..end].to_owned(),
                    span: start..end,
                    rule,
                });
            }
            from = end;
        }
    }
    out.sort_by_key(|s| s.span.start);
    out
}

/// Sentence spans: up to and including `.`, `!`, `?` or a line break; blank pieces skipped.
pub fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '!' | '?' | '\n') {
            let end = i + c.len_utf8();
            if !text[start..end].trim().is_empty() {
                out.push(start..end);
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(start..text.len());
    }
    out
}

/// Density of hits per sentence, saturating: one hit in a one-sentence answer is 0.5, two or more
/// per sentence is 1.
fn density(hits: usize, sentences: usize) -> f64 {
    (hits as f64 / (2.0 * sentences.max(1) as f64)).min(1.0)
}

pub fn overconfidence(text: &str) -> Signal {
    let evidence = phrase_hits(text, OVERCONFIDENT, "overconfident_phrase");
    Signal {
        score: density(evidence.len(), sentence_spans(text).len()),
        evidence,
    }
}

pub fn hedging(text: &str) -> Signal {
    let evidence = phrase_hits(text, HEDGES, "hedge");
    Signal {
        score: density(evidence.len(), sentence_spans(text).len()),
        evidence,
    }
}

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without",
];
const ANTONYMS: &[(&str, &str)] = &[
    ("increase", "decrease"),
    ("increased", "decreased"),
    ("rise", "fall"),
    ("rose", "fell"),
    ("true", "false"),
    ("always", "never"),
    ("all", "none"),
    ("more", "less"),
    ("higher", "lower"),
    ("before", "after"),
    ("win", "lose"),
    ("won", "lost"),
    ("alive", "dead"),
    ("open", "closed"),
    ("safe", "unsafe"),
    ("legal", "illegal"),
    ("possible", "impossible"),
    ("yes", "no"),
    ("accept", "reject"),
    ("accepted", "rejected"),
];

struct SentenceFacts {
    span: Range<usize>,
    content: Vec<String>,
    negated: bool,
    numbers: Vec<String>,
}

fn facts(text: &str, span: Range<usize>) -> SentenceFacts {
    let piece = &text[span.clone()];
    let ws = words(piece);
    let negated = ws
        .iter()
        .any(|w| NEGATIONS.contains(&w.lower.as_str()) || w.lower.ends_with("n't"));
    SentenceFacts {
        content: ws
            .iter()
            .map(|w| w.lower.clone())
            .filter(|w| {
                !is_stop_word(w)
                    && !NEGATIONS.contains(&w.as_str())
                    && !w.ends_with("n't")
                    && !w.chars().all(|c| c.is_ascii_digit())
            })
            .collect(),
        negated,
        numbers: numbers(piece).into_iter().map(|n| n.0).collect(),
        span,
    }
}

fn jaccard(a: &[String], b: &[String]) -> f64 {
    let sa: std::collections::HashSet<_> = a.iter().collect();
    let sb: std::collections::HashSet<_> = b.iter().collect();
    let union = sa.union(&sb).count();
    if union == 0 {
        0.0
    } else {
        sa.intersection(&sb).count() as f64 / union as f64
    }
}

/// Two sentences that say the same thing but one negates it, swaps an antonym, or changes a number.
pub fn contradiction(text: &str) -> Signal {
    const SIMILAR: f64 = 0.6;
    let sentences: Vec<_> = sentence_spans(text)
        .into_iter()
        .take(400)
        .map(|s| facts(text, s))
        .collect();
    let mut evidence = Vec::new();
    let mut pairs = 0;
    for (i, a) in sentences.iter().enumerate() {
        for b in &sentences[i + 1..] {
            if a.content.len() < 2 || b.content.len() < 2 {
                continue;
            }
            let similar = jaccard(&a.content, &b.content);
            let antonym = ANTONYMS.iter().any(|(x, y)| {
                (a.content.iter().any(|w| w == x) && b.content.iter().any(|w| w == y))
                    || (a.content.iter().any(|w| w == y) && b.content.iter().any(|w| w == x))
            });
            let negation_flip = a.negated != b.negated && similar >= SIMILAR;
            let number_change = similar >= SIMILAR
                && !a.numbers.is_empty()
                && !b.numbers.is_empty()
                && a.numbers != b.numbers;
            let antonym_flip = antonym && similar >= SIMILAR * 0.6;
            let rule = if negation_flip {
                "negation_flip"
            } else if number_change {
                "different_numbers"
            } else if antonym_flip {
                "antonym"
            } else {
                continue;
            };
            pairs += 1;
            for s in [&a.span, &b.span] {
                evidence.push(Span {
                    text: text[s.clone()].trim().to_owned(),
                    span: s.clone(),
                    rule,
                });
            }
        }
    }
    Signal {
        score: (pairs as f64 * 0.6).min(1.0),
        evidence,
    }
}

/// Repeated sentences (ignoring case and spacing).
pub fn duplication(text: &str) -> Signal {
    let spans = sentence_spans(text);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut evidence = Vec::new();
    for s in &spans {
        let key = words(&text[s.clone()])
            .into_iter()
            .map(|w| w.lower)
            .collect::<Vec<_>>()
            .join(" ");
        if key.split(' ').count() < 3 {
            continue;
        }
        let count = seen.entry(key).or_insert(0);
        *count += 1;
        if *count > 1 {
            evidence.push(Span {
                text: text[s.clone()].trim().to_owned(),
                span: s.clone(),
                rule: "repeated_sentence",
            });
        }
    }
    Signal {
        score: (evidence.len() as f64 / spans.len().max(1) as f64 * 2.0).min(1.0),
        evidence,
    }
}

/// Lines that mark code as unfinished: TODO/FIXME markers, bodies that only `pass`, macros and
/// exceptions that stand in for an implementation, placeholder returns.
pub fn stub_code(text: &str) -> Signal {
    let stand_ins = [
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
        "raise NotImplementedError",
        concat!("not ", "implemented"),
        "your code here",
        "implement this",
    ];
    let mut evidence = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let lower = trimmed.to_lowercase();
        let marker = ["todo", "fixme", "xxx", "hack", "stub", "placeholder"]
            .iter()
            .any(|m| {
                lower.starts_with(&format!("// {m}"))
                    || lower.starts_with(&format!("# {m}"))
                    || lower.starts_with(&format!("/* {m}"))
                    || lower.contains(&format!("{m}:"))
            });
        let bare_pass = trimmed == "pass" || trimmed == "...";
        let stand_in = stand_ins.iter().any(|s| lower.contains(&s.to_lowercase()));
        let empty_return = [
            "return null;",
            "return none",
            "return 0; //",
            "return {};",
            "return [];",
        ]
        .iter()
        .any(|r| {
            lower.starts_with(r)
                && (lower.contains("//") || lower.contains('#') || lower.ends_with(';'))
        });
        let rule = if marker {
            Some("todo_marker")
        } else if bare_pass {
            Some("empty_body")
        } else if stand_in {
            Some("stand_in")
        } else if empty_return && lower.contains("placeholder") {
            Some("placeholder_return")
        } else {
            None
        };
        if let Some(rule) = rule {
            let lead = line.len() - line.trim_start().len();
            let start = offset + lead;
            evidence.push(Span {
                text: trimmed.to_owned(),
                span: start..start + trimmed.len(),
                rule,
            });
        }
        offset += line.len();
    }
    Signal {
        score: (evidence.len() as f64 * 0.34).min(1.0),
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confident_and_hedged() {
        let o = overconfidence("This is definitely the answer. It always works.");
        assert_eq!(o.evidence.len(), 2);
        assert!(o.score > 0.4);
        assert!(overconfidence("The river is long.").evidence.is_empty());
        let h = hedging("I think it might be Paris, but I'm not sure.");
        assert!(h.evidence.len() >= 3, "{h:?}");
        assert!(hedging("Paris is the capital.").evidence.is_empty());
        // Word boundaries: "mighty" is not a hedge.
        assert!(hedging("A mighty river.").evidence.is_empty());
    }

    #[test]
    fn contradictions() {
        let c = contradiction(
            "The vaccine is safe for children. The vaccine is not safe for children.",
        );
        assert_eq!(c.evidence.len(), 2, "{c:?}");
        assert_eq!(c.evidence[0].rule, "negation_flip");
        let n = contradiction("The bridge is 300 meters long. The bridge is 450 meters long.");
        assert_eq!(n.evidence[0].rule, "different_numbers", "{n:?}");
        assert!(
            contradiction("The sky is blue. Grass is green.")
                .evidence
                .is_empty()
        );
    }

    #[test]
    fn duplicates_and_stubs() {
        let d = duplication("We ship on Monday. Prices rise. We ship on Monday.");
        assert_eq!(d.evidence.len(), 1);
        let code = concat!(
            "def f(x):\n    # TODO: handle negatives\n    pass\n\nfn g() { unimplemented",
            "!() }\n"
        );
        let s = stub_code(code);
        let rules: Vec<_> = s.evidence.iter().map(|e| e.rule).collect();
        assert_eq!(rules, ["todo_marker", "empty_body", "stand_in"], "{s:?}");
        assert_eq!(&code[s.evidence[1].span.clone()], "pass");
        assert!(
            stub_code("def f(x):\n    return x * 2\n")
                .evidence
                .is_empty()
        );
    }
}
