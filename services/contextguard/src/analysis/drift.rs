//! Conversation drift: each session keeps a running [`Topic`] (decayed, IDF-weighted term vector
//! plus a dense "meaning" vector from the [`super::lexicon`], and the last few turns). A new turn
//! is scored against the topic *before* it is absorbed: twelve similarity measures
//! ([`Features`]) go through the logistic [`super::model`], whose probability is the
//! `drift_score`. The first turn never drifts (there is nothing to drift from), nor does a turn
//! without content words.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::lexicon::{self, Lexicon};
use super::model::{self, DriftModel};
use super::text::tokens;

/// Topic terms kept per session (the state is stored with the session, so it must stay small).
pub const MAX_TOPIC_TERMS: usize = 200;
/// Earlier turns remembered for "is it close to any recent turn?".
pub const RECENT_TURNS: usize = 6;
/// Terms kept per remembered turn.
const RECENT_TERMS: usize = 32;
/// Names and numbers weigh this much more than other words: they carry the topic.
pub const EMPHASIS: f64 = 1.5;
/// Coherence assumed before the topic has compared any turn (about the training data's averages
/// between consecutive on-topic turns).
const PRIOR_TERM_COHERENCE: f64 = 0.2;
const PRIOR_EMBEDDING_COHERENCE: f64 = 0.5;

/// The measures, in the model's order.
pub const FEATURE_NAMES: [&str; 12] = [
    "term_cosine",
    "term_max_recent",
    "term_previous",
    "seen_share",
    "entity_overlap",
    "log_terms",
    "has_entities",
    "embedding_cosine",
    "embedding_max_recent",
    "embedding_previous",
    "topic_term_coherence",
    "topic_embedding_coherence",
];

/// How a turn relates to the topic; the model's inputs, returned so a decision can be explained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Features {
    /// Cosine of the turn's IDF-weighted terms with the decayed topic terms.
    pub term_cosine: f64,
    /// Highest term cosine with one of the recent turns.
    pub term_max_recent: f64,
    /// Term cosine with the previous turn.
    pub term_previous: f64,
    /// Share of the turn's term weight already in the topic.
    pub seen_share: f64,
    /// Share of the turn's names already in the topic (0.5 when it names nothing).
    pub entity_overlap: f64,
    /// ln(1 + distinct terms): short turns give weaker evidence.
    pub log_terms: f64,
    /// 1 when the turn names something.
    pub has_entities: f64,
    /// Cosine of the turn's meaning vector with the topic's.
    pub embedding_cosine: f64,
    /// Highest meaning cosine with one of the recent turns.
    pub embedding_max_recent: f64,
    /// Meaning cosine with the previous turn.
    pub embedding_previous: f64,
    /// Mean term cosine of the earlier turns with the topic of their time: how tight the
    /// conversation has been so far.
    pub topic_term_coherence: f64,
    /// The same for meaning vectors.
    pub topic_embedding_coherence: f64,
}

impl Features {
    pub fn vector(&self) -> [f64; 12] {
        [
            self.term_cosine,
            self.term_max_recent,
            self.term_previous,
            self.seen_share,
            self.entity_overlap,
            self.log_terms,
            self.has_entities,
            self.embedding_cosine,
            self.embedding_max_recent,
            self.embedding_previous,
            self.topic_term_coherence,
            self.topic_embedding_coherence,
        ]
    }
}

/// Drift settings; the HTTP layer fills them from dynamic configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftSettings {
    /// A turn drifts when its score is at least this (0–1). Default: tuned on the training
    /// conversations (stored with the model).
    pub threshold: f64,
    /// How much of the topic carries over to the next turn (0–1). Default: the value the model
    /// was trained with; changing it changes what the measures mean.
    pub decay: f64,
    /// Topic terms kept (1–[`MAX_TOPIC_TERMS`]).
    pub max_terms: usize,
    /// Terms listed in each explanation.
    pub explain_terms: usize,
}

