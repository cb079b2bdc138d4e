//! The shell's connection: the guest token, the transport ladder (WebTransport, else the
//! WebSocket; [`crate::transport`]), reconnection with backoff, and the first message (the
//! `Welcome`), which says which game's session to make.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Reflect, Uint8Array};
use tickwire_shared::codec;
use tickwire_shared::join::JoinRequest;
use tickwire_shared::protocol::{DisconnectReason, PROTOCOL_VERSION, ServerMessage};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket, XmlHttpRequest};

use super::webtransport;
use super::{App, Connection, Placement, Shared, set_text};
use crate::conn::{MAX_ATTEMPTS, Phase, backoff_ms, is_terminal};
use crate::games;
use crate::session::Notice;
use crate::transport::{
    ADVERTISEMENT_DEADLINE_MS, Arrival, Ladder, Preference, Transport, WebTransportEndpoint,
};

/// Where the page keeps its guest token (`localStorage`): a resume token works only for the
/// subject it was given to, so a reload or a second tab must present the same one.
const TOKEN_KEY: &str = "tickwire.token";

/// The guest token kept from an earlier visit, if any.
pub(super) fn stored_token(window: &web_sys::Window) -> Option<String> {
    let storage = window.local_storage().ok()??;
    storage.get_item(TOKEN_KEY).ok()?.filter(|t| !t.is_empty())
}

/// Keeps `token` for later visits, or forgets it (`None`: it was refused).
fn store_token(window: &web_sys::Window, token: Option<&str>) {
    let Ok(Some(storage)) = window.local_storage() else { return };
    let _ = match token {
        Some(t) => storage.set_item(TOKEN_KEY, t),
        None => storage.remove_item(TOKEN_KEY),
    };
}

/// Starts a connection attempt: fetches a guest token first when there is none, asks the
/// matchmaker where to play when the page names no room and resumes nothing, then climbs the
/// transport ladder (a WebSocket only, to another instance of a cluster).
pub(super) fn connect(app: &Shared) {
    let (has_token, ask, elsewhere) = {
        let id = &app.borrow().identity;
        let unasked = matches!(id.placement, Placement::Unasked);
        let ask = unasked && id.room.is_none() && id.resume.is_none();
        (id.token.is_some(), ask, matches!(id.placement, Placement::There { .. }))
    };
    if !has_token {
        return fetch_token(app);
    }
    if ask {
        return fetch_placement(app);
    }
    let ladder = if elsewhere {
        Ladder::new(Preference::Only(Transport::WebSocket), false)
    } else {
        Ladder::new(app.borrow().identity.transport, webtransport::supported())
    };
    {
        let mut a = app.borrow_mut();
        a.link.ladder = ladder;
        a.link.fallback = None;
    }
    match ladder.first() {
        Transport::WebSocket => open_websocket(app),
        Transport::WebTransport => fetch_advertisement(app),
    }
}

/// The WebSocket rung.
fn open_websocket(app: &Shared) {
    let token = app.borrow().identity.token.clone();
    let Some(token) = token else { return fetch_token(app) };
    let weak = Rc::downgrade(app);
    if let Err(e) = app.borrow_mut().open_socket(weak, &token) {
        lost(app, format!("cannot open a WebSocket: {e:?}"), None);
    }
}

/// The WebTransport rung failed before its session opened (`why`): the next rung, or the
/// attempt is lost when WebTransport was forced.
fn fall_back(app: &Shared, why: String) {
    let next = app.borrow().link.ladder.after(Transport::WebTransport);
    match next {
        Some(Transport::WebSocket) => {
            app.borrow_mut().link.fallback = Some(why);
            open_websocket(app);
        }
        _ => lost(app, format!("WebTransport: {why}"), None),
    }
}

