//! The browser shell: the page's connection (WebTransport or a WebSocket), the frame loop, the
//! HUD, the chat, reconnection and `window.tickwire.state()`. It names no game: the server's `Welcome` says which game the room
//! plays, and [`crate::games::session_for`] makes that game's session, which samples input,
//! predicts, interpolates and draws.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use glam::Vec2;
use js_sys::{Object, Reflect};
use tickwire_shared::NetId;
use tickwire_shared::join::truncate_utf8;
use tickwire_shared::protocol::{DisconnectReason, MAX_CHAT_BYTES};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    CanvasRenderingContext2d, Document, HtmlCanvasElement, HtmlElement, HtmlInputElement,
    KeyboardEvent, MouseEvent, Performance, UrlSearchParams, Window,
};

use crate::conn::{Phase, RateMeter};
use crate::games::Controls;
use crate::names::Names;
use crate::render::Camera;
use crate::session::AnySession;
use crate::transport::{Ladder, Preference, Transport};

/// How often the HUD text is rewritten: 4 Hz is readable and keeps DOM work off most frames.
const HUD_INTERVAL_MS: f64 = 250.0;

/// The timer that keeps input and the network going when animation frames stop (a hidden
/// tab): every 16 ms, one 60 Hz tick.
const PUMP_INTERVAL_MS: i32 = 16;

/// Lines kept in the chat and kill feed.
const LOG_LINES: usize = 8;

mod net;
mod webtransport;

use self::net::{Wire, connect};

type Shared = Rc<RefCell<App>>;

/// The animation-frame callback, which re-registers itself.
type FrameSlot = Rc<RefCell<Option<Closure<dyn FnMut()>>>>;

/// The page's elements.
struct Page {
    window: Window,
    performance: Performance,
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    status: HtmlElement,
    stats: HtmlElement,
    scores: HtmlElement,
    log: HtmlElement,
    chat: HtmlInputElement,
    help: HtmlElement,
}

/// Who the player is and how to reach the server, kept across reconnects.
struct Identity {
    room: Option<String>,
    game: Option<String>,
    name: String,
    token: Option<String>,
    resume: Option<String>,
    /// `?transport=`: the ladder, or one transport only.
    transport: Preference,
    /// Where the server's matchmaker placed the player.
    placement: Placement,
    /// The room the last `Welcome` named.
    joined: Option<String>,
}

/// What `GET /api/matchmake` said (asked before a join that names no room and resumes
/// nothing).
enum Placement {
    /// Not asked yet.
    Unasked,
    /// Join the page's own server.
    Here,
    /// A cluster's instance: its WebSocket URL, the room, and the seat until it is taken.
    There { url: String, room: String, seat: Option<String> },
}

/// The connection's life cycle.
struct Link {
    phase: Phase,
    attempts: u32,
    last_reason: String,
    next_generation: u32,
    welcomes: u32,
    /// The room moved to another instance (a rolling restart): the next attempt goes there at
    /// once.
    moved: bool,
    /// The current attempt's rungs.
    ladder: Ladder,
    /// Why the current attempt left WebTransport for the WebSocket, if it did.
    fallback: Option<String>,
}

impl Link {
    /// A new connection's generation: callbacks of older connections carry older ones.
    fn take_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        generation
    }
}

/// The HUD's meters.
#[derive(Default)]
struct Meters {
    fps: RateMeter,
    /// Frames per second as last shown in the HUD (for the test hook).
    shown_fps: f64,
    bytes: RateMeter,
    snapshots: RateMeter,
    last_frame_ms: f64,
    last_hud_ms: f64,
}

/// One connection (over either transport) and, once welcomed, its game's session.
struct Connection {
    generation: u32,
    wire: Wire,
    game: Option<Box<dyn AnySession>>,
    disconnect: Option<(DisconnectReason, String)>,
}

struct App {
    page: Page,
    identity: Identity,
    link: Link,
    connection: Option<Connection>,
    /// The session of the last welcomed connection, kept while reconnecting: a `Welcome` that
    /// resumes its player (the token the page sent, the same game) continues it, so the states
    /// it kept decode the room's first snapshot, a delta against the one it acknowledged last.
    resumable: Option<Box<dyn AnySession>>,
    own: Option<NetId>,
    names: Names,
    log: VecDeque<String>,
    controls: Controls,
    /// The mouse in canvas pixels.
    mouse: (f64, f64),
    chat_open: bool,
    camera: Camera,
    meters: Meters,
}

