//! Words, numbers and names of a text, the way every TrustGuard detector sees them.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;

/// Function words that carry no claim of their own.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "if", "then", "else", "of", "to", "in", "on", "at", "by",
    "for", "with", "from", "as", "is", "are", "was", "were", "be", "been", "being", "it", "its",
    "this", "that", "these", "those", "there", "here", "i", "you", "he", "she", "they", "we", "me",
    "him", "her", "them", "my", "your", "his", "their", "our", "not", "no", "do", "does", "did",
    "have", "has", "had", "will", "would", "can", "could", "should", "may", "might", "must",
    "shall", "about", "into", "over", "after", "before", "than", "so", "such", "very", "also",
    "just", "only", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "all",
    "any", "both", "each", "few", "more", "most", "other", "some", "own", "same", "too", "up",
    "down", "out", "off", "again", "further", "once", "yes",
];

static STOP: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| STOP_WORDS.iter().copied().collect());

/// Whether `word` (lower case) is a function word.
pub fn is_stop_word(word: &str) -> bool {
    STOP.contains(word)
}

/// A word with where it sits in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Lower case.
    pub lower: String,
    pub span: Range<usize>,
    /// Starts with an upper-case letter.
    pub capitalized: bool,
    /// First word of a sentence (or of the text).
    pub sentence_start: bool,
}

/// Words: runs of letters and digits, with an apostrophe suffix (`don't`, `Jackson's`) kept.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    let mut sentence_start = true;
    while let Some((start, c)) = chars.next() {
        if !c.is_alphanumeric() {
            if matches!(c, '.' | '!' | '?' | '\n') {
                sentence_start = true;
            }
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, n)) = chars.peek() {
            if n.is_alphanumeric() {
                end = i + n.len_utf8();
                chars.next();
            } else if n == '\'' || n == '’' {
                // Keep an apostrophe only when letters follow it.
                let mut look = chars.clone();
                look.next();
                match look.peek() {
                    Some(&(_, l)) if l.is_alphabetic() => {
                        chars.next();
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        let raw = &text[start..end];
        out.push(Word {
            lower: raw.to_lowercase(),
            span: start..end,
            capitalized: c.is_uppercase(),
            sentence_start,
        });
        sentence_start = false;
    }
    out
}

/// Numbers (`1,200`, `3.5`, `2019`) with their spans.
pub fn numbers(text: &str) -> Vec<(String, Range<usize>)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || ((bytes[i] == b'.' || bytes[i] == b',')
                        && i + 1 < bytes.len()
                        && bytes[i + 1].is_ascii_digit()))
            {
                i += 1;
            }
            out.push((text[start..i].replace(',', ""), start..i));
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_numbers_and_names() {
        let w = words("Michael Jackson's album won. It sold 1,200,000 copies in 1992!");
        let lower: Vec<_> = w.iter().map(|w| w.lower.as_str()).collect();
        assert_eq!(
            lower,
            [
                "michael",
                "jackson's",
                "album",
                "won",
                "it",
                "sold",
                "1",
                "200",
                "000",
                "copies",
                "in",
                "1992"
            ]
        );
        assert!(w[0].sentence_start && w[0].capitalized);
        assert!(!w[1].sentence_start && w[1].capitalized);
        assert!(w[4].sentence_start);
        let n: Vec<_> = numbers("sold 1,200,000 copies in 1992, up 3.5%.")
            .into_iter()
            .map(|n| n.0)
            .collect();
        assert_eq!(n, ["1200000", "1992", "3.5"]);
        assert!(is_stop_word("the") && !is_stop_word("album"));
    }
}