/// Asks the server where its WebTransport endpoint is (`GET /api/transport`), then opens it.
fn fetch_advertisement(app: &Shared) {
    let request = || -> Result<XmlHttpRequest, JsValue> {
        let xhr = XmlHttpRequest::new()?;
        xhr.open_with_async("GET", "/api/transport", true)?;
        xhr.set_timeout(ADVERTISEMENT_DEADLINE_MS);
        Ok(xhr)
    };
    let xhr = match request() {
        Ok(x) => x,
        Err(e) => return fall_back(app, format!("cannot ask for the endpoint: {e:?}")),
    };
    let weak = Rc::downgrade(app);
    let done = xhr.clone();
    let on_load = Closure::once_into_js(move || {
        let Some(app) = weak.upgrade() else { return };
        let status = done.status().unwrap_or(0);
        let body = done.response_text().ok().flatten().unwrap_or_default();
        let endpoint = if status == 200 {
            advertised_endpoint(&body)
        } else {
            Err(format!("GET /api/transport answered HTTP {status}"))
        };
        match endpoint {
            Ok(Some(endpoint)) => open_webtransport(&app, &endpoint),
            Ok(None) => fall_back(&app, "the server offers none".to_owned()),
            Err(why) => fall_back(&app, why),
        }
    });
    let weak = Rc::downgrade(app);
    let on_error = Closure::once_into_js(move || {
        if let Some(app) = weak.upgrade() {
            fall_back(&app, "GET /api/transport failed".to_owned());
        }
    });
    xhr.set_onload(Some(on_load.unchecked_ref()));
    // One of the two runs, so the one closure serves both.
    xhr.set_onerror(Some(on_error.unchecked_ref()));
    xhr.set_ontimeout(Some(on_error.unchecked_ref()));
    if let Err(e) = xhr.send() {
        fall_back(app, format!("cannot ask for the endpoint: {e:?}"));
    }
}