fn element<T: JsCast>(document: &Document, id: &str) -> Result<T, JsValue> {
    document
        .get_element_by_id(id)
        .ok_or_else(|| JsValue::from_str(&format!("the page has no #{id}")))?
        .dyn_into::<T>()
        .map_err(|_| JsValue::from_str(&format!("#{id} has the wrong element type")))
}

/// Starts the client on the page: reads `?room=`, `?game=`, `?name=`, `?resume=` and
/// `?transport=`, installs
/// the input handlers, the frame loop and `window.tickwire`, then fetches a guest token and
/// connects.
pub fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let canvas: HtmlCanvasElement = element(&document, "game")?;
    let ctx: CanvasRenderingContext2d =
        canvas.get_context("2d")?.ok_or("no 2d canvas context")?.dyn_into()?;
    let page = Page {
        performance: window.performance().ok_or("no performance clock")?,
        status: element(&document, "status")?,
        stats: element(&document, "stats")?,
        scores: element(&document, "scores")?,
        log: element(&document, "log")?,
        chat: element(&document, "chat")?,
        help: element(&document, "help")?,
        window: window.clone(),
        canvas,
        ctx,
    };
    let params = UrlSearchParams::new_with_str(&window.location().search()?)?;
    let param = |key: &str| params.get(key).filter(|v| !v.trim().is_empty());
    let identity = Identity {
        room: param("room"),
        game: param("game"),
        // `?resume=` takes over a player from another page or an earlier visit.
        resume: param("resume"),
        name: param("name")
            .unwrap_or_else(|| format!("guest{}", (js_sys::Math::random() * 9000.0) as u32 + 1000)),
        // A guest token kept from an earlier visit: the same subject, so `?resume=` works
        // across pages and reloads of this browser.
        token: net::stored_token(&window),
        transport: Preference::from_query(params.get("transport").as_deref()),
        placement: Placement::Unasked,
        joined: None,
    };
    let app = Rc::new(RefCell::new(App {
        page,
        identity,
        link: Link {
            phase: Phase::Connecting,
            attempts: 0,
            last_reason: String::new(),
            next_generation: 0,
            welcomes: 0,
            moved: false,
            ladder: Ladder::WebSocketOnly,
            fallback: None,
        },
        connection: None,
        resumable: None,
        own: None,
        names: Names::default(),
        log: VecDeque::new(),
        controls: Controls::default(),
        mouse: (0.0, 0.0),
        chat_open: false,
        camera: Camera::new(Vec2::ZERO, 1.0, 1.0, 1.0),
        meters: Meters { last_hud_ms: f64::NEG_INFINITY, ..Meters::default() },
    }));
    install_input(&app, &window)?;
    install_loops(&app, &window)?;
    install_debug_hook(&app, &window)?;
    connect(&app);
    Ok(())
}

/// Adds `handler` for `event` on `target`, for the page's lifetime.
fn listen<E: wasm_bindgen::convert::FromWasmAbi + 'static>(
    target: &web_sys::EventTarget,
    event: &str,
    handler: impl FnMut(E) + 'static,
) -> Result<(), JsValue> {
    let closure = Closure::<dyn FnMut(E)>::new(handler);
    target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref())?;
    closure.forget();
    Ok(())
}

fn install_input(app: &Shared, window: &Window) -> Result<(), JsValue> {
    let a = Rc::clone(app);
    listen(window, "keydown", move |e: KeyboardEvent| {
        let mut app = a.borrow_mut();
        if app.chat_open {
            return;
        }
        if e.code() == "Enter" {
            e.prevent_default();
            app.open_chat();
            return;
        }
        if app.set_key(&e.code(), true) {
            e.prevent_default();
        }
    })?;
    let a = Rc::clone(app);
    listen(window, "keyup", move |e: KeyboardEvent| {
        a.borrow_mut().set_key(&e.code(), false);
    })?;
    let a = Rc::clone(app);
    listen(window, "blur", move |_: web_sys::Event| {
        a.borrow_mut().controls = Controls::default();
    })?;
    let a = Rc::clone(app);
    listen(window, "mousemove", move |e: MouseEvent| {
        a.borrow_mut().mouse = (f64::from(e.client_x()), f64::from(e.client_y()));
    })?;
    let a = Rc::clone(app);
    let canvas = app.borrow().page.canvas.clone();
    listen(&canvas, "mousedown", move |e: MouseEvent| {
        if e.button() == 0 {
            let mut app = a.borrow_mut();
            app.mouse = (f64::from(e.client_x()), f64::from(e.client_y()));
            app.controls.primary = true;
        }
    })?;
    let a = Rc::clone(app);
    listen(window, "mouseup", move |e: MouseEvent| {
        if e.button() == 0 {
            a.borrow_mut().controls.primary = false;
        }
    })?;
    let a = Rc::clone(app);
    let chat = app.borrow().page.chat.clone();
    listen(&chat, "keydown", move |e: KeyboardEvent| {
        // The page's own handler must not see the Enter that closes the chat.
        e.stop_propagation();
        match e.code().as_str() {
            "Enter" | "NumpadEnter" => {
                e.prevent_default();
                a.borrow_mut().send_chat();
            }
            "Escape" => a.borrow_mut().close_chat(),
            _ => {}
        }
    })
}

