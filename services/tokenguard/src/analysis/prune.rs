//! Pruning that keeps meaning: normalise whitespace, drop sentences and lines said before, then cut
//! at a sentence boundary to the token target. Each step reports the tokens it saved.

use serde::Serialize;

use super::Encoding;
use super::text::{normalize_whitespace, sentence_key, sentences};

/// One step and what it left.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub step: &'static str,
    /// Sentences (or characters, for whitespace) removed.
    pub removed: usize,
    pub tokens_after: usize,
}

/// The pruned text and how it got there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pruned {
    pub text: String,
    pub original_tokens: usize,
    pub tokens: usize,
    pub steps: Vec<Step>,
    /// Whether the target was met.
    pub within_target: bool,
}

/// Prune `text` towards `target` tokens (no cut when `None`).
pub fn prune(text: &str, encoding: Encoding, target: Option<usize>) -> Pruned {
    let original_tokens = encoding.count(text);
    let mut steps = Vec::new();

    let normalized = normalize_whitespace(text);
    let tokens = encoding.count(&normalized);
    steps.push(Step {
        step: "normalize_whitespace",
        removed: text
            .chars()
            .count()
            .saturating_sub(normalized.chars().count()),
        tokens_after: tokens,
    });

    let parts = sentences(&normalized);
    let mut seen = std::collections::HashSet::new();
    let kept: Vec<_> = parts
        .iter()
        .filter(|s| {
            let key = sentence_key(s.text);
            key.is_empty() || seen.insert(key)
        })
        .collect();
    let removed = parts.len() - kept.len();
    let mut deduplicated = String::with_capacity(normalized.len());
    for s in &kept {
        deduplicated.push_str(s.text);
        deduplicated.push_str(if s.separator.is_empty() {
            ""
        } else if s.separator.contains('\n') {
            "\n"
        } else {
            " "
        });
    }
    let deduplicated = deduplicated.trim_end().to_owned();
    let mut current = if removed > 0 {
        deduplicated
    } else {
        normalized
    };
    let mut tokens = encoding.count(&current);
    steps.push(Step {
        step: "drop_repeated_sentences",
        removed,
        tokens_after: tokens,
    });

    if let Some(target) = target.filter(|t| tokens > *t) {
        let (cut, removed) = cut_to(&current, encoding, target);
        current = cut;
        tokens = encoding.count(&current);
        steps.push(Step {
            step: "cut_at_sentence_boundary",
            removed,
            tokens_after: tokens,
        });
    }
    Pruned {
        within_target: target.is_none_or(|t| tokens <= t),
        text: current,
        original_tokens,
        tokens,
        steps,
    }
}

/// Keep whole sentences from the start while they fit; if not even the first fits, keep the words
/// of it that do. Returns the text and how many sentences were dropped.
fn cut_to(text: &str, encoding: Encoding, target: usize) -> (String, usize) {
    let parts = sentences(text);
    let mut kept = String::new();
    let mut count = 0;
    for s in &parts {
        let candidate = format!("{kept}{}", s.text);
        if encoding.count(&candidate) > target {
            break;
        }
        kept = format!(
            "{candidate}{}",
            if s.separator.contains('\n') {
                "\n"
            } else {
                " "
            }
        );
        count += 1;
    }
    if count == 0 {
        // The first sentence alone is too long: its leading words, as many as fit.
        let mut words = String::new();
        for w in parts.first().map_or("", |s| s.text).split_whitespace() {
            let candidate = if words.is_empty() {
                w.to_owned()
            } else {
                format!("{words} {w}")
            };
            if encoding.count(&candidate) > target {
                break;
            }
            words = candidate;
        }
        return (words, parts.len().saturating_sub(1));
    }
    (kept.trim_end().to_owned(), parts.len() - count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_sentences_go_first() {
        let text = "The cat sat.  The dog ran.\n\n\n\nThe cat sat. The bird sang.";
        let p = prune(text, Encoding::O200kBase, None);
        assert_eq!(p.text, "The cat sat. The dog ran.\nThe bird sang.");
        assert_eq!(p.steps[1].removed, 1);
        assert!(p.tokens < p.original_tokens);
        assert!(p.within_target);
    }

    #[test]
    fn cuts_at_a_sentence_boundary_within_target() {
        let text =
            "First point is short. Second point adds detail. Third point adds more detail still.";
        let first_two =
            Encoding::Cl100kBase.count("First point is short. Second point adds detail.");
        let p = prune(text, Encoding::Cl100kBase, Some(first_two));
        assert_eq!(p.text, "First point is short. Second point adds detail.");
        assert!(p.within_target && p.tokens <= first_two);
    }

    #[test]
    fn a_single_long_sentence_is_cut_at_a_word() {
        let text = "one two three four five six seven eight nine ten";
        let p = prune(text, Encoding::O200kBase, Some(4));
        assert_eq!(p.text, "one two three four");
        assert!(p.tokens <= 4);
    }
}
