//! Access tokens: short-lived HS256 JWTs naming the user and the refresh session they came from.
//! Checking one needs no storage at all.

use std::time::Duration;

use cg_storage::sql_types::Id;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::sessions::Issued;
use crate::error::GatewayError;

const TOKEN_TYPE: &str = "access";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: Id,
    /// The refresh session it was issued from.
    pub sid: Id,
    /// That session's family (every session rotated from one login).
    #[serde(default)]
    pub fam: Id,
    /// When that family's login happened (Unix milliseconds).
    #[serde(default)]
    pub fst: i64,
    pub iat: i64,
    pub exp: i64,
    pub jti: Id,
    pub typ: String,
}

/// Issues and checks access tokens.
pub struct TokenIssuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(secret: &[u8], ttl: Duration) -> anyhow::Result<Self> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)
                .map_err(|e| anyhow::anyhow!("JWT_SECRET: {e}"))?,
            decoding: DecodingKey::from_secret(secret)
                .map_err(|e| anyhow::anyhow!("JWT_SECRET: {e}"))?,
            validation,
            ttl,
        })
    }

    /// Lifetime of a token, in seconds (`expires_in`).
    pub fn ttl_secs(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// A token for the user of `session`.
    pub fn issue(&self, session: &Issued) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: session.user_id,
            sid: session.session_id,
            fam: session.family_id,
            fst: session.family_started_at.timestamp_millis(),
            iat: now,
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2),
            jti: Id::new(),
            typ: TOKEN_TYPE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| anyhow::anyhow!("signing an access token: {e}"))
    }

    /// The claims of a valid, unexpired access token.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, GatewayError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| GatewayError::Unauthorized("invalid or expired access token"))?;
        if data.claims.typ != TOKEN_TYPE {
            return Err(GatewayError::Unauthorized(
                "invalid or expired access token",
            ));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tampering() {
        let issuer = TokenIssuer::new(&[7; 32], Duration::from_secs(60)).unwrap();
        let (user, session) = (Id::new(), Id::new());
        let issued = Issued {
            refresh_token: String::new(),
            session_id: session,
            user_id: user,
            family_id: Id::new(),
            family_started_at: cg_storage::sql_types::Timestamp::now(),
            expires_at: cg_storage::sql_types::Timestamp::now(),
        };
        let token = issuer.issue(&issued).unwrap();
        let claims = issuer.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.sid), (user, session));

        let other = TokenIssuer::new(&[8; 32], Duration::from_secs(60)).unwrap();
        assert!(
            other.verify(&token).is_err(),
            "another key's token accepted"
        );
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(issuer.verify(&tampered).is_err());
        let now = chrono::Utc::now().timestamp();
        let stale = AccessClaims {
            sub: user,
            sid: session,
            fam: issued.family_id,
            fst: 0,
            iat: now - 120,
            exp: now - 60,
            jti: Id::new(),
            typ: TOKEN_TYPE.into(),
        };
        let old =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &stale, &issuer.encoding).unwrap();
        assert!(issuer.verify(&old).is_err(), "expired token accepted");
    }
}
