//! The browser driver: moves bytes between the page's WebSocket and the sans-IO
//! [`Client`], samples input at the tick rate, predicts the own player, interpolates the others,
//! draws a frame on each animation frame and keeps the HUD and `window.tickwire` up to date.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use glam::Vec2;
use js_sys::{Array, Object, Reflect, Uint8Array};
use tickwire_shared::NetId;
use tickwire_shared::client::{Client, ClientConfig, ClientEvent, InterpolationBuffer};
use tickwire_shared::game::{self, Arena, Kind, Position};
use tickwire_shared::join::JoinRequest;
use tickwire_shared::protocol::{
    Buttons, DisconnectReason, GameEvent, InputFrame, MAX_CHAT_BYTES, PROTOCOL_VERSION,
};
use tickwire_shared::quantize;
use tickwire_shared::tick::Tick;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    BinaryType, CanvasRenderingContext2d, CloseEvent, Document, HtmlCanvasElement, HtmlElement,
    HtmlInputElement, KeyboardEvent, MessageEvent, MouseEvent, Performance, UrlSearchParams,
    WebSocket, Window, XmlHttpRequest,
};

use crate::conn::{MAX_ATTEMPTS, Phase, RateMeter, backoff_ms, is_terminal};
use crate::predict::OwnPlayer;
use crate::render::{self, Camera};
use crate::world::{self, Names};

/// At most this many ticks of input are sampled in one go after the page stalled (a hidden
/// tab, a long frame): 8 ticks are 133 ms at 60 Hz; beyond that the time is dropped rather
/// than flooding the server with a burst of stale input.
const MAX_CATCH_UP_TICKS: f64 = 8.0;

/// How often the page pings the server for the HUD's round-trip time.
const PING_INTERVAL_MS: f64 = 1_000.0;

/// How often the HUD text is rewritten: 4 Hz is readable and keeps DOM work off most frames.
const HUD_INTERVAL_MS: f64 = 250.0;

/// The timer that keeps input and the network going when animation frames stop (a hidden
/// tab): every 16 ms, one 60 Hz tick.
const PUMP_INTERVAL_MS: i32 = 16;

/// Lines kept in the chat and kill feed.
const LOG_LINES: usize = 8;

type Shared = Rc<RefCell<App>>;

/// The animation-frame callback, which re-registers itself.
type FrameSlot = Rc<RefCell<Option<Closure<dyn FnMut()>>>>;

/// Which movement and action keys are held.
#[derive(Clone, Copy, Debug, Default)]
struct Keys {
    up: bool,
    down: bool,
    left: bool,
    right: bool,
    dash: bool,
}

/// The HUD's elements.
struct Hud {
    status: HtmlElement,
    stats: HtmlElement,
    scores: HtmlElement,
    log: HtmlElement,
    chat: HtmlInputElement,
}

/// Per-session netcode state, from the `Welcome` on.
struct Net {
    interp: InterpolationBuffer,
    predictor: OwnPlayer,
    tick_ms: f64,
    acc_ms: f64,
    last_pump_ms: f64,
    last_ping_ms: f64,
}