impl Default for DriftSettings {
    fn default() -> Self {
        let m = model::shipped();
        Self {
            threshold: m.threshold,
            decay: m.decay,
            max_terms: MAX_TOPIC_TERMS,
            explain_terms: 8,
        }
    }
}

impl DriftSettings {
    /// Checks the ranges (for settings that come from outside).
    pub fn validate(&self) -> Result<(), String> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(format!(
                "threshold must be in (0, 1], got {}",
                self.threshold
            ));
        }
        if !(self.decay > 0.0 && self.decay < 1.0) {
            return Err(format!("decay must be in (0, 1), got {}", self.decay));
        }
        if !(1..=MAX_TOPIC_TERMS).contains(&self.max_terms) {
            return Err(format!(
                "max_terms must be 1–{MAX_TOPIC_TERMS}, got {}",
                self.max_terms
            ));
        }
        if self.explain_terms > 50 {
            return Err(format!(
                "explain_terms must be at most 50, got {}",
                self.explain_terms
            ));
        }
        Ok(())
    }
}

/// One turn's score and its explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnDrift {
    /// Probability that the turn leaves the topic (0–1).
    pub drift_score: f64,
    pub drift_detected: bool,
    /// The topic's heaviest terms before this turn.
    pub topic_terms: Vec<String>,
    /// The turn's heaviest terms that the topic already has.
    pub shared_terms: Vec<String>,
    /// The turn's heaviest terms that are new to the topic.
    pub new_terms: Vec<String>,
    /// The measures behind the score (absent when nothing was compared).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
}

/// A turn remembered for the recent-turn measures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Recent {
    /// Heaviest terms, unit length.
    terms: Vec<(String, f32)>,
    /// Meaning vector, unit length, in steps of 1/127.
    embedding: Vec<i8>,
}

/// A session's running topic: serialisable and bounded (at most `max_terms` terms, a vector of
/// the lexicon's dimensions, and [`RECENT_TURNS`] short turn summaries).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Topic {
    turns: usize,
    /// Decayed sum of the turns' unit term vectors, heaviest first.
    terms: Vec<(String, f32)>,
    /// Decayed sum of the turns' unit meaning vectors.
    embedding: Vec<f32>,
    recent: VecDeque<Recent>,
    /// Turns compared with the topic, and the sums of their similarities (for coherence).
    compared: u32,
    term_similarity_sum: f64,
    embedding_similarity_sum: f64,
}

/// A turn broken down for comparison.
struct Analysed {
    /// IDF-weighted terms, heaviest first.
    terms: Vec<(String, f64)>,
    entities: Vec<String>,
    /// Unit meaning vector (empty when no word has one).
    embedding: Vec<f64>,
}

fn analyse(text: &str, lexicon: &Lexicon) -> Analysed {
    let mut weights: HashMap<String, f64> = HashMap::new();
    let mut entities = Vec::new();
    for t in tokens(text) {
        let emphasis = if t.entity || t.number { EMPHASIS } else { 1.0 };
        if t.entity {
            entities.push(t.term.clone());
        }
        let idf = lexicon.idf(&t.term);
        *weights.entry(t.term).or_default() += idf * emphasis;
    }
    entities.sort_unstable();
    entities.dedup();
    let mut terms: Vec<(String, f64)> = weights.into_iter().collect();
    terms.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut embedding = vec![0.0; lexicon.dims()];
    for (term, w) in &terms {
        if let Some(v) = lexicon.vector(term) {
            for (e, x) in embedding.iter_mut().zip(v) {
                *e += w * f64::from(*x);
            }
        }
    }
    let norm = embedding.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        embedding.iter_mut().for_each(|x| *x /= norm);
    } else {
        embedding.clear();
    }
    Analysed {
        terms,
        entities,
        embedding,
    }
}

fn norm<'a>(weights: impl Iterator<Item = &'a f64>) -> f64 {
    weights.map(|w| w * w).sum::<f64>().sqrt()
}

