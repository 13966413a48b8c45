//! JSON Web Tokens: the keys that verify them (`http.jwt_secret`,
//! `http.jwt_public_key`, `http.jwt_jwks`), the checks (`exp`, `nbf`, and
//! `aud` / `iss` where configured) and the `eric` claim that carries a
//! token's [`Grant`]; and [`mint`], which `eric token` uses.
//!
//! Verification is `jsonwebtoken`'s (RustCrypto backend: no C build; RS256
//! and ES256 signatures checked by `ring`, see `ring_verify`). The
//! accepted algorithm is the key's: HS256 for the secret, RS256 for an RSA
//! key, ES256 for a P-256 key. A token is checked only against keys of the
//! algorithm its header names, and `jsonwebtoken` refuses a key of another
//! family, so an RSA public key can never be used as an HMAC secret (the
//! "HS/RS confusion"); `alg: none` is no algorithm at all and fails to
//! parse.
//!
//! Verified tokens are remembered (by the SHA-256 of their text, with
//! their times) so that opening another stream with the same token, as a
//! browser does on every reconnect and in every tab, costs a hash and a
//! lookup, not a signature check: an RS256 check takes ~80 µs and an ES256
//! one ~300 µs (`BENCHMARKS.md`). Only tokens that verified are kept, so
//! bad tokens cannot fill the table; `exp` and `nbf` are checked again on
//! every hit.

mod ring_verify;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::grant::Grant;
use crate::config::HttpConfig;
use crate::error::{Error, Result};

/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Most bytes a token may have: more is refused before any parsing.
pub(crate) const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Most verified tokens remembered. Past it, expired ones are dropped,
/// and if that frees nothing the table starts over: a bound, and a cost
/// only to callers who come back after the reset (one signature check).
const CACHE_ENTRIES: usize = 16 * 1024;

/// The keys and checks of `http.jwt_*`.
pub(crate) struct Verifier {
    keys: Vec<Key>,
    /// One per algorithm in use, built once.
    validations: Vec<(Algorithm, Validation)>,
    /// Tokens that verified, by the SHA-256 of their text.
    cache: Mutex<HashMap<[u8; 32], Remembered>>,
}

/// A verified token's grant and times.
#[derive(Clone)]
struct Remembered {
    verified: Verified,
    expires: u64,
    not_before: Option<u64>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

struct Key {
    /// The JWKS `kid`, if it has one.
    id: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// A verified token: what it grants, and who it is for the logs and the
/// rate limits.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) grant: Arc<Grant>,
    /// `sub`: the caller, for the rate limits.
    pub(crate) subject: Option<String>,
    /// `jti`: the one part of a token the logs show.
    pub(crate) id: Option<String>,
}

/// Why a token was refused (each is a 401; the message says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Neither a static token nor (no JWT key configured) a JWT.
    Unknown,
    Malformed,
    UnsupportedAlgorithm,
    NoKey,
    BadSignature,
    Expired,
    NotYetValid,
    WrongAudience,
    WrongIssuer,
    BadClaim,
}

impl Refusal {
    pub(crate) const fn message(self) -> &'static str {
        match self {
            Self::Unknown => "the token is not valid",
            Self::Malformed => "the token is not a well-formed JWT",
            Self::UnsupportedAlgorithm => {
                "the token's algorithm is not one this server accepts (HS256, RS256, ES256 as configured)"
            }
            Self::NoKey => "no configured key verifies the token's algorithm and key id",
            Self::BadSignature => "the token's signature is not valid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet (nbf)",
            Self::WrongAudience => "the token is for another audience (aud)",
            Self::WrongIssuer => "the token is from another issuer (iss)",
            Self::BadClaim => "the token's claims are malformed (eric, sub, jti)",
        }
    }

    fn of(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Self::NoKey,
            // A required claim missing (`exp`, or `aud`/`iss` when
            // configured) reads as the check it fails.
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "aud" => Self::WrongAudience,
                "iss" => Self::WrongIssuer,
                _ => Self::BadClaim,
            },
            ErrorKind::Json(_) => Self::BadClaim,
            _ => Self::Malformed,
        }
    }
}