fn install_loops(app: &Shared, window: &Window) -> Result<(), JsValue> {
    // Animation frames draw (and pump); a timer pumps when frames stop.
    let slot: FrameSlot = Rc::new(RefCell::new(None));
    let again = Rc::clone(&slot);
    let a = Rc::clone(app);
    *slot.borrow_mut() = Some(Closure::<dyn FnMut()>::new(move || {
        a.borrow_mut().frame();
        let app = a.borrow();
        if let Some(cb) = again.borrow().as_ref() {
            let _ = app.page.window.request_animation_frame(cb.as_ref().unchecked_ref());
        }
    }));
    if let Some(cb) = slot.borrow().as_ref() {
        window.request_animation_frame(cb.as_ref().unchecked_ref())?;
    }

    let a = Rc::clone(app);
    let pump = Closure::<dyn FnMut()>::new(move || a.borrow_mut().pump());
    window.set_interval_with_callback_and_timeout_and_arguments_0(
        pump.as_ref().unchecked_ref(),
        PUMP_INTERVAL_MS,
    )?;
    pump.forget();
    Ok(())
}

fn install_debug_hook(app: &Shared, window: &Window) -> Result<(), JsValue> {
    let a = Rc::clone(app);
    let state = Closure::<dyn FnMut() -> JsValue>::new(move || a.borrow().debug_state());
    let hook = Object::new();
    Reflect::set(&hook, &"state".into(), state.as_ref())?;
    state.forget();
    Reflect::set(window, &"tickwire".into(), &hook)?;
    Ok(())
}

fn set_text(el: &HtmlElement, text: &str) {
    if el.text_content().as_deref() != Some(text) {
        el.set_text_content(Some(text));
    }
}

