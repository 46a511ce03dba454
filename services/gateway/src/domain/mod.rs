//! Input validated at the edge into types the rest of the gateway can trust (`parse` or refuse).

mod email;
mod file_name;
mod names;
mod password;
mod tier;

pub use email::Email;
pub use file_name::FileName;
pub use names::{FullName, OrgName};
pub use password::Password;
pub use tier::{TierFields, TierName};
