//! HTTP on the same port as the WebSocket, as an axum [`Router`]: `GET /ws` (the upgrade),
//! `GET /healthz`, `GET /metrics`, `GET /api/rooms`, `POST /api/guest`, `POST /api/debug/drop`
//! (only with `debug_endpoints`), and the built browser client's files for every other `GET`
//! or `HEAD`. Other methods are answered 405.
//!
//! Every response passes through request tracing (debug level), a [`REQUEST_TIMEOUT`] and gzip
//! compression when the client accepts it. The WebSocket upgrade answers 101 at once and the
//! session runs on the upgraded connection in its own task, so neither the timeout nor the
//! compression touches it.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Extensions, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Claims, GUEST_TOKEN_TTL_SECS, random_hex, unix_now};
use crate::state::AppState;

/// How long an ordinary HTTP request may take to produce its response head (408 after that).
/// The WebSocket upgrade answers at once, so a session is never cut by it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The address a request came from. The accept loop puts it into every request's extensions;
/// the routes that limit per address read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerIp(pub IpAddr);

/// The routes, with tracing, the request timeout and compression, over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let mut routes = Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/rooms", get(rooms))
        .route("/api/matchmake", get(matchmake))
        .route("/api/players/{id}", get(player))
        .route(
            "/api/admin/broadcast",
            post(admin_broadcast).layer(axum::extract::DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES)),
        )
        .route("/api/transport", get(transport))
        .route("/api/schema", get(schema))
        .route("/inspect", get(inspect_page))
        .route("/inspect.js", get(inspect_asset))
        .route("/inspect.css", get(inspect_asset))
        .route("/api/inspect", get(inspect))
        .route("/api/inspect/stream", get(inspect_stream))
        .route("/replay", get(replay_page))
        .route("/replay.js", get(replay_asset))
        .route("/replay.css", get(replay_asset))
        .route("/api/replays", get(replay_list))
        .route(
            "/api/replay",
            get(replay_file)
                .post(replay_upload)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_REPLAY_UPLOAD_BYTES)),
        )
        .route("/api/guest", post(guest));
    if state.config.debug_endpoints {
        routes = routes.route("/api/debug/drop", post(debug_drop));
    }
    let compression = CompressionLayer::new().compress_when(DefaultPredicate::new().and(not_101));
    routes
        .fallback(static_files)
        .layer(compression)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Compression predicate: never a `101 Switching Protocols` (the bytes after it are the
/// WebSocket's, not a body).
fn not_101(status: StatusCode, _: Version, _: &HeaderMap, _: &Extensions) -> bool {
    status != StatusCode::SWITCHING_PROTOCOLS
}

/// `GET /ws`. The GET route also answers HEAD, which is no upgrade: 405.
async fn websocket(
    State(state): State<Arc<AppState>>,
    Extension(PeerIp(ip)): Extension<PeerIp>,
    req: Request,
) -> Response {
    if req.method() != Method::GET {
        return method_not_allowed("GET");
    }
    crate::ws::upgrade(req, state, ip)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let kind = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, kind)], state.metrics.render()).into_response()
}

/// `GET /api/rooms`: this process's rooms; in a cluster, every instance's, each room with its
/// instance and WebSocket URL, the instances, and whether Redis answered (when it did not,
/// only this instance's rooms, with `"cluster": {"available": false, "error": …}`).
async fn rooms(State(state): State<Arc<AppState>>) -> Response {
    let Some(cluster) = &state.cluster else {
        return json_response(&serde_json::json!({ "rooms": state.rooms.list() }));
    };
    let own = |mut room: crate::rooms::RoomInfo| {
        room.instance = Some(cluster.id().to_owned());
        room.url = Some(cluster.ws_url().to_owned());
        room
    };
    let mut rooms: Vec<_> = state.rooms.list().into_iter().map(own).collect();
    let mut instances = vec![serde_json::json!({
        "id": cluster.id(),
        "url": cluster.ws_url(),
        "players": rooms.iter().map(|r| r.players).sum::<usize>(),
        "rooms": rooms.len(),
    })];
    let available = match cluster.others().await {
        Ok(others) => {
            for other in others.iter() {
                instances.push(serde_json::json!({
                    "id": other.id,
                    "url": other.ws_url,
                    "players": other.players,
                    "rooms": other.rooms.len(),
                }));
                rooms.extend(other.rooms.iter().cloned().map(|mut room| {
                    room.instance = Some(other.id.clone());
                    room.url = Some(other.ws_url.clone());
                    room
                }));
            }
            serde_json::json!({ "available": true })
        }
        Err(e) => serde_json::json!({ "available": false, "error": e.to_string() }),
    };
    json_response(&serde_json::json!({
        "rooms": rooms,
        "instance": cluster.id(),
        "instances": instances,
        "cluster": available,
    }))
}

