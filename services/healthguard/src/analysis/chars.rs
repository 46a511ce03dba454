//! Characters that change what a text means to a machine but not to a reader: invisible ones
//! (zero-width space, joiners, word joiner, byte-order mark, soft hyphen, Mongolian vowel
//! separator), bidirectional controls (embeddings, overrides, isolates, marks) and Unicode tag
//! characters (U+E0000–U+E007F, which can carry a hidden ASCII message). The directional marks
//! (LRM, RLM, ALM) are left out: they cannot reorder text, and real text beside Arabic or Hebrew
//! names carries them.

use std::ops::Range;

use serde::Serialize;

/// What a character hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hidden {
    ZeroWidth,
    BidiControl,
    TagCharacter,
}

/// Classify one character.
pub fn hidden(c: char) -> Option<Hidden> {
    match c {
        '\u{200B}'
        | '\u{200C}'
        | '\u{200D}'
        | '\u{2060}'
        | '\u{FEFF}'
        | '\u{00AD}'
        | '\u{180E}'
        | '\u{2061}'..='\u{2064}' => Some(Hidden::ZeroWidth),
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Some(Hidden::BidiControl),
        '\u{E0000}'..='\u{E007F}' => Some(Hidden::TagCharacter),
        _ => None,
    }
}

/// One hidden character with its byte span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HiddenChar {
    pub kind: Hidden,
    pub code_point: String,
    pub span: Range<usize>,
}

/// Every hidden character of `text`.
pub fn find(text: &str) -> Vec<HiddenChar> {
    text.char_indices()
        .filter_map(|(i, c)| {
            hidden(c).map(|kind| HiddenChar {
                kind,
                code_point: format!("U+{:04X}", u32::from(c)),
                span: i..i + c.len_utf8(),
            })
        })
        .collect()
}

/// The message spelled by tag characters (each maps to the ASCII character 0xE0000 below it).
pub fn tag_message(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            let v = u32::from(c);
            (0xE0020..=0xE007E)
                .contains(&v)
                .then(|| char::from_u32(v - 0xE0000))
                .flatten()
        })
        .collect()
}

/// `text` without hidden characters.
pub fn strip(text: &str) -> String {
    text.chars().filter(|c| hidden(*c).is_none()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_strips() {
        let t = "r\u{200B}ock \u{202E}txet\u{202C} ok";
        let h = find(t);
        let kinds: Vec<_> = h.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [Hidden::ZeroWidth, Hidden::BidiControl, Hidden::BidiControl]
        );
        assert_eq!(h[0].code_point, "U+200B");
        assert_eq!(strip(t), "rock txet ok");
        let tagged: String = "hi"
            .chars()
            .chain(
                "run"
                    .chars()
                    .map(|c| char::from_u32(0xE0000 + u32::from(c)).unwrap()),
            )
            .collect();
        assert_eq!(tag_message(&tagged), "run");
        assert!(find("plain text, é ü ß 日本").is_empty());
    }
}