/// The endpoint in the JSON of `GET /api/transport`: `{"webtransport": null}` or
/// `{"webtransport": {"port": …, "path": …, "cert_sha256": …}}`.
fn advertised_endpoint(body: &str) -> Result<Option<WebTransportEndpoint>, String> {
    let json = js_sys::JSON::parse(body).map_err(|_| "GET /api/transport is no JSON".to_owned())?;
    let wt = Reflect::get(&json, &"webtransport".into()).unwrap_or(JsValue::NULL);
    if wt.is_null() || wt.is_undefined() {
        return Ok(None);
    }
    let field = |key: &str| Reflect::get(&wt, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let port = field("port").as_f64().unwrap_or(f64::NAN);
    let (path, hash) = (field("path").as_string(), field("cert_sha256").as_string());
    WebTransportEndpoint::from_fields(port, path.as_deref(), hash.as_deref())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The WebTransport rung: a session to `endpoint` on the page's host.
fn open_webtransport(app: &Shared, endpoint: &WebTransportEndpoint) {
    let (url, generation) = {
        let mut a = app.borrow_mut();
        let Some(token) = a.identity.token.clone() else {
            drop(a);
            return fetch_token(app);
        };
        let hostname = match a.page.window.location().hostname() {
            Ok(h) => h,
            Err(e) => {
                drop(a);
                return fall_back(app, format!("no hostname: {e:?}"));
            }
        };
        let url = endpoint.url(&hostname, &a.join_query(&token));
        (url, a.link.take_generation())
    };
    let weak = Rc::downgrade(app);
    let data_handler = move |arrival: Arrival, bytes: Vec<u8>| {
        if let Some(app) = weak.upgrade() {
            on_webtransport_data(&app, generation, arrival, bytes);
        }
    };
    let weak = Rc::downgrade(app);
    let close_handler = move |code: u16, reason: String, opened: bool| {
        let Some(app) = weak.upgrade() else { return };
        if opened {
            on_close(&app, generation, code, reason);
        } else if app.borrow().connection.as_ref().is_some_and(|c| c.generation == generation) {
            app.borrow_mut().connection = None;
            fall_back(&app, reason);
        }
    };
    let link = webtransport::Link::open(&url, endpoint.cert_sha256, data_handler, close_handler);
    app.borrow_mut().connection = Some(Connection {
        generation,
        wire: Wire::WebTransport(link),
        game: None,
        disconnect: None,
    });
}

fn on_webtransport_data(app: &Shared, generation: u32, arrival: Arrival, bytes: Vec<u8>) {
    let messages = {
        let mut a = app.borrow_mut();
        let now_ms = a.page.performance.now();
        let Some(c) = a.connection.as_mut().filter(|c| c.generation == generation) else { return };
        let Wire::WebTransport(link) = &mut c.wire else { return };
        let len = bytes.len();
        let messages = link.unframe(arrival, bytes);
        a.meters.bytes.add(now_ms, len as f64);
        messages
    };
    match messages {
        Ok(messages) => {
            for message in messages {
                on_message(app, generation, &message);
            }
        }
        Err(e) => lost(app, format!("broken stream: {e}"), None),
    }
}

/// Asks `GET /api/matchmake` where to play, then connects there; anything but a placement on
/// another instance (an error included) means this server.
fn fetch_placement(app: &Shared) {
    let path = match &app.borrow().identity.game {
        Some(game) => {
            format!("/api/matchmake?game={}", tickwire_shared::join::percent_encode(game))
        }
        None => "/api/matchmake".to_owned(),
    };
    let request = || -> Result<XmlHttpRequest, JsValue> {
        let xhr = XmlHttpRequest::new()?;
        xhr.open_with_async("GET", &path, true)?;
        xhr.set_timeout(ADVERTISEMENT_DEADLINE_MS);
        Ok(xhr)
    };
    let placed = |app: &Shared, placement: Placement| {
        app.borrow_mut().identity.placement = placement;
        connect(app);
    };
    let xhr = match request() {
        Ok(x) => x,
        Err(_) => return placed(app, Placement::Here),
    };
    let weak = Rc::downgrade(app);
    let done = xhr.clone();
    let on_load = Closure::once_into_js(move || {
        let Some(app) = weak.upgrade() else { return };
        let json = (done.status().ok() == Some(200))
            .then(|| done.response_text().ok().flatten())
            .flatten()
            .and_then(|text| js_sys::JSON::parse(&text).ok());
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| Reflect::get(j, &name.into()).ok())
                .and_then(|v| v.as_string())
        };
        let placement = match (field("url"), field("room"), field("seat")) {
            (Some(url), Some(room), Some(seat)) if url.starts_with("ws") => {
                Placement::There { url, room, seat: Some(seat) }
            }
            _ => Placement::Here,
        };
        placed(&app, placement);
    });
    let weak = Rc::downgrade(app);
    let on_error = Closure::once_into_js(move || {
        if let Some(app) = weak.upgrade() {
            placed(&app, Placement::Here);
        }
    });
    xhr.set_onload(Some(on_load.unchecked_ref()));
    xhr.set_onerror(Some(on_error.unchecked_ref()));
    xhr.set_ontimeout(Some(on_error.unchecked_ref()));
    if xhr.send().is_err() {
        placed(app, Placement::Here);
    }
}