/// The largest body the admin API reads.
const MAX_ADMIN_BODY_BYTES: usize = 4096;

/// `GET /api/players/{id}`: where the player with token subject `id` plays —
/// `{"player", "online": true, "room", "instance", "url"}` (a session here, else, in a cluster,
/// on another instance by its last heartbeat), else 404 with `"online": false`.
async fn player(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return (StatusCode::BAD_REQUEST, "a player id is 1-128 printable characters")
            .into_response();
    }
    let here = state.messaging.room_of(&id).map(|room| crate::messaging::Whereabouts {
        room,
        instance: state.cluster.as_ref().map(|c| c.id().to_owned()),
        url: state.cluster.as_ref().map(|c| c.ws_url().to_owned()),
    });
    let found = match (here, &state.cluster) {
        (Some(here), _) => Some(here),
        (None, Some(cluster)) => match cluster.whereabouts(&id).await {
            Ok(there) => there,
            Err(e) => {
                let body = serde_json::json!({
                    "player": id, "online": null,
                    "cluster": { "available": false, "error": e.to_string() },
                });
                return (StatusCode::SERVICE_UNAVAILABLE, json_response(&body)).into_response();
            }
        },
        (None, None) => None,
    };
    match found {
        Some(w) => json_response(&serde_json::json!({
            "player": id, "online": true, "room": w.room, "instance": w.instance, "url": w.url,
        })),
        None => (
            StatusCode::NOT_FOUND,
            json_response(&serde_json::json!({ "player": id, "online": false })),
        )
            .into_response(),
    }
}

/// `POST /api/admin/broadcast` with `Authorization: Bearer <--admin-token>` and the text as
/// the body: a line from "server" in every room (of every instance, in a cluster). Answers
/// `{"instances": N}`, how many instances received it. 404 without `--admin-token`, 401 for a
/// wrong token, 400 for an empty or too long text.
async fn admin_broadcast(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(expected) = &state.config.admin_token else {
        return (StatusCode::NOT_FOUND, "the admin API is off (start with --admin-token)")
            .into_response();
    };
    let given =
        crate::ws::bearer_token(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()));
    if !given.is_some_and(|g| same_secret(g.as_bytes(), expected.as_bytes())) {
        return (StatusCode::UNAUTHORIZED, "admin token missing or wrong").into_response();
    }
    let text = body.trim();
    if text.is_empty() || text.len() > tickwire_shared::protocol::MAX_CHAT_BYTES {
        let max = tickwire_shared::protocol::MAX_CHAT_BYTES;
        return (StatusCode::BAD_REQUEST, format!("the text must be 1-{max} bytes"))
            .into_response();
    }
    let instances = crate::messaging::broadcast(&state, text).await;
    json_response(&serde_json::json!({ "instances": instances }))
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The query of `GET /api/matchmake`.
#[derive(serde::Deserialize)]
struct MatchmakeQuery {
    game: Option<String>,
    room: Option<String>,
}

