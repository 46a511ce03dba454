//! The encodings and which model uses which. Counts equal Python `tiktoken`'s `encode_ordinary`:
//! strings such as `<|endoftext|>` are counted as text, never as special tokens.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use tiktoken_rs::CoreBPE;

/// An OpenAI byte-pair encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Cl100kBase,
    O200kBase,
}

impl Encoding {
    pub const ALL: [Self; 2] = [Self::Cl100kBase, Self::O200kBase];

    pub fn name(self) -> &'static str {
        match self {
            Self::Cl100kBase => "cl100k_base",
            Self::O200kBase => "o200k_base",
        }
    }

    fn bpe(self) -> &'static CoreBPE {
        match self {
            Self::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
            Self::O200kBase => tiktoken_rs::o200k_base_singleton(),
        }
    }

    /// Load the vocabulary now (it is loaded on first use otherwise, which takes ~100 ms).
    pub fn warm_up() {
        for e in Self::ALL {
            let _ = e.count("warm up");
        }
    }

    /// Tokens in `text`.
    pub fn count(self, text: &str) -> usize {
        self.bpe().encode_ordinary(text).len()
    }

    /// The token ids of `text`.
    pub fn encode(self, text: &str) -> Vec<u32> {
        self.bpe().encode_ordinary(text)
    }

    /// The text of token ids (lossy at a cut inside a multi-byte character).
    pub fn decode(self, tokens: &[u32]) -> String {
        let bytes = self.bpe().decode_bytes(tokens).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The encoding a model uses: `o200k_base` for the GPT-4o generation onwards (gpt-4o, gpt-4.1,
    /// gpt-4.5, gpt-5, o1, o3, o4), `cl100k_base` for gpt-4, gpt-3.5 and the embedding models.
    /// `None` for a model this table does not know.
    pub fn for_model(model: &str) -> Option<Self> {
        let m = model.trim().to_ascii_lowercase();
        let m = m.strip_prefix("openai/").unwrap_or(&m);
        const O200K: [&str; 9] = [
            "gpt-4o",
            "chatgpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "o1",
            "o3",
            "o4",
            "gpt-oss",
        ];
        const CL100K: [&str; 5] = [
            "gpt-4",
            "gpt-3.5",
            "gpt-35",
            "text-embedding-3",
            "text-embedding-ada-002",
        ];
        if O200K.iter().any(|p| m.starts_with(p)) {
            Some(Self::O200kBase)
        } else if CL100K.iter().any(|p| m.starts_with(p)) {
            Some(Self::Cl100kBase)
        } else {
            None
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "cl100k_base" => Ok(Self::Cl100kBase),
            "o200k_base" => Ok(Self::O200kBase),
            other => Err(format!(
                "unknown encoding {other:?}; use cl100k_base or o200k_base"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_map_to_encodings() {
        assert_eq!(
            Encoding::for_model("gpt-4o-mini-2024-07-18"),
            Some(Encoding::O200kBase)
        );
        assert_eq!(Encoding::for_model("GPT-4.1"), Some(Encoding::O200kBase));
        assert_eq!(Encoding::for_model("o3-mini"), Some(Encoding::O200kBase));
        assert_eq!(
            Encoding::for_model("gpt-4-turbo"),
            Some(Encoding::Cl100kBase)
        );
        assert_eq!(
            Encoding::for_model("gpt-3.5-turbo"),
            Some(Encoding::Cl100kBase)
        );
        assert_eq!(Encoding::for_model("claude-3"), None);
    }

    #[test]
    fn known_counts_and_round_trip() {
        // "hello world" is two tokens in both; special-token text is counted as text.
        assert_eq!(Encoding::Cl100kBase.count("hello world"), 2);
        assert_eq!(Encoding::O200kBase.count("hello world"), 2);
        assert!(Encoding::Cl100kBase.count("<|endoftext|>") > 1);
        let text = "Grüße, 世界! 👋";
        assert_eq!(
            Encoding::O200kBase.decode(&Encoding::O200kBase.encode(text)),
            text
        );
    }
}