/// One WebSocket connection and its sans-IO client.
struct Session {
    generation: u32,
    ws: WebSocket,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    client: Client,
    net: Option<Net>,
    disconnect: Option<(DisconnectReason, String)>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

struct App {
    window: Window,
    performance: Performance,
    canvas: HtmlCanvasElement,
    ctx: CanvasRenderingContext2d,
    hud: Hud,
    arena: Arena,
    room: Option<String>,
    name: String,
    token: Option<String>,
    resume: Option<String>,
    phase: Phase,
    attempts: u32,
    last_reason: String,
    next_generation: u32,
    session: Option<Session>,
    own: Option<NetId>,
    welcomes: u32,
    names: Names,
    log: VecDeque<String>,
    keys: Keys,
    mouse: (f64, f64),
    firing: bool,
    chat_open: bool,
    camera: Camera,
    fps: RateMeter,
    /// Frames per second as last shown in the HUD (for the test hook).
    shown_fps: f64,
    bytes: RateMeter,
    snapshots: RateMeter,
    last_frame_ms: f64,
    last_hud_ms: f64,
}

fn element<T: JsCast>(document: &Document, id: &str) -> Result<T, JsValue> {
    document
        .get_element_by_id(id)
        .ok_or_else(|| JsValue::from_str(&format!("the page has no #{id}")))?
        .dyn_into::<T>()
        .map_err(|_| JsValue::from_str(&format!("#{id} has the wrong element type")))
}

/// Starts the client on the page: reads `?room=`, `?name=` and `?resume=`, installs the input handlers, the
/// frame loop and `window.tickwire`, then fetches a guest token and connects.
pub fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let performance = window.performance().ok_or("no performance clock")?;
    let canvas: HtmlCanvasElement = element(&document, "game")?;
    let ctx: CanvasRenderingContext2d =
        canvas.get_context("2d")?.ok_or("no 2d canvas context")?.dyn_into()?;
    let hud = Hud {
        status: element(&document, "status")?,
        stats: element(&document, "stats")?,
        scores: element(&document, "scores")?,
        log: element(&document, "log")?,
        chat: element(&document, "chat")?,
    };
    let params = UrlSearchParams::new_with_str(&window.location().search()?)?;
    let room = params.get("room").filter(|r| !r.is_empty());
    // `?resume=` takes over a player from another page or an earlier visit.
    let resume = params.get("resume").filter(|r| !r.is_empty());
    let name = params
        .get("name")
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("guest{}", (js_sys::Math::random() * 9000.0) as u32 + 1000));
    let app = Rc::new(RefCell::new(App {
        window: window.clone(),
        performance,
        canvas,
        ctx,
        hud,
        arena: Arena::standard(),
        room,
        name,
        token: None,
        resume,
        phase: Phase::Connecting,
        attempts: 0,
        last_reason: String::new(),
        next_generation: 0,
        session: None,
        own: None,
        welcomes: 0,
        names: Names::default(),
        log: VecDeque::new(),
        keys: Keys::default(),
        mouse: (0.0, 0.0),
        firing: false,
        chat_open: false,
        camera: Camera::new(Vec2::ZERO, 1.0, 1.0),
        fps: RateMeter::default(),
        shown_fps: 0.0,
        bytes: RateMeter::default(),
        snapshots: RateMeter::default(),
        last_frame_ms: 0.0,
        last_hud_ms: f64::NEG_INFINITY,
    }));
    install_input(&app, &window)?;
    install_loops(&app, &window)?;
    install_debug_hook(&app, &window)?;
    connect(&app);
    Ok(())
}

