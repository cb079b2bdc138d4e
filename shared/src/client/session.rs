//! One player's whole client side, whatever drives it: the sans-IO [`Client`], the prediction
//! of the own player ([`Predictor`]), the interpolation of everyone else
//! ([`InterpolationBuffer`]) and the input and ping clocks. The browser and the headless bots
//! both drive a [`Session`]; they only move bytes, sample input and draw (or measure).

use std::collections::VecDeque;

use glam::Vec2;

use super::{
    Client, ClientConfig, ClientError, ClientEvent, InputClock, InterpolationBuffer,
    MAX_QUEUED_EVENTS_HARD, Predictor,
};
use crate::game::Game;
use crate::ids::NetId;
use crate::protocol::ViewTime;

pub use super::timesync::MAX_CATCH_UP_INPUTS;

/// What a [`Session`] reports: the client's events, and each reconciliation of the prediction.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent<E> {
    /// Something the client decoded.
    Client(ClientEvent<E>),
    /// A snapshot moved the prediction from `old` (`None`: there was none) to `new`.
    Reconciled {
        /// The predicted position before.
        old: Option<Vec2>,
        /// The predicted position after replaying the unacknowledged inputs.
        new: Vec2,
        /// Whether the rules moved the player (a respawn, a kick-off: not a misprediction;
        /// [`crate::game::Prediction::is_teleport`]).
        teleported: bool,
        /// Why the player moved, if this was not the first reconciliation.
        cause: Option<crate::client::CorrectionCause>,
    },
}

/// A player's client side: see the [module documentation](self).
pub struct Session<G: Game> {
    client: Client<G>,
    own: Option<NetId>,
    predictor: Option<Predictor<G>>,
    interp: Option<InterpolationBuffer>,
    /// The input clock, run ahead of the server (from the `Welcome` on).
    clock: Option<InputClock>,
    last_ping_us: Option<u64>,
    events: VecDeque<SessionEvent<G::Event>>,
    /// Whether [`Session::sample`] is what the player sees (the view sent with inputs).
    interpolated_view: bool,
}

impl<G: Game> std::fmt::Debug for Session<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("client", &self.client).finish_non_exhaustive()
    }
}

impl<G: Game> Session<G> {
    /// A session not yet welcomed.
    #[must_use]
    pub fn new(config: ClientConfig) -> Session<G> {
        Session {
            client: Client::new(config),
            own: None,
            predictor: None,
            interp: None,
            clock: None,
            last_ping_us: None,
            events: VecDeque::new(),
            interpolated_view: true,
        }
    }

    /// Handles one server message received at `now_us`: the client decodes it; a `Welcome`
    /// starts the prediction, interpolation and input clock at the server's rates; a snapshot
    /// is reconciled and fed to the interpolation. Everything shows up in
    /// [`Session::poll_event`].
    ///
    /// # Errors
    ///
    /// The client refused the message (it stays usable; see [`Client::handle_bytes`]).
    pub fn handle_bytes(&mut self, now_us: u64, bytes: &[u8]) -> Result<(), ClientError> {
        let result = self.client.handle_bytes(now_us, bytes);
        while let Some(event) = self.client.poll_event() {
            match &event {
                ClientEvent::Welcomed(w) => {
                    self.own = Some(w.entity);
                    self.predictor = Some(Predictor::new(w.tick_rate));
                    self.interp = Some(InterpolationBuffer::new(w.tick_rate, w.snapshot_rate));
                    self.client.set_view(None);
                    // A new session: the room schedules the frames afresh from the first
                    // one it gets, so the clock starts over (its counters carry on).
                    let mut clock = InputClock::new(w.tick_rate, now_us);
                    if let Some(old) = &self.clock {
                        clock.carry_stats(old);
                    }
                    self.clock = Some(clock);
                }
                ClientEvent::Snapshot { tick, .. } => {
                    self.push(SessionEvent::Client(event.clone()));
                    self.on_snapshot(now_us, *tick);
                    continue;
                }
                _ => {}
            }
            self.push(SessionEvent::Client(event));
        }
        result
    }

