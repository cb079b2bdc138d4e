//! One welcomed session of one game in the page: the shared sans-IO [`Session`] (client,
//! prediction, interpolation, input clock; the bots drive the same type), the visual
//! [`Smoothing`] of the own player, and the game's [`GameView`]. Generic over the view; the
//! shell holds it as a [`Box<dyn AnySession>`] made from the `Welcome`'s game name, so the
//! shell names no game.

use glam::Vec2;
use js_sys::{Array, Object, Reflect};
use tickwire_shared::NetId;
use tickwire_shared::client::{ClientConfig, ClientEvent, Session, SessionEvent};
use tickwire_shared::game::Game;
use tickwire_shared::protocol::{DisconnectReason, RoomEvent};
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d;

use crate::games::{Controls, Frame, GameView};
use crate::names::Names;
use crate::predict::Smoothing;
use crate::render::Camera;

/// How often the page pings the server for the HUD's round-trip time, in microseconds.
const PING_INTERVAL_US: u64 = 1_000_000;

/// What the shell must know of what the session received.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// The server accepted the session.
    Welcomed {
        /// The own entity.
        entity: NetId,
        /// The token that resumes this player.
        resume_token: String,
    },
    /// A snapshot was decoded.
    Snapshot,
    /// A player's name became known.
    Named(NetId, String),
    /// A player left.
    Gone(NetId),
    /// A line for the chat and kill feed.
    Line(String),
    /// The server ended the session.
    Disconnected(DisconnectReason, String),
    /// The server's `Welcome` does not match this page (another protocol or build of the
    /// game): what differs. The session cannot be played.
    Mismatch(String),
}

/// The HUD's numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HudStats {
    /// Smoothed round trip, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// The newest snapshot's tick.
    pub tick: Option<u32>,
    /// Entities in the newest snapshot.
    pub visible: usize,
    /// Server messages refused.
    pub decode_errors: u64,
}

/// A session, whatever its game: what the shell calls.
pub trait AnySession {
    /// Handles one server message received at `now_ms` (the page clock).
    fn handle_bytes(&mut self, now_ms: f64, bytes: &[u8], names: &Names) -> Vec<Notice>;
    /// Samples input for every tick due since the last call and pings now and then.
    fn pump(&mut self, now_ms: f64, controls: &Controls);
    /// The next message to send.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// Queues a chat line.
    fn send_chat(&mut self, text: &str);
    /// Draws a frame on a `size` canvas and returns the camera it used.
    fn draw(
        &mut self,
        ctx: &CanvasRenderingContext2d,
        now_ms: f64,
        dt_secs: f32,
        size: (f64, f64),
        controls: &Controls,
        names: &Names,
    ) -> Option<Camera>;
    /// The predicted own position (after the newest input).
    fn own_position(&self) -> Option<Vec2>;
    /// The HUD's numbers.
    fn hud(&self) -> HudStats;
    /// The scoreboard text.
    fn scoreboard(&self, names: &Names) -> String;
    /// The help line.
    fn help(&self) -> &'static str;
    /// The game's name.
    fn game(&self) -> &'static str;
    /// Whether a key is one of the game's.
    fn is_game_key(&self, code: &str) -> bool;
    /// Fills the test hook's object (`window.tickwire.state()`) with the session's part.
    fn debug(&self, obj: &Object);
}

/// A session of the game of view `V`.
pub struct GameSession<V: GameView> {
    session: Session<V::Game>,
    view: V,
    smoothing: Smoothing,
}

impl<V: GameView> GameSession<V> {
    /// A session of `V`'s game with a server stepping `tick_rate` times a second, not yet
    /// welcomed.
    #[must_use]
    pub fn new(tick_rate: u16) -> GameSession<V> {
        GameSession {
            session: Session::new(ClientConfig::default()),
            view: V::new(tick_rate),
            smoothing: Smoothing::default(),
        }
    }
}

fn ms_to_us(ms: f64) -> u64 {
    (ms.max(0.0) * 1000.0) as u64
}