impl App {
    fn push_log(&mut self, line: String) {
        if self.log.len() >= LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// Sets a game key; returns whether `code` is one (so the page must not scroll).
    fn set_key(&mut self, code: &str, down: bool) -> bool {
        let session = self.connection.as_ref().and_then(|c| c.game.as_ref());
        if !session.is_some_and(|s| s.is_game_key(code)) {
            return false;
        }
        if down {
            self.controls.keys.insert(code.to_owned());
        } else {
            self.controls.keys.remove(code);
        }
        true
    }

    fn open_chat(&mut self) {
        self.chat_open = true;
        self.controls = Controls::default();
        let chat = &self.page.chat;
        chat.set_hidden(false);
        let _ = chat.focus();
    }

    fn close_chat(&mut self) {
        self.chat_open = false;
        let chat = &self.page.chat;
        chat.set_value("");
        chat.set_hidden(true);
        let _ = chat.blur();
    }

    fn send_chat(&mut self) {
        let text = self.page.chat.value();
        let text = text.trim();
        if !text.is_empty()
            && let Some(session) = self.connection.as_mut().and_then(|c| c.game.as_mut())
        {
            session.send_chat(truncate_utf8(text, MAX_CHAT_BYTES));
        }
        self.close_chat();
        self.flush();
    }

    /// Samples input for every tick due, pings, and sends what the client queued.
    fn pump(&mut self) {
        let now_ms = self.page.performance.now();
        self.controls.pointer = self.camera.to_world(self.mouse.0, self.mouse.1);
        if let Some(session) = self.connection.as_mut().and_then(|c| c.game.as_mut()) {
            session.pump(now_ms, &self.controls);
        }
        self.flush();
    }

    fn flush(&mut self) {
        let Some(c) = self.connection.as_mut() else { return };
        if !c.wire.is_open() {
            return;
        }
        let Some(session) = c.game.as_mut() else { return };
        while let Some(bytes) = session.poll_transmit() {
            if !c.wire.send(&bytes) {
                break;
            }
        }
    }

    /// One animation frame: pump, then draw.
    fn frame(&mut self) {
        self.pump();
        let now_ms = self.page.performance.now();
        let dt_secs = ((now_ms - self.meters.last_frame_ms) / 1000.0).clamp(0.0, 0.25) as f32;
        self.meters.last_frame_ms = now_ms;
        self.meters.fps.add(now_ms, 1.0);

        let window = &self.page.window;
        let (w, h) = (window.inner_width(), window.inner_height());
        let (w, h) = (w.ok().and_then(|v| v.as_f64()), h.ok().and_then(|v| v.as_f64()));
        let (w, h) = (w.unwrap_or(800.0).max(1.0), h.unwrap_or(600.0).max(1.0));
        let canvas = &self.page.canvas;
        if f64::from(canvas.width()) != w || f64::from(canvas.height()) != h {
            canvas.set_width(w as u32);
            canvas.set_height(h as u32);
        }
        let session = self.connection.as_mut().and_then(|c| c.game.as_mut());
        let drawn = session.and_then(|s| {
            s.draw(&self.page.ctx, now_ms, dt_secs, (w, h), &self.controls, &self.names)
        });
        match drawn {
            Some(camera) => self.camera = camera,
            None => {
                self.page.ctx.set_fill_style_str("#10141c");
                self.page.ctx.fill_rect(0.0, 0.0, w, h);
            }
        }
        if now_ms - self.meters.last_hud_ms >= HUD_INTERVAL_MS {
            self.meters.last_hud_ms = now_ms;
            self.update_hud(now_ms);
        }
    }

    fn update_hud(&mut self, now_ms: f64) {
        let page = &self.page;
        set_text(&page.status, &self.link.phase.describe(now_ms));
        page.status.set_class_name(self.link.phase.label());
        let m = &mut self.meters;
        let fps = m.fps.per_second(now_ms);
        m.shown_fps = fps;
        let bytes = m.bytes.per_second(now_ms);
        let snaps = m.snapshots.per_second(now_ms);
        let session = self.connection.as_ref().and_then(|c| c.game.as_ref());
        let hud = session.map(|s| s.hud()).unwrap_or_default();
        let rtt = hud.rtt_ms.map_or("–".to_owned(), |r| format!("{r:.0} ms"));
        let tick = hud.tick.map_or("–".to_owned(), |t| t.to_string());
        let mut stats = format!(
            "FPS {fps:.0} · RTT {rtt} · tick {tick}\n{snaps:.0} snapshots/s · {:.1} KB/s in\n{} entities",
            bytes / 1000.0,
            hud.visible
        );
        if hud.decode_errors > 0 {
            stats.push_str(&format!(" · {} decode errors", hud.decode_errors));
        }
        if let Some(c) = &self.connection {
            let transport = c.wire.transport();
            stats.push_str(&format!("\nvia {}", transport.name()));
            if transport == Transport::WebSocket && self.link.fallback.is_some() {
                stats.push_str(" (WebTransport failed)");
            }
        }
        set_text(&page.stats, &stats);
        set_text(&page.scores, &session.map(|s| s.scoreboard(&self.names)).unwrap_or_default());
        let log: Vec<&str> = self.log.iter().map(String::as_str).collect();
        set_text(&page.log, &log.join("\n"));
    }

    fn debug_state(&self) -> JsValue {
        let obj = Object::new();
        let set = |k: &str, v: &JsValue| {
            let _ = Reflect::set(&obj, &k.into(), v);
        };
        set("connection", &self.link.phase.label().into());
        set("reason", &self.link.last_reason.as_str().into());
        set("resumeToken", &self.identity.resume.as_deref().map_or(JsValue::NULL, JsValue::from));
        set("entity", &self.own.map_or(JsValue::NULL, |e| e.0.into()));
        set("reconnects", &self.link.welcomes.saturating_sub(1).into());
        let server = match &self.identity.placement {
            Placement::There { url, .. } => JsValue::from(url.as_str()),
            _ => JsValue::NULL,
        };
        set("server", &server);
        set("fps", &self.meters.shown_fps.into());
        let transport = self.connection.as_ref().map(|c| c.wire.transport());
        set("transport", &transport.map_or(JsValue::NULL, |t| t.label().into()));
        let (datagrams_in, datagrams_out) = match self.connection.as_ref().map(|c| &c.wire) {
            Some(Wire::WebTransport(link)) => link.datagrams(),
            _ => (0, 0),
        };
        set("datagramsIn", &(datagrams_in as f64).into());
        set("datagramsOut", &(datagrams_out as f64).into());
        set("fallback", &self.link.fallback.as_deref().map_or(JsValue::NULL, JsValue::from));
        for key in ["game", "position", "serverPosition", "tick", "score", "prediction", "rttMs"] {
            set(key, &JsValue::NULL);
        }
        set("visible", &0.into());
        set("entities", &js_sys::Array::new());
        if let Some(session) = self.connection.as_ref().and_then(|c| c.game.as_ref()) {
            session.debug(&obj);
        }
        obj.into()
    }
}