fn fetch_token(app: &Shared) {
    let request = || -> Result<XmlHttpRequest, JsValue> {
        let xhr = XmlHttpRequest::new()?;
        xhr.open_with_async("POST", "/api/guest", true)?;
        Ok(xhr)
    };
    let xhr = match request() {
        Ok(x) => x,
        Err(e) => return lost(app, format!("cannot request a guest token: {e:?}"), None),
    };
    let weak = Rc::downgrade(app);
    let done = xhr.clone();
    let on_load = Closure::once_into_js(move || {
        let Some(app) = weak.upgrade() else { return };
        let token = (done.status().ok() == Some(200))
            .then(|| done.response_text().ok().flatten())
            .flatten()
            .and_then(|text| js_sys::JSON::parse(&text).ok())
            .and_then(|json| Reflect::get(&json, &"token".into()).ok())
            .and_then(|t| t.as_string());
        match token {
            Some(token) => {
                store_token(&app.borrow().page.window, Some(&token));
                app.borrow_mut().identity.token = Some(token);
                connect(&app);
            }
            None => {
                let status = done.status().unwrap_or(0);
                let body = done.response_text().ok().flatten().unwrap_or_default();
                lost(&app, format!("guest token refused (HTTP {status}) {body}"), None);
            }
        }
    });
    let weak = Rc::downgrade(app);
    let on_error = Closure::once_into_js(move || {
        if let Some(app) = weak.upgrade() {
            lost(&app, "server unreachable".to_owned(), None);
        }
    });
    xhr.set_onload(Some(on_load.unchecked_ref()));
    xhr.set_onerror(Some(on_error.unchecked_ref()));
    if let Err(e) = xhr.send() {
        lost(app, format!("cannot request a guest token: {e:?}"), None);
    }
}

/// The connection attempt or session ended: `reason` for humans, `terminal` when the server
/// said the session must not be resumed. Schedules the next attempt or gives up.
fn lost(app: &Shared, reason: String, terminal: Option<bool>) {
    let mut a = app.borrow_mut();
    let game = a.connection.take().and_then(|c| c.game);
    let welcomed = game.is_some();
    if terminal == Some(true) {
        a.resumable = None;
    } else if game.is_some() {
        a.resumable = game;
    }
    let link = &mut a.link;
    link.last_reason = reason.clone();
    if terminal == Some(true) {
        link.phase = Phase::Failed { reason };
        return;
    }
    if matches!(link.phase, Phase::Failed { .. }) {
        return;
    }
    if welcomed {
        link.attempts = 0;
    } else {
        link.attempts += 1;
    }
    if link.attempts >= MAX_ATTEMPTS {
        link.phase = Phase::Failed {
            reason: format!("{reason} (gave up after {} attempts)", link.attempts),
        };
        return;
    }
    if !welcomed {
        // The token may have been the problem (expired); a new guest one costs nothing.
        a.identity.token = None;
        store_token(&a.page.window, None);
        // So may the seat (expired, its room gone): ask the matchmaker again.
        if matches!(a.identity.placement, Placement::There { seat: Some(_), .. }) {
            a.identity.placement = Placement::Unasked;
        }
    }
    let delay = if std::mem::take(&mut a.link.moved) {
        0.0
    } else {
        backoff_ms(a.link.attempts, js_sys::Math::random())
    };
    let retry_at_ms = a.page.performance.now() + delay;
    a.link.phase = Phase::Reconnecting { retry_at_ms: Some(retry_at_ms) };
    let weak = Rc::downgrade(app);
    let retry = Closure::once_into_js(move || {
        let Some(app) = weak.upgrade() else { return };
        {
            let mut a = app.borrow_mut();
            if !matches!(a.link.phase, Phase::Reconnecting { retry_at_ms: Some(_) }) {
                return;
            }
            a.link.phase = Phase::Reconnecting { retry_at_ms: None };
        }
        connect(&app);
    });
    let _ = a.page.window.set_timeout_with_callback_and_timeout_and_arguments_0(
        retry.unchecked_ref(),
        delay.ceil() as i32,
    );
}

/// One server message of connection `generation`, whatever the transport.
fn on_message(app: &Shared, generation: u32, bytes: &[u8]) {
    let ended = {
        let mut a = app.borrow_mut();
        let now_ms = a.page.performance.now();
        a.receive(generation, now_ms, bytes)
    };
    match ended {
        Some(Ended::Server(reason, message)) if is_terminal(Some(reason), reason.close_code()) => {
            lost(app, message, Some(true));
        }
        Some(Ended::Unplayable(message)) => lost(app, message, Some(true)),
        Some(Ended::Server(..)) | None => {}
    }
}

