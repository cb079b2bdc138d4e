//! One bot: a [`Link`] (WebSocket, WSS or WebTransport) driving the shared sans-IO
//! [`Session`] (client, prediction, interpolation), exactly as a browser tab does (same query,
//! same messages, inputs every tick with redundancy, acks, a ping a second), plus the
//! measurements the report needs.
//! The driver only moves bytes between the socket, the optional [`DelayQueue`]s of the
//! conditioner and the session, and asks the game's bot policy for each tick's input.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tickwire_shared::client::{
    ClientConfig, ClientEvent, CorrectionCause, InputClock, PredictionStats, Session, SessionEvent,
    TimeSyncStats,
};
use tickwire_shared::conditioner::{ConditionerSpec, ConditionerStats, DelayQueue, Delivery};
use tickwire_shared::game::{BotPolicy, Game};
use tickwire_shared::protocol::{DisconnectReason, ServerMessage};
use tickwire_shared::rng::Rng;
use tokio::time::{Instant, MissedTickBehavior, sleep_until};

use crate::link::{Link, LinkEvent, Trust};

/// How long a bot waits for its WebSocket handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A send that takes longer than this ends the bot (the server stopped reading).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// After the run's deadline a bot sends `Leave` and waits this long for the server's close.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Round-trip samples kept per bot (one a second: over an hour); the oldest go first.
pub const MAX_RTT_SAMPLES: usize = 4_096;

/// The interpolation buffer is sampled at this period, like a 60 fps render loop.
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(16);

/// Interpolation delays kept per bot: a uniform sample of every [`SAMPLE_PERIOD`]'s delay over
/// the whole session (about 65 s of samples at 16 ms; longer runs keep a random subset, so
/// memory stays bounded and the quantiles stay unbiased).
pub const MAX_DELAY_SAMPLES: usize = 4_096;

/// How often a bot pings, for RTT.
pub const PING_PERIOD: Duration = Duration::from_secs(1);

/// Live counters shared by all bots, for the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bots whose handshake succeeded.
    pub connected: AtomicU64,
    /// Bots whose handshake failed.
    pub failed: AtomicU64,
    /// Bots that ended (for any reason).
    pub finished: AtomicU64,
    /// Snapshots decoded by all bots.
    pub snapshots: AtomicU64,
    /// Decode errors of all bots.
    pub decode_errors: AtomicU64,
    /// Payload bytes received by all bots.
    pub bytes_received: AtomicU64,
    /// Round trips measured by all bots, and their sum in microseconds.
    pub rtts: AtomicU64,
    /// The sum of those round trips, microseconds.
    pub rtt_us_total: AtomicU64,
    /// Corrections of the own player, by cause in [`CorrectionCause::ALL`]'s order.
    pub corrections: [AtomicU64; CorrectionCause::ALL.len()],
    /// Bots in a session now (welcomed and not ended).
    pub live: AtomicU64,
}

/// How the bots reach the server.
#[derive(Clone)]
pub enum LinkSpec {
    /// A WebSocket each (`ws://` or `wss://`), trusting these certificates.
    WebSocket(Arc<Trust>),
    /// A WebTransport session each from one shared QUIC endpoint.
    WebTransport {
        /// The endpoint (one UDP socket for every bot).
        endpoint: Arc<crate::wt_client::WtClient>,
        /// `https://host:port/wt`, before the join query.
        base: String,
    },
}

impl std::fmt::Debug for LinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkSpec::WebSocket(_) => f.write_str("WebSocket"),
            LinkSpec::WebTransport { base, .. } => write!(f, "WebTransport({base})"),
        }
    }
}

/// What one bot needs.
#[derive(Clone, Debug)]
pub struct BotSpec {
    /// Its index (0-based); its name is `bot-{index}`.
    pub index: u32,
    /// The session's full URL, query included.
    pub url: String,
    /// How it connects.
    pub link: LinkSpec,
    /// Its behaviour (one of the game's bot policy's).
    pub behavior: String,
    /// Its seed (the run's seed plus its index).
    pub seed: u64,
    /// Delays on its traffic, if any.
    pub conditioner: Option<ConditionerSpec>,
    /// The run's clock origin (for the client's microsecond clock).
    pub epoch: Instant,
    /// When the run ends.
    pub deadline: Instant,
}

