//! The layered detectors: group mentions (explicit, and implicit pronouns that refer back), the
//! patterns that attach a trait, a role, hostility or exclusion to a group, the context that
//! softens them (qualifiers, negation, reported speech, questions, counter-speech), slurs and
//! gendered defaults. Each finding becomes a named feature for the model in [`super::model`]
//! and, where it has a span, a [`Pattern`] in the output.

use std::collections::BTreeMap;
use std::ops::Range;

use super::lexicon::{Cue, LEXICONS};
use super::text::Tokens;
use super::{BiasType, Pattern, ProtectedClass, Role, Span};

/// How far after a group mention its predicate is looked for, in words.
const PREDICATE_WINDOW: usize = 10;
/// The prefix of the features that name a word of a group's predicate (see [`detect`]).
pub const PREDICATE_PREFIX: &str = "p:";
/// How far before a mention a reporting verb ("saying", "thinks") is looked for, in words.
const REPORTING_WINDOW: usize = 12;

const COPULA: [&str; 10] = [
    "are", "is", "were", "was", "be", "arent", "isnt", "r", "being", "been",
];
const PLURAL_PRONOUNS: [&str; 5] = ["they", "them", "their", "theyre", "themselves"];
const FEMALE_PRONOUNS: [&str; 5] = ["she", "her", "hers", "herself", "shes"];
const MALE_PRONOUNS: [&str; 4] = ["he", "him", "his", "hes"];
/// First-person subjects: "I think X" endorses X, "you think X" reports it.
const FIRST_SUBJECTS: [&str; 5] = ["i", "im", "we", "ive", "id"];
/// Person nouns that are plural without an -s.
const PLURAL_NOUNS: [&str; 5] = ["people", "men", "women", "folks", "children"];
/// Determiners that make a plural mention look singular only for singular nouns.
const SINGULAR_ONLY: [&str; 6] = ["that", "this", "a", "an", "one", "any"];

/// A group mention, in word indices.
#[derive(Debug, Clone)]
pub struct Mention {
    pub words: Range<usize>,
    pub class: ProtectedClass,
    pub role: Role,
    pub plural: bool,
    pub implicit: bool,
}

/// A gendered default and its neutral replacement, in bytes.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub bytes: Range<usize>,
    pub with: String,
}

/// Everything the detectors found.
#[derive(Debug, Default)]
pub struct Findings {
    pub mentions: Vec<Mention>,
    pub patterns: Vec<Pattern>,
    /// Named features for the model (see [`super::model`]).
    pub features: BTreeMap<String, f64>,
    /// The class of the first targeted group, which the model's per-class weights key on.
    pub primary: Option<ProtectedClass>,
    /// Neutral wording for gendered defaults and qualified wording for generalisations.
    pub replacements: Vec<Replacement>,
    /// Context notes for the reasoning ("reported speech", "counter-speech", …).
    pub context: Vec<String>,
}

impl Findings {
    fn add(&mut self, name: &str, value: f64) {
        *self.features.entry(name.to_owned()).or_insert(0.0) += value;
    }
}

/// `starts[c][i]`: a cue of kind `c` starts at word `i`, with that many words.
struct CueMap {
    starts: Vec<Vec<usize>>,
}

impl CueMap {
    fn new(words: &[&str]) -> Self {
        let starts = Cue::ALL
            .iter()
            .map(|c| {
                let set = &LEXICONS.cues[c.index()];
                (0..words.len())
                    .map(|i| set.match_at(words, i).map_or(0, |(n, _)| n))
                    .collect()
            })
            .collect();
        Self { starts }
    }

    fn at(&self, cue: Cue, i: usize) -> bool {
        self.starts[cue.index()].get(i).is_some_and(|n| *n > 0)
    }

    /// Length in words of the cue starting at `i`, 0 if none.
    fn len(&self, cue: Cue, i: usize) -> usize {
        self.starts[cue.index()].get(i).copied().unwrap_or(0)
    }

    /// The first word in `range` where a cue of this kind starts.
    fn find(&self, cue: Cue, range: Range<usize>) -> Option<usize> {
        let v = &self.starts[cue.index()];
        let end = range.end.min(v.len());
        (range.start.min(end)..end).find(|&i| v[i] > 0)
    }

