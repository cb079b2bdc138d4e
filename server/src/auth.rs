//! Authentication: HS256 JSON Web Tokens ([`jsonwebtoken`]), verified at the WebSocket
//! handshake, and the guest tokens `POST /api/guest` issues in dev mode.
//!
//! Only HS256 is accepted (`alg: none`, other HMAC sizes and public-key algorithms are refused
//! before the signature is looked at); `exp` is required and checked, `nbf` is checked when a
//! token has one, both with [`JWT_LEEWAY_SECS`] of clock skew; `aud` is checked only when an
//! audience is configured (`--jwt-audience`), and then required.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How long a guest token is valid: long enough for a session with reconnects.
pub const GUEST_TOKEN_TTL_SECS: u64 = 60 * 60;

/// Clock skew tolerated on `exp` and `nbf`, in seconds: enough for an issuer whose clock is a
/// little off, too little to matter for a token's life.
pub const JWT_LEEWAY_SECS: u64 = 5;

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
    /// Not three base64url parts of JSON with the claims Tickwire needs.
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
    /// `nbf` is in the future.
    #[error("token not valid yet")]
    NotYetValid,
    /// An audience is configured and the token's `aud` is missing or another.
    #[error("token for another audience")]
    Audience,
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(e: jsonwebtoken::errors::Error) -> AuthError {
        match e.kind() {
            ErrorKind::InvalidAlgorithm
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::MissingAlgorithm => AuthError::Algorithm,
            ErrorKind::InvalidSignature => AuthError::Signature,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::Audience,
            ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => AuthError::Audience,
            // Bad base64, bad JSON (an `alg` the library does not know, such as `none`, is
            // one), a missing or mistyped claim.
            _ => AuthError::Malformed,
        }
    }
}