impl<V: GameView> AnySession for GameSession<V> {
    fn handle_bytes(&mut self, now_ms: f64, bytes: &[u8], names: &Names) -> Vec<Notice> {
        // A bad message is counted in the client's stats and skipped; a welcome that does not
        // match this page ends the session, saying what differs.
        let mut notices = Vec::new();
        if let Err(e) = self.session.handle_bytes(ms_to_us(now_ms), bytes)
            && e.is_mismatch()
        {
            notices.push(Notice::Mismatch(e.to_string()));
        }
        let own = self.session.own();
        while let Some(event) = self.session.poll_event() {
            let event = match event {
                SessionEvent::Client(event) => event,
                SessionEvent::Reconciled { old, new, teleported, .. } => {
                    // A teleport is drawn at once; anything else is smoothed.
                    self.smoothing.reconciled(if teleported { None } else { old }, new);
                    continue;
                }
            };
            match event {
                ClientEvent::Welcomed(w) => {
                    notices
                        .push(Notice::Welcomed { entity: w.entity, resume_token: w.resume_token });
                }
                ClientEvent::Snapshot { .. } => notices.push(Notice::Snapshot),
                ClientEvent::Chat { from, name, text } => {
                    if from != tickwire_shared::protocol::SERVER_NET_ID {
                        notices.push(Notice::Named(from, name.clone()));
                    }
                    notices.push(Notice::Line(format!("{name}: {text}")));
                }
                ClientEvent::Room(RoomEvent::Joined { entity, name, .. }) => {
                    if Some(entity) != own {
                        notices.push(Notice::Line(format!("{name} joined")));
                    }
                    notices.push(Notice::Named(entity, name));
                }
                ClientEvent::Room(RoomEvent::Left { entity, name }) => {
                    notices.push(Notice::Gone(entity));
                    notices.push(Notice::Line(format!("{name} left")));
                }
                ClientEvent::Game(event) => {
                    if let Some(line) = self.view.describe(&event, names, own) {
                        notices.push(Notice::Line(line));
                    }
                }
                ClientEvent::Pong { .. } => {}
                ClientEvent::Disconnected { reason, message } => {
                    notices.push(Notice::Disconnected(reason, message));
                }
            }
        }
        notices
    }

    fn pump(&mut self, now_ms: f64, controls: &Controls) {
        let now_us = ms_to_us(now_ms);
        for _ in 0..self.session.inputs_due(now_us) {
            let own_at = self.session.predictor().and_then(|p| p.position());
            let frame = self.view.input(controls, own_at);
            if let Some(before) = self.session.push_input(frame) {
                self.smoothing.stepped(before);
            }
        }
        self.session.ping_if_due(now_us, PING_INTERVAL_US);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.session.client_mut().poll_transmit()
    }

    fn send_chat(&mut self, text: &str) {
        self.session.client_mut().send_chat(text);
    }

    fn draw(
        &mut self,
        ctx: &CanvasRenderingContext2d,
        now_ms: f64,
        dt_secs: f32,
        size: (f64, f64),
        controls: &Controls,
        names: &Names,
    ) -> Option<Camera> {
        self.smoothing.decay(dt_secs);
        let alpha = self.session.tick_fraction();
        let own = self.session.own();
        let interpolated = self.session.sample(ms_to_us(now_ms));
        let render_at = self.session.interpolation().and_then(|i| i.render_tick());
        let predicted = self.session.predictor().and_then(|p| p.position());
        let client = self.session.client();
        let tick_rate = client.welcome().map_or(1, |w| w.tick_rate.max(1));
        let (tick, state) = client.latest()?;
        let registry = client.registry();
        let own_in_state = own.and_then(|id| state.get(id));
        let own_position = own_in_state.map(|e| {
            predicted
                .map(|p| self.smoothing.render(p, alpha))
                .or_else(|| registry.position(e))
                .unwrap_or_default()
        });
        let camera = self.view.camera(own_position, size);
        let frame = Frame {
            camera: &camera,
            registry,
            latest: (tick, state),
            interpolated: &interpolated,
            own,
            own_position,
            render_at,
            tick_secs: 1.0 / f32::from(tick_rate),
            names,
            controls,
        };
        self.view.draw(ctx, &frame);
        Some(camera)
    }