/// How a bot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BotEnd {
    /// The handshake failed: why.
    ConnectFailed(String),
    /// It ran until the run's deadline.
    Completed,
    /// The server closed the session early: the close code and the `Disconnect` reason, if sent.
    Closed {
        /// The WebSocket close code (1005 when the frame had none).
        code: u16,
        /// The `Disconnect` message's reason.
        reason: Option<DisconnectReason>,
    },
    /// The connection broke without a close frame: the transport's error.
    Broken(String),
}

/// One bot's measurements.
#[derive(Clone, Debug)]
pub struct BotResult {
    /// Its index.
    pub index: u32,
    /// How it ended.
    pub end: BotEnd,
    /// Seconds from its `Welcome` to its end (0 without a welcome).
    pub active_secs: f64,
    /// `snapshot_rate` from its `Welcome` (0 without one).
    pub snapshot_rate: u16,
    /// Snapshots decoded.
    pub snapshots: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Server messages the client refused.
    pub decode_errors: u64,
    /// Round trips, in microseconds.
    pub rtt_us: Vec<u64>,
    /// Input → echo samples (the newest [`MAX_RTT_SAMPLES`]), in microseconds: from making an
    /// input to the first snapshot acknowledging it.
    pub input_echo_us: Vec<u64>,
    /// Prediction reconciliation statistics.
    pub prediction: PredictionStats,
    /// Reconciliations that were a respawn (the dead player came back elsewhere), left out of
    /// [`BotResult::prediction`].
    pub respawn_snaps: u64,
    /// Interpolation stalls.
    pub stalls: u64,
    /// Times render time passed the newest snapshot and remote entities were extrapolated.
    pub extrapolations: u64,
    /// Render time spent extrapolating, microseconds.
    pub extrapolated_us: u64,
    /// What time sync did to the input clock.
    pub time_sync: TimeSyncStats,
    /// The server's count of this bot's input ticks run late, at the end.
    pub inputs_late: u32,
    /// The delay remote entities were drawn with at each sample (the interpolation buffer's
    /// `render_delay_us`), a uniform sample of at most [`MAX_DELAY_SAMPLES`], in microseconds.
    pub interp_delay_us: Vec<u64>,
    /// The delay the buffer aimed at (its `delay_us`) at the same samples, in microseconds.
    pub interp_target_delay_us: Vec<u64>,
    /// What the conditioner did (both ways): datagrams lost, duplicated and reordered, ordered
    /// messages retransmitted, messages dropped because its queue was full.
    pub conditioner: ConditionerStats,
    /// Times its room moved to another instance (a rolling restart) and it followed.
    pub moves: u32,
    /// The entities it was welcomed as, in order, each once in a row: one entity through any
    /// number of moves and reconnections is `[id]`.
    pub entities: Vec<u32>,
    /// For each move, milliseconds from the last snapshot before it to the first after it:
    /// the pause the player saw.
    pub move_pauses_ms: Vec<f64>,
}

impl BotResult {
    /// An empty result for bot `index`.
    pub(crate) fn new(index: u32) -> BotResult {
        BotResult {
            index,
            end: BotEnd::Completed,
            active_secs: 0.0,
            snapshot_rate: 0,
            snapshots: 0,
            bytes_received: 0,
            bytes_sent: 0,
            decode_errors: 0,
            rtt_us: Vec::new(),
            input_echo_us: Vec::new(),
            prediction: PredictionStats::default(),
            respawn_snaps: 0,
            stalls: 0,
            extrapolations: 0,
            extrapolated_us: 0,
            time_sync: TimeSyncStats::default(),
            inputs_late: 0,
            interp_delay_us: Vec::new(),
            interp_target_delay_us: Vec::new(),
            conditioner: ConditionerStats::default(),
            moves: 0,
            entities: Vec::new(),
            move_pauses_ms: Vec::new(),
        }
    }
}

