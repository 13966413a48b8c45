//! Who may call the HTTP API, as configured: [`Token`]s (`http.admin_tokens`,
//! `http.subscribe_tokens`) and CORS origins (`http.cors_origins`), with the
//! checks [`Config::validate`](super::Config::validate) runs on them.
//!
//! Beside the configuration rather than in `http`, which enforces them
//! (`http::auth`, `http::cors`): the configuration is read and checked
//! without the HTTP API, and the API imports the configuration, not the
//! other way round.

use std::fmt;

use axum::http::HeaderValue;
use serde::{Deserialize, Serialize};
use subtle::{Choice, ConstantTimeEq};

/// Fewest bytes a token may have: shorter ones can be guessed.
const MIN_TOKEN_BYTES: usize = 16;

/// Fewest bytes of an HS256 secret: the hash's own size (RFC 7518, 3.2).
const MIN_SECRET_BYTES: usize = 32;

/// A configured secret; `Debug` never shows it, so logging the
/// configuration cannot leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// A token (checked when the configuration is validated).
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    fn check(&self) -> Result<(), String> {
        if self.0.len() < MIN_TOKEN_BYTES {
            return Err(format!(
                "a token needs at least {MIN_TOKEN_BYTES} characters"
            ));
        }
        if !self.0.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token may hold visible ASCII characters only".into());
        }
        Ok(())
    }

    /// The secret itself, for the one place that needs it (signing and
    /// verifying JWTs).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time that depends on the
    /// lengths only (`subtle`'s vetted comparison, not a hand-written one
    /// the optimiser may shortcut).
    fn matches(&self, presented: &str) -> Choice {
        self.0.as_bytes().ct_eq(presented.as_bytes())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Why `tokens` cannot be used, if they cannot.
pub fn check_tokens(tokens: &[Token]) -> Result<(), String> {
    tokens.iter().try_for_each(Token::check)
}

/// Why `secret` cannot sign JWTs (`http.jwt_secret`), if it cannot.
pub fn check_secret(secret: &Token) -> Result<(), String> {
    if secret.0.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "an HS256 secret needs at least {MIN_SECRET_BYTES} bytes"
        ));
    }
    Ok(())
}

/// Why `name` cannot be a cookie's name (`http.auth_cookie`), if it cannot:
/// an RFC 6265 token (visible ASCII, none of its separators).
pub fn check_cookie_name(name: &str) -> Result<(), String> {
    let separator = |b: u8| b"()<>@,;:\\\"/[]?={} \t".contains(&b);
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && !separator(b)) {
        return Err(format!("{name:?} is not a cookie name"));
    }
    Ok(())
}

/// Whether `presented` is one of `tokens`.
pub(crate) fn any_matches(tokens: &[Token], presented: &str) -> bool {
    // No early exit: which token matched does not show in the time taken.
    tokens
        .iter()
        .fold(Choice::from(0), |found, t| found | t.matches(presented))
        .into()
}

/// Why `origins` cannot be used, if it cannot.
pub fn check_cors_origins(origins: &[String]) -> Result<(), String> {
    if origins.iter().any(|o| o == "*") && origins.len() > 1 {
        return Err("\"*\" allows every origin and cannot be listed with others".into());
    }
    for origin in origins.iter().filter(|o| *o != "*") {
        let (scheme, rest) = origin
            .split_once("://")
            .ok_or_else(|| format!("{origin:?} is not an origin (scheme://host[:port])"))?;
        let valid = matches!(scheme, "http" | "https")
            && !rest.is_empty()
            && !rest.contains(['/', '?', '#', '@', ' '])
            && HeaderValue::from_str(origin).is_ok();
        if !valid {
            return Err(format!(
                "{origin:?} is not an origin: scheme://host[:port], no path or trailing slash"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_and_never_shown() {
        assert!(check_tokens(&[Token::new("0123456789abcdef")]).is_ok());
        assert!(check_tokens(&[Token::new("short")]).is_err());
        assert!(check_tokens(&[Token::new("0123456789 abcdef")]).is_err());
        let token = Token::new("0123456789abcdef");
        assert_eq!(format!("{token:?}"), "Token(***)");
        assert!(bool::from(token.matches("0123456789abcdef")));
        assert!(!bool::from(token.matches("0123456789abcdeF")));
        assert!(!bool::from(token.matches("0123456789abcde")));
        let tokens = [
            Token::new("0123456789abcdef"),
            Token::new("fedcba9876543210"),
        ];
        assert!(any_matches(&tokens, "fedcba9876543210"));
        assert!(!any_matches(&tokens, "fedcba987654321"));
    }

    #[test]
    fn origins_are_checked() {
        let ok = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
            check_cors_origins(&list)
        };
        assert!(ok(&[]).is_ok());
        assert!(ok(&["*"]).is_ok());
        assert!(ok(&["https://app.example", "http://localhost:3000"]).is_ok());
        for bad in [
            &["*", "https://a.example"][..],
            &["app.example"],
            &["https://app.example/"],
            &["https://app.example/path"],
            &["ftp://app.example"],
            &["https://"],
            &["https://user@app.example"],
        ] {
            assert!(ok(bad).is_err(), "{bad:?} accepted");
        }
    }
}