/// The claims eric reads; others are ignored.
#[derive(Deserialize)]
struct Claims {
    /// Checked by `jsonwebtoken` (required); kept for the cache. A number,
    /// integral or not, as RFC 7519's NumericDate allows.
    exp: f64,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    eric: Option<Rights>,
}

/// The `eric` claim: `{"admin": true}`, or lists of patterns.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rights {
    /// Everything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
    /// `CHANNEL` or `CHANNEL/LISTENER` patterns to read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<String>,
    /// `CHANNEL` or `CHANNEL/LISTENER` patterns to send to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
}

impl Rights {
    fn grant(&self) -> Result<Grant, String> {
        if self.admin {
            return Ok(Grant::All);
        }
        Grant::scoped(&self.subscribe, &self.publish)
    }
}

impl Verifier {
    /// The verifier `http` configures, `None` when it configures no JWT
    /// key. Errors name the setting and the file.
    pub(crate) fn from_config(http: &HttpConfig) -> Result<Option<Self>> {
        ring_verify::install();
        let bad = |reason: String| Error::Config { reason };
        let mut keys = Vec::new();
        if let Some(secret) = &http.jwt_secret {
            let key = DecodingKey::from_secret(secret.expose().as_bytes())
                .map_err(|e| bad(format!("http.jwt_secret: {e}")))?;
            keys.push(Key {
                id: None,
                algorithm: Algorithm::HS256,
                key,
            });
        }
        if let Some(path) = &http.jwt_public_key {
            let pem = read("http.jwt_public_key", path)?;
            keys.push(public_key(&pem).map_err(|reason| {
                bad(format!("http.jwt_public_key {}: {reason}", path.display()))
            })?);
        }
        if let Some(path) = &http.jwt_jwks {
            let text = read("http.jwt_jwks", path)?;
            let set: JwkSet = serde_json::from_slice(&text)
                .map_err(|e| bad(format!("http.jwt_jwks {}: {e}", path.display())))?;
            for jwk in &set.keys {
                let algorithm = match jwk.common.key_algorithm.map(|a| a.to_string()).as_deref() {
                    Some("RS256") => Algorithm::RS256,
                    Some("ES256") => Algorithm::ES256,
                    other => {
                        return Err(bad(format!(
                            "http.jwt_jwks {}: key {:?} has alg {other:?}; RS256 and ES256 are accepted",
                            path.display(),
                            jwk.common.key_id
                        )));
                    }
                };
                let key = DecodingKey::from_jwk(jwk)
                    .map_err(|e| bad(format!("http.jwt_jwks {}: {e}", path.display())))?;
                keys.push(Key {
                    id: jwk.common.key_id.clone(),
                    algorithm,
                    key,
                });
            }
            if set.keys.is_empty() {
                return Err(bad(format!("http.jwt_jwks {}: no keys", path.display())));
            }
        }
        if keys.is_empty() {
            return Ok(None);
        }
        let mut validations: Vec<(Algorithm, Validation)> = Vec::new();
        for key in &keys {
            if validations.iter().any(|(a, _)| *a == key.algorithm) {
                continue;
            }
            let mut validation = Validation::new(key.algorithm);
            validation.leeway = LEEWAY_SECS;
            validation.validate_nbf = true;
            let mut required = vec!["exp"];
            match &http.jwt_audience {
                Some(audience) => {
                    validation.set_audience(&[audience]);
                    required.push("aud");
                }
                // No audience configured: a token's `aud` names some other
                // service's view, not ours to check.
                None => validation.validate_aud = false,
            }
            if let Some(issuer) = &http.jwt_issuer {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            validation.set_required_spec_claims(&required);
            validations.push((key.algorithm, validation));
        }
        tracing::info!(
            keys = keys.len(),
            signatures = signature_library(),
            "JWT keys loaded"
        );
        Ok(Some(Self {
            keys,
            validations,
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// Verifies `token`: its form, signature and times, then its `eric`
    /// claim; a token verified before only has its times checked again.
    pub(crate) fn verify(&self, token: &str) -> Result<Verified, Refusal> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Refusal::Malformed);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = jsonwebtoken::get_current_timestamp();
        let remembered = self.cache().get(&digest).cloned();
        if let Some(remembered) = remembered {
            // The checks `jsonwebtoken` made, with the same leeway.
            if remembered.expires.saturating_add(LEEWAY_SECS) < now {
                self.cache().remove(&digest);
                return Err(Refusal::Expired);
            }
            if remembered
                .not_before
                .is_some_and(|nbf| nbf > now + LEEWAY_SECS)
            {
                return Err(Refusal::NotYetValid);
            }
            return Ok(remembered.verified);
        }
        let (verified, expires, not_before) = self.check(token)?;
        let mut cache = self.cache();
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, r| r.expires.saturating_add(LEEWAY_SECS) >= now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(
            digest,
            Remembered {
                verified: verified.clone(),
                expires,
                not_before,
            },
        );
        Ok(verified)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Remembered>> {
        // A panic elsewhere leaves a table of verified tokens: still valid.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The full check: form, key, signature, times, claims.
    fn check(&self, token: &str) -> Result<(Verified, u64, Option<u64>), Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // An `alg` outside the crate's list (`none` among them).
            ErrorKind::Json(_) => Refusal::UnsupportedAlgorithm,
            _ => Refusal::Malformed,
        })?;
        if !matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256
        ) {
            return Err(Refusal::UnsupportedAlgorithm);
        }
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == header.alg)
            .map(|(_, v)| v)
            .ok_or(Refusal::NoKey)?;
        // With a `kid`, only the key of that id; without, each key of the
        // algorithm (a handful at most) until one verifies.
        let candidates = self.keys.iter().filter(|k| {
            k.algorithm == header.alg
                && match (&header.kid, &k.id) {
                    (Some(wanted), Some(id)) => wanted == id,
                    (Some(_), None) => false,
                    (None, _) => true,
                }
        });
        let mut refusal = Refusal::NoKey;
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, validation) {
                Ok(data) => return verified(data.claims),
                Err(e) => {
                    refusal = Refusal::of(e.kind());
                    // Only a bad signature may be another key's token.
                    if refusal != Refusal::BadSignature {
                        break;
                    }
                }
            }
        }
        Err(refusal)
    }
}

