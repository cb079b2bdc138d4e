//! Prometheus metrics with [`prometheus_client`]: counters and gauges the tick threads and
//! session tasks bump without locks, histograms with fixed buckets (an observation takes the
//! histogram's lock for a few nanoseconds), all registered in one registry and rendered as
//! Prometheus text (0.0.4) at `GET /metrics`. Names, labels, bucket bounds and meanings are
//! those of the hand-formatted text this replaced.
//!
//! The fields keep the calls the server has always made (`fetch_add(n, Ordering::Relaxed)`,
//! `load`, `observe`), so a metric's users do not depend on the crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram as Buckets;
use prometheus_client::registry::Registry;
use tickwire_shared::protocol::DisconnectReason;

/// A Prometheus counter, only ever increased.
#[derive(Debug, Default)]
pub struct Count(Counter);

impl Count {
    /// Adds `n` and returns the value before. The ordering is always relaxed (a counter orders
    /// nothing); the argument keeps the calls of the atomics this replaced.
    pub fn fetch_add(&self, n: u64, _order: Ordering) -> u64 {
        self.0.inc_by(n)
    }

    /// The current value.
    #[must_use]
    pub fn load(&self, _order: Ordering) -> u64 {
        self.0.get()
    }
}

/// A Prometheus gauge: a level that goes up and down.
#[derive(Debug, Default)]
pub struct Level(Gauge);

impl Level {
    /// Adds `n` and returns the value before (relaxed, like [`Count::fetch_add`]).
    pub fn fetch_add(&self, n: i64, _order: Ordering) -> i64 {
        self.0.inc_by(n)
    }

    /// Subtracts `n` and returns the value before.
    pub fn fetch_sub(&self, n: i64, _order: Ordering) -> i64 {
        self.0.dec_by(n)
    }

    /// The current value.
    #[must_use]
    pub fn load(&self, _order: Ordering) -> i64 {
        self.0.get()
    }

    /// Sets the level.
    pub fn set(&self, value: i64) {
        self.0.set(value);
    }
}

/// A histogram with fixed buckets (upper bounds, ascending), Prometheus style, fed integer
/// observations (microseconds, bytes) and exporting them scaled (seconds, bytes). It also
/// keeps the observation count and the largest observation, which tests and the
/// `…_max_seconds` gauge read.
#[derive(Debug)]
pub struct Histogram {
    histogram: Buckets,
    scale: f64,
    count: AtomicU64,
    max: Arc<AtomicU64>,
}

impl Histogram {
    /// `scale` converts an observation's integer unit into the exported unit (1e-6 for
    /// microseconds exported as seconds, 1.0 for bytes).
    fn new(histogram: Buckets, scale: f64) -> Histogram {
        Histogram { histogram, scale, count: AtomicU64::new(0), max: Arc::default() }
    }

    /// Records one observation in the histogram's integer unit.
    pub fn observe(&self, value: u64) {
        self.histogram.observe(value as f64 * self.scale);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The largest observation so far, in the exported unit.
    pub fn max(&self) -> f64 {
        self.max.load(Ordering::Relaxed) as f64 * self.scale
    }

    /// A gauge that reads [`Histogram::max`] when the registry is rendered.
    fn max_gauge(&self) -> MaxGauge {
        MaxGauge { max: self.max.clone(), scale: self.scale }
    }
}

/// The largest observation of a [`Histogram`], as a gauge in the exported unit.
#[derive(Debug)]
struct MaxGauge {
    max: Arc<AtomicU64>,
    scale: f64,
}

impl EncodeMetric for MaxGauge {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&(self.max.load(Ordering::Relaxed) as f64 * self.scale))
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// Tick-duration buckets in seconds: 50 µs to 50 ms, dense around the 1–4 ms targets.
const TICK_BUCKETS: &[f64] =
    &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.0167, 0.033, 0.05];

/// Input-to-snapshot latency buckets in seconds: fine around one and two 60 Hz ticks (16.7 ms,
/// 33.3 ms), each also with the 1 ms of the target beside it.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.010, 0.012, 0.014, 0.0167, 0.0177, 0.020, 0.025,
    0.030, 0.0333, 0.0343, 0.040, 0.050, 0.100, 0.250,
];

