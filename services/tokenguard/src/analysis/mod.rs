//! TokenGuard's pure analysis: exact token counts with OpenAI's published encodings, a price
//! table, confidence from log-probabilities, the pruning decision, and pruning that keeps meaning.
//! Text in, figures out; no I/O.

pub mod confidence;
pub mod encoding;
pub mod pricing;
pub mod prune;
pub mod text;

pub use encoding::Encoding;
pub use pricing::{Price, PriceTable};
