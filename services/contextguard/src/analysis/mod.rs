//! ContextGuard's pure analysis: drift of code between two versions (line diff) and drift of a
//! conversation away from its running topic.
//!
//! - [`code`]: `code_drift(previous, current)`, a Myers line diff with added/removed/common lines.
//! - [`drift`]: the per-session [`Topic`], scored then absorbed turn by turn.
//! - [`lexicon`]: word rarity and small LSA word vectors (`model/lexicon.bin`).
//! - [`model`]: the logistic drift model (`model/drift.json`) and the held-out rule.
//! - [`text`]: the tokeniser both use.
//! - [`training`]: fitting and tuning the drift model.
//!
//! Both models are fitted by `codeguardians train contextguard` and measured by
//! `codeguardians eval contextguard` (see `docs/quality.md`).

pub mod code;
pub mod drift;
pub mod lexicon;
mod linalg;
pub mod model;
pub mod text;
pub mod training;

pub use code::{CodeDrift, CodeMetrics, Severity, code_drift};
pub use drift::{DriftSettings, Features, Topic, TurnDrift};