/// Matchmaking buckets in seconds (a Redis round trip or two, and a script over the game's
/// rooms): 250 µs to 1 s.
const MATCHMAKE_BUCKETS: &[f64] =
    &[0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 1.0];

/// Snapshot-size buckets in bytes.
const SNAPSHOT_BUCKETS: &[f64] =
    &[8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 16384.0, 65536.0];

fn buckets(bounds: &[f64]) -> Buckets {
    Buckets::new(bounds.iter().copied())
}

fn snapshot_histogram() -> Buckets {
    buckets(SNAPSHOT_BUCKETS)
}

/// The `kind` label of `tickwire_snapshot_bytes`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SnapshotKind {
    kind: &'static str,
}

/// The labels of a client's series: its room and its client id. Cardinality is bounded by the
/// connected clients: a room removes a client's series when it leaves
/// ([`Metrics::forget_client`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClientLabels {
    room: String,
    client: String,
}

/// The `component` label of `tickwire_snapshot_component_bytes_total`: a registered component
/// of one of the games, or the rest of a snapshot (a fixed set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabel {
    component: &'static str,
}

/// The `reason` label of `tickwire_disconnects_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// Disconnect reasons that are not a [`DisconnectReason`] sent by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectKind {
    /// The server closed with this reason.
    Server(DisconnectReason),
    /// The client closed the connection.
    ClientClosed,
    /// The transport failed (reset, write timeout).
    TransportError,
}

impl DisconnectKind {
    const ALL: [DisconnectKind; 13] = [
        DisconnectKind::Server(DisconnectReason::ServerShutdown),
        DisconnectKind::Server(DisconnectReason::RoomClosed),
        DisconnectKind::Server(DisconnectReason::ProtocolError),
        DisconnectKind::Server(DisconnectReason::MessageTooLarge),
        DisconnectKind::Server(DisconnectReason::RateLimited),
        DisconnectKind::Server(DisconnectReason::TooSlow),
        DisconnectKind::Server(DisconnectReason::Timeout),
        DisconnectKind::Server(DisconnectReason::Replaced),
        DisconnectKind::Server(DisconnectReason::Left),
        DisconnectKind::Server(DisconnectReason::RoomFull),
        DisconnectKind::Server(DisconnectReason::Internal),
        DisconnectKind::ClientClosed,
        DisconnectKind::TransportError,
    ];

    fn label(self) -> &'static str {
        match self {
            DisconnectKind::Server(r) => r.label(),
            DisconnectKind::ClientClosed => "client_closed",
            DisconnectKind::TransportError => "transport_error",
        }
    }

    fn index(self) -> usize {
        DisconnectKind::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }
}

