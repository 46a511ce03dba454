//! Whitespace normalisation and sentence splitting, shared by analysis and pruning.

/// Collapse runs of spaces and tabs to one space, strip trailing spaces on each line, keep at most
/// one blank line between paragraphs, and trim the ends. Line structure is otherwise kept (code and
/// lists stay readable).
pub fn normalize_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let mut collapsed = String::with_capacity(line.len());
        let mut in_space = false;
        for c in line.chars() {
            if c == ' ' || c == '\t' || c == '\u{a0}' {
                if !in_space {
                    collapsed.push(' ');
                }
                in_space = true;
            } else {
                collapsed.push(c);
                in_space = false;
            }
        }
        let trimmed = collapsed.trim_end();
        if trimmed.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(trimmed);
        out.push('\n');
    }
    out.trim().to_owned()
}

/// A piece of text and the separator that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence<'a> {
    pub text: &'a str,
    /// What followed it in the original (a space, a newline, nothing at the end).
    pub separator: &'a str,
}

/// Split into sentences: at `.`, `!`, `?` (and `。！？`) followed by whitespace, and at line breaks.
/// Abbreviations are not special-cased: splitting "e.g. this" in two costs nothing when pruning
/// keeps sentences in order. Concatenating every `text` and `separator` gives back the input
/// without its leading whitespace.
pub fn sentences(text: &str) -> Vec<Sentence<'_>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let offset = |k: usize| chars.get(k).map_or(text.len(), |(p, _)| *p);
    let mut out: Vec<Sentence<'_>> = Vec::new();
    let mut last_sep_start = 0;
    let mut start = 0;
    let mut k = 0;
    while k < chars.len() {
        let (pos, c) = chars[k];
        let terminal = matches!(c, '.' | '!' | '?' | '。' | '！' | '？')
            && chars.get(k + 1).is_none_or(|(_, n)| n.is_whitespace());
        if c != '\n' && !terminal {
            k += 1;
            continue;
        }
        let end = if c == '\n' { pos } else { pos + c.len_utf8() };
        let mut j = if c == '\n' { k } else { k + 1 };
        while j < chars.len() && chars[j].1.is_whitespace() {
            j += 1;
        }
        let sep_end = offset(j);
        let piece = &text[start..end];
        if !piece.trim().is_empty() {
            out.push(Sentence {
                text: piece,
                separator: &text[end..sep_end],
            });
            last_sep_start = end;
        } else if let Some(last) = out.last_mut() {
            last.separator = &text[last_sep_start..sep_end];
        }
        start = sep_end;
        k = j;
    }
    if start < text.len() && !text[start..].trim().is_empty() {
        out.push(Sentence {
            text: &text[start..],
            separator: "",
        });
    }
    out
}

/// A sentence reduced to what makes it the same sentence: lower case, single spaces, no trailing
/// punctuation.
pub fn sentence_key(sentence: &str) -> String {
    let lowered = sentence.to_lowercase();
    let words: Vec<&str> = lowered.split_whitespace().collect();
    words
        .join(" ")
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || "。！？".contains(c))
        .to_owned()
}

/// Words (runs of non-whitespace).
pub fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_normalised_but_lines_kept() {
        assert_eq!(normalize_whitespace("  a  \t b  \n\n\n\nc   "), "a b\n\nc");
        assert_eq!(normalize_whitespace("x\r\ny"), "x\ny");
    }

    #[test]
    fn splits_at_terminals_and_lines() {
        let s: Vec<_> = sentences("One. Two!  Three?\nFour 3.5 five\nSix")
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(s, ["One.", "Two!", "Three?", "Four 3.5 five", "Six"]);
        let joined: String = sentences("A. B.\nC")
            .iter()
            .map(|s| format!("{}{}", s.text, s.separator))
            .collect();
        assert_eq!(joined, "A. B.\nC");
        assert_eq!(sentence_key("The  Cat sat."), sentence_key("the cat sat"));
    }
}