    fn count(&self, cue: Cue) -> usize {
        self.starts[cue.index()].iter().filter(|n| **n > 0).count()
    }
}

fn find_mentions(words: &[&str], referent: Option<(ProtectedClass, Role)>) -> Vec<Mention> {
    let lex = &*LEXICONS;
    let is_person = |i: usize| words.get(i).is_some_and(|w| lex.person_nouns.contains(*w));
    let plural_noun = |w: &str| w.ends_with('s') || PLURAL_NOUNS.contains(&w);
    let mut mentions = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if let Some(&(class, role)) = lex.adjectives.get(words[i])
            && is_person(i + 1)
        {
            mentions.push(Mention {
                words: i..i + 2,
                class,
                role,
                plural: plural_noun(words[i + 1]),
                implicit: false,
            });
            i += 2;
            continue;
        }
        if let Some((n, values)) = lex.groups.match_at(words, i)
            && let Some(&(class, role)) = values.first()
        {
            // "jewish people", "gay men": the noun says whether it is plural.
            let end = if is_person(i + n) && class != ProtectedClass::Gender {
                i + n + 1
            } else {
                i + n
            };
            mentions.push(Mention {
                words: i..end,
                class,
                role,
                plural: plural_noun(words[end - 1]) || role == Role::Coded,
                implicit: false,
            });
            i = end;
            continue;
        }
        i += 1;
    }
    // Plural pronouns refer back to the last group named before them.
    let mut implicit = Vec::new();
    let mut last = referent;
    let mut next = 0;
    for (i, word) in words.iter().enumerate() {
        while next < mentions.len() && mentions[next].words.start <= i {
            let m = &mentions[next];
            if m.plural || m.class != ProtectedClass::Gender {
                last = Some((m.class, m.role));
            }
            next += 1;
        }
        let inside = next > 0 && mentions[next - 1].words.contains(&i);
        if let Some((class, role)) = last
            && !inside
            && PLURAL_PRONOUNS.contains(word)
        {
            implicit.push(Mention {
                words: i..i + 1,
                class,
                role,
                plural: true,
                implicit: true,
            });
        }
    }
    mentions.extend(implicit);
    mentions
}