    fn own_position(&self) -> Option<Vec2> {
        self.session.predictor().and_then(|p| p.position())
    }

    fn hud(&self) -> HudStats {
        let client = self.session.client();
        let stats = client.stats();
        HudStats {
            rtt_ms: stats.rtt_us.map(|r| r as f64 / 1000.0),
            tick: client.latest().map(|(t, _)| t.0),
            visible: client.latest().map_or(0, |(_, s)| s.len()),
            decode_errors: stats.decode_errors,
        }
    }

    fn scoreboard(&self, names: &Names) -> String {
        let client = self.session.client();
        match client.latest() {
            Some((_, state)) => {
                self.view.scoreboard(client.registry(), state, names, self.session.own())
            }
            None => String::new(),
        }
    }

    fn help(&self) -> &'static str {
        V::HELP
    }

    fn game(&self) -> &'static str {
        <V::Game as Game>::NAME
    }

    fn is_game_key(&self, code: &str) -> bool {
        V::is_game_key(code)
    }

    fn debug(&self, obj: &Object) {
        let set = |k: &str, v: &JsValue| {
            let _ = Reflect::set(obj, &k.into(), v);
        };
        let xy = |p: Vec2| {
            let o = Object::new();
            let _ = Reflect::set(&o, &"x".into(), &f64::from(p.x).into());
            let _ = Reflect::set(&o, &"y".into(), &f64::from(p.y).into());
            JsValue::from(o)
        };
        let client = self.session.client();
        let registry = client.registry();
        let latest = client.latest();
        let own_view = latest.and_then(|(_, st)| st.get(self.session.own()?));
        let server_own = own_view.and_then(|e| registry.position(e));
        let predicted = self.session.predictor().and_then(|p| p.position());
        set("game", &<V::Game as Game>::NAME.into());
        set("position", &predicted.or(server_own).map_or(JsValue::NULL, xy));
        set("serverPosition", &server_own.map_or(JsValue::NULL, xy));
        set("visible", &latest.map_or(0, |(_, st)| st.len()).into());
        set("tick", &latest.map_or(JsValue::NULL, |(t, _)| t.0.into()));
        let score = own_view.map(|e| {
            let o = Object::new();
            for (k, v) in self.view.score(registry, e) {
                let _ = Reflect::set(&o, &k.into(), &v.into());
            }
            JsValue::from(o)
        });
        set("score", &score.unwrap_or(JsValue::NULL));
        let entities = Array::new();
        if let Some((_, st)) = latest {
            for e in st.iter() {
                let Some(at) = registry.position(e) else { continue };
                let o = Object::new();
                let _ = Reflect::set(&o, &"id".into(), &e.id.0.into());
                let _ = Reflect::set(&o, &"kind".into(), &self.view.kind(registry, e).into());
                let _ = Reflect::set(&o, &"x".into(), &f64::from(at.x).into());
                let _ = Reflect::set(&o, &"y".into(), &f64::from(at.y).into());
                entities.push(&o);
            }
        }
        set("entities", &entities);
        if let Some(stats) = self.session.predictor().map(|p| p.stats()) {
            let prediction = Object::new();
            let put = |k: &str, v: f64| {
                let _ = Reflect::set(&prediction, &k.into(), &v.into());
            };
            put("reconciliations", stats.reconciliations as f64);
            put("mispredictions", stats.corrections as f64);
            put("maxError", f64::from(self.smoothing.max_error));
            set("prediction", &prediction.into());
        }
        let rtt = client.stats().rtt_us.map_or(JsValue::NULL, |r| (r as f64 / 1000.0).into());
        set("rttMs", &rtt);
    }
}
