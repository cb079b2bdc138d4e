//! The WebSocket transport: the handshake checks (version, origin, token, per-IP limit) that
//! answer an HTTP error *before* upgrading, and the tokio-tungstenite halves that implement the
//! session's transport traits.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tickwire_shared::join::{JoinRequest, truncate_utf8};
use tickwire_shared::protocol::{PROTOCOL_VERSION, SUBPROTOCOL};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::auth::AuthError;
use crate::session::{Inbound, TransportError, TransportRx, TransportTx};
use crate::state::{AppState, IpGuard};

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Longest close reason: a close frame's payload is at most 125 bytes (RFC 6455 §5.5), two of
/// them the code.
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// The receiving half of a WebSocket.
pub struct WsRx(SplitStream<Ws>);

/// The sending half of a WebSocket.
pub struct WsTx(SplitSink<Ws, Message>);

impl TransportRx for WsRx {
    async fn recv(&mut self) -> Inbound {
        loop {
            return match self.0.next().await {
                None => Inbound::Closed,
                Some(Ok(Message::Binary(b))) => Inbound::Binary(b),
                Some(Ok(Message::Text(_))) => Inbound::Text,
                Some(Ok(Message::Pong(p) | Message::Ping(p))) => Inbound::Alive(p.len()),
                Some(Ok(Message::Close(_))) => Inbound::Closed,
                Some(Ok(Message::Frame(_))) => continue,
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                    Inbound::TooLarge
                }
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => Inbound::Closed,
                Some(Err(e @ (WsError::Protocol(_) | WsError::Utf8(_)))) => {
                    Inbound::Malformed(TransportError(Box::new(e)))
                }
                Some(Err(e)) => Inbound::Error(TransportError(Box::new(e))),
            };
        }
    }
}

impl TransportTx for WsTx {
    const NAME: &'static str = "websocket";

    async fn send(&mut self, bytes: Bytes) -> Result<(), TransportError> {
        self.0.send(Message::Binary(bytes)).await.map_err(|e| TransportError(Box::new(e)))
    }

    async fn ping(&mut self) -> Result<(), TransportError> {
        self.0.send(Message::Ping(Bytes::new())).await.map_err(|e| TransportError(Box::new(e)))
    }

    async fn close(&mut self, code: u16, reason: &str) {
        // A close reason is at most 123 bytes (RFC 6455 §5.5: control payload ≤ 125).
        let reason = truncate_utf8(reason, MAX_CLOSE_REASON_BYTES);
        let frame = CloseFrame { code: code.into(), reason: reason.into() };
        let _ = self.0.send(Message::Close(Some(frame))).await;
        let _ = self.0.flush().await;
    }
}