/// Run every detector over the tokens of `text`.
/// `referent`: the group "they" refers to when the text names none before it (from the
/// request's context).
pub fn detect(text: &str, tokens: &Tokens, referent: Option<(ProtectedClass, Role)>) -> Findings {
    let words = tokens.norms();
    let n = words.len();
    let cues = CueMap::new(&words);
    let mut f = Findings {
        mentions: find_mentions(&words, referent),
        ..Findings::default()
    };
    let span_of = |r: Range<usize>| -> Span {
        let a = tokens.words[r.start].span.start;
        let b = tokens.words[r.end.max(r.start + 1) - 1].span.end;
        Span::of(text, a, b)
    };
    f.primary = f
        .mentions
        .iter()
        .find(|m| m.role == Role::Marked)
        .map(|m| m.class);

    let mentions = f.mentions.clone();
    for m in &mentions {
        let (i, j) = (m.words.start, m.words.end);
        if m.implicit {
            f.add("implicit", 1.0);
        }
        f.add(&format!("role_{}", m.role.as_str()), 1.0);
        f.add(&format!("class_{}", m.class.as_str()), 1.0);
        // The determiner in front: "some", "all", "my", "the".
        let mut det: Option<(Cue, usize)> = None;
        for kind in [
            Cue::Qualifier,
            Cue::Universal,
            Cue::Individual,
            Cue::Demonstrative,
        ] {
            for back in 1..=2 {
                let Some(b) = i.checked_sub(back) else {
                    continue;
                };
                if tokens.words[b].sentence != tokens.words[i].sentence || !cues.at(kind, b) {
                    continue;
                }
                if kind == Cue::Individual && m.plural && SINGULAR_ONLY.contains(&words[b]) {
                    continue;
                }
                det = det.or(Some((kind, b)));
            }
        }
        let det_kind = det.map(|d| d.0);
        // "women are…", and "every woman is…" / "any Muslim would…": a whole group either way.
        let generic =
            (m.plural || det_kind == Some(Cue::Universal)) && det_kind != Some(Cue::Individual);
        // The predicate: the rest of the clause, up to PREDICATE_WINDOW words.
        let clause = tokens.words[j - 1].clause;
        let mut w_end = j;
        while w_end < n && w_end < j + PREDICATE_WINDOW && tokens.words[w_end].clause == clause {
            w_end += 1;
        }
        let copula = (j..(j + 3).min(w_end)).any(|t| COPULA.contains(&words[t]));
        let negated = cues.find(Cue::Negation, j..(j + 4).min(w_end)).is_some();
        let trait_at = cues.find(Cue::Trait, j..w_end);
        let dehum_at = cues.find(Cue::Dehumanizing, j..w_end);
        let universal =
            det_kind == Some(Cue::Universal) || cues.find(Cue::Universal, j..w_end).is_some();
        let comparative = cues.find(Cue::Comparative, j..w_end).is_some();
        let sentence = tokens.sentence_of(i);
        // Reported speech: a reporting verb before the mention whose subject is not "I".
        let (mut reported, mut endorsed) = (tokens.words[i].quoted, false);
        for t in i.saturating_sub(REPORTING_WINDOW).max(sentence.start)..i {
            if !cues.at(Cue::Reporting, t) {
                continue;
            }
            let by_me = (t.saturating_sub(3).max(sentence.start)..t)
                .any(|u| FIRST_SUBJECTS.contains(&words[u]));
            if by_me {
                endorsed = true;
            } else {
                reported = true;
            }
        }
        let question = tokens.is_question(i);
        let qualified = det_kind == Some(Cue::Qualifier);
        let modified = reported || question || qualified || negated;
        let mut qualifier: Vec<String> = Vec::new();
        if let Some((Cue::Qualifier, b)) = det {
            let len = cues.len(Cue::Qualifier, b).max(1);
            qualifier.push(format!("qualified by \"{}\"", span_of(b..b + len).text));
        }
        if negated {
            qualifier.push("negated".into());
        }
        if reported {
            qualifier.push("reported or quoted".into());
        }
        if question {
            qualifier.push("asked as a question".into());
        }
        let qualifier = (!qualifier.is_empty()).then(|| qualifier.join(", "));
        let cue_end = |at: usize, cue: Cue| at + cues.len(cue, at).max(1);
        // What is said of a targeted group: the words of its predicate ("p:lazy" in "X are lazy").
        if m.role != Role::Unmarked {
            for word in &words[j..w_end] {
                f.features.insert(format!("{PREDICATE_PREFIX}{word}"), 1.0);
            }
        }

        if m.role == Role::Unmarked {
            if generic
                && (copula || universal || comparative)
                && (trait_at.is_some() || dehum_at.is_some())
            {
                f.add("unmarked_gen_trait", 1.0);
            } else if trait_at.is_some() {
                f.add("unmarked_trait", 1.0);
            }
            continue;
        }
        let attribute = dehum_at.or(trait_at);
        if let Some(at) = attribute {
            let cue = if dehum_at.is_some() {
                Cue::Dehumanizing
            } else {
                Cue::Trait
            };
            let category = if dehum_at.is_some() {
                BiasType::Dehumanization
            } else {
                BiasType::Stereotyping
            };
            let start = det.map_or(i, |d| d.1.min(i));
            if generic && (copula || universal || comparative) {
                f.add(
                    if modified {
                        "gen_trait_mod"
                    } else {
                        "gen_trait"
                    },
                    1.0,
                );
                for (on, name) in [
                    (negated, "gen_trait_neg"),
                    (qualified, "gen_trait_qual"),
                    (reported, "gen_trait_rep"),
                    (question, "gen_trait_q"),
                    (endorsed, "gen_trait_endorsed"),
                ] {
                    if on {
                        f.add(name, 1.0);
                    }
                }
                f.patterns.push(Pattern {
                    span: span_of(start..cue_end(at, cue)),
                    pattern: "generalisation".into(),
                    category,
                    group: Some(m.class),
                    qualifier: qualifier.clone(),
                });
                if !modified {
                    generalisation_rewrite(&mut f, tokens, text, det, i);
                }
            } else {
                f.add(
                    if modified {
                        "near_trait_mod"
                    } else {
                        "near_trait"
                    },
                    1.0,
                );
                if endorsed {
                    f.add("near_trait_endorsed", 1.0);
                }
                f.patterns.push(Pattern {
                    span: span_of(i..cue_end(at, cue)),
                    pattern: "group-trait association".into(),
                    category,
                    group: Some(m.class),
                    qualifier: qualifier.clone(),
                });
            }
        }
        if generic && copula && trait_at.is_none() {
            f.add("gen_other", 1.0);
        }
        if universal && generic {
            f.add("universal", 1.0);
        }
        if comparative && generic {
            f.add("comparative", 1.0);
        }
        if dehum_at.is_some() {
            f.add("dehum", 1.0);
        }
        if m.class == ProtectedClass::Gender
            && let Some(at) = cues.find(Cue::Role, sentence.clone())
        {
            let individual = det_kind == Some(Cue::Individual);
            f.add(
                if individual {
                    "female_role_ind"
                } else {
                    "female_role"
                },
                1.0,
            );
            let (a, b) = (i.min(at), j.max(cue_end(at, Cue::Role)));
            f.patterns.push(Pattern {
                span: span_of(a..b),
                pattern: "gender-role association".into(),
                category: BiasType::Stereotyping,
                group: Some(m.class),
                qualifier: qualifier.clone(),
            });
        }
        if det_kind == Some(Cue::Individual) {
            f.add("individual", 1.0);
        }
        for (cue, name, category) in [
            (Cue::Hostility, "hostile_group", BiasType::Hostility),
            (Cue::Exclusion, "exclusion", BiasType::Exclusion),
        ] {
            if let Some(at) = cues.find(cue, sentence.clone()) {
                f.add(name, 1.0);
                f.patterns.push(Pattern {
                    span: span_of(at..cue_end(at, cue)),
                    pattern: if cue == Cue::Hostility {
                        "hostility towards a group".into()
                    } else {
                        "exclusion of a group".into()
                    },
                    category,
                    group: Some(m.class),
                    qualifier: qualifier.clone(),
                });
            }
        }
    }

    for cue in [
        Cue::Reporting,
        Cue::Counter,
        Cue::Question,
        Cue::SecondPerson,
        Cue::ThirdPerson,
        Cue::FirstPerson,
        Cue::Conditional,
        Cue::Negation,
        Cue::Qualifier,
        Cue::Microaggression,
        Cue::Hostility,
        Cue::Trait,
        Cue::Role,
    ] {
        let count = cues.count(cue);
        if count > 0 {
            f.add(&format!("cue_{}", cue.as_str()), count.min(3) as f64);
        }
    }
    if tokens.questions.iter().any(|q| *q) {
        f.add("qmark", 1.0);
    }
    // "I'm not racist, but…", "it's not homophobic to…": a disclaimer, not counter-speech.
    for t in 0..n {
        if cues.at(Cue::Counter, t) && (t.saturating_sub(2)..t).any(|u| cues.at(Cue::Negation, u)) {
            f.add("disclaimer", 1.0);
        }
    }
    if cues.count(Cue::Counter) > 0 {
        f.context
            .push("the text names or condemns a bias (counter-speech)".into());
    }
    for t in 0..n {
        if let Some(len) = Some(cues.len(Cue::Microaggression, t)).filter(|l| *l > 0) {
            f.patterns.push(Pattern {
                span: span_of(t..t + len),
                pattern: "microaggression".into(),
                category: BiasType::Microaggression,
                group: f.primary,
                qualifier: None,
            });
        }
    }
    detect_slurs(&mut f, tokens, &words, text);
    detect_gendered_defaults(&mut f, tokens, &words, text);
    f.add("len", (n as f64).ln_1p() / 5.0);
    let explicit = f.mentions.iter().filter(|m| !m.implicit).count();
    f.add("n_ment", explicit.min(4) as f64 / 2.0);
    f
}