    fn on_snapshot(&mut self, now_us: u64, tick: crate::tick::Tick) {
        if let Some(clock) = self.clock.as_mut() {
            let c = &self.client;
            clock.on_report(c.input_margin(), c.last_applied_input(), c.next_input_seq());
        }
        if let Some(p) = self.predictor.as_mut() {
            let old = p.position();
            if p.reconcile(&self.client).is_some()
                && let Some(new) = p.position()
            {
                let teleported = p.teleported();
                let cause = p.last_cause();
                self.push(SessionEvent::Reconciled { old, new, teleported, cause });
            }
        }
        if let (Some(interp), Some((_, state))) = (self.interp.as_mut(), self.client.latest()) {
            let registry = self.client.registry();
            let own = self.own;
            let positions = state
                .iter()
                .filter(|e| Some(e.id) != own)
                .filter_map(|e| registry.position(e).map(|p| (e.id, p)));
            interp.push(tick, now_us, positions.collect::<Vec<_>>());
        }
    }

    fn push(&mut self, event: SessionEvent<G::Event>) {
        if self.events.len() >= MAX_QUEUED_EVENTS_HARD {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// The next event, oldest first. Drain it after every [`Session::handle_bytes`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent<G::Event>> {
        self.events.pop_front()
    }

    /// How many ticks of input are due at `now_us` by the server's tick rate, steered ahead of
    /// the server by time sync ([`crate::client::timesync`]; 0 before the welcome; from elapsed
    /// time at most [`MAX_CATCH_UP_INPUTS`], the rest of a long stall is dropped). Give each
    /// one to [`Session::push_input`].
    pub fn inputs_due(&mut self, now_us: u64) -> u32 {
        self.clock.as_mut().map_or(0, |c| c.due(now_us))
    }

    /// Microseconds after the last [`Session::inputs_due`] until the next input is due (`None`
    /// before the welcome): when a driver that sleeps between inputs should wake.
    #[must_use]
    pub fn next_input_in_us(&self) -> Option<u64> {
        self.clock.as_ref().map(InputClock::next_due_in_us)
    }

    /// How far into the current tick the input clock is, `0.0..1.0` (for drawing between two
    /// predicted steps).
    #[must_use]
    pub fn tick_fraction(&self) -> f32 {
        self.clock.as_ref().map_or(0.0, InputClock::fraction)
    }

    /// The input clock (its time-sync counters), once welcomed.
    #[must_use]
    pub fn input_clock(&self) -> Option<&InputClock> {
        self.clock.as_ref()
    }

    /// Sends one tick's input and steps the prediction with it. Returns the predicted position
    /// before the step.
    pub fn push_input(&mut self, frame: G::Input) -> Option<Vec2> {
        self.client.push_input(frame);
        let p = self.predictor.as_mut()?;
        let before = p.position();
        p.apply_input(&frame);
        before
    }

    /// Queues a ping when none was sent for `period_us` (none before the welcome).
    pub fn ping_if_due(&mut self, now_us: u64, period_us: u64) {
        if self.own.is_none() || self.last_ping_us.is_some_and(|t| now_us < t + period_us) {
            return;
        }
        self.last_ping_us = Some(now_us);
        self.client.send_ping(now_us);
    }

    /// Where interpolation puts everyone but the own player at `now_us` (empty before the
    /// welcome). Its render time becomes the view sent with the next inputs
    /// ([`Client::set_view`], lag compensation) unless [`Session::set_interpolated_view`] said
    /// otherwise.
    pub fn sample(&mut self, now_us: u64) -> Vec<(NetId, Vec2)> {
        let Some(interp) = self.interp.as_mut() else { return Vec::new() };
        let positions = interp.sample(now_us);
        if self.interpolated_view {
            let view = interp.render_tick().map(|(tick, frac)| ViewTime::new(tick, frac));
            self.client.set_view(view);
        }
        positions
    }

    /// Whether what [`Session::sample`] returns is what the player acts on (`true`, the
    /// default: a renderer drawing it). A driver that samples only to measure and acts on the
    /// newest snapshot (the bots) says `false`, and its inputs name the newest snapshot.
    pub fn set_interpolated_view(&mut self, interpolated: bool) {
        self.interpolated_view = interpolated;
        if !interpolated {
            self.client.set_view(None);
        }
    }

    /// The sans-IO client (its state, stats and transmit queue).
    #[must_use]
    pub fn client(&self) -> &Client<G> {
        &self.client
    }

    /// The sans-IO client, mutably (chat, leave, transmits).
    pub fn client_mut(&mut self) -> &mut Client<G> {
        &mut self.client
    }

    /// The own entity, once welcomed.
    #[must_use]
    pub fn own(&self) -> Option<NetId> {
        self.own
    }

    /// The prediction, once welcomed.
    #[must_use]
    pub fn predictor(&self) -> Option<&Predictor<G>> {
        self.predictor.as_ref()
    }

    /// The interpolation, once welcomed.
    #[must_use]
    pub fn interpolation(&self) -> Option<&InterpolationBuffer> {
        self.interp.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_server;
    use crate::games::arena::{ArenaGame, ArenaInput};
    use crate::protocol::{PROTOCOL_VERSION, ServerMessage, Welcome};
    use crate::tick::Tick;

    fn welcomed(now_us: u64) -> Session<ArenaGame> {
        let mut s = Session::<ArenaGame>::new(ClientConfig::default());
        let welcome = ServerMessage::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            client_id: crate::ids::ClientId(1),
            room: "r".into(),
            game: "arena".into(),
            entity: NetId(9),
            tick_rate: 60,
            snapshot_rate: 30,
            tick: Tick(0),
            resume_token: "t".into(),
            registry_fingerprint: crate::game::registry::<ArenaGame>().fingerprint(),
            schema: Box::new(crate::schema::GameSchema::of::<ArenaGame>()),
        });
        s.handle_bytes(now_us, &encode_server(&welcome).unwrap()).unwrap();
        s
    }