/// What [`JwtKeys::sign`] writes: the claims, and the audience when one is configured.
#[derive(Serialize)]
struct Signed<'a> {
    sub: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Signs and verifies HS256 tokens with one secret (and, optionally, one audience).
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    audience: Option<String>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").field("audience", &self.audience).finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys for a secret, with no audience.
    ///
    /// # Panics
    ///
    /// When `secret` is empty (the configuration refuses secrets shorter than
    /// [`crate::config::MIN_JWT_SECRET_BYTES`] before this is called).
    #[must_use]
    pub fn new(secret: &[u8]) -> JwtKeys {
        let encoding = EncodingKey::from_secret(secret).expect("a non-empty HS256 secret");
        let decoding = DecodingKey::from_secret(secret).expect("a non-empty HS256 secret");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = JWT_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // Without a configured audience, `aud` is not ours to judge: ignored.
        validation.validate_aud = false;
        JwtKeys { encoding, decoding, validation, audience: None }
    }

    /// These keys, requiring `aud` to be `audience` when it is `Some` (and signing it in).
    #[must_use]
    pub fn with_audience(mut self, audience: Option<&str>) -> JwtKeys {
        self.audience = audience.map(str::to_owned);
        match audience {
            Some(aud) => {
                self.validation.validate_aud = true;
                self.validation.set_audience(&[aud]);
                self.validation.set_required_spec_claims(&["exp", "sub", "aud"]);
            }
            None => {
                self.validation.validate_aud = false;
                self.validation.aud = None;
                self.validation.set_required_spec_claims(&["exp", "sub"]);
            }
        }
        self
    }

    /// A signed token for `claims` (with the configured audience, if any).
    #[must_use]
    pub fn sign(&self, claims: &Claims) -> String {
        let signed = Signed { sub: &claims.sub, exp: claims.exp, aud: self.audience.as_deref() };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &signed, &self.encoding)
            .expect("HS256 signing of plain claims does not fail")
    }

    /// Verifies a token against the current time and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        Ok(jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?.claims)
    }

    /// A signed token for other claims than a player's (a cluster's seat): as they are, with
    /// no audience. They must have no `sub`, so such a token is never a player's.
    #[must_use]
    pub fn sign_other<T: Serialize>(&self, claims: &T) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims does not fail")
    }

    /// Verifies a token of [`JwtKeys::sign_other`]: HS256, `exp` required and checked, no
    /// audience.
    pub fn verify_other<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<T, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = JWT_LEEWAY_SECS;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        Ok(jsonwebtoken::decode::<T>(token, &self.decoding, &validation)?.claims)
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
    use serde_json::json;

    const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!";

    /// A token for arbitrary claims and header, signed with `secret`.
    fn forge(header: &Header, claims: &serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
    }

    fn hs256() -> Header {
        Header::new(Algorithm::HS256)
    }

    /// `{"alg":"none","typ":"JWT"}`, base64url-encoded as a JWT header.
    const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

    /// The payload part of a token.
    fn payload(token: &str) -> &str {
        token.split('.').nth(1).unwrap()
    }

    #[test]
    fn sign_then_verify() {
        let keys = JwtKeys::new(SECRET);
        let claims = Claims { sub: "p1".into(), exp: unix_now() + 60 };
        assert_eq!(keys.verify(&keys.sign(&claims)), Ok(claims));
    }

    #[test]
    fn expired_tokens_are_refused_past_the_leeway() {
        let keys = JwtKeys::new(SECRET);
        let old = Claims { sub: "p1".into(), exp: unix_now() - JWT_LEEWAY_SECS - 10 };
        assert_eq!(keys.verify(&keys.sign(&old)), Err(AuthError::Expired));
        // Within the leeway, a just-expired token still passes (clock skew).
        let just = Claims { sub: "p1".into(), exp: unix_now() - 1 };
        assert_eq!(keys.verify(&keys.sign(&just)), Ok(just));
        // `exp` is required.
        let no_exp = forge(&hs256(), &json!({ "sub": "p1" }), SECRET);
        assert_eq!(keys.verify(&no_exp), Err(AuthError::Malformed));
    }

    #[test]
    fn a_token_not_valid_yet_is_refused() {
        let keys = JwtKeys::new(SECRET);
        let exp = unix_now() + 600;
        let future =
            forge(&hs256(), &json!({ "sub": "p1", "exp": exp, "nbf": unix_now() + 60 }), SECRET);
        assert_eq!(keys.verify(&future), Err(AuthError::NotYetValid));
        let now = forge(&hs256(), &json!({ "sub": "p1", "exp": exp, "nbf": unix_now() }), SECRET);
        assert_eq!(keys.verify(&now).map(|c| c.sub), Ok("p1".to_owned()));
    }

    #[test]
    fn wrong_keys_and_tampered_payloads_fail_the_signature() {
        let keys = JwtKeys::new(SECRET);
        let token = keys.sign(&Claims { sub: "p1".into(), exp: unix_now() + 60 });
        let other = JwtKeys::new(b"another-secret-of-at-least-32-bytes");
        assert_eq!(other.verify(&token), Err(AuthError::Signature));
        // An attacker's claims in place of ours, under our header and signature.
        let theirs = forge(&hs256(), &json!({ "sub": "admin", "exp": unix_now() + 60 }), b"x");
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = payload(&theirs);
        assert_eq!(keys.verify(&parts.join(".")), Err(AuthError::Signature));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let keys = JwtKeys::new(SECRET);
        for bad in ["", "a.b", "a.b.c", "a.b.c.d", "not a token"] {
            assert_eq!(keys.verify(bad), Err(AuthError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn only_hs256_is_accepted() {
        let keys = JwtKeys::new(SECRET);
        let claims = json!({ "sub": "p1", "exp": unix_now() + 60 });
        // The same secret with HS512 or HS384: refused for the algorithm.
        for alg in [Algorithm::HS512, Algorithm::HS384] {
            let token = forge(&Header::new(alg), &claims, SECRET);
            assert_eq!(keys.verify(&token), Err(AuthError::Algorithm), "{alg:?}");
        }
        // `alg: none` with no signature: not even a header the library reads.
        let real = forge(&hs256(), &claims, SECRET);
        let none = format!("{NONE_HEADER}.{}.", payload(&real));
        assert_eq!(keys.verify(&none), Err(AuthError::Malformed));
        // Nor with a valid HS256 signature grafted on.
        let sig = real.rsplit('.').next().unwrap();
        let grafted = format!("{NONE_HEADER}.{}.{sig}", payload(&real));
        assert_eq!(keys.verify(&grafted), Err(AuthError::Malformed));
    }

    #[test]
    fn the_audience_is_checked_only_when_configured() {
        let exp = unix_now() + 60;
        let theirs =
            forge(&hs256(), &json!({ "sub": "p1", "exp": exp, "aud": "elsewhere" }), SECRET);
        let none = forge(&hs256(), &json!({ "sub": "p1", "exp": exp }), SECRET);
        let ours =
            forge(&hs256(), &json!({ "sub": "p1", "exp": exp, "aud": ["x", "tickwire"] }), SECRET);
        // No audience configured: `aud` is ignored.
        let open = JwtKeys::new(SECRET);
        for token in [&theirs, &none, &ours] {
            assert!(open.verify(token).is_ok());
        }
        // Configured: required, and it must name us.
        let strict = JwtKeys::new(SECRET).with_audience(Some("tickwire"));
        assert_eq!(strict.verify(&theirs), Err(AuthError::Audience));
        assert_eq!(strict.verify(&none), Err(AuthError::Audience));
        assert!(strict.verify(&ours).is_ok());
        // What these keys sign carries the audience, so guest tokens still pass.
        let guest = strict.sign(&Claims { sub: "guest-1".into(), exp });
        assert!(strict.verify(&guest).is_ok());
        assert_eq!(open.verify(&guest).map(|c| c.sub), Ok("guest-1".to_owned()));
    }
}