/// Cosine of the turn's terms with a term table of known norm.
fn term_cosine(turn: &[(String, f64)], other: &HashMap<&str, f64>, other_norm: f64) -> f64 {
    let own = norm(turn.iter().map(|t| &t.1));
    if own == 0.0 || other_norm == 0.0 {
        return 0.0;
    }
    let dot: f64 = turn
        .iter()
        .filter_map(|(t, w)| other.get(t.as_str()).map(|o| w * o))
        .sum();
    // An empty sum is -0.0; report a plain 0.
    (dot / (own * other_norm)).max(0.0)
}

fn dense_cosine(a: &[f64], b: impl Iterator<Item = f64>) -> f64 {
    let (mut dot, mut nb) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        nb += y * y;
    }
    if a.is_empty() || nb == 0.0 {
        0.0
    } else {
        dot / nb.sqrt()
    }
}

impl Topic {
    /// Score `turn` against the topic (before absorbing it), with the shipped lexicon and model.
    pub fn score(&self, turn: &str, settings: &DriftSettings) -> TurnDrift {
        self.score_analysed(
            &analyse(turn, lexicon::shipped()),
            settings,
            model::shipped(),
        )
    }

    /// Absorb the turn into the running topic.
    pub fn absorb(&mut self, turn: &str, settings: &DriftSettings) {
        self.absorb_with(turn, settings, lexicon::shipped());
    }

    /// Score, then absorb (one analysis of the text).
    pub fn observe(&mut self, turn: &str, settings: &DriftSettings) -> TurnDrift {
        self.observe_with(turn, settings, lexicon::shipped(), model::shipped())
    }

    /// [`Self::observe`] with a given lexicon and model (for training and tuning).
    pub fn observe_with(
        &mut self,
        turn: &str,
        settings: &DriftSettings,
        lexicon: &Lexicon,
        model: &DriftModel,
    ) -> TurnDrift {
        let analysed = analyse(turn, lexicon);
        let drift = self.score_analysed(&analysed, settings, model);
        self.absorb_analysed(&analysed, settings);
        drift
    }

    /// Turns absorbed so far (empty ones included).
    pub fn turns(&self) -> usize {
        self.turns
    }

    /// The `n` heaviest topic terms with their weights.
    pub fn top_terms(&self, n: usize) -> Vec<(String, f64)> {
        self.terms
            .iter()
            .take(n)
            .map(|(t, w)| (t.clone(), f64::from(*w)))
            .collect()
    }

    /// The measures of `turn` against the topic with a given lexicon (for training); `None` when
    /// there is nothing to compare (an empty topic or a turn without content words).
    pub fn features_with(&self, turn: &str, lexicon: &Lexicon) -> Option<Features> {
        self.features(&analyse(turn, lexicon))
    }

    /// [`Self::absorb`] with a given lexicon (for training).
    pub fn absorb_with(&mut self, turn: &str, settings: &DriftSettings, lexicon: &Lexicon) {
        self.absorb_analysed(&analyse(turn, lexicon), settings);
    }

    fn score_analysed(&self, turn: &Analysed, s: &DriftSettings, model: &DriftModel) -> TurnDrift {
        let topic_terms: Vec<String> = self
            .terms
            .iter()
            .take(s.explain_terms)
            .map(|t| t.0.clone())
            .collect();
        let known: HashMap<&str, f32> = self.terms.iter().map(|(t, w)| (t.as_str(), *w)).collect();
        let pick = |shared: bool| -> Vec<String> {
            turn.terms
                .iter()
                .filter(|(t, _)| known.contains_key(t.as_str()) == shared)
                .take(s.explain_terms)
                .map(|t| t.0.clone())
                .collect()
        };
        let features = self.features(turn);
        let drift_score = features.map_or(0.0, |f| model.probability(&f.vector()));
        TurnDrift {
            drift_score,
            drift_detected: features.is_some() && drift_score >= s.threshold,
            topic_terms,
            shared_terms: pick(true),
            new_terms: pick(false),
            features,
        }
    }