fn on_close(app: &Shared, generation: u32, code: u16, close_reason: String) {
    let (reason, message) = {
        let a = app.borrow();
        let Some(c) = a.connection.as_ref().filter(|c| c.generation == generation) else {
            return;
        };
        match &c.disconnect {
            Some((r, m)) => (Some(*r), m.clone()),
            None if !close_reason.is_empty() => (None, close_reason),
            None => (None, format!("connection lost (close code {code})")),
        }
    };
    lost(app, message, Some(is_terminal(reason, code)));
}

/// Why a connection ended from the page's side of a message.
enum Ended {
    /// The server said goodbye.
    Server(DisconnectReason, String),
    /// The room plays a game this page cannot draw.
    Unplayable(String),
}

/// How a connection reaches the server.
pub(super) enum Wire {
    /// A WebSocket, with its handlers.
    WebSocket {
        /// The socket.
        ws: WebSocket,
        /// Its message handler.
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        /// Its close handler.
        _on_close: Closure<dyn FnMut(CloseEvent)>,
    },
    /// A WebTransport session.
    WebTransport(webtransport::Link),
}

impl Wire {
    /// Which transport this is.
    pub(super) fn transport(&self) -> Transport {
        match self {
            Wire::WebSocket { .. } => Transport::WebSocket,
            Wire::WebTransport(_) => Transport::WebTransport,
        }
    }

    /// Whether messages can be sent.
    pub(super) fn is_open(&self) -> bool {
        match self {
            Wire::WebSocket { ws, .. } => ws.ready_state() == WebSocket::OPEN,
            Wire::WebTransport(link) => link.is_open(),
        }
    }

    /// Sends one encoded client message; `false` when the transport refused it.
    pub(super) fn send(&self, bytes: &[u8]) -> bool {
        match self {
            Wire::WebSocket { ws, .. } => ws.send_with_u8_array(bytes).is_ok(),
            Wire::WebTransport(link) => {
                link.send(bytes);
                true
            }
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        // A WebTransport link closes itself when dropped.
        if let Wire::WebSocket { ws, .. } = self {
            ws.set_onmessage(None);
            ws.set_onclose(None);
            let _ = ws.close();
        }
    }
}

impl App {
    /// The join query (`v`, the token, room, name, resume token, game) both transports carry.
    fn join_query(&self, token: &str) -> String {
        let id = &self.identity;
        let (room, seat) = match &id.placement {
            // A resume needs no seat: the room keeps the player's.
            Placement::There { room, seat, .. } => {
                (Some(room.clone()), seat.clone().filter(|_| id.resume.is_none()))
            }
            _ => (id.room.clone(), None),
        };
        JoinRequest {
            version: Some(PROTOCOL_VERSION),
            token: Some(token.to_owned()),
            room,
            name: id.name.clone(),
            resume: id.resume.clone(),
            game: id.game.clone(),
            seat,
        }
        .to_query()
    }

