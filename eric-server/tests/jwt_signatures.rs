//! RS256 and ES256 signatures are checked by `ring` (`http::jwt`'s
//! provider), on keys from a PEM file and from a JWKS: valid tokens pass,
//! a tampered signature, a signature by another key and a token of another
//! algorithm are refused. Its own test binary: the server must choose
//! `jsonwebtoken`'s provider before anything else in the process uses it.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use eric_server::config::HttpConfig;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

#[tokio::test]
async fn ring_checks_rs256_and_es256_from_pem_and_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let rsa_args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
    let ec_args = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    let (rsa, _) = common::openssl_key(dir.path(), "rsa", &rsa_args);
    let (rsa_jwk, _) = common::openssl_key(dir.path(), "rsa-jwk", &rsa_args);
    let (ec, _) = common::openssl_key(dir.path(), "ec", &ec_args);
    let (ec_jwk, _) = common::openssl_key(dir.path(), "ec-jwk", &ec_args);
    let (other, _) = common::openssl_key(dir.path(), "other", &ec_args);
    // The JWKS is written once the server is built (making a JWK uses
    // jsonwebtoken's provider): a placeholder path first.
    let jwks = dir.path().join("jwks.json");
    let pem_app = |public: &str| {
        common::app_with(HttpConfig {
            jwt_public_key: Some(dir.path().join(public)),
            ..HttpConfig::default()
        })
    };
    let rsa_app = pem_app("rsa.pub.pem");
    assert_eq!(eric_server::http::signature_library(), "ring");
    let ec_app = pem_app("ec.pub.pem");

    let key = |pem: &[u8], alg| match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem).unwrap(),
        _ => EncodingKey::from_ec_pem(pem).unwrap(),
    };
    let mut set = JwkSet { keys: vec![] };
    for (pem, alg, kid) in [
        (&rsa_jwk, Algorithm::RS256, "rsa-1"),
        (&ec_jwk, Algorithm::ES256, "ec-1"),
    ] {
        let mut jwk = Jwk::from_encoding_key(&key(pem, alg), alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        set.keys.push(jwk);
    }
    std::fs::write(&jwks, serde_json::to_vec(&set).unwrap()).unwrap();
    let jwks_app = common::app_with(HttpConfig {
        jwt_jwks: Some(jwks),
        ..HttpConfig::default()
    });
    assert_eq!(eric_server::http::signature_library(), "ring");

    let claims = json!({
        "exp": jsonwebtoken::get_current_timestamp() + 600,
        "eric": {"admin": true},
    });
    let sign = |pem: &[u8], alg, kid: Option<&str>| {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, &key(pem, alg)).unwrap()
    };
    let status = |app: &axum::Router, token: String| {
        let app = app.clone();
        async move {
            let authorization = format!("Bearer {token}");
            let headers = [("authorization", authorization.as_str())];
            common::exchange(&app, "GET", "/v1/channels", None, &headers)
                .await
                .0
        }
    };
    let tampered = |token: String| {
        // Flip one character of the signature, within the base64 alphabet.
        let mut bytes = token.into_bytes();
        let at = bytes.len() - 10;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let cases = [
        (&rsa_app, sign(&rsa, Algorithm::RS256, None), StatusCode::OK),
        (&ec_app, sign(&ec, Algorithm::ES256, None), StatusCode::OK),
        (
            &jwks_app,
            sign(&rsa_jwk, Algorithm::RS256, Some("rsa-1")),
            StatusCode::OK,
        ),
        (
            &jwks_app,
            sign(&ec_jwk, Algorithm::ES256, Some("ec-1")),
            StatusCode::OK,
        ),
        (
            &rsa_app,
            tampered(sign(&rsa, Algorithm::RS256, None)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            &ec_app,
            tampered(sign(&ec, Algorithm::ES256, None)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            &ec_app,
            sign(&other, Algorithm::ES256, None),
            StatusCode::UNAUTHORIZED,
        ),
        (
            &jwks_app,
            sign(&other, Algorithm::ES256, Some("ec-1")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            &jwks_app,
            sign(&ec_jwk, Algorithm::ES256, Some("rsa-1")),
            StatusCode::UNAUTHORIZED,
        ),
        (
            &rsa_app,
            sign(&ec, Algorithm::ES256, None),
            StatusCode::UNAUTHORIZED,
        ),
        (
            &ec_app,
            sign(&rsa, Algorithm::RS256, None),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (i, (app, token, want)) in cases.into_iter().enumerate() {
        assert_eq!(status(app, token).await, want, "case {i}");
    }
}