    #[test]
    fn the_input_clock_follows_the_tick_rate_and_drops_long_stalls() {
        let mut s = Session::<ArenaGame>::new(ClientConfig::default());
        assert_eq!(s.inputs_due(1_000_000), 0, "nothing before the welcome");
        let mut s2 = welcomed(1_000_000);
        assert!(matches!(s2.poll_event(), Some(SessionEvent::Client(ClientEvent::Welcomed(_)))));
        assert_eq!(s2.inputs_due(1_000_000 + 16_666 * 3 + 100), 3);
        assert!(s2.tick_fraction() < 0.1);
        assert_eq!(s2.inputs_due(1_000_000 + 10_000_000), MAX_CATCH_UP_INPUTS, "a stall is cut");
        s2.push_input(ArenaInput::default());
        s2.ping_if_due(20_000_000, 1_000_000);
        s2.ping_if_due(20_500_000, 1_000_000);
        let sent = std::iter::from_fn(|| s2.client_mut().poll_transmit()).count();
        assert_eq!(sent, 2, "one input and one ping");
        s.ping_if_due(0, 0);
        assert!(s.client_mut().poll_transmit().is_none(), "no ping before the welcome");
    }

    /// Steps `core` `steps` times at 60 Hz with `s` as `client`, walking right: the session's
    /// inputs go in, the room's messages to `client` come back.
    fn play(
        core: &mut crate::room::RoomCore<ArenaGame>,
        s: &mut Session<ArenaGame>,
        client: crate::ids::ClientId,
        steps: u32,
        now: &mut u64,
    ) {
        use crate::protocol::ClientMessage;
        use crate::room::Output;
        let walk = ArenaInput { movement: [crate::quantize::axis(1.0), 0], ..Default::default() };
        for _ in 0..=steps {
            for _ in 0..s.inputs_due(*now) {
                s.push_input(walk);
            }
            while let Some(bytes) = s.client_mut().poll_transmit() {
                if let Ok(ClientMessage::Input(batch)) = crate::codec::decode_client(&bytes) {
                    core.input(client, &batch, *now);
                }
            }
            if steps > 0 {
                core.step();
            }
            while let Some(out) = core.poll_output() {
                match out {
                    Output::Send { client: c, bytes } if c == client => {
                        let _ = s.handle_bytes(*now, &bytes);
                    }
                    Output::Snapshot { client: c, bytes, .. } if c == client => {
                        let _ = s.handle_bytes(*now, &bytes);
                    }
                    _ => {}
                }
            }
            *now += 16_667;
        }
    }