/// Every metric the server exports, and the registry that renders them.
pub struct Metrics {
    /// Open WebSocket sessions.
    pub connections: Level,
    /// Open rooms.
    pub rooms: Level,
    /// Human players in rooms (connected or within their resume grace).
    pub players: Level,
    /// Tick durations (simulate + replicate + encode), microseconds.
    pub tick_duration: Histogram,
    /// Ticks that took longer than the tick period.
    pub tick_overruns: Count,
    /// From an input's arrival at the server to the moment the first snapshot carrying its
    /// effect is handed to the transport, microseconds.
    pub input_to_snapshot: Histogram,
    /// Ticks skipped because the loop fell too far behind.
    pub ticks_dropped: Count,
    /// Bytes sent to clients (message payloads).
    pub bytes_sent: Count,
    /// Bytes received from clients (message payloads).
    pub bytes_received: Count,
    /// Full snapshot sizes.
    pub snapshot_full: Histogram,
    /// Delta snapshot sizes.
    pub snapshot_delta: Histogram,
    /// Client messages that failed to decode or validate.
    pub decode_errors: Count,
    /// Snapshots replaced in an outbox before they were sent.
    pub snapshots_superseded: Count,
    /// Snapshots not made because they would have repeated the client's newest one (a silent
    /// client in a still room).
    pub snapshots_unchanged: Count,
    /// Input frames dropped (late, duplicate backlog, or a full room inbox).
    pub inputs_dropped: Count,
    /// Chat lines dropped by the chat rate limit or a full room inbox.
    pub chat_dropped: Count,
    /// QUIC connections the WebTransport endpoint holds (handshaking, open or draining).
    pub quic_connections: Level,
    /// Handshakes refused, by status code 400/401/403/426/429.
    pub handshakes_refused: Count,
    /// TLS handshakes that failed or did not finish within the header-read deadline.
    pub tls_handshakes_failed: Count,
    /// Joins refused because `--max-rooms` or `--max-rooms-per-ip` was reached.
    pub rooms_refused: Count,
    /// With `--redis`: 1 while the last exchange with Redis succeeded, else 0.
    pub redis_up: Level,
    /// With `--redis`: Redis commands that failed (unreachable, timed out, refused).
    pub redis_errors: Count,
    /// With `--redis`: how long `GET /api/matchmake` took to place a player (microseconds in,
    /// seconds out).
    pub matchmake_duration: Histogram,
    /// With `--redis`: instances in the directory at the last heartbeat, this one included.
    pub cluster_instances: Level,
    /// With `--redis`: 1 while the instance is subscribed to the cluster's channels (lobby,
    /// broadcasts).
    pub cluster_subscribed: Level,
    /// Entity updates the bandwidth governor (`--client-kbps`) left out of a snapshot.
    pub governor_left_out: Count,
    /// Entity updates the governor sent over budget to keep the staleness bound.
    pub governor_forced: Count,
    /// The oldest value a governed client held of an entity in its view, in ticks, since the
    /// server started.
    pub governor_max_stale_ticks: Level,
    /// `tickwire_client_bytes_sent_total`, per connected client.
    client_bytes: Family<ClientLabels, Counter>,
    /// `tickwire_client_max_stale_ticks`, per connected governed client.
    client_stale: Family<ClientLabels, Gauge>,
    /// `tickwire_snapshot_component_bytes_total`.
    component_bytes: Family<ComponentLabel, Counter<f64, AtomicU64>>,
    /// `tickwire_disconnects_total`'s series, in [`DisconnectKind::ALL`] order.
    disconnects: [Counter; DisconnectKind::ALL.len()],
    /// `tickwire_process_cpu_seconds_total`, brought up to date at each render.
    process_cpu: Counter<f64, AtomicU64>,
    registry: Registry,
}

