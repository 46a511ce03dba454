//! The vocabulary of an analysis: protected classes, bias types, and the entities and patterns
//! found, with byte spans into the analysed text.

use serde::Serialize;

/// A protected characteristic a group is defined by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtectedClass {
    Gender,
    RaceEthnicity,
    Religion,
    Age,
    Disability,
    SexualOrientation,
    Nationality,
    Socioeconomic,
}

impl ProtectedClass {
    pub const ALL: [Self; 8] = [
        Self::Gender,
        Self::RaceEthnicity,
        Self::Religion,
        Self::Age,
        Self::Disability,
        Self::SexualOrientation,
        Self::Nationality,
        Self::Socioeconomic,
    ];

    /// The serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gender => "gender",
            Self::RaceEthnicity => "race_ethnicity",
            Self::Religion => "religion",
            Self::Age => "age",
            Self::Disability => "disability",
            Self::SexualOrientation => "sexual_orientation",
            Self::Nationality => "nationality",
            Self::Socioeconomic => "socioeconomic",
        }
    }

    /// The class with this serde name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A kind of bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BiasType {
    Hostility,
    Slur,
    Dehumanization,
    Stereotyping,
    Microaggression,
    Exclusion,
    GenderedDefault,
}

impl BiasType {
    pub const ALL: [Self; 7] = [
        Self::Hostility,
        Self::Slur,
        Self::Dehumanization,
        Self::Stereotyping,
        Self::Microaggression,
        Self::Exclusion,
        Self::GenderedDefault,
    ];

    /// The serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hostility => "hostility",
            Self::Slur => "slur",
            Self::Dehumanization => "dehumanization",
            Self::Stereotyping => "stereotyping",
            Self::Microaggression => "microaggression",
            Self::Exclusion => "exclusion",
            Self::GenderedDefault => "gendered_default",
        }
    }

    /// The type with this serde name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How a group term relates to bias: a frequent target, its dominant counterpart, or a coded term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Marked,
    Unmarked,
    Coded,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marked => "marked",
            Self::Unmarked => "unmarked",
            Self::Coded => "coded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Marked, Self::Unmarked, Self::Coded]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A mention of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub text: String,
    pub class: ProtectedClass,
    /// UTF-8 byte offsets into the analysed text.
    pub start: usize,
    pub end: usize,
    /// A pronoun or group noun that refers back to a group named earlier, or a coded term.
    pub implicit: bool,
}

/// A stretch of the analysed text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl Span {
    pub fn of(text: &str, start: usize, end: usize) -> Self {
        Self {
            start,
            end,
            text: text.get(start..end).unwrap_or_default().to_owned(),
        }
    }
}

/// A bias pattern found in the text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pattern {
    pub span: Span,
    /// What was recognised, e.g. "generalisation", "slur", "gendered default".
    pub pattern: String,
    pub category: BiasType,
    /// The group it is about, when known.
    pub group: Option<ProtectedClass>,
    /// Context that softens or cancels it: a qualifier ("some"), negation, reported speech,
    /// a question.
    pub qualifier: Option<String>,
}

/// Severity 0–10 and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Severity {
    pub score: f64,
    pub reasoning: Vec<String>,
}

/// Overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BiasLevel {
    None,
    Mild,
    Moderate,
    High,
}

impl BiasLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Mild => "mild",
            Self::Moderate => "moderate",
            Self::High => "high",
        }
    }
}
