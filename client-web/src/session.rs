//! One welcomed session of one game: the sans-IO [`Client`], the own player's prediction, the
//! interpolation of everyone else, and the game's [`GameView`]. Generic over the view; the shell
//! holds it as a [`Box<dyn AnySession>`] made from the `Welcome`'s game name, so the shell names
//! no game.

use glam::Vec2;
use js_sys::{Array, Object, Reflect};
use tickwire_shared::NetId;
use tickwire_shared::client::{Client, ClientConfig, ClientEvent, InterpolationBuffer};
use tickwire_shared::game::Game;
use tickwire_shared::protocol::{DisconnectReason, RoomEvent};
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d;

use crate::games::{Controls, Frame, GameView};
use crate::names::Names;
use crate::predict::OwnPlayer;
use crate::render::Camera;

/// At most this many ticks of input are sampled in one go after the page stalled (a hidden
/// tab, a long frame): 8 ticks are 133 ms at 60 Hz; beyond that the time is dropped rather
/// than flooding the server with a burst of stale input.
const MAX_CATCH_UP_TICKS: f64 = 8.0;

/// How often the page pings the server for the HUD's round-trip time.
const PING_INTERVAL_MS: f64 = 1_000.0;

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
    /// Whether a key is one of the game's.
    fn is_game_key(&self, code: &str) -> bool;
    /// Fills the test hook's object (`window.tickwire.state()`) with the session's part.
    fn debug(&self, obj: &Object);
}

/// The input clock: ticks are sampled at the server's rate from the page's clock.
struct Pump {
    tick_ms: f64,
    acc_ms: f64,
    last_ms: Option<f64>,
    last_ping_ms: f64,
}

/// A session of the game of view `V`.
pub struct Session<V: GameView> {
    client: Client<V::Game>,
    view: V,
    own: Option<NetId>,
    interp: InterpolationBuffer,
    predictor: OwnPlayer<V::Game>,
    pump: Pump,
}

impl<V: GameView> Session<V> {
    /// A session with a server stepping `tick_rate` times a second and sending `snapshot_rate`
    /// snapshots a second (both from the `Welcome`).
    #[must_use]
    pub fn new(tick_rate: u16, snapshot_rate: u16) -> Session<V> {
        Session {
            client: Client::new(ClientConfig::default()),
            view: V::new(),
            own: None,
            interp: InterpolationBuffer::new(tick_rate, snapshot_rate),
            predictor: OwnPlayer::new(tick_rate),
            pump: Pump {
                tick_ms: 1000.0 / f64::from(tick_rate.max(1)),
                acc_ms: 0.0,
                last_ms: None,
                last_ping_ms: f64::NEG_INFINITY,
            },
        }
    }
}

fn ms_to_us(ms: f64) -> u64 {
    (ms.max(0.0) * 1000.0) as u64
}

