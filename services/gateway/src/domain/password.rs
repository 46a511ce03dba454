use secrecy::{ExposeSecret, SecretString};

use crate::error::GatewayError;

const MIN_PASSWORD_CHARS: usize = 8;
/// Argon2 hashes any length, but a cap keeps one request from buying seconds of CPU.
const MAX_PASSWORD_CHARS: usize = 128;

/// A password of 8 to 128 characters, never logged.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, GatewayError> {
        let n = raw.chars().count();
        if n < MIN_PASSWORD_CHARS {
            return Err(GatewayError::Invalid(format!(
                "password must have at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        if n > MAX_PASSWORD_CHARS {
            return Err(GatewayError::Invalid(format!(
                "password must have at most {MAX_PASSWORD_CHARS} characters"
            )));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        // Counted in characters, not bytes.
        assert!(Password::parse("ééééééé").is_err());
    }
}
