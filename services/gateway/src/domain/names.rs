use crate::error::GatewayError;

const MAX_NAME_CHARS: usize = 200;

fn clean(raw: &str, what: &str, allow_empty: bool) -> Result<String, GatewayError> {
    let trimmed = raw.trim();
    if trimmed.chars().any(char::is_control) {
        return Err(GatewayError::Invalid(format!(
            "{what} contains control characters"
        )));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(GatewayError::Invalid(format!(
            "{what} is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if trimmed.is_empty() && !allow_empty {
        return Err(GatewayError::Invalid(format!("{what} must not be empty")));
    }
    Ok(trimmed.to_owned())
}

/// A person's name: up to 200 characters, no control characters; may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    pub fn parse(raw: &str) -> Result<Self, GatewayError> {
        clean(raw, "full_name", true).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An organisation's name: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(raw: &str) -> Result<Self, GatewayError> {
        clean(raw, "name", false).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A URL-safe slug: lower-case letters, digits and single hyphens, plus a random suffix so two
    /// organisations of the same name never collide.
    pub fn slug(&self) -> String {
        let mut slug = String::new();
        for c in self.0.to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
            if slug.len() >= 40 {
                break;
            }
        }
        let slug = slug.trim_end_matches('-');
        let suffix: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..6)
                .map(|_| {
                    char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])
                })
                .collect()
        };
        if slug.is_empty() {
            format!("org-{suffix}")
        } else {
            format!("{slug}-{suffix}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slugs() {
        assert!(OrgName::parse("   ").is_err());
        assert!(OrgName::parse("a\u{0}b").is_err());
        let slug = OrgName::parse("  Acme & Sons, Ltd. ").unwrap().slug();
        assert!(slug.starts_with("acme-sons-ltd-"), "{slug}");
        assert_eq!(slug.len(), "acme-sons-ltd-".len() + 6);
        assert!(OrgName::parse("日本").unwrap().slug().starts_with("org-"));
        assert_eq!(FullName::parse("  Ada ").unwrap().as_str(), "Ada");
    }
}