    fn features(&self, turn: &Analysed) -> Option<Features> {
        if self.terms.is_empty() || turn.terms.is_empty() {
            return None;
        }
        let topic: HashMap<&str, f64> = self
            .terms
            .iter()
            .map(|(t, w)| (t.as_str(), f64::from(*w)))
            .collect();
        // Summed in the topic's own (fixed) order, so results are reproducible to the last bit.
        let topic_norm = self
            .terms
            .iter()
            .map(|t| f64::from(t.1).powi(2))
            .sum::<f64>()
            .sqrt();
        let total: f64 = turn.terms.iter().map(|t| t.1).sum();
        let seen: f64 = turn
            .terms
            .iter()
            .filter(|(t, _)| topic.contains_key(t.as_str()))
            .map(|t| t.1)
            .sum();
        let recent_terms: Vec<f64> = self
            .recent
            .iter()
            .map(|r| {
                let table: HashMap<&str, f64> = r
                    .terms
                    .iter()
                    .map(|(t, w)| (t.as_str(), f64::from(*w)))
                    .collect();
                term_cosine(&turn.terms, &table, 1.0)
            })
            .collect();
        let recent_dense: Vec<f64> = self
            .recent
            .iter()
            .map(|r| dense_cosine(&turn.embedding, r.embedding.iter().map(|q| f64::from(*q))))
            .collect();
        let named = turn
            .entities
            .iter()
            .filter(|e| topic.contains_key(e.as_str()))
            .count();
        let (term_coherence, embedding_coherence) = if self.compared == 0 {
            (PRIOR_TERM_COHERENCE, PRIOR_EMBEDDING_COHERENCE)
        } else {
            let n = f64::from(self.compared);
            (
                self.term_similarity_sum / n,
                self.embedding_similarity_sum / n,
            )
        };
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        Some(Features {
            term_cosine: term_cosine(&turn.terms, &topic, topic_norm),
            term_max_recent: max(&recent_terms),
            term_previous: recent_terms.last().copied().unwrap_or(0.0),
            seen_share: if total > 0.0 {
                (seen / total).max(0.0)
            } else {
                0.0
            },
            entity_overlap: if turn.entities.is_empty() {
                0.5
            } else {
                named as f64 / turn.entities.len() as f64
            },
            log_terms: (turn.terms.len() as f64).ln_1p(),
            has_entities: if turn.entities.is_empty() { 0.0 } else { 1.0 },
            embedding_cosine: dense_cosine(
                &turn.embedding,
                self.embedding.iter().map(|x| f64::from(*x)),
            ),
            embedding_max_recent: max(&recent_dense),
            embedding_previous: recent_dense.last().copied().unwrap_or(0.0),
            topic_term_coherence: term_coherence,
            topic_embedding_coherence: embedding_coherence,
        })
    }