impl<V: GameView> AnySession for Session<V> {
    fn handle_bytes(&mut self, now_ms: f64, bytes: &[u8], names: &Names) -> Vec<Notice> {
        // A bad message is counted in the client's stats and skipped.
        let _ = self.client.handle_bytes(ms_to_us(now_ms), bytes);
        let mut notices = Vec::new();
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Welcomed(w) => {
                    self.own = Some(w.entity);
                    notices
                        .push(Notice::Welcomed { entity: w.entity, resume_token: w.resume_token });
                }
                ClientEvent::Snapshot { tick, .. } => {
                    if let Some((_, state)) = self.client.latest() {
                        let registry = self.client.registry();
                        let positions = state
                            .iter()
                            .filter_map(|e| registry.position(e).map(|p| (e.id, p)))
                            .collect::<Vec<_>>();
                        self.interp.push(tick, ms_to_us(now_ms), positions);
                    }
                    self.predictor.reconcile(&self.client);
                    notices.push(Notice::Snapshot);
                }
                ClientEvent::Chat { from, name, text } => {
                    notices.push(Notice::Named(from, name.clone()));
                    notices.push(Notice::Line(format!("{name}: {text}")));
                }
                ClientEvent::Room(RoomEvent::Joined { entity, name, .. }) => {
                    if Some(entity) != self.own {
                        notices.push(Notice::Line(format!("{name} joined")));
                    }
                    notices.push(Notice::Named(entity, name));
                }
                ClientEvent::Room(RoomEvent::Left { entity, name }) => {
                    notices.push(Notice::Gone(entity));
                    notices.push(Notice::Line(format!("{name} left")));
                }
                ClientEvent::Game(event) => {
                    if let Some(line) = self.view.describe(&event, names, self.own) {
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
        if self.own.is_none() {
            return;
        }
        let p = &mut self.pump;
        let elapsed = p.last_ms.map_or(0.0, |last| (now_ms - last).max(0.0));
        p.last_ms = Some(now_ms);
        p.acc_ms = (p.acc_ms + elapsed).min(MAX_CATCH_UP_TICKS * p.tick_ms);
        while p.acc_ms >= p.tick_ms {
            p.acc_ms -= p.tick_ms;
            let frame = self.view.input(controls, self.predictor.position());
            self.client.push_input(frame);
            self.predictor.step(&frame);
        }
        if now_ms - p.last_ping_ms >= PING_INTERVAL_MS {
            p.last_ping_ms = now_ms;
            self.client.send_ping(ms_to_us(now_ms));
        }
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.client.poll_transmit()
    }

    fn send_chat(&mut self, text: &str) {
        self.client.send_chat(text);
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
        self.predictor.decay(dt_secs);
        let alpha = (self.pump.acc_ms / self.pump.tick_ms) as f32;
        let own = self.own;
        let interpolated: Vec<(NetId, Vec2)> = self
            .interp
            .sample(ms_to_us(now_ms))
            .into_iter()
            .filter(|(id, _)| Some(*id) != own)
            .collect();
        let render_at = self.interp.render_tick();
        let (tick, state) = self.client.latest()?;
        let registry = self.client.registry();
        let own_in_state = own.and_then(|id| state.get(id));
        let own_position = own_in_state.map(|e| {
            self.predictor
                .render_position(alpha)
                .or_else(|| registry.position(e))
                .unwrap_or_default()
        });
        let camera = Camera::new(own_position.unwrap_or_default(), size.0, size.1, V::VIEW_UNITS);
        let frame = Frame {
            camera: &camera,
            registry,
            latest: (tick, state),
            interpolated: &interpolated,
            own,
            own_position,
            render_at,
            tick_secs: (self.pump.tick_ms / 1000.0) as f32,
            names,
            controls,
        };
        self.view.draw(ctx, &frame);
        Some(camera)
    }

    fn own_position(&self) -> Option<Vec2> {
        self.predictor.position()
    }

    fn hud(&self) -> HudStats {
        let stats = self.client.stats();
        HudStats {
            rtt_ms: stats.rtt_us.map(|r| r as f64 / 1000.0),
            tick: self.client.latest().map(|(t, _)| t.0),
            visible: self.client.latest().map_or(0, |(_, s)| s.len()),
            decode_errors: stats.decode_errors,
        }
    }

    fn scoreboard(&self, names: &Names) -> String {
        match self.client.latest() {
            Some((_, state)) => {
                self.view.scoreboard(self.client.registry(), state, names, self.own)
            }
            None => String::new(),
        }
    }

    fn help(&self) -> &'static str {
        V::HELP
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
        let registry = self.client.registry();
        let latest = self.client.latest();
        let own_view = latest.and_then(|(_, st)| st.get(self.own?));
        let server_own = own_view.and_then(|e| registry.position(e));
        set("game", &<V::Game as Game>::NAME.into());
        set("position", &self.predictor.position().or(server_own).map_or(JsValue::NULL, xy));
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
        let prediction = Object::new();
        let stats = self.predictor.predictor().stats();
        let smoothing = self.predictor.smoothing();
        let _ = Reflect::set(
            &prediction,
            &"reconciliations".into(),
            &(stats.reconciliations as f64).into(),
        );
        let _ =
            Reflect::set(&prediction, &"mispredictions".into(), &(stats.corrections as f64).into());
        let _ =
            Reflect::set(&prediction, &"maxError".into(), &f64::from(smoothing.max_error).into());
        set("prediction", &prediction.into());
        set(
            "rttMs",
            &self.client.stats().rtt_us.map_or(JsValue::NULL, |r| (r as f64 / 1000.0).into()),
        );
    }
}