/// What verified claims grant, with their `exp` and `nbf` (whole seconds,
/// rounded as `jsonwebtoken` compares them).
fn verified(claims: Claims) -> Result<(Verified, u64, Option<u64>), Refusal> {
    let grant = match &claims.eric {
        Some(rights) => rights.grant().map_err(|_| Refusal::BadClaim)?,
        // A valid token that grants nothing: every route but the probes
        // answers 403.
        None => Grant::Scoped {
            subscribe: Vec::new(),
            publish: Vec::new(),
        },
    };
    // Saturating casts: a NaN or negative time is 0, a huge one u64::MAX.
    let (expires, not_before) = (claims.exp as u64, claims.nbf.map(|nbf| nbf.ceil() as u64));
    Ok((
        Verified {
            grant: Arc::new(grant),
            subject: claims.sub,
            id: claims.jti,
        },
        expires,
        not_before,
    ))
}

fn read(setting: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Config {
        reason: format!("{setting}: cannot read {}: {e}", path.display()),
    })
}

/// An RSA or P-256 public key from PEM (`PUBLIC KEY`, or `RSA PUBLIC KEY`).
fn public_key(pem: &[u8]) -> Result<Key, String> {
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok(Key {
            id: None,
            algorithm: Algorithm::ES256,
            key,
        });
    }
    DecodingKey::from_rsa_pem(pem)
        .map(|key| Key {
            id: None,
            algorithm: Algorithm::RS256,
            key,
        })
        .map_err(|e| format!("not an RSA or P-256 public key in PEM ({e})"))
}

