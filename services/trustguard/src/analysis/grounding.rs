//! Grounding: how much of an answer its context (and the question or dialogue before it) supports.
//! The figures are interpretable (unsupported words, numbers, names, supported word pairs, the
//! longest passage quoted from the context) and the unsupported items are returned as evidence.
//! A logistic model over these figures (see [`crate::analysis::model`]) turns them into a risk.

use std::collections::HashSet;
use std::ops::Range;

use cg_learn::sparse::Sign;
use serde::Serialize;

use super::tokens::{is_stop_word, numbers, words};

/// Answers longer than this many words are measured on their first part only (keeps the quadratic
/// longest-passage search bounded on megabyte inputs).
const MAX_ANSWER_WORDS: usize = 4000;
const MAX_CONTEXT_WORDS: usize = 40_000;

/// The figures the grounding model reads, in a fixed order (see [`Grounding::vector`]).
pub const FEATURE_NAMES: [&str; 12] = [
    "unsupported_ratio",
    "unsupported_log",
    "unsupported_numbers",
    "unsupported_number_ratio",
    "unsupported_names",
    "unsupported_name_ratio",
    "supported_pairs",
    "unsupported_beyond_question_ratio",
    "unsupported_beyond_question_log",
    "quoted_run_ratio",
    "quoted_run_log",
    "from_question_ratio",
];

/// The direction each figure may push the risk, in [`FEATURE_NAMES`] order: a figure of what the
/// context lacks may only raise it, a figure of what the context supports may only lower it
/// (the share taken from the question is left free). HaluEval's faithful QA answers are short
/// spans and its invented ones whole sentences, so without these signs the QA model learned that
/// a long passage quoted from the context means invention, and blocked answers the context
/// states word for word.
pub const FEATURE_SIGNS: [Sign; 12] = [
    Sign::NonNegative,
    Sign::NonNegative,
    Sign::NonNegative,
    Sign::NonNegative,
    Sign::NonNegative,
    Sign::NonNegative,
    Sign::NonPositive,
    Sign::NonNegative,
    Sign::NonNegative,
    Sign::NonPositive,
    Sign::NonPositive,
    Sign::Free,
];

/// An item of the answer the context does not support.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unsupported {
    pub text: String,
    pub span: Range<usize>,
    pub kind: &'static str,
}

/// What grounding found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grounding {
    pub content_words: usize,
    pub unsupported_words: usize,
    pub numbers: usize,
    pub names: usize,
    pub supported_pair_ratio: f64,
    pub longest_quoted_run: usize,
    /// Unsupported words, numbers and names, in order of appearance.
    pub evidence: Vec<Unsupported>,
    features: [f64; 12],
}

impl Grounding {
    /// The model's input.
    pub fn vector(&self) -> [f64; 12] {
        self.features
    }

    /// Share of the answer's content words the context lacks.
    pub fn unsupported_ratio(&self) -> f64 {
        self.features[0]
    }
}

/// Longest run of consecutive words shared by `a` and `b` (dynamic programming, two rows).
fn longest_common_run(a: &[&str], b: &[&str]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    let mut best = 0;
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y { prev[j] + 1 } else { 0 };
            best = best.max(cur[j + 1]);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    best
}

