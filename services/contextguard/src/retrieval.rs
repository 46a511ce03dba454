//! Which earlier turns matter for a query: Okapi BM25 over a conversation's turns (k1 1.2, b 0.75),
//! with the query terms each match shares.

use std::collections::{HashMap, HashSet};

const K1: f64 = 1.2;
const B: f64 = 0.75;

const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he",
    "her", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of",
    "on", "or", "our", "she", "so", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "to", "up", "us", "was", "we", "were", "what", "when", "which", "who",
    "will", "with", "would", "you", "your",
];

/// Lower-case word terms without stop words, lightly stemmed.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(stem)
        .collect()
}

/// Strip one common English inflection (`-ing`, `-ed`, `-es`, `-s`) when at least three letters
/// remain, so "failed" finds "fail" and "deployments" finds "deployment".
fn stem(word: String) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(root) = word.strip_suffix(suffix)
            && root.chars().count() >= 3
            && !(suffix == "s" && root.ends_with('s'))
        {
            return root.to_owned();
        }
    }
    word
}

/// One ranked document.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// Index into the documents given.
    pub index: usize,
    pub score: f64,
    pub matched_terms: Vec<String>,
}

/// The `k` documents that score highest for `query` (score above 0), best first; ties keep the
/// later document first (the more recent turn).
pub fn rank(documents: &[&str], query: &str, k: usize) -> Vec<Hit> {
    let docs: Vec<Vec<String>> = documents.iter().map(|d| terms(d)).collect();
    let n = docs.len() as f64;
    if docs.is_empty() {
        return Vec::new();
    }
    let avg_len = (docs.iter().map(Vec::len).sum::<usize>() as f64 / n).max(1.0);
    let query: HashSet<String> = terms(query).into_iter().collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for doc in &docs {
        let unique: HashSet<&str> = doc.iter().map(String::as_str).collect();
        for t in unique {
            if query.contains(t) {
                *df.entry(t).or_default() += 1;
            }
        }
    }
    let mut hits: Vec<Hit> = docs
        .iter()
        .enumerate()
        .filter_map(|(index, doc)| {
            let mut tf: HashMap<&str, usize> = HashMap::new();
            for t in doc {
                if query.contains(t.as_str()) {
                    *tf.entry(t.as_str()).or_default() += 1;
                }
            }
            if tf.is_empty() {
                return None;
            }
            let len = doc.len() as f64;
            let mut score = 0.0;
            let mut matched: Vec<String> = Vec::with_capacity(tf.len());
            for (t, f) in tf {
                let d = df.get(t).copied().unwrap_or(0) as f64;
                let idf = (1.0 + (n - d + 0.5) / (d + 0.5)).ln();
                let f = f as f64;
                score += idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len / avg_len));
                matched.push(t.to_owned());
            }
            matched.sort();
            Some(Hit {
                index,
                score,
                matched_terms: matched,
            })
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.index.cmp(&a.index)));
    hits.truncate(k);
    hits
}

/// A rough token count (about four characters a token in English), for bounding windows without
/// a tokenizer.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_the_turn_about_the_query_first() {
        let turns = [
            "We talked about the deployment pipeline and its staging environment.",
            "My cat likes to sleep on the keyboard.",
            "The staging deployment failed because the database migration timed out.",
            "Lunch is at noon.",
        ];
        let hits = rank(&turns, "why did the staging deployment fail?", 2);
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].index, 2);
        assert_eq!(hits[1].index, 0);
        assert!(
            hits[0].matched_terms.contains(&"fail".to_owned()),
            "{hits:?}"
        );
        assert!(rank(&turns, "quantum chromodynamics", 3).is_empty());
        assert!(rank(&[], "anything", 3).is_empty());
    }

    #[test]
    fn rare_terms_weigh_more_than_common_ones() {
        let docs = ["alpha beta", "alpha gamma", "alpha delta"];
        let hits = rank(&docs, "alpha gamma", 3);
        assert_eq!(hits[0].index, 1);
        assert_eq!(hits.len(), 3);
    }

    #[test]
    fn stems_common_inflections_only() {
        assert_eq!(
            terms("Failed deployments, passing tests"),
            ["fail", "deployment", "pass", "test"]
        );
        assert_eq!(terms("bus is gas class"), ["bus", "gas", "class"]);
    }

    #[test]
    fn token_estimate() {
        assert_eq!(estimate_tokens(""), 1);
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens("ééééé"), 2);
    }
}