/// `GET /api/matchmake?game=NAME` (or `?room=NAME` for a named room): where to join, as
/// `{"room", "url", "instance", "seat", "game"}`. In a cluster: a seat reserved in the fullest
/// room of the game with space on any instance, else in a new room on the least-loaded one
/// (join `url?room=ROOM&seat=SEAT` within the seat's 15 s); a named room's instance. On its
/// own, or while Redis is away: this server (`"room": null` lets it matchmake at the join).
async fn matchmake(
    State(state): State<Arc<AppState>>,
    query: Result<Query<MatchmakeQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return (StatusCode::BAD_REQUEST, "bad query: game=NAME or room=NAME").into_response();
    };
    let game = q.game.unwrap_or_else(|| state.config.game.clone());
    if !tickwire_shared::games::exists(&game) {
        let shown = tickwire_shared::join::truncate_utf8(&game, 32);
        return (StatusCode::BAD_REQUEST, format!("unknown game {shown:?}")).into_response();
    }
    if q.room.as_deref().is_some_and(|r| !tickwire_shared::join::valid_room(r)) {
        return (StatusCode::BAD_REQUEST, "room must be 1-32 characters of A-Z a-z 0-9 _ -")
            .into_response();
    }
    let Some(cluster) = &state.cluster else {
        return json_response(&serde_json::json!({
            "room": q.room, "url": "/ws", "instance": null, "seat": null, "game": game,
        }));
    };
    let started = std::time::Instant::now();
    let placed = match &q.room {
        Some(room) => cluster.locate_named(&state, room).await,
        None => cluster.matchmake(&state, &game).await,
    };
    let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    state.metrics.matchmake_duration.observe(took);
    match placed {
        Ok(p) => json_response(&serde_json::json!({
            "room": p.room, "url": p.url, "instance": p.instance, "seat": p.seat, "game": game,
            "cluster": { "available": true },
        })),
        Err(e) => json_response(&serde_json::json!({
            "room": q.room, "url": cluster.ws_url(), "instance": cluster.id(), "seat": null,
            "game": game, "cluster": { "available": false, "error": e.to_string() },
        })),
    }
}

/// `GET /api/transport`: which transports this server offers, for the browser's ladder. The
/// WebTransport endpoint's port, and its certificate's SHA-256 (hex) when that is a
/// development certificate a browser accepts by hash only; `null` without QUIC.
async fn transport(State(state): State<Arc<AppState>>) -> Response {
    let webtransport = state.webtransport.as_ref().map(|wt| {
        serde_json::json!({
            "port": wt.port,
            "path": tickwire_shared::stream_frame::WEBTRANSPORT_PATH,
            "cert_sha256": wt.dev_cert_sha256.map(|h| crate::tls::hex(&h)),
        })
    });
    json_response(&serde_json::json!({
        "websocket": { "path": "/ws" },
        "webtransport": webtransport,
    }))
}

/// How often the inspector's stream sends the rooms.
const INSPECT_STREAM_PERIOD: Duration = Duration::from_millis(500);

/// Why the live inspector does not answer this request, if it does not: it is on with
/// `--inspect` or in dev mode (404 otherwise), and with an admin token configured only for it
/// (`Authorization: Bearer` or `?token=`, which a page's `EventSource` can send; 401
/// otherwise).
/// Whether the live inspector is on: `--inspect`, or dev mode (no `--jwt-secret`).
fn inspector_on(state: &AppState) -> bool {
    state.config.inspect || state.config.jwt_secret.is_none()
}

fn inspector_off() -> Response {
    (StatusCode::NOT_FOUND, "the inspector is off (start with --inspect)").into_response()
}