/// Measure `answer` against `context` and the `question` (or dialogue history) it answers.
pub fn measure(answer: &str, context: &str, question: &str) -> Grounding {
    let context_words = words(context);
    let question_words = words(question);
    let answer_words: Vec<_> = words(answer).into_iter().take(MAX_ANSWER_WORDS).collect();
    let in_context: HashSet<&str> = context_words.iter().map(|w| w.lower.as_str()).collect();
    let in_question: HashSet<&str> = question_words.iter().map(|w| w.lower.as_str()).collect();

    let content: Vec<_> = answer_words
        .iter()
        .filter(|w| !is_stop_word(&w.lower) && w.lower.chars().count() > 1)
        .collect();
    let n = content.len().max(1) as f64;
    let mut evidence = Vec::new();
    let mut unsupported = 0;
    let mut beyond_question = 0;
    let mut from_question = 0;
    for w in &content {
        let in_ctx = in_context.contains(w.lower.as_str());
        let in_q = in_question.contains(w.lower.as_str());
        if !in_ctx {
            unsupported += 1;
            if !in_q {
                beyond_question += 1;
                evidence.push(Unsupported {
                    text: answer[w.span.clone()].to_owned(),
                    span: w.span.clone(),
                    kind: "word",
                });
            }
        }
        if in_q {
            from_question += 1;
        }
    }

    let known_numbers: HashSet<String> = numbers(context)
        .into_iter()
        .chain(numbers(question))
        .map(|(n, _)| n)
        .collect();
    let answer_numbers = numbers(answer);
    let mut bad_numbers = 0;
    for (num, span) in &answer_numbers {
        if !known_numbers.contains(num) {
            bad_numbers += 1;
            evidence.push(Unsupported {
                text: num.clone(),
                span: span.clone(),
                kind: "number",
            });
        }
    }

    let names: Vec<_> = answer_words
        .iter()
        .filter(|w| w.capitalized && !w.sentence_start && w.lower.chars().any(char::is_alphabetic))
        .collect();
    let mut bad_names = 0;
    for w in &names {
        if !in_context.contains(w.lower.as_str()) && !in_question.contains(w.lower.as_str()) {
            bad_names += 1;
            evidence.push(Unsupported {
                text: answer[w.span.clone()].to_owned(),
                span: w.span.clone(),
                kind: "name",
            });
        }
    }
    // A number or a name says more than "word" about the same span: keep the more specific one.
    evidence.sort_by_key(|e| (e.span.start, e.kind == "word"));
    evidence.dedup_by(|a, b| a.span == b.span);

    let ctx_lower: Vec<&str> = context_words
        .iter()
        .take(MAX_CONTEXT_WORDS)
        .map(|w| w.lower.as_str())
        .collect();
    let ans_lower: Vec<&str> = answer_words.iter().map(|w| w.lower.as_str()).collect();
    let ctx_pairs: HashSet<(&str, &str)> = ctx_lower.windows(2).map(|p| (p[0], p[1])).collect();
    let answer_pairs = ans_lower.len().saturating_sub(1);
    let supported_pairs = ans_lower
        .windows(2)
        .filter(|p| ctx_pairs.contains(&(p[0], p[1])))
        .count();
    let pair_ratio = supported_pairs as f64 / answer_pairs.max(1) as f64;
    let run = longest_common_run(&ans_lower, &ctx_lower);

    let features = [
        unsupported as f64 / n,
        (unsupported as f64).ln_1p(),
        bad_numbers as f64,
        bad_numbers as f64 / answer_numbers.len().max(1) as f64,
        bad_names as f64,
        bad_names as f64 / names.len().max(1) as f64,
        pair_ratio,
        beyond_question as f64 / n,
        (beyond_question as f64).ln_1p(),
        run as f64 / ans_lower.len().max(1) as f64,
        (run as f64).ln_1p(),
        from_question as f64 / n,
    ];
    Grounding {
        content_words: content.len(),
        unsupported_words: unsupported,
        numbers: answer_numbers.len(),
        names: names.len(),
        supported_pair_ratio: pair_ratio,
        longest_quoted_run: run,
        evidence,
        features,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_answers_have_no_evidence() {
        let ctx = "Arthur's Magazine (1844–1846) was an American literary periodical published in Philadelphia.";
        let g = measure(
            "Arthur's Magazine was published in Philadelphia",
            ctx,
            "Where was it published?",
        );
        assert_eq!(g.unsupported_words, 0, "{g:?}");
        assert!(g.evidence.is_empty());
        assert!(g.longest_quoted_run >= 2);
    }

    #[test]
    fn invented_numbers_and_names_are_evidence() {
        let ctx = "The company was founded in 1998 in Berlin by Anna Schmidt.";
        let g = measure(
            "It was founded in 2003 in Munich by Anna Schmidt and Karl Weber.",
            ctx,
            "",
        );
        let items: Vec<_> = g
            .evidence
            .iter()
            .map(|e| (e.kind, e.text.as_str()))
            .collect();
        assert!(items.contains(&("number", "2003")), "{items:?}");
        assert!(items.contains(&("name", "Munich")), "{items:?}");
        assert!(items.contains(&("name", "Karl")), "{items:?}");
        assert!(!items.iter().any(|(_, t)| *t == "Anna"));
        assert!(g.unsupported_ratio() > 0.3);
    }

    #[test]
    fn longest_run() {
        assert_eq!(
            longest_common_run(&["a", "b", "c", "d"], &["x", "b", "c", "d", "y"]),
            3
        );
        assert_eq!(longest_common_run(&[], &["x"]), 0);
    }
}