/// The URL a bot resumes at after its room moved to `to` (the `Moved` disconnect's text): the
/// same join query, with its resume token and without a matchmaker's seat (taken already).
/// `None` unless `to` is a WebSocket URL without a query of its own.
#[must_use]
pub fn moved_url(old: &str, to: &str, resume_token: &str) -> Option<String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    let scheme_ok = to.starts_with("ws://") || to.starts_with("wss://");
    if !scheme_ok || to.contains(['?', '#', ' ']) || !resume_token.chars().all(plain) {
        return None;
    }
    let query = old.split_once('?').map_or("", |(_, q)| q);
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("seat=") && !p.starts_with("resume="))
        .collect();
    let resume = format!("resume={resume_token}");
    params.push(&resume);
    Some(format!("{to}?{}", params.join("&")))
}

/// A uniform random sample of at most `cap` values from a stream of any length (reservoir
/// sampling): the `n`-th value replaces a kept one with probability `cap / n`.
#[derive(Debug)]
struct Reservoir<T> {
    cap: usize,
    seen: u64,
    kept: Vec<T>,
    rng: Rng,
}

impl<T> Reservoir<T> {
    fn new(cap: usize, seed: u64) -> Reservoir<T> {
        Reservoir { cap, seen: 0, kept: Vec::new(), rng: Rng::new(seed) }
    }

    fn offer(&mut self, value: T) {
        self.seen += 1;
        if self.kept.len() < self.cap {
            self.kept.push(value);
        } else if let Ok(slot) = usize::try_from(self.rng.next_u64() % self.seen)
            && let Some(kept) = self.kept.get_mut(slot)
        {
            *kept = value;
        }
    }
}

