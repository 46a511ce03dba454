//! What the drift analysis knows about words: how rare each is (document frequencies → IDF) and,
//! for the commoner ones, a small unit vector from latent semantic analysis, so that "striker"
//! and "goal" count as related although they are different words.
//!
//! Fitted by `codeguardians train contextguard` on news articles and encyclopedic passages of
//! `../shared/eval/grounding` (never on the drift conversations, and leaving out every article
//! that any drift conversation quotes) and shipped as `model/lexicon.bin`:
//!
//! ```text
//! "CGLX" | u32 version = 1 | u32 documents | u32 dims | u32 words
//! per word: u8 length | UTF-8 bytes | u32 document frequency | u8 has vector
//!           [ f32 scale | dims × i8 ]   (vector = scale · i8 / 127)
//! ```
//! all little-endian. Words seen in a single document are left out (they count as unseen).

use std::collections::HashMap;
use std::sync::LazyLock;

use super::linalg::{SparseRows, top_right_singular};
use super::text::{sentences, tokens};

const MAGIC: &[u8; 4] = b"CGLX";
const VERSION: u32 = 1;

/// How the lexicon is fitted (the defaults are the shipped model's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitSettings {
    /// Dimensions of the word vectors.
    pub dims: usize,
    /// Words with vectors: the most frequent ones, at most this many (the shipped lexicon has
    /// fewer words at `min_vector_df`, so all of them)...
    pub max_vector_words: usize,
    /// ...each seen in at least this many documents.
    pub min_vector_df: u32,
    /// Sentences per passage (the "documents" of the latent semantic analysis).
    pub passage_sentences: usize,
    /// Leading singular directions dropped. The first is mostly "how much text", shared by all
    /// words; dropping it lowered the training-split AUROC (0.92 → 0.90), so none is dropped.
    pub skip_components: usize,
    /// Singular values are raised to this power in the word vectors (which are then scaled to
    /// unit length).
    pub singular_power: f64,
}

impl Default for FitSettings {
    fn default() -> Self {
        Self {
            dims: 64,
            max_vector_words: 20_000,
            min_vector_df: 3,
            passage_sentences: 4,
            skip_components: 0,
            singular_power: 0.5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    df: u32,
    /// Index into the vector table.
    vector: Option<u32>,
}

/// Document frequencies and word vectors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lexicon {
    documents: u32,
    dims: usize,
    entries: HashMap<String, Entry>,
    /// `dims` values per word with a vector.
    vectors: Vec<f32>,
}

impl Lexicon {
    /// Inverse document frequency, `ln((N + 1) / (df + 1)) + 1`; a word absent from the table
    /// counts as seen once.
    pub fn idf(&self, term: &str) -> f64 {
        let df = self.entries.get(term).map_or(1, |e| e.df);
        (f64::from(self.documents + 1) / f64::from(df + 1)).ln() + 1.0
    }

    /// The word's vector, if it has one.
    pub fn vector(&self, term: &str) -> Option<&[f32]> {
        let i = self.entries.get(term)?.vector? as usize;
        self.vectors.get(i * self.dims..(i + 1) * self.dims)
    }

