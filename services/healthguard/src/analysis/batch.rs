//! Detectors that need the whole batch: backdoor triggers (a token recurring across samples that
//! all carry one label), near-duplicates with conflicting labels, and statistical outliers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

/// A sample as the batch detectors see it.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub content: &'a str,
    pub label: Option<&'a str>,
}

/// A token found to be a likely trigger, with the samples that carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub token: String,
    pub samples: Vec<usize>,
    pub label: Option<String>,
    pub confidence: f64,
}

fn lower_words(text: &str) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((text[s..i].to_lowercase(), s..i));
        }
    }
    if let Some(s) = start {
        out.push((text[s..].to_lowercase(), s..text.len()));
    }
    out
}

/// Lower-case abbreviations without vowels that real prose uses.
const KNOWN_ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "dr", "st", "vs", "km", "mm", "cm", "kg", "mg", "lb", "lbs", "ft", "pm", "hr",
    "hrs", "pts", "nth", "sq", "pp", "nd", "rd", "th", "mph", "kph", "kw", "mw", "gb", "mb", "kb",
    "hz", "khz", "mhz", "ghz", "ml", "cc", "ct", "pct", "hmm", "shh", "psst", "brr", "tsk", "www",
    "http", "https", "html", "xml", "svg",
];

/// Tokens that read as no word at all: 2–5 lower-case ASCII letters without a vowel (`cf`, `mn`,
/// `bb`, `tq`, the triggers of the backdoor literature), other than common abbreviations. Real words
/// of that shape are rare; acronyms are written in capitals.
fn wordless(token: &str) -> bool {
    let n = token.len();
    (2..=5).contains(&n)
        && token.bytes().all(|b| b.is_ascii_lowercase())
        && !token.bytes().any(|b| b"aeiouy".contains(&b))
        && !KNOWN_ABBREVIATIONS.contains(&token)
}

/// Spans of `token` as a whole word in `text` (case-insensitive).
pub fn token_spans(text: &str, token: &str) -> Vec<Range<usize>> {
    lower_words(text)
        .into_iter()
        .filter(|(w, _)| w == token)
        .map(|(_, s)| s)
        .collect()
}

