//! Random tokens and their hashes. Refresh tokens, API keys and invitation tokens are long random
//! strings; only their SHA-256 is stored, so a leaked table grants nothing.

use sha2::{Digest, Sha256};

/// Prefix of API keys (`cgk_` + 64 hex digits).
pub const API_KEY_PREFIX: &str = "cgk_";
/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "cgr_";
/// Prefix of invitation tokens.
pub const INVITATION_PREFIX: &str = "cgi_";
/// Characters of an API key shown in listings (`cgk_` and the first 8 hex digits).
pub const API_KEY_VISIBLE_CHARS: usize = 12;

/// `prefix` followed by 256 random bits in hex.
pub fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// Lower-case hex SHA-256 of `value`.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let a = random_token(API_KEY_PREFIX);
        let b = random_token(API_KEY_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("cgk_") && a.len() == 4 + 64);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