/// "All X are…" / "X are…" → "Some X are…": a qualified statement in place of a generalisation.
fn generalisation_rewrite(
    f: &mut Findings,
    tokens: &Tokens,
    text: &str,
    det: Option<(Cue, usize)>,
    mention: usize,
) {
    let replace_from = match det {
        Some((Cue::Universal | Cue::Demonstrative, b)) => b,
        _ => mention,
    };
    let start = tokens.words[replace_from].span.start;
    if f.replacements.iter().any(|r| r.bytes.contains(&start)) {
        return;
    }
    let end = if replace_from < mention {
        tokens.words[mention].span.start
    } else {
        start
    };
    let capital = text
        .get(start..)
        .and_then(|rest| rest.chars().next())
        .is_some_and(char::is_uppercase);
    let with = if capital { "Some " } else { "some " };
    f.replacements.push(Replacement {
        bytes: start..end,
        with: with.to_owned(),
    });
}

fn detect_slurs(f: &mut Findings, tokens: &Tokens, words: &[&str], text: &str) {
    let mut i = 0;
    while i < words.len() {
        let Some((len, values)) = LEXICONS.profanity.match_at(words, i) else {
            i += 1;
            continue;
        };
        if let Some(p) = values.first() {
            let bytes = tokens.words[i].span.start..tokens.words[i + len - 1].span.end;
            if let Some(class) = p.slur {
                f.add("slur", p.severity / 3.0);
                f.patterns.push(Pattern {
                    span: Span::of(text, bytes.start, bytes.end),
                    pattern: "slur".into(),
                    category: BiasType::Slur,
                    group: Some(class),
                    qualifier: tokens.words[i].quoted.then(|| "quoted".to_owned()),
                });
                f.replacements.push(Replacement {
                    bytes,
                    with: "[slur removed]".into(),
                });
            } else {
                f.add("profanity", p.severity / 3.0);
            }
        }
        i += len;
    }
}