fn inspector_refusal(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> Option<Response> {
    if !inspector_on(state) {
        return Some(inspector_off());
    }
    let expected = state.config.admin_token.as_ref()?;
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let query = uri.query().unwrap_or("").split('&').find_map(|p| p.strip_prefix("token="));
    match crate::ws::bearer_token(bearer).or(query) {
        Some(given) if same_secret(given.as_bytes(), expected.as_bytes()) => None,
        _ => {
            Some((StatusCode::UNAUTHORIZED, "the inspector needs the admin token").into_response())
        }
    }
}

/// A request the live inspector answers ([`inspector_refusal`] says why not, as the
/// rejection).
struct InspectorAccess;

impl axum::extract::FromRequestParts<Arc<AppState>> for InspectorAccess {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<InspectorAccess, Response> {
        match inspector_refusal(state, &parts.headers, &parts.uri) {
            Some(refused) => Err(refused),
            None => Ok(InspectorAccess),
        }
    }
}

/// `GET /inspect`: the inspector's page (it reads the stream; `?token=` passes the admin
/// token on to it).
async fn inspect_page(_: InspectorAccess) -> Response {
    (page_headers(), include_str!("../assets/inspect/inspect.html")).into_response()
}

/// `GET /inspect.js` and `/inspect.css`: the page's script and style (no data in them: no
/// token needed, but only while the inspector is on).
async fn inspect_asset(State(state): State<Arc<AppState>>, uri: axum::http::Uri) -> Response {
    let js = include_str!("../assets/inspect/inspect.js");
    tool_asset(&state, &uri, js, include_str!("../assets/inspect/inspect.css"))
}

/// A script or style of the inspector's tools, while the inspector is on.
fn tool_asset(
    state: &AppState,
    uri: &axum::http::Uri,
    js: &'static str,
    css: &'static str,
) -> Response {
    if !inspector_on(state) {
        return inspector_off();
    }
    let (kind, body) = if uri.path().ends_with(".js") {
        ("text/javascript; charset=utf-8", js)
    } else {
        ("text/css; charset=utf-8", css)
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    (headers, body).into_response()
}

/// A recording uploaded to the replay viewer may be this large at the most.
pub const MAX_REPLAY_UPLOAD_BYTES: usize = 64 << 20;

/// Replays run for the viewer at once at the most (each takes a core while it runs).
static REPLAYS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The security headers of the inspector's and the replay viewer's pages.
fn page_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                 frame-ancestors 'none'",
            ),
        ),
    ]
}

/// `GET /replay`: the replay viewer (behind the inspector's guard): a recording of
/// `--record`'s directory (`?file=NAME`) or one loaded from disk, played with pause, speed and
/// seek.
async fn replay_page(_: InspectorAccess) -> Response {
    (page_headers(), include_str!("../assets/replay/replay.html")).into_response()
}

/// `GET /replay.js` and `/replay.css`.
async fn replay_asset(State(state): State<Arc<AppState>>, uri: axum::http::Uri) -> Response {
    let js = include_str!("../assets/replay/replay.js");
    tool_asset(&state, &uri, js, include_str!("../assets/replay/replay.css"))
}

/// `GET /api/replays`: the recordings of `--record`'s directory.
async fn replay_list(_: InspectorAccess, State(state): State<Arc<AppState>>) -> Response {
    let list = state.config.record.as_deref().map(crate::recording::list).unwrap_or_default();
    json_response(&serde_json::json!({
        "recording": state.config.record.is_some(),
        "files": list,
    }))
}

#[derive(serde::Deserialize)]
struct ReplayQuery {
    file: String,
}