/// A handshake that passed every check.
pub struct Accepted {
    /// The join request from the query.
    pub join: JoinRequest,
    /// Whether to answer with the `tickwire.v1` subprotocol.
    pub echo_subprotocol: bool,
    /// The Sec-WebSocket-Key.
    pub key: HeaderValue,
    /// Who the token says the client is (its `sub`).
    pub subject: String,
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// An origin's parts: scheme, host (lower-cased; IPv6 in brackets) and port (the scheme's
/// default when absent).
type OriginParts = (String, String, u16);

/// Splits `host[:port]` (an IPv6 host in brackets) into the lower-cased host and the port.
pub(crate) fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, rest) = v6.split_once(']')?;
        (format!("[{h}]"), rest.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

/// Parses `scheme://host[:port]` (an origin has no path; a trailing `/` is tolerated).
fn origin_parts(origin: &str) -> Option<OriginParts> {
    let (scheme, rest) = origin.trim_end_matches('/').split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if rest.contains(['/', '@', '?', '#']) {
        return None;
    }
    let (host, port) = split_host_port(rest, default_port)?;
    Some((scheme, host, port))
}

/// Whether a page of `origin` may open a session: an origin given with `--allow-origin`
/// (scheme, host and port all equal), the very origin that served the page (`https` when the
/// server speaks TLS, else `http`, and `served`: the host and port the page came from), or, in
/// dev mode only, any page on this machine (`localhost`, `127.0.0.1`, `[::1]`, any port).
fn origin_allowed(
    origin: &str,
    served: Option<(String, u16)>,
    allowed: &[String],
    dev: bool,
    tls: bool,
) -> bool {
    let Some(parts) = origin_parts(origin) else { return false };
    if allowed.iter().any(|a| origin_parts(a).as_ref() == Some(&parts)) {
        return true;
    }
    if dev && matches!(parts.1.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
        return true;
    }
    // Same origin: the page was served by this very scheme, host and port.
    let scheme = if tls { "https" } else { "http" };
    parts.0 == scheme && served.is_some_and(|(host, port)| host == parts.1 && port == parts.2)
}

/// The checks every transport makes of a join once its own are done: the origin is allowed
/// (403), the token verifies (401), and a seat (`?seat=`, from a cluster's matchmaker) is
/// signed by the cluster, unexpired and for a room of this instance (400; the join then names
/// the seat's room and game, and carries the seat's reservation id). `served` is the host and
/// port the page was served from; `bearer` an `Authorization: Bearer` token, which beats the
/// query's. Returns the token's subject.
pub fn check_origin_and_token(
    join: &mut JoinRequest,
    origin: Option<&str>,
    served: Option<(String, u16)>,
    bearer: Option<&str>,
    state: &AppState,
) -> Result<String, (StatusCode, String)> {
    let members = state.cluster.as_ref().map(|c| c.trusted_urls());
    if let Some(origin) = origin
        && !origin_allowed(
            origin,
            served,
            &state.config.allowed_origins,
            state.config.jwt_secret.is_none(),
            state.config.tls.is_some(),
        )
        && !members.as_ref().is_some_and(|urls| {
            let parts = origin_parts(origin);
            parts.is_some() && urls.iter().any(|u| origin_parts(u) == parts)
        })
    {
        return Err((StatusCode::FORBIDDEN, format!("origin {origin} is not allowed")));
    }
    let token = bearer.or(join.token.as_deref()).ok_or(AuthError::Missing);
    let subject = match token.and_then(|t| state.keys.verify(t)) {
        Ok(claims) => claims.sub,
        Err(e) => return Err((StatusCode::UNAUTHORIZED, format!("unauthorized: {e}"))),
    };
    if let Some(seat) = join.seat.take() {
        let Some(cluster) = &state.cluster else {
            return Err((
                StatusCode::BAD_REQUEST,
                "seat: this server is not in a cluster (join without seat=)".to_owned(),
            ));
        };
        let claims =
            cluster.check_seat(&state.keys, &seat).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        if join.room.as_ref().is_some_and(|r| *r != claims.room) {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("seat: for room {}, not the room this join names", claims.room),
            ));
        }
        join.room = Some(claims.room);
        join.game = Some(claims.game);
        join.seat = Some(claims.seat);
    }
    Ok(subject)
}