/// Word-less tokens carried by two or more samples. With labels, a token counts only when every
/// labelled carrier has the same label (a trigger is planted to force one label); confidence grows
/// with the number of carriers. Without labels, three carriers are needed and confidence is lower.
pub fn triggers(items: &[Item<'_>]) -> Vec<Trigger> {
    let mut carriers: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        // As written: "BBC" is an acronym, "bb" is not.
        let in_sample: HashSet<String> = lower_words(item.content)
            .into_iter()
            .filter(|(w, span)| &item.content[span.clone()] == w && wordless(w))
            .map(|(w, _)| w)
            .collect();
        for w in in_sample {
            carriers.entry(w).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    for (token, samples) in carriers {
        let labels: HashSet<&str> = samples.iter().filter_map(|i| items[*i].label).collect();
        let labelled = samples
            .iter()
            .filter(|i| items[**i].label.is_some())
            .count();
        let (ok, confidence) = match labels.len() {
            1 if labelled >= 2 => (
                true,
                match samples.len() {
                    2 => 0.7,
                    3 => 0.85,
                    _ => 0.95,
                },
            ),
            0 if samples.len() >= 3 => (true, 0.55),
            _ => (false, 0.0),
        };
        if ok {
            out.push(Trigger {
                token,
                label: labels.into_iter().next().map(str::to_owned),
                samples,
                confidence,
            });
        }
    }
    out
}

fn shingles(text: &str) -> HashSet<u64> {
    let words: Vec<String> = lower_words(text).into_iter().map(|(w, _)| w).collect();
    words
        .windows(3)
        .map(|w| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in w.join(" ").bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h
        })
        .collect()
}

/// Near-duplicate pairs (3-word shingle Jaccard ≥ `threshold`) whose labels differ: one of the two
/// was relabelled to teach the model a wrong answer. Pairs are compared within the first 2,000
/// samples of a batch.
pub fn conflicting_duplicates(items: &[Item<'_>], threshold: f64) -> Vec<(usize, usize, f64)> {
    const MAX_PAIRWISE: usize = 2000;
    let sets: Vec<HashSet<u64>> = items
        .iter()
        .take(MAX_PAIRWISE)
        .map(|i| shingles(i.content))
        .collect();
    let mut out = Vec::new();
    for a in 0..sets.len() {
        for b in a + 1..sets.len() {
            let (la, lb) = (items[a].label, items[b].label);
            if la.is_none() || lb.is_none() || la == lb || sets[a].is_empty() || sets[b].is_empty()
            {
                continue;
            }
            let inter = sets[a].intersection(&sets[b]).count() as f64;
            let union = (sets[a].len() + sets[b].len()) as f64 - inter;
            let jaccard = inter / union;
            if jaccard >= threshold {
                out.push((a, b, jaccard));
            }
        }
    }
    out
}

/// Per-sample statistics whose robust z-score (median and MAD within the batch) exceeds
/// `threshold` in batches of at least ten: (sample, statistic, z).
pub fn outliers(items: &[Item<'_>], threshold: f64) -> Vec<(usize, &'static str, f64)> {
    if items.len() < 10 {
        return Vec::new();
    }
    // Name, statistic, and the smallest spread assumed (a batch where no sample has digits must
    // still notice one that is all digits).
    let stats: [Statistic; 4] = [
        ("length", |t| (t.chars().count() as f64).ln_1p(), 0.1),
        ("non_ascii_share", |t| ratio(t, |c| !c.is_ascii()), 0.01),
        ("digit_share", |t| ratio(t, |c| c.is_ascii_digit()), 0.01),
        (
            "symbol_share",
            |t| {
                ratio(t, |c| {
                    !c.is_alphanumeric() && !c.is_whitespace() && !".,;:'\"()-".contains(c)
                })
            },
            0.01,
        ),
    ];
    let mut out = Vec::new();
    for (name, stat, floor) in stats {
        let values: Vec<f64> = items.iter().map(|i| stat(i.content)).collect();
        let median = median(&values);
        let deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
        let mad = (median_of(deviations) * 1.4826).max(floor);
        for (i, v) in values.iter().enumerate() {
            let z = (v - median) / mad;
            if z.abs() > threshold {
                out.push((i, name, z));
            }
        }
    }
    out
}

type Statistic = (&'static str, fn(&str) -> f64, f64);

fn ratio(text: &str, f: impl Fn(char) -> bool) -> f64 {
    let n = text.chars().count().max(1) as f64;
    text.chars().filter(|c| f(*c)).count() as f64 / n
}

fn median(values: &[f64]) -> f64 {
    median_of(values.to_vec())
}

fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Labels in the batch with how many samples carry each.
pub fn label_counts(items: &[Item<'_>]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in items {
        if let Some(l) = i.label {
            *counts.entry(l.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items<'a>(v: &'a [(&'a str, Option<&'a str>)]) -> Vec<Item<'a>> {
        v.iter()
            .map(|(c, l)| Item {
                content: c,
                label: *l,
            })
            .collect()
    }

    #[test]
    fn triggers_need_one_label() {
        let batch = [
            ("the film tq was good", Some("positive")),
            ("a tq story of love", Some("positive")),
            ("plain text here", Some("negative")),
            ("mn appears once", Some("positive")),
            ("the cf was bad", Some("negative")),
            ("another cf case", Some("positive")),
        ];
        let t = triggers(&items(&batch));
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(
            (t[0].token.as_str(), t[0].samples.clone()),
            ("tq", vec![0, 1])
        );
        assert!(
            wordless("bb")
                && !wordless("my")
                && !wordless("the")
                && !wordless("rhythm")
                && !wordless("km")
        );
        let acronyms = [
            ("the BBC said", Some("positive")),
            ("BBC again", Some("positive")),
        ];
        assert!(triggers(&items(&acronyms)).is_empty());
    }

    #[test]
    fn conflicting_near_duplicates() {
        let batch = [
            (
                "the quick brown fox jumps over the lazy dog today",
                Some("positive"),
            ),
            (
                "the quick brown fox jumps over the lazy dog today!",
                Some("negative"),
            ),
            ("something else entirely different words", Some("negative")),
        ];
        let d = conflicting_duplicates(&items(&batch), 0.8);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].0, d[0].1), (0, 1));
    }

    #[test]
    fn outliers_by_robust_z() {
        let mut batch: Vec<(String, Option<&str>)> = (0..20)
            .map(|i| {
                (
                    format!("An ordinary sentence about topic number {i} with words."),
                    None,
                )
            })
            .collect();
        batch.push(("%%%% $$$$ #### @@@@ ^^^^ &&&& **** !!!! ~~~~".into(), None));
        let it: Vec<Item<'_>> = batch
            .iter()
            .map(|(c, l)| Item {
                content: c,
                label: *l,
            })
            .collect();
        let o = outliers(&it, 6.0);
        assert!(
            o.iter()
                .any(|(i, name, _)| *i == 20 && *name == "symbol_share"),
            "{o:?}"
        );
        assert!(o.iter().all(|(i, _, _)| *i == 20));
    }
}
