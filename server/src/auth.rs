//! Authentication: HS256 JSON Web Tokens, verified at the WebSocket handshake, and the guest
//! tokens `POST /api/guest` issues in dev mode.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

/// How long a guest token is valid: long enough for a session with reconnects.
pub const GUEST_TOKEN_TTL_SECS: u64 = 60 * 60;

/// The claims Tickwire reads.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The subject: a player id.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No token in `Authorization: Bearer` or `?token=`.
    #[error("missing token (Authorization: Bearer or ?token=)")]
    Missing,
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// The header's `alg` is not HS256.
    #[error("unsupported token algorithm (HS256 only)")]
    Algorithm,
    /// The signature does not match.
    #[error("bad token signature")]
    Signature,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Signs and verifies HS256 tokens with one secret.
#[derive(Clone)]
pub struct JwtKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(…)")
    }
}

impl JwtKeys {
    /// Keys for a secret.
    #[must_use]
    pub fn new(secret: &[u8]) -> JwtKeys {
        JwtKeys { secret: secret.to_vec() }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }

    /// A signed token for `claims`.
    #[must_use]
    pub fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(claims).expect("claims serialize to JSON infallibly"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verifies a token at time `now_unix` and returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, AuthError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::Malformed)?;
        if header.alg != "HS256" {
            return Err(AuthError::Algorithm);
        }
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| AuthError::Malformed)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig).map_err(|_| AuthError::Signature)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(AuthError::Malformed)?;
        if claims.exp <= now_unix {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `n` random bytes as lower-case hex (resume tokens, dev secrets).
#[must_use]
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_every_refusal() {
        let keys = JwtKeys::new(b"secret");
        let claims = Claims { sub: "p1".into(), exp: 1_000 };
        let token = keys.sign(&claims);
        assert_eq!(keys.verify(&token, 999), Ok(claims.clone()));
        assert_eq!(keys.verify(&token, 1_000), Err(AuthError::Expired));
        assert_eq!(JwtKeys::new(b"other").verify(&token, 0), Err(AuthError::Signature));
        assert_eq!(keys.verify("a.b", 0), Err(AuthError::Malformed));
        assert_eq!(keys.verify("a.b.c.d", 0), Err(AuthError::Malformed));
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            token.split('.').nth(1).unwrap()
        );
        assert_eq!(keys.verify(&none_alg, 0), Err(AuthError::Algorithm));
        // A tampered payload fails the signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":99999}"#);
        parts[1] = &forged;
        assert_eq!(keys.verify(&parts.join("."), 0), Err(AuthError::Signature));
    }
}
