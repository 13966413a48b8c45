//! The web console at `/ui`: static HTML, CSS and JavaScript compiled into
//! the binary (`eric-server/console/`), so a node serves its own console
//! with nothing to install, fetch from a CDN or build with npm.
//!
//! The page holds no data: it is open in the rights table (`auth`), and
//! its own calls to the API carry the token the user gives it. Every answer
//! carries a strict `Content-Security-Policy` (scripts and styles from this
//! origin only, no inline script, no framing), `nosniff`, and an `ETag`
//! with `Cache-Control: no-cache`: the files are not named by their
//! content, so a browser revalidates them (a 304 costs nothing) and never
//! runs the JavaScript of one build with the HTML of another.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::PathParams;
use super::state::AppState;

/// The console's routes: the page at `/ui` and `/ui/`, its files below.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(page))
        .route("/ui/{asset}", get(asset))
}

/// The route templates of [`routes`], for the rights table (open, `GET`
/// and the `HEAD` axum answers with it).
pub(super) const TEMPLATES: [&str; 3] = ["/ui", "/ui/", "/ui/{asset}"];

/// What browsers may do with a console answer: load scripts, styles and
/// images from this origin and call its API; nothing inline (the page has
/// no inline script or style attribute), no plugins, no framing, no form
/// posts elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// One file of the console.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// An [`Asset`] of `eric-server/console/NAME`, compiled in.
macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

/// The files served under `/ui/`; the page itself is [`PAGE`].
const ASSETS: &[Asset] = &[
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("console.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("stream.js", "text/javascript; charset=utf-8"),
    asset!("metrics.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

const PAGE: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Each file's `ETag` (its SHA-256, shortened), computed once.
static TAGS: LazyLock<Vec<(&'static str, HeaderValue)>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .chain(std::iter::once(&PAGE))
        .map(|asset| {
            let digest = Sha256::digest(asset.body);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            let tag = HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"console\""));
            (asset.name, tag)
        })
        .collect()
});

async fn page(headers: HeaderMap) -> Response {
    serve(&PAGE, &headers)
}

async fn asset(PathParams(name): PathParams<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such file in the console",
        )
        .into_response(),
    }
}

/// `asset` with the console's headers, or 304 when the browser's copy is
/// this one.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let tag = TAGS
        .iter()
        .find(|(name, _)| *name == asset.name)
        .map(|(_, tag)| tag.clone());
    let fresh = tag.as_ref().is_some_and(|tag| {
        request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim() == "*" || v.trim().as_bytes() == tag.as_bytes())
    });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(tag) = tag {
        headers.insert(header::ETAG, tag);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file the page names is served, and every file served is
    /// named by the page or a script (none is left behind unused).
    #[test]
    fn the_page_names_exactly_the_served_files() {
        let mut named = String::from_utf8_lossy(PAGE.body).into_owned();
        for asset in ASSETS {
            named.push_str(&String::from_utf8_lossy(asset.body));
        }
        for asset in ASSETS {
            assert!(
                named.contains(&format!("/ui/{}", asset.name))
                    || named.contains(&format!("./{}", asset.name)),
                "{} is served but nothing loads it",
                asset.name
            );
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = String::from_utf8_lossy(PAGE.body);
        assert!(!page.contains("<script>"), "inline script");
        assert!(!page.contains("style="), "inline style attribute");
        assert!(!page.contains("<style"), "inline style element");
        let handler = page.match_indices(" on").any(|(at, _)| {
            let rest = &page[at + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!handler, "an inline event handler");
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
