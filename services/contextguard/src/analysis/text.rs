//! Words of a turn: lower-cased, stop words dropped, light plural stemming, with a flag for the
//! words that carry a topic most (capitalised words inside a sentence, i.e. names, and numbers).
//! Runs of CJK characters have no spaces, so they are cut into overlapping character pairs.

/// Only the start of a longer text is analysed, which bounds the work per turn.
pub const MAX_CHARS: usize = 20_000;

/// One content word of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The normalised term.
    pub term: String,
    /// Capitalised although not at the start of a sentence: most often part of a name.
    pub entity: bool,
    /// Contains a digit.
    pub number: bool,
}

/// Function words that say nothing about the topic (checked before and after stemming).
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "even",
    "ever",
    "few",
    "first",
    "for",
    "from",
    "further",
    "get",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "however",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "last",
    "like",
    "many",
    "may",
    "me",
    "might",
    "more",
    "most",
    "mr",
    "mrs",
    "ms",
    "much",
    "must",
    "my",
    "myself",
    "new",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "said",
    "same",
    "say",
    "says",
    "shall",
    "she",
    "should",
    "since",
    "so",
    "some",
    "still",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "though",
    "through",
    "time",
    "to",
    "told",
    "too",
    "two",
    "under",
    "until",
    "up",
    "us",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "year",
    "years",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// Characters written without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FA1F) // CJK extensions B–F
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// A capital after one of these (or at the very start) begins a sentence, so says nothing about
/// being a name.
fn opens_sentence(c: Option<char>) -> bool {
    c.is_none_or(|c| {
        matches!(
            c,
            '.' | '!' | '?' | '"' | '\'' | '(' | ':' | '\u{201C}' | '\u{2018}' | '\u{AB}'
        )
    })
}

/// Light stemming: the possessive, "-ies" → "-y" and a plural "-s" (not "-ss", "-us", "-is").
fn stem(word: &str) -> String {
    let word = word
        .strip_suffix("'s")
        .or_else(|| word.strip_suffix("\u{2019}s"))
        .unwrap_or(word);
    let chars = word.chars().count();
    if chars > 4
        && let Some(base) = word.strip_suffix("ies")
    {
        return format!("{base}y");
    }
    if chars > 3
        && word.ends_with('s')
        && !(word.ends_with("ss") || word.ends_with("us") || word.ends_with("is"))
    {
        return word[..word.len() - 1].to_owned();
    }
    word.to_owned()
}

/// The content words of `text` (its first [`MAX_CHARS`] characters), in order.
pub fn tokens(text: &str) -> Vec<Token> {
    let text = match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut last_visible: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_cjk(c) {
            let start = i;
            while i < chars.len() && is_cjk(chars[i]) {
                i += 1;
            }
            let run = &chars[start..i];
            if run.len() == 1 {
                out.push(plain(run[0].to_string()));
            }
            for pair in run.windows(2) {
                out.push(plain(pair.iter().collect()));
            }
            last_visible = run.last().copied();
            continue;
        }
        if !c.is_alphanumeric() {
            if !c.is_whitespace() {
                last_visible = Some(c);
            }
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() {
            let ch = chars[i];
            let joins = is_apostrophe(ch)
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_alphanumeric() && !is_cjk(*n));
            if (ch.is_alphanumeric() && !is_cjk(ch)) || joins {
                i += 1;
            } else {
                break;
            }
        }
        let raw: String = chars[start..i].iter().collect();
        let capitalised = c.is_uppercase() && !opens_sentence(last_visible);
        last_visible = chars.get(i - 1).copied();
        let lower = raw.to_lowercase().replace('\u{2019}', "'");
        let number = lower.chars().any(|ch| ch.is_ascii_digit());
        if is_stop_word(&lower) {
            continue;
        }
        let term = stem(&lower);
        if is_stop_word(&term) || (term.chars().count() < 2 && !number) {
            continue;
        }
        out.push(Token {
            term,
            entity: capitalised,
            number,
        });
    }
    out
}

fn plain(term: String) -> Token {
    Token {
        term,
        entity: false,
        number: false,
    }
}

/// Sentences of a document (split after `.`, `!` or `?` followed by white space), for cutting
/// training text into passages.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?') && chars.peek().is_some_and(|(_, n)| n.is_whitespace()) {
            let end = i + c.len_utf8();
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        tokens(text).into_iter().map(|t| t.term).collect()
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn content_words_stemmed_and_flagged() {
        let t = tokens("The fans of Georgia's team invaded 2 pitches; this was in Tbilisi.");
        let names: Vec<&str> = t.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(
            names,
            [
                "fan", "georgia", "team", "invaded", "2", "pitche", "tbilisi"
            ]
        );
        let georgia = &t[2 - 1];
        assert!(georgia.entity, "mid-sentence capital: {georgia:?}");
        assert!(!t[0].entity, "sentence-initial words are not names");
        assert!(t[4].number);
        // "this" and "was" are stop words, not "thi" and "wa".
        assert!(!names.contains(&"thi"));
    }

    #[test]
    fn sentence_start_after_quote_or_stop_is_not_a_name() {
        let t = tokens("He left. Markets fell. \"Prices rose,\" said Smith.");
        let flagged: Vec<&str> = t
            .iter()
            .filter(|t| t.entity)
            .map(|t| t.term.as_str())
            .collect();
        assert_eq!(flagged, ["smith"]);
    }

    #[test]
    fn non_ascii_and_cjk() {
        assert_eq!(
            terms("Zürich’s Bürgermeister trifft Łódź"),
            ["zürich", "bürgermeister", "trifft", "łódź"]
        );
        assert_eq!(terms("東京タワー"), ["東京", "京タ", "タワ", "ワー"]);
        assert_eq!(terms("猫"), ["猫"]);
        assert!(terms("  \n\t ").is_empty());
        assert!(terms("!!! ... ???").is_empty());
    }

    #[test]
    fn long_text_is_cut() {
        let long = "harbour ".repeat(MAX_CHARS);
        assert_eq!(tokens(&long).len(), MAX_CHARS / "harbour ".len());
    }

    #[test]
    fn sentences_split() {
        assert_eq!(
            sentences("One here. Two there!Three?  Four"),
            ["One here.", "Two there!Three?", "Four"]
        );
    }
}
