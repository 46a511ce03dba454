//! URLs the gateway signs itself (embedded mode, and downloads S3 cannot serve as stored):
//! `?expires=<unix seconds>&signature=<hex HMAC-SHA256 over method, object key and expiry>`. The
//! key is derived from `JWT_SECRET`, which every replica shares, so any replica can check a URL
//! another one signed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Separates these signatures from anything else keyed by `JWT_SECRET`.
const CONTEXT: &[u8] = b"codeguardians file URL v1";

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Expired,
    BadSignature,
}

/// Signs and checks file URLs.
#[derive(Clone)]
pub struct UrlSigner {
    /// The MAC keyed once; cloned for every signature.
    keyed: HmacSha256,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner")
    }
}

impl UrlSigner {
    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length")]
    pub fn new(secret: &[u8]) -> Self {
        let derived = HmacSha256::new_from_slice(secret)
            .expect("HMAC key")
            .chain_update(CONTEXT)
            .finalize()
            .into_bytes();
        Self {
            keyed: HmacSha256::new_from_slice(&derived).expect("HMAC key"),
        }
    }

    fn mac(&self, method: &str, object_key: &str, expires: i64) -> HmacSha256 {
        self.keyed
            .clone()
            .chain_update(method.as_bytes())
            .chain_update(b"\n")
            .chain_update(object_key.as_bytes())
            .chain_update(b"\n")
            .chain_update(expires.to_string().as_bytes())
    }

    /// The signature of `method` on `object_key` until `expires` (unix seconds), hex.
    pub fn sign(&self, method: &str, object_key: &str, expires: i64) -> String {
        hex::encode(
            self.mac(method, object_key, expires)
                .finalize()
                .into_bytes(),
        )
    }

    /// Check a presented signature (constant time), then the expiry.
    pub fn verify(
        &self,
        method: &str,
        object_key: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), Refusal> {
        let presented = hex::decode(signature).map_err(|_| Refusal::BadSignature)?;
        self.mac(method, object_key, expires)
            .verify_slice(&presented)
            .map_err(|_| Refusal::BadSignature)?;
        if now >= expires {
            return Err(Refusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_key_and_expiry_are_all_signed() {
        let signer = UrlSigner::new(b"0123456789abcdef0123456789abcdef");
        let sig = signer.sign("GET", "org/a", 1000);
        assert_eq!(signer.verify("GET", "org/a", 1000, &sig, 999), Ok(()));
        assert_eq!(
            signer.verify("GET", "org/a", 1000, &sig, 1000),
            Err(Refusal::Expired)
        );
        for (method, key, expires) in [
            ("PUT", "org/a", 1000),
            ("GET", "org/b", 1000),
            ("GET", "org/a", 2000),
        ] {
            assert_eq!(
                signer.verify(method, key, expires, &sig, 0),
                Err(Refusal::BadSignature)
            );
        }
        assert_eq!(
            signer.verify("GET", "org/a", 1000, "zz", 0),
            Err(Refusal::BadSignature)
        );
        let other = UrlSigner::new(b"another secret of enough length!!");
        assert_eq!(
            other.verify("GET", "org/a", 1000, &sig, 0),
            Err(Refusal::BadSignature)
        );
    }
}