/// Opens the bot's link within [`CONNECT_TIMEOUT`] (and before the deadline) and counts it as
/// connected; `None` (with the result's end set and counted) when that fails.
async fn connect(spec: &BotSpec, progress: &Progress, result: &mut BotResult) -> Option<Link> {
    let connect_by = (Instant::now() + CONNECT_TIMEOUT).min(spec.deadline);
    let connect = async {
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = match &spec.link {
                LinkSpec::WebSocket(trust) => Link::websocket(&spec.url, trust).await,
                LinkSpec::WebTransport { endpoint, .. } => {
                    endpoint.connect(&spec.url).await.map(|wt| Link::Quic(Box::new(wt)))
                }
            };
            match attempt {
                // A server busy with handshakes refuses new ones (its pending-handshake slots):
                // come back a little later, as a real client would, until the connect deadline.
                Err(e) if format!("{e:#}").contains("refused to accept") => {
                    let jitter = backoff.mul_f64(f64::from(spec.index % 7) / 7.0);
                    tokio::time::sleep(backoff + jitter).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    };
    let failed = match tokio::time::timeout_at(connect_by, connect).await {
        Ok(Ok(link)) => {
            progress.connected.fetch_add(1, Ordering::Relaxed);
            return Some(link);
        }
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => "handshake timed out (or refused until the deadline)".to_owned(),
    };
    result.end = BotEnd::ConnectFailed(failed);
    progress.failed.fetch_add(1, Ordering::Relaxed);
    progress.finished.fetch_add(1, Ordering::Relaxed);
    None
}

/// Opens a WebSocket to where the bot's room moved, with the bot's resume token (see
/// [`moved_url`]); the spec's URL becomes the new one. `None` when the bot cannot follow: not
/// on WebSocket, not welcomed, a URL it will not use, or no connection in time.
async fn follow_move<G: Game>(
    spec: &mut BotSpec,
    to: &str,
    client: &tickwire_shared::client::Client<G>,
) -> Option<Link> {
    let LinkSpec::WebSocket(trust) = &spec.link else { return None };
    let token = &client.welcome()?.resume_token;
    let url = moved_url(&spec.url, to, token)?;
    let by = (Instant::now() + CONNECT_TIMEOUT).min(spec.deadline);
    match tokio::time::timeout_at(by, Link::websocket(&url, trust)).await {
        Ok(Ok(link)) => {
            tracing::debug!(bot = spec.index, %to, "followed the room to another instance");
            spec.url = url;
            Some(link)
        }
        Ok(Err(e)) => {
            tracing::debug!(bot = spec.index, %to, error = %format!("{e:#}"), "cannot follow the room");
            None
        }
        Err(_) => None,
    }
}

/// Holds one idle session until the deadline: joins, then only reads (the transport answers
/// heartbeats: tungstenite the pings, the WebTransport link the empty datagrams). No input, no
/// ping, no decoding but the `Welcome` — what an idle player costs the server, at the least
/// cost to the bots' own process, for memory and scale runs (`--hold`).
pub async fn hold_bot(spec: BotSpec, progress: Arc<Progress>) -> BotResult {
    let mut result = BotResult::new(spec.index);
    let Some(mut link) = connect(&spec, &progress, &mut result).await else { return result };
    let mut welcomed_at = None;
    let mut snapshots = 0u64;
    result.end = loop {
        let event = tokio::select! {
            () = sleep_until(spec.deadline) => break BotEnd::Completed,
            event = link.recv() => event,
        };
        let bytes = match event {
            LinkEvent::Message(bytes) | LinkEvent::Datagram(bytes) => bytes,
            LinkEvent::Closed { code, .. } => break BotEnd::Closed { code, reason: None },
            LinkEvent::Broken(why) => break BotEnd::Broken(why),
        };
        result.bytes_received += bytes.len() as u64;
        if welcomed_at.is_none()
            && let Ok(ServerMessage::Welcome(w)) = tickwire_shared::codec::decode_server(&bytes)
        {
            result.snapshot_rate = w.snapshot_rate;
            welcomed_at = Some(Instant::now());
        } else if bytes.first() == Some(&SNAPSHOT_TAG) {
            snapshots += 1;
            progress.snapshots.fetch_add(1, Ordering::Relaxed);
        }
    };
    let ended_at = Instant::now();
    result.active_secs = welcomed_at.map_or(0.0, |w: Instant| (ended_at - w).as_secs_f64());
    result.snapshots = snapshots;
    if result.end == BotEnd::Completed {
        link.close(1000, "done").await;
    }
    progress.finished.fetch_add(1, Ordering::Relaxed);
    result
}

/// The first byte of an encoded `ServerMessage::Snapshot` (bincode's varint variant tag).
const SNAPSHOT_TAG: u8 = 1;

/// Runs one bot of game `G` until the deadline (plus the drain) and returns what it measured.
pub async fn run_bot<G: Game>(mut spec: BotSpec, progress: Arc<Progress>) -> BotResult {
    let mut result = BotResult::new(spec.index);
    let Some(mut brain) = G::Bot::new(&spec.behavior, spec.seed) else {
        progress.failed.fetch_add(1, Ordering::Relaxed);
        progress.finished.fetch_add(1, Ordering::Relaxed);
        result.end = BotEnd::ConnectFailed(format!("{} bots cannot {:?}", G::NAME, spec.behavior));
        return result;
    };
    let Some(mut link) = connect(&spec, &progress, &mut result).await else { return result };
    let epoch = spec.epoch;
    let now_us = move || Instant::now().saturating_duration_since(epoch).as_micros() as u64;
    // The conditioner's time: since the run's epoch.
    let since = move |t: Instant| t.saturating_duration_since(epoch);
    let conditioner = spec.conditioner.unwrap_or_default();
    // Inbound messages keep how they travelled: a datagram the conditioner let overtake the
    // `Welcome` (lost and retransmitted) is dropped, as the link drops one the network did.
    let mut inbound: DelayQueue<(Vec<u8>, Delivery)> =
        DelayQueue::new(conditioner, spec.seed ^ 0x1111);
    let mut outbound: DelayQueue<Vec<u8>> = DelayQueue::new(conditioner, spec.seed ^ 0x2222);
    let mut session = Session::<G>::new(ClientConfig::default());
    // A bot acts on its newest snapshot (`BotPolicy::think`), not on the interpolation it
    // samples for the report: its inputs name that snapshot for lag compensation.
    session.set_interpolated_view(false);
    let mut welcomed_at: Option<Instant> = None;
    let mut tick_rate = 0u16;
    // When the next input is due (from the welcome on): the session's input clock, which time
    // sync runs ahead of the server, says.
    let mut next_input_at: Option<Instant> = None;
    let mut sample_timer: Option<tokio::time::Interval> = None;
    let mut ping_timer = tokio::time::interval(PING_PERIOD);
    ping_timer.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut rtt: VecDeque<u64> = VecDeque::new();
    let mut sent_inputs: VecDeque<(u32, Instant)> = VecDeque::new();
    let mut next_input_seq = 0u32;
    let mut input_echo: VecDeque<u64> = VecDeque::new();
    let mut disconnect_reason: Option<DisconnectReason> = None;
    let mut reported_snapshots = 0u64;
    let mut reported_errors = 0u64;
    let mut reported_bytes = 0u64;
    let mut delays = Reservoir::new(MAX_DELAY_SAMPLES, spec.seed ^ 0x3333);
    let far = spec.deadline + Duration::from_secs(3600);
    // A rolling restart: where the room went, and when the last snapshot before it came.
    let mut moved_to: Option<String> = None;
    let mut last_snapshot_at: Option<Instant> = None;
    let mut pause_from: Option<Instant> = None;

    let end = 'run: loop {
        let next_due = match (inbound.next_due(), outbound.next_due()) {
            (Some(a), Some(b)) => epoch + a.min(b),
            (Some(a), None) | (None, Some(a)) => epoch + a,
            (None, None) => far,
        };
        let tick_fut = async {
            match next_input_at {
                Some(at) => sleep_until(at).await,
                None => std::future::pending::<()>().await,
            }
        };
        let sample_fut = async {
            match sample_timer.as_mut() {
                Some(t) => {
                    t.tick().await;
                    true
                }
                None => std::future::pending::<bool>().await,
            }
        };
        enum Wake {
            Deadline,
            Frame(LinkEvent),
            Tick,
            Ping,
            Sample,
            Due,
        }
        let wake = tokio::select! {
            biased;
            () = sleep_until(spec.deadline) => Wake::Deadline,
            frame = link.recv() => Wake::Frame(frame),
            () = tick_fut => Wake::Tick,
            _ = ping_timer.tick() => Wake::Ping,
            _ = sample_fut => Wake::Sample,
            () = sleep_until(next_due) => Wake::Due,
        };
        let now = Instant::now();
        match wake {
            Wake::Deadline => break 'run BotEnd::Completed,
            Wake::Frame(LinkEvent::Broken(e)) => break 'run BotEnd::Broken(e),
            Wake::Frame(LinkEvent::Message(bytes)) => {
                inbound.push(since(now), (bytes, Delivery::Ordered), Delivery::Ordered);
            }
            Wake::Frame(LinkEvent::Datagram(bytes)) => {
                inbound.push(since(now), (bytes, Delivery::Datagram), Delivery::Datagram);
            }
            Wake::Frame(LinkEvent::Closed { code, .. }) => {
                // A Disconnect still in the conditioner's queue said why.
                while let Some((bytes, _)) = inbound.pop_due(since(far)) {
                    let _ = session.handle_bytes(now_us(), &bytes);
                }
                while let Some(event) = session.poll_event() {
                    if let SessionEvent::Client(ClientEvent::Disconnected { reason, message }) =
                        event
                    {
                        disconnect_reason = Some(reason);
                        if reason == DisconnectReason::Moved {
                            moved_to = Some(message);
                        }
                    }
                }
                // The room goes on at another instance: resume there, as the same player.
                if disconnect_reason == Some(DisconnectReason::Moved)
                    && let Some(to) = moved_to.take()
                    && let Some(new) = follow_move(&mut spec, &to, session.client()).await
                {
                    link = new;
                    result.moves += 1;
                    pause_from = last_snapshot_at;
                    next_input_at = None;
                    disconnect_reason = None;
                    continue 'run;
                }
                break 'run BotEnd::Closed { code, reason: disconnect_reason };
            }
            Wake::Tick => {
                for _ in 0..session.inputs_due(now_us()) {
                    let frame = brain.think(session.client(), tick_rate);
                    session.push_input(frame);
                    if sent_inputs.len() >= MAX_RTT_SAMPLES {
                        sent_inputs.pop_front();
                    }
                    sent_inputs.push_back((next_input_seq, now));
                    next_input_seq = next_input_seq.wrapping_add(1);
                }
                let wait = session.next_input_in_us().unwrap_or(0).max(1_000);
                next_input_at = Some(now + Duration::from_micros(wait));
            }
            Wake::Ping => session.ping_if_due(now_us(), 0),
            Wake::Sample => {
                let _ = session.sample(now_us());
                if let Some(buf) = session.interpolation()
                    && let Some(drawn) = buf.render_delay_us()
                {
                    let us = |v: f64| v.max(0.0).round() as u64;
                    delays.offer((us(drawn), us(buf.delay_us())));
                }
            }
            Wake::Due => {}
        }

        while let Some((bytes, delivery)) = inbound.pop_due(since(now)) {
            if delivery == Delivery::Datagram && session.client().welcome().is_none() {
                continue;
            }
            // A refused message is counted in the client's stats; the client stays usable. A
            // welcome that does not match these bots ends the bot, saying what differs.
            if let Err(e) = session.handle_bytes(now_us(), &bytes) {
                if e.is_mismatch() {
                    break 'run BotEnd::ConnectFailed(e.to_string());
                }
                tracing::debug!(bot = spec.index, error = %e, "a server message was refused");
            }
        }
        while let Some(event) = session.poll_event() {
            let event = match event {
                SessionEvent::Client(event) => event,
                SessionEvent::Reconciled { old, new, teleported, cause } => {
                    let distance = old.map_or(0.0, |o| o.distance(new));
                    if teleported {
                        // The rules moved the player (a respawn): not a misprediction.
                        result.respawn_snaps += 1;
                    } else {
                        result.prediction.record(distance);
                    }
                    if let Some(cause) = cause {
                        result.prediction.record_cause(cause, distance);
                        if distance > tickwire_shared::client::predict::CORRECTION_EPSILON {
                            progress.corrections[cause.index()].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    continue;
                }
            };
            match event {
                ClientEvent::Welcomed(welcome) => {
                    if welcomed_at.is_none() {
                        progress.live.fetch_add(1, Ordering::Relaxed);
                    }
                    if result.entities.last() != Some(&welcome.entity.0) {
                        result.entities.push(welcome.entity.0);
                    }
                    tick_rate = welcome.tick_rate.max(1);
                    result.snapshot_rate = welcome.snapshot_rate;
                    welcomed_at.get_or_insert(now);
                    next_input_at = Some(now);
                    let mut s = tokio::time::interval(SAMPLE_PERIOD);
                    s.set_missed_tick_behavior(MissedTickBehavior::Skip);
                    sample_timer = Some(s);
                }
                ClientEvent::Pong { rtt_us, .. } => {
                    progress.rtts.fetch_add(1, Ordering::Relaxed);
                    progress.rtt_us_total.fetch_add(rtt_us, Ordering::Relaxed);
                    if rtt.len() >= MAX_RTT_SAMPLES {
                        rtt.pop_front();
                    }
                    rtt.push_back(rtt_us);
                }
                ClientEvent::Disconnected { reason, message } => {
                    disconnect_reason = Some(reason);
                    if reason == DisconnectReason::Moved {
                        moved_to = Some(message);
                    }
                }
                ClientEvent::Snapshot { .. } => {
                    if let Some(from) = pause_from.take() {
                        result.move_pauses_ms.push((now - from).as_secs_f64() * 1e3);
                    }
                    last_snapshot_at = Some(now);
                }
                ClientEvent::Chat { .. } | ClientEvent::Room(_) | ClientEvent::Game(_) => {}
            }
        }
        // Input → echo: from the tick an input was made to the first snapshot saying the server
        // applied it, as the player lives it (the conditioner's delays and losses included).
        if let Some(applied) = session.client().last_applied_input() {
            while let Some(&(seq, at)) = sent_inputs.front() {
                if applied.wrapping_sub(seq).cast_signed() < 0 {
                    break;
                }
                sent_inputs.pop_front();
                if input_echo.len() >= MAX_RTT_SAMPLES {
                    input_echo.pop_front();
                }
                let us = u64::try_from(now.saturating_duration_since(at).as_micros());
                input_echo.push_back(us.unwrap_or(u64::MAX));
            }
        }
        let stats = session.client().stats();
        progress.snapshots.fetch_add(stats.snapshots - reported_snapshots, Ordering::Relaxed);
        progress.decode_errors.fetch_add(stats.decode_errors - reported_errors, Ordering::Relaxed);
        progress.bytes_received.fetch_add(stats.bytes_received - reported_bytes, Ordering::Relaxed);
        reported_snapshots = stats.snapshots;
        reported_errors = stats.decode_errors;
        reported_bytes = stats.bytes_received;

        while let Some(bytes) = session.client_mut().poll_transmit() {
            let delivery =
                if link.sends_as_datagram(&bytes) { Delivery::Datagram } else { Delivery::Ordered };
            outbound.push(since(now), bytes, delivery);
        }
        while let Some(bytes) = outbound.pop_due(since(now)) {
            match tokio::time::timeout(SEND_TIMEOUT, link.send(bytes)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break 'run BotEnd::Broken(format!("{e:#}")),
                Err(_) => break 'run BotEnd::Broken("send timed out".into()),
            }
        }
    };

    let ended_at = Instant::now();
    if welcomed_at.is_some() {
        progress.live.fetch_sub(1, Ordering::Relaxed);
    }
    let stats = session.client().stats().clone();
    result.active_secs =
        welcomed_at.map_or(0.0, |w| ended_at.saturating_duration_since(w).as_secs_f64());
    result.snapshots = stats.snapshots;
    result.bytes_received = stats.bytes_received;
    result.bytes_sent = stats.bytes_sent;
    result.decode_errors = stats.decode_errors;
    result.rtt_us = rtt.into_iter().collect();
    result.input_echo_us = input_echo.into_iter().collect();
    if let Some(buf) = session.interpolation() {
        result.stalls = buf.stalls();
        result.extrapolations = buf.extrapolations();
        result.extrapolated_us = buf.extrapolated_us() as u64;
    }
    result.time_sync = session.input_clock().map(InputClock::stats).unwrap_or_default();
    result.inputs_late = session.client().inputs_late();
    (result.interp_delay_us, result.interp_target_delay_us) = delays.kept.into_iter().unzip();
    result.conditioner = inbound.stats();
    result.conditioner += outbound.stats();
    result.end = end;

    if result.end == BotEnd::Completed {
        // Leave politely (bypassing the conditioner: the measurement is over), then wait a
        // little for the server's close frame so it sees an orderly end.
        let client = session.client_mut();
        client.leave();
        let drain_by = Instant::now() + DRAIN_TIMEOUT;
        let _ = tokio::time::timeout_at(drain_by, async {
            while let Some(bytes) = client.poll_transmit() {
                link.send(bytes).await?;
            }
            while let LinkEvent::Message(_) | LinkEvent::Datagram(_) = link.recv().await {}
            anyhow::Ok(())
        })
        .await;
    }
    progress.finished.fetch_add(1, Ordering::Relaxed);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_bot_resumes_with_its_query_its_token_and_no_seat() {
        let old = "ws://a:1/ws?v=7&token=t.t.t&name=bot-0&game=arena&room=mm-1&seat=s.s.s";
        assert_eq!(
            moved_url(old, "ws://b:2/ws", "abc123").as_deref(),
            Some("ws://b:2/ws?v=7&token=t.t.t&name=bot-0&game=arena&room=mm-1&resume=abc123")
        );
        let again = moved_url(old, "wss://c/ws", "def").unwrap();
        assert!(again.ends_with("room=mm-1&resume=def"), "{again}");
        assert_eq!(moved_url(old, "http://b/ws", "x"), None, "not a WebSocket URL");
        assert_eq!(moved_url(old, "ws://b/ws?x=1", "x"), None, "a query of its own");
        assert_eq!(moved_url(old, "ws://b/ws", "a&seat=1"), None, "a token that is not one");
    }

    #[test]
    fn reservoir_keeps_a_bounded_uniform_sample() {
        let mut r = Reservoir::new(1_000, 7);
        for v in 0..100_000u64 {
            r.offer(v);
        }
        assert_eq!(r.kept.len(), 1_000);
        // Uniform over the whole stream: about a tenth of the kept values in each tenth.
        for decile in 0..10u64 {
            let n = r.kept.iter().filter(|&&v| v / 10_000 == decile).count();
            assert!((60..=140).contains(&n), "decile {decile}: {n} of 1,000");
        }
        let mut short = Reservoir::new(1_000, 7);
        for v in 0..10u64 {
            short.offer(v);
        }
        assert_eq!(short.kept, (0..10).collect::<Vec<_>>(), "a short stream is kept whole");
    }
}