    /// Dimensions of the word vectors (0 for an empty lexicon).
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Words in the table, and how many of them have a vector.
    pub fn len(&self) -> (usize, usize) {
        let with = self.vectors.len().checked_div(self.dims).unwrap_or(0);
        (self.entries.len(), with)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Fit on `documents` (whole texts: frequencies come from them, and they are cut into
    /// passages for the word vectors).
    pub fn fit(documents: &[&str], settings: &FitSettings) -> Self {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut passages: Vec<Vec<String>> = Vec::new();
        for doc in documents {
            let mut seen: Vec<String> = tokens(doc).into_iter().map(|t| t.term).collect();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                *df.entry(t).or_default() += 1;
            }
            let s = sentences(doc);
            for chunk in s.chunks(settings.passage_sentences.max(1)) {
                passages.push(
                    tokens(&chunk.join(" "))
                        .into_iter()
                        .map(|t| t.term)
                        .collect(),
                );
            }
        }
        let documents_n = u32::try_from(documents.len()).unwrap_or(u32::MAX);
        let mut words: Vec<(String, u32)> = df.into_iter().filter(|(_, d)| *d >= 2).collect();
        words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut lexicon = Self {
            documents: documents_n,
            dims: 0,
            entries: words
                .iter()
                .map(|(w, d)| {
                    (
                        w.clone(),
                        Entry {
                            df: *d,
                            vector: None,
                        },
                    )
                })
                .collect(),
            vectors: Vec::new(),
        };
        // The vocabulary of the vectors: the most frequent words.
        let vocabulary: Vec<&str> = words
            .iter()
            .filter(|(_, d)| *d >= settings.min_vector_df)
            .take(settings.max_vector_words)
            .map(|(w, _)| w.as_str())
            .collect();
        let column: HashMap<&str, usize> = vocabulary
            .iter()
            .enumerate()
            .map(|(i, w)| (*w, i))
            .collect();
        let mut m = SparseRows {
            rows: Vec::new(),
            columns: vocabulary.len(),
        };
        for p in &passages {
            let mut counts: HashMap<usize, f64> = HashMap::new();
            for t in p {
                if let Some(c) = column.get(t.as_str()) {
                    *counts.entry(*c).or_default() += 1.0;
                }
            }
            let mut row: Vec<(usize, f64)> = counts
                .into_iter()
                .map(|(c, n)| (c, (1.0 + f64::ln(n)) * lexicon.idf(vocabulary[c])))
                .collect();
            row.sort_by_key(|e| e.0);
            if !row.is_empty() {
                m.rows.push(row);
            }
        }
        if vocabulary.is_empty() || settings.dims == 0 {
            return lexicon;
        }
        let (mut singular, mut right) = top_right_singular(
            &m,
            settings.dims + settings.skip_components,
            16,
            8,
            0x00C0_FFEE,
        );
        let skip = settings.skip_components.min(right.len());
        singular.drain(..skip);
        right.drain(..skip);
        let dims = right.len();
        let mut vectors = Vec::with_capacity(vocabulary.len() * dims);
        for (i, w) in vocabulary.iter().enumerate() {
            let mut v: Vec<f64> = right
                .iter()
                .zip(&singular)
                .map(|(r, s)| r[i] * s.powf(settings.singular_power))
                .collect();
            // Unit length: a word's say in a turn's vector comes from its IDF weight alone.
            let length = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if length > 0.0 {
                v.iter_mut().for_each(|x| *x /= length);
            }
            let (scale, steps) = quantise(&v);
            vectors.extend(dequantise(scale, &steps));
            if let Some(e) = lexicon.entries.get_mut(*w) {
                e.vector = u32::try_from(i).ok();
            }
        }
        lexicon.dims = dims;
        lexicon.vectors = vectors;
        lexicon
    }

    /// The file format (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A word longer than the length byte allows is left out (it counts as unseen).
        let mut words: Vec<(&String, &Entry)> = self
            .entries
            .iter()
            .filter(|(w, _)| w.len() <= 255)
            .collect();
        words.sort_by(|a, b| b.1.df.cmp(&a.1.df).then_with(|| a.0.cmp(b.0)));
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        for n in [
            VERSION,
            self.documents,
            u32::try_from(self.dims).unwrap_or(0),
            u32::try_from(words.len()).unwrap_or(0),
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for (word, entry) in words {
            out.push(u8::try_from(word.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(word.as_bytes());
            out.extend_from_slice(&entry.df.to_le_bytes());
            match self.vector(word) {
                Some(v) => {
                    out.push(1);
                    // Stored values are already on the 8-bit grid, so this is exact.
                    let v: Vec<f64> = v.iter().map(|x| f64::from(*x)).collect();
                    let (scale, steps) = quantise(&v);
                    out.extend_from_slice(&scale.to_le_bytes());
                    out.extend(steps.iter().map(|x| x.to_le_bytes()[0]));
                }
                None => out.push(0),
            }
        }
        out
    }

    /// Read the file format; `None` when it is malformed.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC || r.u32()? != VERSION {
            return None;
        }
        let documents = r.u32()?;
        let dims = r.u32()? as usize;
        let words = r.u32()? as usize;
        let mut entries = HashMap::with_capacity(words);
        let mut vectors = Vec::new();
        for _ in 0..words {
            let len = usize::from(r.take(1)?[0]);
            let word = std::str::from_utf8(r.take(len)?).ok()?.to_owned();
            let df = r.u32()?;
            let vector = match r.take(1)?[0] {
                0 => None,
                1 => {
                    let scale = f32::from_le_bytes(r.take(4)?.try_into().ok()?);
                    let index = u32::try_from(vectors.len() / dims.max(1)).ok()?;
                    let steps: Vec<i8> = r
                        .take(dims)?
                        .iter()
                        .map(|b| i8::from_le_bytes([*b]))
                        .collect();
                    vectors.extend(dequantise(scale, &steps));
                    Some(index)
                }
                _ => return None,
            };
            entries.insert(word, Entry { df, vector });
        }
        if !r.0.is_empty() {
            return None;
        }
        Some(Self {
            documents,
            dims,
            entries,
            vectors,
        })
    }
}

/// Symmetric 8-bit quantisation: the scale (largest magnitude) and the steps
/// `round(127 · v / scale)`.
fn quantise(v: &[f64]) -> (f32, Vec<i8>) {
    let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (0.0, vec![0; v.len()]);
    }
    let steps = v
        .iter()
        .map(|x| (x / max * 127.0).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (max as f32, steps)
}

fn dequantise(scale: f32, steps: &[i8]) -> impl Iterator<Item = f32> + '_ {
    steps.iter().map(move |q| scale * f32::from(*q) / 127.0)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

static SHIPPED: LazyLock<Lexicon> = LazyLock::new(|| {
    Lexicon::from_bytes(include_bytes!("../../model/lexicon.bin")).unwrap_or_default()
});

/// The shipped lexicon (empty only if the file were malformed, which a test rules out).
pub fn shipped() -> &'static Lexicon {
    &SHIPPED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_lexicon_is_readable_and_related_words_are_close() {
        let lex = shipped();
        let (words, with_vectors) = lex.len();
        assert!(
            words > 10_000 && with_vectors > 5_000,
            "{words} {with_vectors}"
        );
        assert!(lex.idf("people") < lex.idf("football") && lex.idf("football") < lex.idf("zzzq"));
        let cos = |a: &str, b: &str| {
            let (x, y) = (lex.vector(a).unwrap(), lex.vector(b).unwrap());
            x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>()
        };
        assert!(cos("goal", "scored") > cos("goal", "court") + 0.2);
        assert!(cos("police", "arrested") > cos("police", "football") + 0.2);
    }

    #[test]
    fn bytes_round_trip_and_malformed_files_are_refused() {
        let docs = [
            "The striker scored a goal. The keeper saved a penalty. Fans cheered the goal.",
            "The court heard the case. The judge ruled on the appeal. The court adjourned.",
            "A goal in the final minute. The striker celebrated with fans.",
            "The judge and the court clerk read the ruling on the case.",
        ];
        let settings = FitSettings {
            dims: 2,
            min_vector_df: 2,
            ..FitSettings::default()
        };
        let lex = Lexicon::fit(&docs, &settings);
        assert_eq!(lex.dims(), 2);
        assert!(lex.vector("goal").is_some() && lex.vector("penalty").is_none());
        let bytes = lex.to_bytes();
        let back = Lexicon::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.idf("court"), lex.idf("court"));
        assert!(Lexicon::from_bytes(&bytes[..bytes.len() - 1]).is_none());
        assert!(Lexicon::from_bytes(b"nope").is_none());
        // The two topics separate in two dimensions.
        let cos = |a: &str, b: &str| {
            let (x, y) = (back.vector(a).unwrap(), back.vector(b).unwrap());
            x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>()
        };
        assert!(cos("goal", "striker") > cos("goal", "judge"));
    }
}
