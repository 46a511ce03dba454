//! Text fields several resources share the rules of: a display name and a description.

use crate::error::{GatewayError, Result};

/// A name: trimmed, 1 to `max` characters, none of them control characters.
pub fn name(raw: &str, max: usize) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(GatewayError::Invalid(format!(
            "name must be 1 to {max} printable characters"
        )));
    }
    Ok(name.to_owned())
}

/// A description: trimmed, at most `max` characters (may be empty).
pub fn description(raw: &str, max: usize) -> Result<String> {
    let description = raw.trim();
    if description.chars().count() > max {
        return Err(GatewayError::Invalid(format!(
            "description must be at most {max} characters"
        )));
    }
    Ok(description.to_owned())
}