fn install_input(app: &Shared, window: &Window) -> Result<(), JsValue> {
    let a = Rc::clone(app);
    let keydown = Closure::<dyn FnMut(KeyboardEvent)>::new(move |e: KeyboardEvent| {
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
    });
    window.add_event_listener_with_callback("keydown", keydown.as_ref().unchecked_ref())?;
    keydown.forget();

    let a = Rc::clone(app);
    let keyup = Closure::<dyn FnMut(KeyboardEvent)>::new(move |e: KeyboardEvent| {
        a.borrow_mut().set_key(&e.code(), false);
    });
    window.add_event_listener_with_callback("keyup", keyup.as_ref().unchecked_ref())?;
    keyup.forget();

    let a = Rc::clone(app);
    let blur = Closure::<dyn FnMut()>::new(move || {
        let mut app = a.borrow_mut();
        app.keys = Keys::default();
        app.firing = false;
    });
    window.add_event_listener_with_callback("blur", blur.as_ref().unchecked_ref())?;
    blur.forget();

    let a = Rc::clone(app);
    let mousemove = Closure::<dyn FnMut(MouseEvent)>::new(move |e: MouseEvent| {
        a.borrow_mut().mouse = (f64::from(e.client_x()), f64::from(e.client_y()));
    });
    window.add_event_listener_with_callback("mousemove", mousemove.as_ref().unchecked_ref())?;
    mousemove.forget();

    let a = Rc::clone(app);
    let mousedown = Closure::<dyn FnMut(MouseEvent)>::new(move |e: MouseEvent| {
        if e.button() == 0 {
            let mut app = a.borrow_mut();
            app.mouse = (f64::from(e.client_x()), f64::from(e.client_y()));
            app.firing = true;
        }
    });
    let canvas = app.borrow().canvas.clone();
    canvas.add_event_listener_with_callback("mousedown", mousedown.as_ref().unchecked_ref())?;
    mousedown.forget();

    let a = Rc::clone(app);
    let mouseup = Closure::<dyn FnMut(MouseEvent)>::new(move |e: MouseEvent| {
        if e.button() == 0 {
            a.borrow_mut().firing = false;
        }
    });
    window.add_event_listener_with_callback("mouseup", mouseup.as_ref().unchecked_ref())?;
    mouseup.forget();

    let a = Rc::clone(app);
    let chat_key = Closure::<dyn FnMut(KeyboardEvent)>::new(move |e: KeyboardEvent| {
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
    });
    let chat = app.borrow().hud.chat.clone();
    chat.add_event_listener_with_callback("keydown", chat_key.as_ref().unchecked_ref())?;
    chat_key.forget();
    Ok(())
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
            let _ = app.window.request_animation_frame(cb.as_ref().unchecked_ref());
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

/// Starts a connection attempt: fetches a guest token first when there is none.
fn connect(app: &Shared) {
    let token = app.borrow().token.clone();
    match token {
        Some(token) => {
            let weak = Rc::downgrade(app);
            if let Err(e) = app.borrow_mut().open_socket(weak, &token) {
                lost(app, format!("cannot open a WebSocket: {e:?}"), None);
            }
        }
        None => fetch_token(app),
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
                app.borrow_mut().token = Some(token);
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
    let welcomed = a.session.as_ref().is_some_and(|s| s.net.is_some());
    a.session = None;
    a.last_reason = reason.clone();
    if terminal == Some(true) {
        a.phase = Phase::Failed { reason };
        return;
    }
    if matches!(a.phase, Phase::Failed { .. }) {
        return;
    }
    if welcomed {
        a.attempts = 0;
    } else {
        a.attempts += 1;
        // The token may have been the problem (expired); a new guest one costs nothing.
        a.token = None;
    }
    if a.attempts >= MAX_ATTEMPTS {
        a.phase =
            Phase::Failed { reason: format!("{reason} (gave up after {} attempts)", a.attempts) };
        return;
    }
    let delay = backoff_ms(a.attempts, js_sys::Math::random());
    let retry_at_ms = a.performance.now() + delay;
    a.phase = Phase::Reconnecting { retry_at_ms: Some(retry_at_ms) };
    let weak = Rc::downgrade(app);
    let retry = Closure::once_into_js(move || {
        let Some(app) = weak.upgrade() else { return };
        {
            let mut a = app.borrow_mut();
            if !matches!(a.phase, Phase::Reconnecting { retry_at_ms: Some(_) }) {
                return;
            }
            a.phase = Phase::Reconnecting { retry_at_ms: None };
        }
        connect(&app);
    });
    let _ = a.window.set_timeout_with_callback_and_timeout_and_arguments_0(
        retry.unchecked_ref(),
        delay.ceil() as i32,
    );
}

fn on_message(app: &Shared, generation: u32, data: &JsValue) {
    let ended = {
        let mut a = app.borrow_mut();
        let now_ms = a.performance.now();
        let Some(session) = a.session.as_mut().filter(|s| s.generation == generation) else {
            return;
        };
        let bytes = Uint8Array::new(data).to_vec();
        // A bad message is counted in the client's stats and skipped.
        let _ = session.client.handle_bytes(ms_to_us(now_ms), &bytes);
        a.bytes.add(now_ms, bytes.len() as f64);
        a.drain_events(now_ms)
    };
    if let Some((reason, message)) = ended
        && is_terminal(Some(reason), reason.close_code())
    {
        lost(app, message, Some(true));
    }
}

fn on_close(app: &Shared, generation: u32, code: u16, close_reason: String) {
    let (reason, message) = {
        let a = app.borrow();
        let Some(session) = a.session.as_ref().filter(|s| s.generation == generation) else {
            return;
        };
        match &session.disconnect {
            Some((r, m)) => (Some(*r), m.clone()),
            None if !close_reason.is_empty() => (None, close_reason),
            None => (None, format!("connection lost (close code {code})")),
        }
    };
    lost(app, message, Some(is_terminal(reason, code)));
}

fn ms_to_us(ms: f64) -> u64 {
    (ms.max(0.0) * 1000.0) as u64
}

fn set_text(el: &HtmlElement, text: &str) {
    if el.text_content().as_deref() != Some(text) {
        el.set_text_content(Some(text));
    }
}

impl App {
    fn open_socket(&mut self, weak: Weak<RefCell<App>>, token: &str) -> Result<(), JsValue> {
        let location = self.window.location();
        let scheme = if location.protocol()? == "https:" { "wss:" } else { "ws:" };
        let join = JoinRequest {
            version: Some(PROTOCOL_VERSION),
            token: Some(token.to_owned()),
            room: self.room.clone(),
            name: self.name.clone(),
            resume: self.resume.clone(),
        };
        let url = format!("{scheme}//{}/ws?{}", location.host()?, join.to_query());
        let ws = WebSocket::new(&url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let w = weak.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(app) = w.upgrade() {
                on_message(&app, generation, &e.data());
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            if let Some(app) = weak.upgrade() {
                on_close(&app, generation, e.code(), e.reason());
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.session = Some(Session {
            generation,
            ws,
            _on_message: on_message,
            _on_close: on_close,
            client: Client::new(game::registry(), ClientConfig::default()),
            net: None,
            disconnect: None,
        });
        Ok(())
    }

    /// Handles the client's events; returns the server's disconnect, if one came.
    fn drain_events(&mut self, now_ms: f64) -> Option<(DisconnectReason, String)> {
        let mut ended = None;
        while let Some(event) = self.session.as_mut().and_then(|s| s.client.poll_event()) {
            match event {
                ClientEvent::Welcomed(w) => {
                    if self.welcomes > 0 {
                        self.push_log(format!("reconnected as #{}", w.entity.0));
                    }
                    self.welcomes += 1;
                    self.phase = Phase::Live;
                    self.attempts = 0;
                    self.own = Some(w.entity);
                    self.names.insert(w.entity, self.name.clone());
                    self.resume = Some(w.resume_token.clone());
                    let Some(session) = self.session.as_mut() else { break };
                    session.net = Some(Net {
                        interp: InterpolationBuffer::new(w.tick_rate, w.snapshot_rate),
                        predictor: OwnPlayer::new(w.tick_rate),
                        tick_ms: 1000.0 / f64::from(w.tick_rate.max(1)),
                        acc_ms: 0.0,
                        last_pump_ms: now_ms,
                        last_ping_ms: f64::NEG_INFINITY,
                    });
                }
                ClientEvent::Snapshot { tick, .. } => {
                    self.snapshots.add(now_ms, 1.0);
                    let Some(Session { client, net, .. }) = self.session.as_mut() else { break };
                    let (Some(net), Some((_, state))) = (net.as_mut(), client.latest()) else {
                        continue;
                    };
                    let reg = client.registry();
                    let positions = state
                        .iter()
                        .filter_map(|v| reg.get::<Position>(v).map(|p| (v.id, p.0)))
                        .collect::<Vec<_>>();
                    net.interp.push(tick, ms_to_us(now_ms), positions);
                    net.predictor.reconcile(client);
                }
                ClientEvent::Chat { from, name, text } => {
                    self.names.insert(from, name.clone());
                    self.push_log(format!("{name}: {text}"));
                }
                ClientEvent::Game(GameEvent::Joined { entity, name, .. }) => {
                    self.names.insert(entity, name.clone());
                    if Some(entity) != self.own {
                        self.push_log(format!("{name} joined"));
                    }
                }
                ClientEvent::Game(GameEvent::Left { entity, name }) => {
                    self.names.remove(entity);
                    self.push_log(format!("{name} left"));
                }
                ClientEvent::Game(GameEvent::Killed { killer, victim }) => {
                    let v = self.display_name(victim);
                    let line = match killer {
                        Some(k) if k != victim => format!("{} killed {v}", self.display_name(k)),
                        _ => format!("{v} died"),
                    };
                    self.push_log(line);
                }
                ClientEvent::Game(GameEvent::Respawned { .. }) | ClientEvent::Pong { .. } => {}
                ClientEvent::Disconnected { reason, message } => {
                    let Some(session) = self.session.as_mut() else { break };
                    session.disconnect = Some((reason, message.clone()));
                    ended = Some((reason, message));
                }
            }
        }
        ended
    }

    fn display_name(&self, id: NetId) -> String {
        if Some(id) == self.own {
            return "you".to_owned();
        }
        let kind = self.session.as_ref().and_then(|s| {
            let (_, state) = s.client.latest()?;
            s.client.registry().get::<Kind>(state.get(id)?)
        });
        match kind {
            Some(k) => self.names.of(id, k),
            None => self.names.of_any(id),
        }
    }

    fn push_log(&mut self, line: String) {
        if self.log.len() >= LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// Sets a game key; returns whether `code` is one (so the page must not scroll).
    fn set_key(&mut self, code: &str, down: bool) -> bool {
        let k = &mut self.keys;
        let slot = match code {
            "KeyW" | "ArrowUp" => &mut k.up,
            "KeyS" | "ArrowDown" => &mut k.down,
            "KeyA" | "ArrowLeft" => &mut k.left,
            "KeyD" | "ArrowRight" => &mut k.right,
            "Space" => &mut k.dash,
            _ => return false,
        };
        *slot = down;
        true
    }

    fn open_chat(&mut self) {
        self.chat_open = true;
        self.keys = Keys::default();
        self.firing = false;
        let chat = &self.hud.chat;
        chat.set_hidden(false);
        let _ = chat.focus();
    }

    fn close_chat(&mut self) {
        self.chat_open = false;
        let chat = &self.hud.chat;
        chat.set_value("");
        chat.set_hidden(true);
        let _ = chat.blur();
    }

    fn send_chat(&mut self) {
        let text = self.hud.chat.value();
        let text = text.trim();
        if !text.is_empty()
            && let Some(s) = self.session.as_mut()
        {
            let mut end = text.len().min(MAX_CHAT_BYTES);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            s.client.send_chat(&text[..end]);
        }
        self.close_chat();
        self.flush();
    }

    /// The input of this tick, quantized as it is sent.
    fn input_frame(&self, own_at: Option<Vec2>) -> InputFrame {
        let k = self.keys;
        let axis = |plus: bool, minus: bool| f32::from(i8::from(plus) - i8::from(minus));
        let movement = [quantize::axis(axis(k.right, k.left)), quantize::axis(axis(k.up, k.down))];
        let target = self.camera.to_world(self.mouse.0, self.mouse.1);
        let dir = target - own_at.unwrap_or(self.camera.center);
        let aim = if dir.length_squared() > 0.0 { quantize::angle(dir.y.atan2(dir.x)) } else { 0 };
        let mut buttons = Buttons::default();
        if self.firing {
            buttons = buttons.with(Buttons::FIRE);
        }
        if k.dash {
            buttons = buttons.with(Buttons::DASH);
        }
        InputFrame { movement, aim, buttons }
    }

    /// Samples input for every tick due, pings, and sends what the client queued.
    fn pump(&mut self) {
        let now_ms = self.performance.now();
        let Some(session) = self.session.as_ref() else { return };
        let Some(net) = session.net.as_ref() else { return };
        let elapsed = (now_ms - net.last_pump_ms).max(0.0);
        let tick_ms = net.tick_ms;
        let mut acc = (net.acc_ms + elapsed).min(MAX_CATCH_UP_TICKS * tick_ms);
        let mut frames = Vec::new();
        let own_at = net.predictor.position();
        while acc >= tick_ms {
            acc -= tick_ms;
            frames.push(self.input_frame(own_at));
        }
        let Some(session) = self.session.as_mut() else { return };
        let Some(net) = session.net.as_mut() else { return };
        net.acc_ms = acc;
        net.last_pump_ms = now_ms;
        for frame in frames {
            session.client.push_input(frame);
            net.predictor.step(&frame);
        }
        if now_ms - net.last_ping_ms >= PING_INTERVAL_MS {
            net.last_ping_ms = now_ms;
            session.client.send_ping(ms_to_us(now_ms));
        }
        self.flush();
    }

    fn flush(&mut self) {
        let Some(session) = self.session.as_mut() else { return };
        if session.ws.ready_state() != WebSocket::OPEN {
            return;
        }
        while let Some(bytes) = session.client.poll_transmit() {
            if session.ws.send_with_u8_array(&bytes).is_err() {
                break;
            }
        }
    }

    /// One animation frame: pump, then draw.
    fn frame(&mut self) {
        self.pump();
        let now_ms = self.performance.now();
        let dt_secs = ((now_ms - self.last_frame_ms) / 1000.0).clamp(0.0, 0.25) as f32;
        self.last_frame_ms = now_ms;
        self.fps.add(now_ms, 1.0);

        let (w, h) = (self.window.inner_width(), self.window.inner_height());
        let (w, h) = (w.ok().and_then(|v| v.as_f64()), h.ok().and_then(|v| v.as_f64()));
        let (w, h) = (w.unwrap_or(800.0).max(1.0), h.unwrap_or(600.0).max(1.0));
        if f64::from(self.canvas.width()) != w || f64::from(self.canvas.height()) != h {
            self.canvas.set_width(w as u32);
            self.canvas.set_height(h as u32);
        }

        let own = self.own;
        let mut sprites = Vec::new();
        let mut own_sprite = None;
        if let Some(session) = self.session.as_mut()
            && let Some(net) = session.net.as_mut()
        {
            net.predictor.decay(dt_secs);
            let alpha = (net.acc_ms / net.tick_ms) as f32;
            let sampled = net.interp.sample(ms_to_us(now_ms));
            let render_at = net.interp.render_tick();
            if let Some((latest, state)) = session.client.latest() {
                let reg = session.client.registry();
                for (id, position) in sampled {
                    if Some(id) == own {
                        continue;
                    }
                    if let Some(mut s) = world::sprite(reg, state, id) {
                        s.position = position;
                        // A projectile's replicated position is its launch point: it is drawn
                        // where its straight flight has taken it by render time, and not yet
                        // when render time is before its launch.
                        if s.kind == Kind::Projectile
                            && let Some(launched) = world::launched(reg, state, id)
                        {
                            let Some((tick, frac)) = render_at else { continue };
                            let launch = latest.0.wrapping_sub(launched.ticks_until(latest));
                            let elapsed = tick.diff(Tick(launch)) as f32 + frac;
                            if elapsed < 0.0 {
                                continue;
                            }
                            let secs = elapsed * (net.tick_ms / 1000.0) as f32;
                            s.position = game::projectile_position(s.position, s.aim, secs);
                        }
                        sprites.push(s);
                    }
                }
                if let Some(id) = own
                    && let Some(mut s) = world::sprite(reg, state, id)
                {
                    if let Some(p) = net.predictor.render_position(alpha) {
                        s.position = p;
                    }
                    own_sprite = Some(s);
                }
            }
        }
        if let Some(s) = own_sprite.as_mut() {
            let aim = self.input_frame(Some(s.position)).aim;
            s.aim = quantize::angle_value(aim);
        }
        let center = own_sprite.map_or(self.camera.center, |s| s.position);
        self.camera = Camera::new(center, w, h);
        render::draw_arena(&self.ctx, &self.camera, &self.arena);
        sprites.sort_by_key(|s| match s.kind {
            Kind::Pickup => 0,
            Kind::Projectile => 2,
            Kind::Npc | Kind::Player => 1,
        });
        for s in &sprites {
            render::draw_sprite(&self.ctx, &self.camera, s, false, &self.names);
        }
        if let Some(s) = &own_sprite {
            render::draw_sprite(&self.ctx, &self.camera, s, true, &self.names);
        }
        if now_ms - self.last_hud_ms >= HUD_INTERVAL_MS {
            self.last_hud_ms = now_ms;
            self.update_hud(now_ms);
        }
    }

    fn update_hud(&mut self, now_ms: f64) {
        set_text(&self.hud.status, &self.phase.describe(now_ms));
        self.hud.status.set_class_name(self.phase.label());
        let fps = self.fps.per_second(now_ms);
        self.shown_fps = fps;
        let bytes = self.bytes.per_second(now_ms);
        let snaps = self.snapshots.per_second(now_ms);
        let (rtt, tick, visible, errors) = match &self.session {
            Some(s) => (
                s.client.stats().rtt_us.map(|r| r as f64 / 1000.0),
                s.client.latest().map(|(t, _)| t.0),
                s.client.latest().map_or(0, |(_, st)| st.len()),
                s.client.stats().decode_errors,
            ),
            None => (None, None, 0, 0),
        };
        let rtt = rtt.map_or("–".to_owned(), |r| format!("{r:.0} ms"));
        let tick = tick.map_or("–".to_owned(), |t| t.to_string());
        let mut stats = format!(
            "FPS {fps:.0} · RTT {rtt} · tick {tick}\n{snaps:.0} snapshots/s · {:.1} KB/s in\n{visible} entities",
            bytes / 1000.0
        );
        if errors > 0 {
            stats.push_str(&format!(" · {errors} decode errors"));
        }
        set_text(&self.hud.stats, &stats);

        let mut board = String::from("score        K   D\n");
        if let Some(s) = &self.session
            && let Some((_, state)) = s.client.latest()
        {
            for line in world::scoreboard(s.client.registry(), state).iter().take(10) {
                let mut name = self.names.of(line.id, line.kind);
                if Some(line.id) == self.own {
                    name.push_str(" ★");
                }
                let name: String = name.chars().take(12).collect();
                board.push_str(&format!(
                    "{name:<12} {:>2}  {:>2}\n",
                    line.score.kills, line.score.deaths
                ));
            }
        }
        set_text(&self.hud.scores, board.trim_end());
        let log: Vec<&str> = self.log.iter().map(String::as_str).collect();
        set_text(&self.hud.log, &log.join("\n"));
    }

    fn debug_state(&self) -> JsValue {
        let obj = Object::new();
        let set = |k: &str, v: &JsValue| {
            let _ = Reflect::set(&obj, &k.into(), v);
        };
        let xy = |p: Vec2| {
            let o = Object::new();
            let _ = Reflect::set(&o, &"x".into(), &f64::from(p.x).into());
            let _ = Reflect::set(&o, &"y".into(), &f64::from(p.y).into());
            JsValue::from(o)
        };
        set("connection", &self.phase.label().into());
        set("reason", &self.last_reason.as_str().into());
        set("resumeToken", &self.resume.as_deref().map_or(JsValue::NULL, JsValue::from));
        set("entity", &self.own.map_or(JsValue::NULL, |e| e.0.into()));
        set("reconnects", &self.welcomes.saturating_sub(1).into());
        let session = self.session.as_ref();
        let latest = session.and_then(|s| s.client.latest().map(|(t, st)| (s, t, st)));
        let predicted = session.and_then(|s| s.net.as_ref()).and_then(|n| n.predictor.position());
        let server_own = latest.and_then(|(s, _, st)| {
            let own = self.own?;
            world::sprite(s.client.registry(), st, own).map(|sp| sp.position)
        });
        set("position", &predicted.or(server_own).map_or(JsValue::NULL, xy));
        set("serverPosition", &server_own.map_or(JsValue::NULL, xy));
        set("visible", &latest.map_or(0, |(_, _, st)| st.len()).into());
        set("fps", &self.shown_fps.into());
        set("tick", &latest.map_or(JsValue::NULL, |(_, t, _)| t.0.into()));
        let score = latest.and_then(|(s, _, st)| world::score(s.client.registry(), st, self.own?));
        set(
            "score",
            &score.map_or(JsValue::NULL, |sc| {
                let o = Object::new();
                let _ = Reflect::set(&o, &"kills".into(), &sc.kills.into());
                let _ = Reflect::set(&o, &"deaths".into(), &sc.deaths.into());
                o.into()
            }),
        );
        let entities = Array::new();
        if let Some((s, _, st)) = latest {
            for v in st.iter() {
                if let Some(sp) = world::sprite(s.client.registry(), st, v.id) {
                    let o = Object::new();
                    let _ = Reflect::set(&o, &"id".into(), &v.id.0.into());
                    let _ = Reflect::set(&o, &"kind".into(), &format!("{:?}", sp.kind).into());
                    let _ = Reflect::set(&o, &"x".into(), &f64::from(sp.position.x).into());
                    let _ = Reflect::set(&o, &"y".into(), &f64::from(sp.position.y).into());
                    entities.push(&o);
                }
            }
        }
        set("entities", &entities);
        let prediction = session.and_then(|s| s.net.as_ref()).map(|n| {
            let o = Object::new();
            let stats = n.predictor.predictor().stats();
            let smoothing = n.predictor.smoothing();
            let _ =
                Reflect::set(&o, &"reconciliations".into(), &(stats.reconciliations as f64).into());
            let _ = Reflect::set(&o, &"mispredictions".into(), &(stats.corrections as f64).into());
            let _ = Reflect::set(&o, &"maxError".into(), &f64::from(smoothing.max_error).into());
            JsValue::from(o)
        });
        set("prediction", &prediction.unwrap_or(JsValue::NULL));
        set(
            "rttMs",
            &session
                .and_then(|s| s.client.stats().rtt_us)
                .map_or(JsValue::NULL, |r| (r as f64 / 1000.0).into()),
        );
        obj.into()
    }
}