    #[test]
    fn a_resumed_session_decodes_predicts_and_interpolates_from_its_first_snapshot() {
        use crate::ids::ClientId;
        use crate::room::{RoomCore, RoomSettings};
        let settings = RoomSettings {
            id: "r".into(),
            tick_rate: 60,
            ticks_per_snapshot: 2,
            capacity: 4,
            interest_radius: 1_200.0,
            resume_grace_ticks: 1_800,
            idle_close_ticks: 600,
            npcs: 2,
            seed: 3,
            max_rewind_ms: crate::rewind::DEFAULT_MAX_REWIND_MS,
            client_kbps: 0,
        };
        let mut core = RoomCore::<ArenaGame>::new(settings);
        let mut s = Session::<ArenaGame>::new(ClientConfig::default());
        let mut now = 1_000_000;
        let first = core.join(ClientId(1), "ann", "sub", None, || "tok".into()).unwrap();
        play(&mut core, &mut s, ClientId(1), 0, &mut now);
        play(&mut core, &mut s, ClientId(1), 60, &mut now);
        core.disconnect(ClientId(1), false);
        // Two seconds later, on a new connection.
        for _ in 0..120 {
            core.step();
        }
        std::iter::from_fn(|| core.poll_output()).for_each(drop);
        let again = core.join(ClientId(2), "ann", "sub", Some("tok"), || "new".into()).unwrap();
        assert!(again.resumed);
        while s.poll_event().is_some() {}
        play(&mut core, &mut s, ClientId(2), 0, &mut now);
        let welcomed = std::iter::from_fn(|| s.poll_event())
            .any(|e| matches!(e, SessionEvent::Client(ClientEvent::Welcomed(_))));
        assert!(welcomed);
        assert!(s.predictor().unwrap().position().is_none(), "a new prediction");
        play(&mut core, &mut s, ClientId(2), 60, &mut now);
        let c = s.client();
        assert_eq!(c.stats().decode_errors, 0);
        assert_eq!(c.stats().full_snapshots, 1, "the first session's first snapshot only");
        let reconciled = std::iter::from_fn(|| s.poll_event())
            .filter(|e| matches!(e, SessionEvent::Reconciled { teleported: false, .. }))
            .count();
        assert!(reconciled >= 25, "{reconciled} reconciliations");
        // The prediction runs a few ticks ahead of the room's own player.
        let server = {
            let world = core.world_mut();
            let mut q = world.query::<(&NetId, &crate::games::arena::Position)>();
            q.iter(world).find(|(id, _)| **id == first.entity).map(|(_, p)| p.0).unwrap()
        };
        let predicted = s.predictor().unwrap().position().unwrap();
        assert!(predicted.distance(server) < 40.0, "predicted {predicted}, server {server}");
        s.sample(now);
        assert!(s.interpolation().unwrap().render_tick().is_some(), "interpolating");
    }
}