/// The token of an `Authorization: Bearer …` value (the scheme is case-insensitive, RFC 9110
/// §11.1).
#[must_use]
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Runs every check on an upgrade request, in order: it is a WebSocket upgrade (400), the join
/// query parses (400), the protocol version matches (426), the origin is allowed (403), the token
/// verifies (401). Only the request's head is read, whatever its body type (the fuzz targets
/// build requests with no body).
pub fn check_handshake<B>(
    req: &axum::http::Request<B>,
    state: &AppState,
) -> Result<Accepted, (StatusCode, String)> {
    let headers = req.headers();
    let bad = |msg: &str| (StatusCode::BAD_REQUEST, msg.to_owned());
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(bad("expected a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)"));
    }
    if header_str(headers, header::SEC_WEBSOCKET_VERSION) != Some("13") {
        return Err(bad("unsupported WebSocket version (13 required)"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or_else(|| bad("missing Sec-WebSocket-Key"))?;
    let mut join = JoinRequest::from_query(req.uri().query().unwrap_or(""))
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad join query: {e}")))?;

    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let echo_subprotocol = offered.contains(&SUBPROTOCOL);
    let version_ok = match join.version {
        Some(v) => v == PROTOCOL_VERSION,
        None => echo_subprotocol,
    };
    if !version_ok {
        let got = join
            .version
            .map(|v| format!("v={v}"))
            .or_else(|| (!offered.is_empty()).then(|| offered.join(",")))
            .unwrap_or_else(|| "nothing".to_owned());
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "protocol version mismatch: this server speaks {SUBPROTOCOL} (subprotocol {SUBPROTOCOL} or ?v={PROTOCOL_VERSION}); the client sent {got}"
            ),
        ));
    }

    let default_port = if state.config.tls.is_some() { 443 } else { 80 };
    let served = header_str(headers, header::HOST).and_then(|h| split_host_port(h, default_port));
    let bearer = bearer_token(header_str(headers, header::AUTHORIZATION));
    let subject = check_origin_and_token(
        &mut join,
        header_str(headers, header::ORIGIN),
        served,
        bearer,
        state,
    )?;
    Ok(Accepted { join, echo_subprotocol, key, subject })
}

/// Handles `GET /ws`: checks, then answers 101 and runs the session on the upgraded connection.
pub fn upgrade(mut req: Request, state: Arc<AppState>, ip: IpAddr) -> Response {
    let accepted = match check_handshake(&req, &state) {
        Ok(a) => a,
        Err((status, why)) => {
            state.metrics.handshakes_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(%status, %why, "handshake refused");
            return (status, why).into_response();
        }
    };
    let Some(guard) = IpGuard::acquire(&state, ip) else {
        state.metrics.handshakes_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return (StatusCode::TOO_MANY_REQUESTS, format!("too many connections from {ip}"))
            .into_response();
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let limits = state.config.limits.clone();
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(limits.write_buffer_bytes)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let session_state = state.clone();
    state.tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config))
                .await;
        let (sink, stream) = ws.split();
        crate::session::join_and_run(
            session_state,
            accepted.join,
            accepted.subject,
            ip,
            WsRx(stream),
            WsTx(sink),
            guard,
        )
        .await;
    });
    let mut resp = axum::http::Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, derive_accept_key(accepted.key.as_bytes()));
    if accepted.echo_subprotocol {
        resp = resp.header(header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL);
    }
    resp.body(Body::empty()).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::{origin_allowed, origin_parts};

    #[test]
    fn same_origin_means_the_same_scheme_too() {
        let served = |host: &str, port: u16| Some((host.to_owned(), port));
        let same = |origin: &str, tls: bool| {
            origin_allowed(origin, served("game.example", 8443), &[], false, tls)
        };
        assert!(same("https://game.example:8443", true));
        assert!(!same("http://game.example:8443", true));
        assert!(same("http://game.example:8443", false));
        assert!(!same("https://game.example:8443", false));
        let same = |origin: &str, tls: bool| {
            origin_allowed(origin, served("game.example", 443), &[], false, tls)
        };
        assert!(same("https://game.example", true), "no port: 443 with TLS");
        assert!(!same("https://game.example:80", true));
    }

    #[test]
    fn origins_parse_into_scheme_host_and_port() {
        let parts = origin_parts;
        assert_eq!(parts("http://localhost:8080"), Some(("http".into(), "localhost".into(), 8080)));
        assert_eq!(
            parts("HTTPS://Game.Example.com"),
            Some(("https".into(), "game.example.com".into(), 443))
        );
        assert_eq!(parts("http://[::1]"), Some(("http".into(), "[::1]".into(), 80)));
        assert_eq!(parts("https://a.example/"), Some(("https".into(), "a.example".into(), 443)));
        for bad in [
            "null",
            "file:///x",
            "http://",
            "http://a.example/path",
            "http://u@a.example",
            "http://a:port",
        ] {
            assert_eq!(parts(bad), None, "{bad}");
        }
    }
}
