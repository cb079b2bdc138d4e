//! HTTP routes on the same port as the WebSocket: `GET /` (the built browser client),
//! `GET /healthz`, `GET /metrics`, `GET /api/rooms`, `POST /api/guest`, and `GET /ws`.

use std::convert::Infallible;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::auth::{Claims, GUEST_TOKEN_TTL_SECS, random_hex, unix_now};
use crate::response::{Body, json_response, text_response};
use crate::state::AppState;

/// Routes one request.
pub async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<AppState>,
    ip: IpAddr,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let resp = match (req.method(), path.as_str()) {
        (&Method::GET, "/ws") => crate::ws::upgrade(req, state, ip),
        (&Method::GET, "/healthz") => text_response(StatusCode::OK, "ok".into()),
        (&Method::GET, "/metrics") => {
            let mut resp = text_response(StatusCode::OK, state.metrics.render());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        (&Method::GET, "/api/rooms") => {
            json_response(&serde_json::json!({ "rooms": state.rooms.list() }))
        }
        (&Method::POST, "/api/guest") => guest(&state, ip),
        (&Method::POST, "/api/debug/drop") if state.config.debug_endpoints => {
            let entity = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("entity="))
                .and_then(|v| v.parse::<u32>().ok());
            match entity {
                Some(id) => {
                    state.rooms.drop_connection(tickwire_shared::NetId(id));
                    text_response(StatusCode::ACCEPTED, format!("dropping entity {id}"))
                }
                None => text_response(StatusCode::BAD_REQUEST, "expected ?entity=N".into()),
            }
        }
        (&Method::GET | &Method::HEAD, _) => static_file(&state.config.static_dir, &path).await,
        _ => text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed".into()),
    };
    Ok(resp)
}

fn guest(state: &AppState, ip: IpAddr) -> Response<Body> {
    if !state.config.guest_tokens {
        return text_response(StatusCode::FORBIDDEN, "guest tokens are disabled".into());
    }
    if !state.take_guest_token(ip) {
        return text_response(
            StatusCode::TOO_MANY_REQUESTS,
            "too many guest tokens from this address; try again in a few seconds".into(),
        );
    }
    let claims =
        Claims { sub: format!("guest-{}", random_hex(6)), exp: unix_now() + GUEST_TOKEN_TTL_SECS };
    let token = state.keys.sign(&claims);
    json_response(&serde_json::json!({
        "token": token,
        "player": claims.sub,
        "expires_in": GUEST_TOKEN_TTL_SECS,
    }))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Tickwire</title>\
<h1>Tickwire server is running</h1><p>The browser client is not built. Build it with \
<code>client-web/build.sh</code> (or start everything with <code>scripts/run.sh</code>), then reload.</p>\
<p><a href=/healthz>/healthz</a> · <a href=/metrics>/metrics</a> · <a href=/api/rooms>/api/rooms</a></p>";

/// The page's Content Security Policy: scripts, styles, images and connections from this server
/// only (the WebSocket included), the wasm module compiled, nothing framed or posted elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' \
    'wasm-unsafe-eval'; connect-src 'self'; img-src 'self' data:; style-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The regular file `rel` names under `root`, if it is one: no path that leaves the root,
/// through `..` or a symlink, and nothing but regular files (a FIFO would hang the reader).
async fn file_under(root: &Path, rel: &Path) -> Option<PathBuf> {
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let full = tokio::fs::canonicalize(root.join(rel)).await.ok()?;
    let regular = tokio::fs::metadata(&full).await.ok()?.is_file();
    (full.starts_with(&root) && regular).then_some(full)
}

async fn static_file(root: &Path, url_path: &str) -> Response<Body> {
    let rel = url_path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let rel_path = PathBuf::from(rel);
    // Only plain names below the root: no `..`, no absolute paths.
    if !rel_path.components().all(|c| matches!(c, Component::Normal(_))) {
        return text_response(StatusCode::BAD_REQUEST, "bad path".into());
    }
    let data = match file_under(root, &rel_path).await {
        Some(full) => tokio::fs::read(&full).await.ok(),
        None => None,
    };
    let mut resp = match data {
        Some(data) => {
            let mut resp = Response::new(Full::new(Bytes::from(data)));
            let kind = HeaderValue::from_static(content_type(&rel_path));
            resp.headers_mut().insert(header::CONTENT_TYPE, kind);
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        None if rel == "index.html" => {
            let mut resp = text_response(StatusCode::OK, NOT_BUILT.into());
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            resp
        }
        None => return text_response(StatusCode::NOT_FOUND, format!("not found: {url_path}")),
    };
    let headers = resp.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if rel_path.extension().is_some_and(|e| e == "html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    resp
}