fn detect_gendered_defaults(f: &mut Findings, tokens: &Tokens, words: &[&str], text: &str) {
    let lex = &*LEXICONS;
    for i in 0..words.len() {
        if let Some((len, values)) = lex.gendered.match_at(words, i)
            && let Some(neutral) = values.first()
        {
            f.add("gendered_default", 1.0);
            let bytes = tokens.words[i].span.start..tokens.words[i + len - 1].span.end;
            f.patterns.push(Pattern {
                span: Span::of(text, bytes.start, bytes.end),
                pattern: format!("gendered default (neutral: {neutral})"),
                category: BiasType::GenderedDefault,
                group: Some(ProtectedClass::Gender),
                qualifier: None,
            });
            f.replacements.push(Replacement {
                bytes,
                with: neutral.clone(),
            });
        }
    }
    // "a doctor … he", "every nurse … she": a generic role given a gender by its pronoun.
    // Sentences that name a gendered person are left alone ("a nurse, my mother, said she…").
    let mut gendered_sentences = vec![false; tokens.sentences.len()];
    for m in &f.mentions {
        if m.class == ProtectedClass::Gender
            && let Some(s) = gendered_sentences.get_mut(tokens.words[m.words.start].sentence)
        {
            *s = true;
        }
    }
    for i in 0..words.len() {
        let generic_det = matches!(words[i], "a" | "an" | "every" | "each" | "any" | "the");
        if !generic_det
            || !words
                .get(i + 1)
                .is_some_and(|w| lex.occupations.contains(*w))
        {
            continue;
        }
        let sentence = tokens.sentence_of(i);
        if gendered_sentences[tokens.words[i].sentence] {
            continue;
        }
        let pronoun = (i + 2..sentence.end)
            .find(|&t| FEMALE_PRONOUNS.contains(&words[t]) || MALE_PRONOUNS.contains(&words[t]));
        if let Some(t) = pronoun {
            f.add("gendered_default", 1.0);
            let a = tokens.words[i].span.start;
            let b = tokens.words[t].span.end;
            f.patterns.push(Pattern {
                span: Span::of(text, a, b),
                pattern: "gendered pronoun for a generic role".into(),
                category: BiasType::GenderedDefault,
                group: Some(ProtectedClass::Gender),
                qualifier: None,
            });
            let neutral = match words[t] {
                "he" | "she" => "they",
                "him" => "them",
                "his" | "hers" => "their",
                "her" => "their",
                "hes" | "shes" => "they're",
                _ => "they",
            };
            f.replacements.push(Replacement {
                bytes: tokens.words[t].span.clone(),
                with: neutral.into(),
            });
        }
    }
}
