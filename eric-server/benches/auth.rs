//! What the token check costs per stream open: `HEAD` on a listener's stream
//! route (the check, then a lookup of the listener, no stream) through the
//! whole router, with authentication off, a static token, and JWTs signed
//! HS256, RS256 (2048-bit) and ES256. The differences from "off" are the
//! check's cost. `first use`: a token the server has not seen (signed
//! fresh for each request, outside the timing), so its signature is
//! checked; `again`: the same token each time, as a browser's reconnects
//! and tabs send it, answered from the verified-token table. Keys are made
//! by `openssl` when the bench starts.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{Criterion, criterion_group, criterion_main};
use eric_core::{ChannelSettings, MemoryEngine};
use eric_server::config::HttpConfig;
use eric_server::http::{AppState, Token, router};
use eric_server::{Broker, Metrics};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const SECRET: &str = "a-bench-secret-of-at-least-32-bytes!!";
const STATIC: &str = "a-static-admin-token-0123456789";
const URI: &str = "/v1/channels/c/listeners/l/events";

fn app(http: HttpConfig, rt: &tokio::runtime::Runtime) -> Router {
    let metrics = Arc::new(Metrics::new());
    let broker = Broker::new(
        MemoryEngine::with_observer(metrics.clone()),
        ChannelSettings::default(),
    );
    let app = router(AppState::new(broker, http, metrics, CancellationToken::new()).unwrap());
    let admin = format!("Bearer {STATIC}");
    rt.block_on(async {
        for (uri, body) in [
            ("/v1/channels", r#"{"id": "c"}"#),
            ("/v1/channels/c/listeners", r#"{"id": "l"}"#),
        ] {
            let request = Request::post(uri)
                .header("content-type", "application/json")
                .header("authorization", &admin)
                .body(Body::from(body))
                .unwrap();
            let status = app.clone().oneshot(request).await.unwrap().status();
            assert_eq!(status, StatusCode::CREATED, "{uri}");
        }
    });
    app
}

fn openssl_private_key(dir: &std::path::Path, args: &[&str]) -> (Vec<u8>, std::path::PathBuf) {
    let private = dir.join(format!("{}.pem", args[1]));
    let public = dir.join(format!("{}.pub.pem", args[1]));
    let made = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&private)
        .status()
        .unwrap();
    assert!(made.success());
    let made = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap();
    assert!(made.success());
    (std::fs::read(private).unwrap(), public)
}

/// How a case's JWTs are signed.
type Signer<'a> = (Algorithm, &'a EncodingKey);

fn stream_open(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (rsa, rsa_public) = openssl_private_key(
        dir.path(),
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let (ec, ec_public) = openssl_private_key(
        dir.path(),
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let serial = std::cell::Cell::new(0u64);
    let sign = |alg, key: &EncodingKey| {
        serial.set(serial.get() + 1);
        let claims = json!({
            "sub": "bench",
            "jti": serial.get().to_string(),
            "exp": jsonwebtoken::get_current_timestamp() + 3600,
            "eric": {"subscribe": ["c/l"]},
        });
        jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
    };
    let hs_key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
    let rs_key = EncodingKey::from_rsa_pem(&rsa).unwrap();
    let es_key = EncodingKey::from_ec_pem(&ec).unwrap();
    let with = |configure: &dyn Fn(&mut HttpConfig)| {
        let mut http = HttpConfig {
            admin_tokens: vec![Token::new(STATIC)],
            ..HttpConfig::default()
        };
        configure(&mut http);
        http
    };
    let cases: Vec<(&str, HttpConfig, Option<Signer<'_>>)> = vec![
        ("off", HttpConfig::default(), None),
        ("static token", with(&|_| {}), None),
        (
            "HS256",
            with(&|h| h.jwt_secret = Some(Token::new(SECRET))),
            Some((Algorithm::HS256, &hs_key)),
        ),
        (
            "RS256",
            with(&|h| h.jwt_public_key = Some(rsa_public.clone())),
            Some((Algorithm::RS256, &rs_key)),
        ),
        (
            "ES256",
            with(&|h| h.jwt_public_key = Some(ec_public.clone())),
            Some((Algorithm::ES256, &es_key)),
        ),
    ];
    let head = |app: &Router, authorization: Option<String>| {
        let mut request = Request::head(URI);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let request = request.body(Body::empty()).unwrap();
        let app = app.clone();
        async move {
            let status = app.oneshot(request).await.unwrap().status();
            assert_eq!(status, StatusCode::OK);
        }
    };
    let mut group = c.benchmark_group("stream_open_check");
    for (name, http, jwt) in cases {
        let app = app(http, &rt);
        // The server chose jsonwebtoken's provider before the first token
        // was signed here.
        assert_eq!(eric_server::http::signature_library(), "ring");
        let fixed = match (name, jwt) {
            ("off", _) => None,
            (_, None) => Some(format!("Bearer {STATIC}")),
            (_, Some((alg, key))) => Some(format!("Bearer {}", sign(alg, key))),
        };
        let again = if jwt.is_some() {
            format!("{name} again")
        } else {
            name.to_owned()
        };
        group.bench_function(again, |b| {
            b.to_async(&rt).iter(|| head(&app, fixed.clone()));
        });
        if let Some((alg, key)) = jwt {
            group.bench_function(format!("{name} first use"), |b| {
                b.to_async(&rt).iter_batched(
                    || Some(format!("Bearer {}", sign(alg, key))),
                    |authorization| head(&app, authorization),
                    criterion::BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

criterion_group!(benches, stream_open);
criterion_main!(benches);