/// The library that checks RS256 and ES256 signatures in this process:
/// `"ring"`, or `"RustCrypto"` when something used `jsonwebtoken` before
/// the server could choose.
pub fn signature_library() -> &'static str {
    if ring_verify::installed() {
        "ring"
    } else {
        "RustCrypto"
    }
}

/// What `eric token` puts in a token.
#[derive(Debug, Clone, Serialize)]
pub struct TokenClaims {
    /// The caller's name (the rate limits count per subject).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// The token's id, the one part of it the server logs.
    pub jti: String,
    /// `http.jwt_audience`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// `http.jwt_issuer`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// What the token grants.
    pub eric: Rights,
}

/// Signs `claims` with `http.jwt_secret` (HS256), for development: in
/// production tokens come from the application's own issuer. Patterns are
/// checked first, so a token the server would refuse is never made.
pub fn mint(http: &HttpConfig, claims: &TokenClaims) -> Result<String> {
    ring_verify::install();
    let bad = |reason: String| Error::Config { reason };
    let secret = http
        .jwt_secret
        .as_ref()
        .ok_or_else(|| bad("http.jwt_secret is not set: no key to sign with".into()))?;
    claims
        .eric
        .grant()
        .map_err(|e| bad(format!("the token's rights: {e}")))?;
    let key = EncodingKey::from_secret(secret.expose().as_bytes())
        .map_err(|e| bad(format!("http.jwt_secret: {e}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
        .map_err(|e| bad(format!("signing the token: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::Token;

    fn verifier() -> (Verifier, HttpConfig) {
        let http = HttpConfig {
            jwt_secret: Some(Token::new("a-test-secret-of-at-least-32-bytes!!")),
            ..HttpConfig::default()
        };
        (Verifier::from_config(&http).unwrap().unwrap(), http)
    }

    fn token(http: &HttpConfig, jti: &str) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = TokenClaims {
            sub: None,
            exp: now + 600,
            iat: now,
            jti: jti.into(),
            aud: None,
            iss: None,
            eric: Rights {
                subscribe: vec!["c".into()],
                ..Rights::default()
            },
        };
        mint(http, &claims).unwrap()
    }

    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    #[test]
    fn a_verified_token_is_remembered_and_its_times_checked_on_every_hit() {
        let (verifier, http) = verifier();
        let token = token(&http, "t1");
        let first = verifier.verify(&token).unwrap();
        assert_eq!(first.id.as_deref(), Some("t1"));
        assert!(verifier.cache().contains_key(&digest(&token)));
        let again = verifier.verify(&token).unwrap();
        assert!(Arc::ptr_eq(&first.grant, &again.grant), "not checked again");

        let now = jsonwebtoken::get_current_timestamp();
        verifier
            .cache()
            .get_mut(&digest(&token))
            .unwrap()
            .not_before = Some(now + 600);
        assert_eq!(verifier.verify(&token).unwrap_err(), Refusal::NotYetValid);
        verifier.cache().get_mut(&digest(&token)).unwrap().expires = now - 600;
        assert_eq!(verifier.verify(&token).unwrap_err(), Refusal::Expired);
        assert!(!verifier.cache().contains_key(&digest(&token)));
        // Refusals are not remembered.
        assert!(verifier.verify(&format!("{token}x")).is_err());
        assert!(verifier.cache().is_empty());
    }

    #[test]
    fn the_table_stays_within_its_bound() {
        let (verifier, http) = verifier();
        let kept = verifier.verify(&token(&http, "seed")).unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let filler = Remembered {
            verified: kept,
            expires: now + 600,
            not_before: None,
        };
        for i in 0..CACHE_ENTRIES {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            verifier.cache().insert(key, filler.clone());
        }
        verifier.verify(&token(&http, "one more")).unwrap();
        assert!(verifier.cache().len() <= CACHE_ENTRIES);
    }
}
