//! Input validated at the edge into types the rest of the gateway can trust (`parse` or refuse).

mod email;
mod names;
mod password;
mod tier;

pub use email::Email;
pub use names::{FullName, OrgName};
pub use password::Password;
pub use tier::{TierFields, TierName};