/// `GET /api/replay?file=NAME`: a recording of `--record`'s directory replayed for the viewer.
async fn replay_file(
    _: InspectorAccess,
    State(state): State<Arc<AppState>>,
    query: Result<axum::extract::Query<ReplayQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(query)) = query else {
        return (StatusCode::BAD_REQUEST, "say which recording: ?file=NAME").into_response();
    };
    let Some(dir) = &state.config.record else {
        return (StatusCode::NOT_FOUND, "this server does not record (start it with --record DIR)")
            .into_response();
    };
    let Some(path) = crate::recording::resolve(dir, &query.file) else {
        return (StatusCode::BAD_REQUEST, "not a recording's file name").into_response();
    };
    let read = tokio::task::spawn_blocking(move || crate::recording::read_bounded(&path)).await;
    match read {
        Ok(Ok(bytes)) => replay_for_viewer(bytes).await,
        Ok(Err(e)) => (StatusCode::NOT_FOUND, format!("{e:#}")).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `POST /api/replay`: a recording loaded in the viewer (the body), replayed for it.
async fn replay_upload(_: InspectorAccess, body: axum::body::Bytes) -> Response {
    replay_for_viewer(body.to_vec()).await
}

async fn replay_for_viewer(bytes: Vec<u8>) -> Response {
    let Ok(_permit) = REPLAYS.try_acquire() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "replays are running: try again in a moment")
            .into_response();
    };
    let done = tokio::task::spawn_blocking(move || {
        crate::recording::viewer(&bytes).and_then(|v| Ok(serde_json::to_vec(&v)?))
    })
    .await;
    match done {
        Ok(Ok(json)) => {
            let headers = [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ];
            (headers, json).into_response()
        }
        Ok(Err(e)) => (StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// What the inspector shows: every room of this process with its clients.
fn inspection(state: &AppState) -> serde_json::Value {
    let rooms = state.rooms.inspect();
    let clients: usize = rooms.iter().map(|r| r.clients.len()).sum();
    let rooms: Vec<&crate::room::RoomInspection> = rooms.iter().map(AsRef::as_ref).collect();
    serde_json::json!({ "rooms": rooms, "clients": clients })
}

/// `GET /api/inspect`: the rooms and their clients now (JSON).
async fn inspect(_: InspectorAccess, State(state): State<Arc<AppState>>) -> Response {
    json_response(&inspection(&state))
}

/// `GET /api/inspect/stream`: the same every half second, as server-sent events.
async fn inspect_stream(_: InspectorAccess, State(state): State<Arc<AppState>>) -> Response {
    let events = futures_util::stream::unfold(state, |state| async move {
        if state.shutdown.is_cancelled() {
            return None;
        }
        let event = axum::response::sse::Event::default().data(inspection(&state).to_string());
        tokio::time::sleep(INSPECT_STREAM_PERIOD).await;
        Some((Ok::<_, std::convert::Infallible>(event), state))
    });
    axum::response::sse::Sse::new(events).into_response()
}

/// `GET /api/schema`: the protocol and every game as this server describes them
/// ([`tickwire_shared::schema::Schema`]), so a client refused at the handshake can say what
/// differs. JSON, or bincode with `?format=bincode`.
async fn schema(uri: axum::http::Uri) -> Response {
    static SCHEMA: std::sync::OnceLock<(String, Vec<u8>)> = std::sync::OnceLock::new();
    let (json, bincode) = SCHEMA.get_or_init(|| {
        let schema = tickwire_shared::schema::Schema::current();
        let json = serde_json::to_string(&schema).unwrap_or_default();
        (json, tickwire_shared::persist::encode(&schema).unwrap_or_default())
    });
    let binary = uri.query().is_some_and(|q| q.split('&').any(|p| p == "format=bincode"));
    let (kind, body) = if binary {
        ("application/octet-stream", bincode.clone())
    } else {
        ("application/json", json.clone().into_bytes())
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (headers, body).into_response()
}

async fn guest(
    State(state): State<Arc<AppState>>,
    Extension(PeerIp(ip)): Extension<PeerIp>,
) -> Response {
    if !state.config.guest_tokens {
        return (StatusCode::FORBIDDEN, "guest tokens are disabled").into_response();
    }
    if !state.take_guest_token(ip) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many guest tokens from this address; try again in a few seconds",
        )
            .into_response();
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

/// The query of `POST /api/debug/drop?entity=N`.
#[derive(serde::Deserialize)]
struct DropQuery {
    entity: u32,
}

async fn debug_drop(
    State(state): State<Arc<AppState>>,
    query: Result<Query<DropQuery>, QueryRejection>,
) -> Response {
    match query {
        Ok(Query(DropQuery { entity })) => {
            state.rooms.drop_connection(tickwire_shared::NetId(entity));
            (StatusCode::ACCEPTED, format!("dropping entity {entity}")).into_response()
        }
        Err(_) => (StatusCode::BAD_REQUEST, "expected ?entity=N").into_response(),
    }
}

/// A JSON response that is never cached.
fn json_response(value: &serde_json::Value) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (headers, value.to_string()).into_response()
}

fn method_not_allowed(allow: &'static str) -> Response {
    let allow = [(header::ALLOW, HeaderValue::from_static(allow))];
    (StatusCode::METHOD_NOT_ALLOWED, allow, "method not allowed").into_response()
}

/// The content types this server names itself (text with its charset); any other file gets
/// the one `ServeDir` guesses from its extension.
fn content_type(path: &Path) -> Option<&'static str> {
    Some(match path.extension().and_then(|e| e.to_str())? {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        _ => return None,
    })
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

/// [`CONTENT_SECURITY_POLICY`], with the WebTransport endpoint's port allowed for connections
/// when the server has one (`'self'` covers it only on the page's own port number), and the
/// WebSocket origins of a cluster's other instances (`ws://host:port`), where the matchmaker
/// may send the page.
#[must_use]
pub fn content_security_policy(webtransport_port: Option<u16>, instances: &[String]) -> String {
    let mut sources = String::from("connect-src 'self'");
    if let Some(port) = webtransport_port {
        sources.push_str(&format!(" https://*:{port}"));
    }
    for origin in instances {
        sources.push(' ');
        sources.push_str(origin);
    }
    CONTENT_SECURITY_POLICY.replace("connect-src 'self'", &sources)
}

/// The file a URL path names below the static root, as `ServeDir` reads it (percent-decoded,
/// `/` meaning `index.html`), if it is made of plain names only: no `..`, no `.`, no root.
fn relative_path(url_path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(url_path).decode_utf8().ok()?;
    let rel = decoded.trim_start_matches('/');
    let rel = PathBuf::from(if rel.is_empty() { "index.html" } else { rel });
    rel.components().all(|c| matches!(c, Component::Normal(_))).then_some(rel)
}

/// Whether `rel` names a regular file under `root`: no path that leaves the root, through `..`
/// or a symlink, and nothing but regular files (a FIFO would hang the reader).
async fn is_file_under(root: &Path, rel: &Path) -> bool {
    let Ok(root) = tokio::fs::canonicalize(root).await else { return false };
    let Ok(full) = tokio::fs::canonicalize(root.join(rel)).await else { return false };
    let regular = tokio::fs::metadata(&full).await.is_ok_and(|m| m.is_file());
    full.starts_with(&root) && regular
}

/// Every other `GET` or `HEAD`: a file of the built client, through `ServeDir` once the path
/// passed the rules above (404 otherwise); the "not built" page for `/` when there is no
/// `index.html`. Every answer carries `nosniff`, a page the CSP.
async fn static_files(State(state): State<Arc<AppState>>, req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return method_not_allowed("GET, HEAD");
    }
    let root = &state.config.static_dir;
    let Some(rel) = relative_path(req.uri().path()) else {
        return (StatusCode::BAD_REQUEST, "bad path").into_response();
    };
    let mut resp = if is_file_under(root, &rel).await {
        let mut resp = match ServeDir::new(root).oneshot(req).await {
            Ok(resp) => resp.into_response(),
            Err(never) => match never {},
        };
        let headers = resp.headers_mut();
        if let Some(kind) = content_type(&rel)
            && headers.contains_key(header::CONTENT_TYPE)
        {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    } else if rel == Path::new("index.html") {
        let kind = HeaderValue::from_static("text/html; charset=utf-8");
        ([(header::CONTENT_TYPE, kind)], NOT_BUILT).into_response()
    } else {
        let path = req.uri().path();
        (StatusCode::NOT_FOUND, format!("not found: {path}")).into_response()
    };
    let headers = resp.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if rel.extension().is_some_and(|e| e == "html") {
        let instances = state.cluster.as_ref().map(|c| c.member_ws_origins()).unwrap_or_default();
        let csp = content_security_policy(state.webtransport.as_ref().map(|w| w.port), &instances);
        if let Ok(csp) = HeaderValue::from_str(&csp) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::relative_path;

    #[test]
    fn url_paths_map_to_plain_relative_names_only() {
        let rel = |p: &str| relative_path(p);
        assert_eq!(rel("/"), Some(PathBuf::from("index.html")));
        assert_eq!(rel("/pkg/app.wasm"), Some(PathBuf::from("pkg/app.wasm")));
        assert_eq!(rel("/a%20b.js"), Some(PathBuf::from("a b.js")));
        for bad in ["/../etc/passwd", "/%2e%2e/etc/passwd", "/./a", "/a/../../b", "/%ff"] {
            assert_eq!(rel(bad), None, "{bad}");
        }
    }
}
