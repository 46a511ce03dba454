//! Homoglyphs: words that mix scripts (Latin letters with Cyrillic or Greek look-alikes), the
//! classic way to slip a word past filters. Look-alikes map to their Latin skeleton (a subset of
//! Unicode's UTS #39 confusables covering Cyrillic and Greek), which sanitising restores.

use std::ops::Range;

use serde::Serialize;

/// Cyrillic and Greek letters that render like Latin ones, and the Latin letter they imitate.
const CONFUSABLES: &[(char, char)] = &[
    ('а', 'a'),
    ('в', 'b'),
    ('е', 'e'),
    ('ё', 'e'),
    ('к', 'k'),
    ('м', 'm'),
    ('н', 'h'),
    ('о', 'o'),
    ('р', 'p'),
    ('с', 'c'),
    ('т', 't'),
    ('у', 'y'),
    ('х', 'x'),
    ('ѕ', 's'),
    ('і', 'i'),
    ('ї', 'i'),
    ('ј', 'j'),
    ('ԁ', 'd'),
    ('ԛ', 'q'),
    ('ԝ', 'w'),
    ('һ', 'h'),
    ('ɡ', 'g'),
    ('А', 'A'),
    ('В', 'B'),
    ('Е', 'E'),
    ('К', 'K'),
    ('М', 'M'),
    ('Н', 'H'),
    ('О', 'O'),
    ('Р', 'P'),
    ('С', 'C'),
    ('Т', 'T'),
    ('У', 'Y'),
    ('Х', 'X'),
    ('Ѕ', 'S'),
    ('І', 'I'),
    ('Ј', 'J'),
    ('α', 'a'),
    ('ο', 'o'),
    ('ν', 'v'),
    ('ρ', 'p'),
    ('τ', 't'),
    ('υ', 'u'),
    ('ι', 'i'),
    ('κ', 'k'),
    ('Α', 'A'),
    ('Β', 'B'),
    ('Ε', 'E'),
    ('Ζ', 'Z'),
    ('Η', 'H'),
    ('Ι', 'I'),
    ('Κ', 'K'),
    ('Μ', 'M'),
    ('Ν', 'N'),
    ('Ο', 'O'),
    ('Ρ', 'P'),
    ('Τ', 'T'),
    ('Υ', 'Y'),
    ('Χ', 'X'),
];

/// The Latin letter `c` imitates, if it is a known look-alike.
pub fn latin_for(c: char) -> Option<char> {
    CONFUSABLES.iter().find(|(k, _)| *k == c).map(|(_, v)| *v)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Cyrillic,
    Greek,
    Other,
}

fn script(c: char) -> Script {
    match u32::from(c) {
        0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F => Script::Latin,
        0x400..=0x52F => Script::Cyrillic,
        0x370..=0x3FF => Script::Greek,
        _ => Script::Other,
    }
}

/// A word that mixes scripts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixedWord {
    pub word: String,
    /// The word with look-alikes replaced by the Latin letters they imitate.
    pub skeleton: String,
    pub span: Range<usize>,
    pub lookalikes: usize,
}

/// Words mixing Latin with Cyrillic or Greek letters, and all-Cyrillic/Greek words made only of
/// look-alikes inside otherwise Latin text.
pub fn mixed_words(text: &str) -> Vec<MixedWord> {
    let latin_text = text.chars().filter(|c| script(*c) == Script::Latin).count()
        > 4 * text
            .chars()
            .filter(|c| matches!(script(*c), Script::Cyrillic | Script::Greek))
            .count();
    let mut out = Vec::new();
    let mut start = None;
    let flush = |start: usize, end: usize, out: &mut Vec<MixedWord>| {
        let word = &text[start..end];
        let scripts: Vec<Script> = word.chars().map(script).collect();
        let has_latin = scripts.contains(&Script::Latin);
        let foreign = scripts
            .iter()
            .filter(|s| matches!(s, Script::Cyrillic | Script::Greek))
            .count();
        let lookalikes = word.chars().filter(|c| latin_for(*c).is_some()).count();
        // Every foreign letter must imitate a Latin one: "HλLF-LIFE" is a stylisation, not a
        // disguise.
        let all_lookalike = foreign > 0 && lookalikes == foreign;
        if all_lookalike && (has_latin || latin_text) {
            out.push(MixedWord {
                word: word.to_owned(),
                skeleton: word.chars().map(|c| latin_for(c).unwrap_or(c)).collect(),
                span: start..end,
                lookalikes,
            });
        }
    };
    for (i, c) in text.char_indices() {
        if c.is_alphabetic() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            flush(s, i, &mut out);
        }
    }
    if let Some(s) = start {
        flush(s, text.len(), &mut out);
    }
    out
}

/// `text` with look-alikes in mixed words mapped back to Latin.
pub fn restore(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for w in mixed_words(text) {
        out.push_str(&text[last..w.span.start]);
        out.push_str(&w.skeleton);
        last = w.span.end;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_script_words_are_found_and_restored() {
        let t = "an American film and television director and sсrеenwriter, Kwаpis said";
        let m = mixed_words(t);
        let words: Vec<_> = m.iter().map(|w| w.skeleton.as_str()).collect();
        assert_eq!(words, ["screenwriter", "Kwapis"]);
        assert_eq!(
            restore(t),
            "an American film and television director and screenwriter, Kwapis said"
        );
        // Real Cyrillic or Greek text is not flagged.
        assert!(mixed_words("Москва — столица России").is_empty());
        assert!(mixed_words("Η Αθήνα είναι η πρωτεύουσα").is_empty());
        assert!(mixed_words("Half-Life (stylized as HλLF-LIFE) is a game").is_empty());
    }
}