    fn absorb_analysed(&mut self, turn: &Analysed, s: &DriftSettings) {
        self.turns += 1;
        if turn.terms.is_empty() {
            return;
        }
        if let Some(f) = self.features(turn) {
            self.compared += 1;
            self.term_similarity_sum += f.term_cosine;
            self.embedding_similarity_sum += f.embedding_cosine;
        }
        let decay = s.decay.clamp(0.0, 1.0);
        let own = norm(turn.terms.iter().map(|t| &t.1));
        let mut merged: HashMap<String, f64> = self
            .terms
            .drain(..)
            .map(|(t, w)| (t, f64::from(w) * decay))
            .collect();
        for (t, w) in &turn.terms {
            *merged.entry(t.clone()).or_default() += w / own;
        }
        let mut terms: Vec<(String, f64)> = merged.into_iter().collect();
        terms.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        terms.truncate(s.max_terms.clamp(1, MAX_TOPIC_TERMS));
        self.terms = terms.into_iter().map(|(t, w)| (t, w as f32)).collect();

        if !turn.embedding.is_empty() {
            if self.embedding.len() != turn.embedding.len() {
                self.embedding = vec![0.0; turn.embedding.len()];
            }
            for (e, x) in self.embedding.iter_mut().zip(&turn.embedding) {
                *e = (f64::from(*e) * decay + x) as f32;
            }
        }
        let kept = &turn.terms[..turn.terms.len().min(RECENT_TERMS)];
        let kept_norm = norm(kept.iter().map(|t| &t.1));
        self.recent.push_back(Recent {
            terms: kept
                .iter()
                .map(|(t, w)| (t.clone(), (w / kept_norm) as f32))
                .collect(),
            embedding: turn
                .embedding
                .iter()
                .map(|x| (x * 127.0).round().clamp(-127.0, 127.0) as i8)
                .collect(),
        });
        while self.recent.len() > RECENT_TURNS {
            self.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOOTBALL: [&str; 4] = [
        "Scotland will learn in May whether the Euro 2016 qualifier with Georgia is played behind closed doors.",
        "UEFA opened disciplinary proceedings against the Georgian Football Federation after fans invaded the pitch.",
        "The federation could be fined, and the qualifier against Scotland moved to another stadium.",
        "Georgian supporters twice ran onto the field during the defeat by Germany in Tbilisi.",
    ];
    const ON_TOPIC: &str = "UEFA's disciplinary panel will decide whether Georgia's next home qualifier is played without fans.";
    const OFF_TOPIC: &str = "Whisk the eggs with sugar, fold in the flour, and bake the sponge cake for twenty-five minutes.";

    fn football() -> Topic {
        let s = DriftSettings::default();
        let mut topic = Topic::default();
        for t in FOOTBALL {
            topic.absorb(t, &s);
        }
        topic
    }

    #[test]
    fn first_turn_never_drifts() {
        let d = Topic::default().score(OFF_TOPIC, &DriftSettings::default());
        assert_eq!(d.drift_score, 0.0);
        assert!(!d.drift_detected && d.features.is_none() && d.topic_terms.is_empty());
        assert!(
            !d.new_terms.is_empty(),
            "the turn's terms are still listed: {d:?}"
        );
    }

    #[test]
    fn off_topic_drifts_and_on_topic_does_not() {
        let s = DriftSettings::default();
        let topic = football();
        let on = topic.score(ON_TOPIC, &s);
        let off = topic.score(OFF_TOPIC, &s);
        assert!(!on.drift_detected, "{on:?}");
        assert!(off.drift_detected, "{off:?}");
        assert!(off.drift_score > on.drift_score + 0.3, "{on:?}\n{off:?}");
        assert!((0.0..=1.0).contains(&off.drift_score));
        assert!(
            on.shared_terms
                .iter()
                .any(|t| t == "uefa" || t == "qualifier"),
            "{on:?}"
        );
        assert!(off.shared_terms.is_empty(), "{off:?}");
        assert!(off.new_terms.iter().any(|t| t == "cake"), "{off:?}");
        assert!(off.topic_terms.len() <= s.explain_terms);
        assert_eq!(topic.turns(), 4);
    }

    #[test]
    fn meaning_links_turns_without_shared_words() {
        // No word in common with the football topic, but the same field.
        let s = DriftSettings::default();
        let topic = football();
        let related = topic.score("The striker scored twice before half-time.", &s);
        let unrelated = topic.score("The bakery sells sourdough loaves and croissants.", &s);
        let (r, u) = (related.features, unrelated.features);
        assert!(
            r.zip(u)
                .is_some_and(|(r, u)| r.embedding_cosine > u.embedding_cosine),
            "{related:?}\n{unrelated:?}"
        );
        assert!(related.drift_score < unrelated.drift_score);
    }

    #[test]
    fn observe_equals_score_then_absorb() {
        let s = DriftSettings::default();
        let mut a = football();
        let mut b = a.clone();
        let scored = a.score(OFF_TOPIC, &s);
        a.absorb(OFF_TOPIC, &s);
        assert_eq!(b.observe(OFF_TOPIC, &s), scored);
        assert_eq!(a, b);
    }

    #[test]
    fn state_round_trips_through_json() {
        let s = DriftSettings::default();
        let topic = football();
        let json = serde_json::to_string(&topic).unwrap();
        let back: Topic = serde_json::from_str(&json).unwrap();
        assert_eq!(back.turns(), topic.turns());
        assert_eq!(back.top_terms(5), topic.top_terms(5));
        // Sums may differ in the last bit after a trip through text.
        let (a, b) = (back.score(OFF_TOPIC, &s), topic.score(OFF_TOPIC, &s));
        assert!((a.drift_score - b.drift_score).abs() < 1e-9, "{a:?}\n{b:?}");
        assert_eq!(
            (a.drift_detected, &a.new_terms),
            (b.drift_detected, &b.new_terms)
        );
        // Small enough to keep per session.
        assert!(json.len() < 16_000, "{} bytes", json.len());
        // A missing or older state starts over rather than failing.
        let empty: Topic = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.turns(), 0);
    }

    #[test]
    fn state_stays_bounded() {
        let s = DriftSettings::default();
        let mut topic = Topic::default();
        for i in 0..300 {
            topic.absorb(
                &format!("Item{i} costs {i} dollars at shop{i} in town{i} near river{i}."),
                &s,
            );
        }
        assert_eq!(topic.turns(), 300);
        assert_eq!(topic.top_terms(usize::MAX).len(), MAX_TOPIC_TERMS);
        assert_eq!(topic.recent.len(), RECENT_TURNS);
        assert!(topic.recent.iter().all(|r| r.terms.len() <= RECENT_TERMS));
        let smaller = DriftSettings {
            max_terms: 10,
            ..DriftSettings::default()
        };
        topic.absorb("One more turn about rivers.", &smaller);
        assert_eq!(topic.top_terms(usize::MAX).len(), 10);
    }

    #[test]
    fn empty_and_whitespace_turns_change_nothing_but_the_count() {
        let s = DriftSettings::default();
        let mut topic = football();
        let before = topic.top_terms(usize::MAX);
        for blank in ["", "   \n\t", "?!...", "the of and"] {
            let d = topic.observe(blank, &s);
            assert!(
                !d.drift_detected && d.drift_score == 0.0,
                "{blank:?}: {d:?}"
            );
        }
        assert_eq!(topic.turns(), 8);
        assert_eq!(topic.top_terms(usize::MAX), before);
        // An empty first turn does not make the next one "first": there is still no topic.
        let mut fresh = Topic::default();
        fresh.absorb(" ", &s);
        assert!(!fresh.score(OFF_TOPIC, &s).drift_detected);
    }

    #[test]
    fn very_long_and_non_ascii_turns() {
        let s = DriftSettings::default();
        let mut topic = football();
        let long = OFF_TOPIC.repeat(5_000);
        let d = topic.observe(&long, &s);
        assert!(d.drift_detected, "{d:?}");
        assert!(topic.top_terms(usize::MAX).len() <= MAX_TOPIC_TERMS);

        let mut chat = Topic::default();
        chat.absorb("東京の天気は晴れです。東京タワーに行きます。", &s);
        chat.absorb("Zürich's Bürgermeister trifft die Stadträte in Zürich.", &s);
        let d = chat.score("東京タワーの夜景", &s);
        assert!(d.shared_terms.iter().any(|t| t == "東京"), "{d:?}");
        assert!((0.0..=1.0).contains(&d.drift_score));
    }

    #[test]
    fn settings_validate_and_default_from_the_model() {
        let d = DriftSettings::default();
        assert!(d.validate().is_ok());
        assert_eq!(d.threshold, model::shipped().threshold);
        for bad in [
            DriftSettings {
                threshold: 0.0,
                ..d.clone()
            },
            DriftSettings {
                threshold: 1.5,
                ..d.clone()
            },
            DriftSettings {
                decay: 1.0,
                ..d.clone()
            },
            DriftSettings {
                max_terms: 0,
                ..d.clone()
            },
            DriftSettings {
                max_terms: MAX_TOPIC_TERMS + 1,
                ..d.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        // Partial JSON fills in the defaults.
        let partial: DriftSettings = serde_json::from_str(r#"{"threshold": 0.2}"#).unwrap();
        assert_eq!(partial.threshold, 0.2);
        assert_eq!(partial.decay, d.decay);
    }
}