    fn open_socket(&mut self, weak: Weak<RefCell<App>>, token: &str) -> Result<(), JsValue> {
        let location = self.page.window.location();
        let scheme = if location.protocol()? == "https:" { "wss:" } else { "ws:" };
        let url = match &self.identity.placement {
            Placement::There { url, .. } => format!("{url}?{}", self.join_query(token)),
            _ => format!("{scheme}//{}/ws?{}", location.host()?, self.join_query(token)),
        };
        let ws = WebSocket::new(&url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let generation = self.link.take_generation();
        let w = weak.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(app) = w.upgrade() {
                let bytes = Uint8Array::new(&e.data()).to_vec();
                let now_ms = app.borrow().page.performance.now();
                app.borrow_mut().meters.bytes.add(now_ms, bytes.len() as f64);
                on_message(&app, generation, &bytes);
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            if let Some(app) = weak.upgrade() {
                on_close(&app, generation, e.code(), e.reason());
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.connection = Some(Connection {
            generation,
            wire: Wire::WebSocket { ws, _on_message: on_message, _on_close: on_close },
            game: None,
            disconnect: None,
        });
        Ok(())
    }

    /// Hands one server message to the connection's session, making the session from the
    /// first message (the `Welcome`, which names the game). Returns why the connection ended,
    /// if it did.
    fn receive(&mut self, generation: u32, now_ms: f64, bytes: &[u8]) -> Option<Ended> {
        let c = self.connection.as_mut().filter(|c| c.generation == generation)?;
        if c.game.is_none() {
            match codec::decode_server(bytes) {
                Ok(ServerMessage::Welcome(w)) => {
                    // The player resumed: its session goes on (and keeps its states).
                    let resumed = self.resumable.take().filter(|s| {
                        s.game() == w.game
                            && self.identity.resume.as_deref() == Some(w.resume_token.as_str())
                    });
                    let Some(session) =
                        resumed.or_else(|| games::session_for(&w.game, w.tick_rate))
                    else {
                        let known = games::names().join(", ");
                        return Some(Ended::Unplayable(format!(
                            "this page cannot play {:?} (it plays {known})",
                            w.game
                        )));
                    };
                    self.identity.joined = Some(w.room.clone());
                    set_text(&self.page.help, session.help());
                    if let Some(document) = self.page.window.document() {
                        document.set_title(&format!("Tickwire · {}", w.game));
                    }
                    c.game = Some(session);
                }
                Ok(ServerMessage::Disconnect { reason, message }) => {
                    c.disconnect = Some((reason, message.clone()));
                    return Some(Ended::Server(reason, message));
                }
                // Anything else before the welcome is ignored.
                _ => return None,
            }
        }
        let session = c.game.as_mut()?;
        let notices = session.handle_bytes(now_ms, bytes, &self.names);
        let mut ended = None;
        for notice in notices {
            match notice {
                Notice::Welcomed { entity, resume_token } => {
                    if self.link.welcomes > 0 {
                        self.push_log(format!("reconnected as #{}", entity.0));
                    }
                    self.link.welcomes += 1;
                    self.link.phase = Phase::Live;
                    self.link.attempts = 0;
                    self.own = Some(entity);
                    self.names.insert(entity, self.identity.name.clone());
                    self.identity.resume = Some(resume_token);
                    // The seat is taken; a reconnection resumes in the same room.
                    if let Placement::There { seat, .. } = &mut self.identity.placement {
                        *seat = None;
                    }
                }
                Notice::Snapshot => self.meters.snapshots.add(now_ms, 1.0),
                Notice::Named(entity, name) => self.names.insert(entity, name),
                Notice::Gone(entity) => self.names.remove(entity),
                Notice::Line(line) => self.push_log(line),
                Notice::Mismatch(what) => {
                    for line in what.lines() {
                        self.push_log(line.to_owned());
                    }
                    ended = Some(Ended::Unplayable(what));
                }
                Notice::Disconnected(reason, message) => {
                    let url = &message;
                    if reason == DisconnectReason::Moved
                        && (url.starts_with("ws://") || url.starts_with("wss://"))
                    {
                        // A rolling restart: the room goes on at another instance, and the
                        // player resumes there (its resume token, no seat).
                        let room = self.identity.joined.clone().unwrap_or_default();
                        self.identity.placement =
                            Placement::There { url: url.clone(), room, seat: None };
                        self.link.moved = true;
                        self.push_log("the room moved to another server: following it".into());
                    }
                    if let Some(c) = self.connection.as_mut() {
                        c.disconnect = Some((reason, message.clone()));
                    }
                    ended = Some(Ended::Server(reason, message));
                }
            }
        }
        ended
    }
}