/// The CPU time (user and system, all threads) this process has used so far, in seconds, from
/// `/proc/self/stat`; `None` where there is no such file (not Linux).
#[must_use]
pub fn process_cpu_seconds() -> Option<f64> {
    cpu_seconds_of_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// `utime + stime` of a `/proc/PID/stat` line, in seconds: fields 14 and 15, counted in
/// `USER_HZ`, which Linux fixes at 100 for this interface. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from after its last `)`.
fn cpu_seconds_of_stat(stat: &str) -> Option<f64> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after_name.split_whitespace();
    // Field 3 (the state) comes first, so field 14 is the twelfth.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

impl Default for Metrics {
    fn default() -> Self {
        let snapshots: Family<SnapshotKind, _, fn() -> _> =
            Family::new_with_constructor(snapshot_histogram);
        let disconnects: Family<Reason, Counter> = Family::default();
        let m = Metrics {
            connections: Level::default(),
            rooms: Level::default(),
            players: Level::default(),
            quic_connections: Level::default(),
            redis_up: Level::default(),
            cluster_instances: Level::default(),
            cluster_subscribed: Level::default(),
            redis_errors: Count::default(),
            tick_duration: Histogram::new(buckets(TICK_BUCKETS), 1e-6),
            tick_overruns: Count::default(),
            input_to_snapshot: Histogram::new(buckets(LATENCY_BUCKETS), 1e-6),
            matchmake_duration: Histogram::new(buckets(MATCHMAKE_BUCKETS), 1e-6),
            ticks_dropped: Count::default(),
            bytes_sent: Count::default(),
            bytes_received: Count::default(),
            snapshot_full: Histogram::new(
                snapshots.get_or_create_owned(&SnapshotKind { kind: "full" }),
                1.0,
            ),
            snapshot_delta: Histogram::new(
                snapshots.get_or_create_owned(&SnapshotKind { kind: "delta" }),
                1.0,
            ),
            decode_errors: Count::default(),
            snapshots_superseded: Count::default(),
            snapshots_unchanged: Count::default(),
            inputs_dropped: Count::default(),
            chat_dropped: Count::default(),
            handshakes_refused: Count::default(),
            rooms_refused: Count::default(),
            tls_handshakes_failed: Count::default(),
            process_cpu: Counter::default(),
            governor_left_out: Count::default(),
            governor_forced: Count::default(),
            governor_max_stale_ticks: Level::default(),
            client_bytes: Family::default(),
            client_stale: Family::default(),
            component_bytes: Family::default(),
            // Every reason is exported from the start, at 0.
            disconnects: DisconnectKind::ALL
                .map(|k| disconnects.get_or_create_owned(&Reason { reason: k.label() })),
            registry: Registry::default(),
        };
        m.register(snapshots, disconnects)
    }
}

impl Metrics {
    /// Registers every metric (each a handle on the same value as its field): gauges,
    /// histograms, counters, by reason. Counters are named without `_total`: the encoder
    /// appends it.
    fn register(
        mut self,
        snapshots: Family<SnapshotKind, Buckets, fn() -> Buckets>,
        disconnects: Family<Reason, Counter>,
    ) -> Metrics {
        let r = &mut self.registry;
        for (name, help, gauge) in [
            ("tickwire_connections", "Open sessions", &self.connections),
            ("tickwire_rooms", "Open rooms", &self.rooms),
            ("tickwire_players", "Human players in rooms", &self.players),
            (
                "tickwire_quic_connections",
                "QUIC connections held by the WebTransport endpoint (handshaking, open or draining)",
                &self.quic_connections,
            ),
            (
                "tickwire_redis_up",
                "With --redis: 1 while the last exchange with Redis succeeded",
                &self.redis_up,
            ),
            (
                "tickwire_cluster_instances",
                "With --redis: instances in the cluster's directory at the last heartbeat",
                &self.cluster_instances,
            ),
            (
                "tickwire_cluster_subscribed",
                "With --redis: 1 while subscribed to the cluster's lobby and broadcast channels",
                &self.cluster_subscribed,
            ),
        ] {
            r.register(name, help, gauge.0.clone());
        }
        for (name, help, histogram) in [
            (
                "tickwire_tick_duration_seconds",
                "Simulate + replicate + encode, per tick",
                &self.tick_duration,
            ),
            (
                "tickwire_input_to_snapshot_seconds",
                "Input arrival to the first snapshot carrying its effect leaving",
                &self.input_to_snapshot,
            ),
            (
                "tickwire_matchmake_duration_seconds",
                "With --redis: GET /api/matchmake, from the request to the placement",
                &self.matchmake_duration,
            ),
        ] {
            r.register(name, help, histogram.histogram.clone());
        }
        r.register(
            "tickwire_tick_duration_max_seconds",
            "The longest tick since the server started",
            self.tick_duration.max_gauge(),
        );
        r.register("tickwire_snapshot_bytes", "Encoded snapshot message sizes", snapshots);
        for (name, help, counter) in [
            ("tickwire_tick_overruns", "Ticks longer than the tick period", &self.tick_overruns),
            ("tickwire_ticks_dropped", "Ticks skipped after falling behind", &self.ticks_dropped),
            ("tickwire_bytes_sent", "Payload bytes sent", &self.bytes_sent),
            ("tickwire_bytes_received", "Payload bytes received", &self.bytes_received),
            (
                "tickwire_decode_errors",
                "Client messages that failed to decode or validate",
                &self.decode_errors,
            ),
            (
                "tickwire_snapshots_superseded",
                "Snapshots replaced by a newer one before being sent",
                &self.snapshots_superseded,
            ),
            (
                "tickwire_snapshots_unchanged",
                "Snapshots not sent: nothing new for a client that sent nothing",
                &self.snapshots_unchanged,
            ),
            ("tickwire_inputs_dropped", "Input frames dropped", &self.inputs_dropped),
            (
                "tickwire_chat_dropped",
                "Chat lines dropped by the rate limit or a full room inbox",
                &self.chat_dropped,
            ),
            (
                "tickwire_rooms_refused",
                "Joins refused because a room limit was reached",
                &self.rooms_refused,
            ),
            (
                "tickwire_redis_errors",
                "With --redis: Redis commands that failed (unreachable, timed out, refused)",
                &self.redis_errors,
            ),
            (
                "tickwire_handshakes_refused",
                "WebSocket handshakes refused",
                &self.handshakes_refused,
            ),
            (
                "tickwire_tls_handshakes_failed",
                "TLS handshakes that failed or timed out",
                &self.tls_handshakes_failed,
            ),
        ] {
            r.register(name, help, counter.0.clone());
        }
        r.register("tickwire_disconnects", "Sessions ended, by reason", disconnects);
        r.register(
            "tickwire_governor_left_out",
            "With --client-kbps: entity updates left out of a snapshot for want of budget",
            self.governor_left_out.0.clone(),
        );
        r.register(
            "tickwire_governor_forced",
            "With --client-kbps: entity updates sent over budget to keep the staleness bound",
            self.governor_forced.0.clone(),
        );
        r.register(
            "tickwire_governor_max_stale_ticks",
            "With --client-kbps: the oldest value a client held of an entity in its view, ticks",
            self.governor_max_stale_ticks.0.clone(),
        );
        r.register(
            "tickwire_client_bytes_sent",
            "Payload bytes sent to each connected client",
            self.client_bytes.clone(),
        );
        r.register(
            "tickwire_client_max_stale_ticks",
            "With --client-kbps: the oldest value each connected client held of an entity in its \
             view, ticks",
            self.client_stale.clone(),
        );
        r.register(
            "tickwire_snapshot_component_bytes",
            "Snapshot bytes by replicated component (each room's bytes split by the shares of a \
             sampled delta; `ids, kinds and masks` is the rest)",
            self.component_bytes.clone(),
        );
        r.register(
            "tickwire_process_cpu_seconds",
            "CPU time (user and system, all threads) the server process has used",
            self.process_cpu.clone(),
        );
        self
    }

    /// Adds `bytes` sent to `client` of `room` to its series.
    pub fn client_bytes_sent(&self, room: &str, client: u32, bytes: u64) {
        let labels = ClientLabels { room: room.to_owned(), client: client.to_string() };
        self.client_bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// Sets the oldest value governed `client` of `room` held of an entity in its view, ticks.
    pub fn client_max_stale_ticks(&self, room: &str, client: u32, ticks: u32) {
        let labels = ClientLabels { room: room.to_owned(), client: client.to_string() };
        self.client_stale.get_or_create(&labels).set(i64::from(ticks));
        let max = &self.governor_max_stale_ticks;
        if max.load(Ordering::Relaxed) < i64::from(ticks) {
            max.set(i64::from(ticks));
        }
    }

    /// Removes the series of `client` of `room` (it left).
    pub fn forget_client(&self, room: &str, client: u32) {
        let labels = ClientLabels { room: room.to_owned(), client: client.to_string() };
        self.client_bytes.remove(&labels);
        self.client_stale.remove(&labels);
    }

    /// Adds `bytes` of snapshots to `component`'s series.
    pub fn component_bytes(&self, component: &'static str, bytes: f64) {
        if bytes.is_finite() && bytes > 0.0 {
            self.component_bytes.get_or_create(&ComponentLabel { component }).inc_by(bytes);
        }
    }

    /// Counts one disconnect.
    pub fn disconnect(&self, kind: DisconnectKind) {
        self.disconnects[kind.index()].inc();
    }

    /// Disconnects counted for `kind`.
    pub fn disconnects(&self, kind: DisconnectKind) -> u64 {
        self.disconnects[kind.index()].get()
    }

    /// The Prometheus text exposition (format 0.0.4).
    #[must_use]
    pub fn render(&self) -> String {
        if let Some(now) = process_cpu_seconds() {
            let behind = now - self.process_cpu.get();
            if behind > 0.0 {
                self.process_cpu.inc_by(behind);
            }
        }
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::scrape::TickMetrics;

    /// The value of the sample line `series` (name and labels) in `text`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn cpu_time_is_read_from_proc_stat_even_with_an_odd_command_name() {
        // Fields 14 and 15 (utime 1234, stime 566) in hundredths of a second; the name has a
        // space and a parenthesis of its own.
        let line = "4242 (tick (wire) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 566 0 0 20 0 \
                    9 0 12345 1000000 250 18446744073709551615";
        assert_eq!(cpu_seconds_of_stat(line), Some(18.0));
        assert_eq!(cpu_seconds_of_stat("4242 (x) S 1 2"), None, "cut short");
        assert_eq!(cpu_seconds_of_stat("no name at all"), None);
        // This process: the metric is at least what it had used before the render.
        let before = process_cpu_seconds().expect("a Linux /proc");
        let text = Metrics::default().render();
        let exported = sample(&text, "tickwire_process_cpu_seconds_total").expect("exported");
        assert!(exported >= before, "{exported} < {before}");
    }

    #[test]
    fn client_series_come_and_go_with_their_clients() {
        let m = Metrics::default();
        m.client_bytes_sent("r\"1", 7, 100);
        m.client_bytes_sent("r\"1", 7, 23);
        m.client_bytes_sent("r\"1", 8, 5);
        m.client_max_stale_ticks("r\"1", 7, 12);
        m.client_max_stale_ticks("r\"1", 8, 4);
        m.governor_left_out.fetch_add(9, Ordering::Relaxed);
        m.component_bytes("Position", 10.5);
        m.component_bytes("Position", 1.5);
        m.component_bytes("Health", f64::NAN);
        let text = m.render();
        for (series, value) in [
            ("tickwire_client_bytes_sent_total{room=\"r\\\"1\",client=\"7\"}", 123.0),
            ("tickwire_client_bytes_sent_total{room=\"r\\\"1\",client=\"8\"}", 5.0),
            ("tickwire_client_max_stale_ticks{room=\"r\\\"1\",client=\"7\"}", 12.0),
            ("tickwire_governor_max_stale_ticks", 12.0),
            ("tickwire_governor_left_out_total", 9.0),
            ("tickwire_governor_forced_total", 0.0),
            ("tickwire_snapshot_component_bytes_total{component=\"Position\"}", 12.0),
        ] {
            let got = sample(&text, series);
            assert!(got.is_some_and(|g| (g - value).abs() < 1e-9), "{series}: {got:?}\n{text}");
        }
        assert!(!text.contains("Health"), "nothing counted, no series");
        m.forget_client("r\"1", 7);
        let text = m.render();
        assert!(!text.contains("client=\"7\""), "{text}");
        assert!(text.contains("client=\"8\""), "{text}");
        // The server-wide maximum stays.
        assert_eq!(sample(&text, "tickwire_governor_max_stale_ticks"), Some(12.0));
    }

    #[test]
    fn the_exposition_keeps_every_name_label_and_value() {
        let m = Metrics::default();
        let r = Ordering::Relaxed;
        m.connections.fetch_add(2, r);
        m.connections.fetch_sub(1, r);
        m.rooms.fetch_add(3, r);
        m.players.fetch_add(4, r);
        m.quic_connections.fetch_add(12, r);
        for (counter, n) in [
            (&m.tick_overruns, 2),
            (&m.ticks_dropped, 5),
            (&m.bytes_sent, 1_000),
            (&m.bytes_received, 7),
            (&m.decode_errors, 1),
            (&m.snapshots_superseded, 6),
            (&m.snapshots_unchanged, 13),
            (&m.inputs_dropped, 8),
            (&m.chat_dropped, 9),
            (&m.handshakes_refused, 10),
            (&m.tls_handshakes_failed, 11),
        ] {
            counter.fetch_add(n, r);
        }
        m.disconnect(DisconnectKind::Server(DisconnectReason::RateLimited));
        m.disconnect(DisconnectKind::ClientClosed);
        m.disconnect(DisconnectKind::ClientClosed);
        for micros in [40, 700, 1_500, 100_000] {
            m.tick_duration.observe(micros);
        }
        m.input_to_snapshot.observe(16_000);
        m.snapshot_full.observe(8);
        m.snapshot_full.observe(3_000);
        m.snapshot_delta.observe(100);
        assert_eq!(m.inputs_dropped.load(r), 8);
        assert_eq!(m.tick_duration.count(), 4);
        assert!((m.tick_duration.max() - 0.1).abs() < 1e-12);
        assert_eq!(m.disconnects(DisconnectKind::ClientClosed), 2);

        let text = m.render();
        for (series, value) in [
            ("tickwire_connections", 1.0),
            ("tickwire_rooms", 3.0),
            ("tickwire_players", 4.0),
            ("tickwire_quic_connections", 12.0),
            ("tickwire_tick_overruns_total", 2.0),
            ("tickwire_ticks_dropped_total", 5.0),
            ("tickwire_bytes_sent_total", 1_000.0),
            ("tickwire_bytes_received_total", 7.0),
            ("tickwire_decode_errors_total", 1.0),
            ("tickwire_snapshots_superseded_total", 6.0),
            ("tickwire_snapshots_unchanged_total", 13.0),
            ("tickwire_inputs_dropped_total", 8.0),
            ("tickwire_chat_dropped_total", 9.0),
            ("tickwire_handshakes_refused_total", 10.0),
            ("tickwire_tls_handshakes_failed_total", 11.0),
            ("tickwire_disconnects_total{reason=\"rate_limited\"}", 1.0),
            ("tickwire_disconnects_total{reason=\"client_closed\"}", 2.0),
            ("tickwire_disconnects_total{reason=\"transport_error\"}", 0.0),
            ("tickwire_disconnects_total{reason=\"server_shutdown\"}", 0.0),
            ("tickwire_tick_duration_max_seconds", 0.1),
            ("tickwire_tick_duration_seconds_count", 4.0),
            ("tickwire_tick_duration_seconds_sum", 0.10224),
            ("tickwire_tick_duration_seconds_bucket{le=\"+Inf\"}", 4.0),
            ("tickwire_input_to_snapshot_seconds_count", 1.0),
            ("tickwire_snapshot_bytes_count{kind=\"full\"}", 2.0),
            ("tickwire_snapshot_bytes_sum{kind=\"full\"}", 3_008.0),
            ("tickwire_snapshot_bytes_bucket{kind=\"full\",le=\"+Inf\"}", 2.0),
            ("tickwire_snapshot_bytes_count{kind=\"delta\"}", 1.0),
            ("tickwire_snapshot_bytes_bucket{kind=\"delta\",le=\"+Inf\"}", 1.0),
        ] {
            let got = sample(&text, series);
            assert!(got.is_some_and(|g| (g - value).abs() < 1e-9), "{series}: {got:?}\n{text}");
        }
        // Bucket bounds are the same numbers (however a bound is written), counts cumulative.
        let tick = TickMetrics::parse(&text).unwrap().tick;
        let bounds: Vec<f64> = tick.0.iter().map(|b| b.0).collect();
        let expected: Vec<f64> = TICK_BUCKETS.iter().copied().chain([f64::INFINITY]).collect();
        assert_eq!(bounds, expected);
        let counts: Vec<u64> = tick.0.iter().map(|b| b.1).collect();
        assert_eq!(counts, [1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3, 4]);
        let full = crate::bots::scrape::Buckets::parse(&text, "tickwire_snapshot_bytes");
        assert_eq!(full.0.len(), 2 * (SNAPSHOT_BUCKETS.len() + 1), "full and delta");
        // Each metric is described once, with its type.
        for (name, kind) in [
            ("tickwire_connections", "gauge"),
            ("tickwire_tick_duration_seconds", "histogram"),
            ("tickwire_tick_duration_max_seconds", "gauge"),
            ("tickwire_input_to_snapshot_seconds", "histogram"),
            ("tickwire_snapshot_bytes", "histogram"),
            ("tickwire_bytes_sent_total", "counter"),
            ("tickwire_disconnects_total", "counter"),
        ] {
            let line = format!("# TYPE {name} {kind}");
            assert_eq!(text.lines().filter(|l| *l == line).count(), 1, "{line}\n{text}");
            let help = format!("# HELP {name} ");
            assert_eq!(text.lines().filter(|l| l.starts_with(&help)).count(), 1, "{help}");
        }
    }
}
