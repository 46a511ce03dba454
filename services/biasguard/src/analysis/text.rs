//! Tokens with their byte spans, and the sentence and clause each belongs to.
//!
//! A word is a run of letters, digits, `_` and apostrophes; it is compared lower-cased with its
//! apostrophes removed, so "Don't" and "dont" (common in scraped comments) are the same word.
//! `.`, `!`, `?` and line breaks end a sentence; `,`, `;`, `:` and brackets end a clause; a
//! double quote (straight or curly) opens or closes a quotation.

use std::ops::Range;

/// One word of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Lower-cased, apostrophes removed.
    pub norm: String,
    /// Byte span in the original text.
    pub span: Range<usize>,
    pub sentence: usize,
    pub clause: usize,
    /// Inside double quotes.
    pub quoted: bool,
}

/// The words of a text and which sentences end with a question mark.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub words: Vec<Word>,
    /// `questions[s]` is true when sentence `s` ends with `?`.
    pub questions: Vec<bool>,
    /// `sentences[s]`: the word indices of sentence `s`.
    pub sentences: Vec<Range<usize>>,
}

impl Tokens {
    /// Index range of the words of the sentence that word `i` belongs to.
    pub fn sentence_of(&self, i: usize) -> Range<usize> {
        self.words
            .get(i)
            .and_then(|w| self.sentences.get(w.sentence))
            .cloned()
            .unwrap_or(i..i)
    }

    pub fn is_question(&self, i: usize) -> bool {
        self.questions
            .get(self.words[i].sentence)
            .copied()
            .unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The normalised words, for lexicon look-ups.
    pub fn norms(&self) -> Vec<&str> {
        self.words.iter().map(|w| w.norm.as_str()).collect()
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '\'' || c == '\u{2019}'
}

/// Lower-case and drop apostrophes.
pub fn normalise(word: &str) -> String {
    word.chars()
        .filter(|c| *c != '\'' && *c != '\u{2019}')
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn tokenize(text: &str) -> Tokens {
    let mut tokens = Tokens::default();
    let (mut sentence, mut clause, mut quoted) = (0, 0, false);
    let mut start: Option<usize> = None;
    let push = |tokens: &mut Tokens, span: Range<usize>, sentence, clause, quoted| {
        let norm = normalise(&text[span.clone()]);
        if !norm.is_empty() {
            tokens.words.push(Word {
                norm,
                span,
                sentence,
                clause,
                quoted,
            });
        }
    };
    for (i, c) in text.char_indices() {
        if is_word_char(c) {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            push(&mut tokens, s..i, sentence, clause, quoted);
        }
        match c {
            '.' | '!' | '?' | '\n' => {
                let has_words = tokens.words.last().is_some_and(|w| w.sentence == sentence);
                if has_words {
                    tokens.questions.resize(sentence, false);
                    tokens.questions.push(c == '?');
                    sentence += 1;
                    clause += 1;
                } else if c == '?' {
                    // "?!" or "..?" after a sentence: still a question.
                    if let Some(q) = tokens.questions.last_mut() {
                        *q = true;
                    }
                }
            }
            ',' | ';' | ':' | '(' | ')' => clause += 1,
            '"' | '\u{201c}' | '\u{201d}' => quoted = !quoted,
            _ => {}
        }
    }
    if let Some(s) = start {
        push(&mut tokens, s..text.len(), sentence, clause, quoted);
    }
    tokens.questions.resize(sentence + 1, false);
    tokens.sentences = vec![0..0; sentence + 1];
    for (i, w) in tokens.words.iter().enumerate() {
        let r = &mut tokens.sentences[w.sentence];
        if r.start == r.end {
            *r = i..i + 1;
        } else {
            r.end = i + 1;
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_byte_offsets_and_sentences_split() {
        let text = "Ça va? Don\u{2019}t worry, \"they\" said.";
        let t = tokenize(text);
        let norms: Vec<&str> = t.norms();
        assert_eq!(norms, ["ça", "va", "dont", "worry", "they", "said"]);
        assert_eq!(&text[t.words[0].span.clone()], "Ça");
        assert_eq!(&text[t.words[2].span.clone()], "Don\u{2019}t");
        assert_eq!(t.words[1].sentence, 0);
        assert_eq!(t.words[2].sentence, 1);
        assert!(t.is_question(0));
        assert!(!t.is_question(2));
        assert!(t.words[4].quoted && !t.words[5].quoted);
        assert_ne!(t.words[3].clause, t.words[4].clause);
        assert_eq!(t.sentence_of(3), 2..6);
    }

    #[test]
    fn repeated_marks_and_empty_text() {
        assert!(tokenize("").is_empty());
        assert!(tokenize("?!...").is_empty());
        let t = tokenize("really?!? yes");
        assert_eq!(t.words[1].sentence, 1);
        assert!(t.is_question(0));
    }
}
