//! Prometheus metrics, kept in atomics so that the tick threads and session tasks update them
//! without locks, rendered as text at `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tickwire_shared::protocol::DisconnectReason;

/// A histogram with fixed buckets (upper bounds, ascending), Prometheus style.
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
    max: AtomicU64,
    scale: f64,
}

impl Histogram {
    /// `scale` converts an observation's integer unit into the exported unit (1e-6 for
    /// microseconds exported as seconds, 1.0 for bytes).
    fn new(bounds: &'static [f64], scale: f64) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
            scale,
        }
    }

    /// Records one observation in the histogram's integer unit.
    pub fn observe(&self, value: u64) {
        let v = value as f64 * self.scale;
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add(value, Ordering::Relaxed);
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

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 * self.scale;
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
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

/// Snapshot-size buckets in bytes.
const SNAPSHOT_BUCKETS: &[f64] =
    &[8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 16384.0, 65536.0];

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

/// Every metric the server exports.
pub struct Metrics {
    /// Open WebSocket sessions.
    pub connections: AtomicI64,
    /// Open rooms.
    pub rooms: AtomicI64,
    /// Human players in rooms (connected or within their resume grace).
    pub players: AtomicI64,
    /// Tick durations (simulate + replicate + encode), microseconds.
    pub tick_duration: Histogram,
    /// Ticks that took longer than the tick period.
    pub tick_overruns: AtomicU64,
    /// From an input's arrival at the server to the moment the first snapshot carrying its
    /// effect is handed to the transport, microseconds.
    pub input_to_snapshot: Histogram,
    /// Ticks skipped because the loop fell too far behind.
    pub ticks_dropped: AtomicU64,
    /// Bytes sent to clients (message payloads).
    pub bytes_sent: AtomicU64,
    /// Bytes received from clients (message payloads).
    pub bytes_received: AtomicU64,
    /// Full snapshot sizes.
    pub snapshot_full: Histogram,
    /// Delta snapshot sizes.
    pub snapshot_delta: Histogram,
    /// Client messages that failed to decode or validate.
    pub decode_errors: AtomicU64,
    /// Snapshots replaced in an outbox before they were sent.
    pub snapshots_superseded: AtomicU64,
    /// Input frames dropped (late, duplicate backlog, or a full room inbox).
    pub inputs_dropped: AtomicU64,
    /// Chat lines dropped by the chat rate limit.
    pub chat_dropped: AtomicU64,
    /// Handshakes refused, by status code 400/401/403/426/429.
    pub handshakes_refused: AtomicU64,
    disconnects: [AtomicU64; 13],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: AtomicI64::new(0),
            rooms: AtomicI64::new(0),
            players: AtomicI64::new(0),
            tick_duration: Histogram::new(TICK_BUCKETS, 1e-6),
            tick_overruns: AtomicU64::new(0),
            input_to_snapshot: Histogram::new(LATENCY_BUCKETS, 1e-6),
            ticks_dropped: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            snapshot_full: Histogram::new(SNAPSHOT_BUCKETS, 1.0),
            snapshot_delta: Histogram::new(SNAPSHOT_BUCKETS, 1.0),
            decode_errors: AtomicU64::new(0),
            snapshots_superseded: AtomicU64::new(0),
            inputs_dropped: AtomicU64::new(0),
            chat_dropped: AtomicU64::new(0),
            handshakes_refused: AtomicU64::new(0),
            disconnects: Default::default(),
        }
    }
}

impl Metrics {
    /// Counts one disconnect.
    pub fn disconnect(&self, kind: DisconnectKind) {
        self.disconnects[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Disconnects counted for `kind`.
    pub fn disconnects(&self, kind: DisconnectKind) -> u64 {
        self.disconnects[kind.index()].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let v = v.load(Ordering::Relaxed);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let r = Ordering::Relaxed;
        gauge(&mut out, "tickwire_connections", "Open sessions.", self.connections.load(r));
        gauge(&mut out, "tickwire_rooms", "Open rooms.", self.rooms.load(r));
        gauge(&mut out, "tickwire_players", "Human players in rooms.", self.players.load(r));
        let _ = writeln!(
            out,
            "# HELP tickwire_tick_duration_seconds Simulate + replicate + encode, per tick.\n# TYPE tickwire_tick_duration_seconds histogram"
        );
        self.tick_duration.render(&mut out, "tickwire_tick_duration_seconds", "");
        let _ = writeln!(
            out,
            "# HELP tickwire_tick_duration_max_seconds The longest tick since the server started.\n# TYPE tickwire_tick_duration_max_seconds gauge\ntickwire_tick_duration_max_seconds {}",
            self.tick_duration.max()
        );
        counter(
            &mut out,
            "tickwire_tick_overruns_total",
            "Ticks longer than the tick period.",
            &self.tick_overruns,
        );
        let _ = writeln!(
            out,
            "# HELP tickwire_input_to_snapshot_seconds Input arrival to the first snapshot carrying its effect leaving.\n# TYPE tickwire_input_to_snapshot_seconds histogram"
        );
        self.input_to_snapshot.render(&mut out, "tickwire_input_to_snapshot_seconds", "");
        counter(
            &mut out,
            "tickwire_ticks_dropped_total",
            "Ticks skipped after falling behind.",
            &self.ticks_dropped,
        );
        counter(&mut out, "tickwire_bytes_sent_total", "Payload bytes sent.", &self.bytes_sent);
        counter(
            &mut out,
            "tickwire_bytes_received_total",
            "Payload bytes received.",
            &self.bytes_received,
        );
        let _ = writeln!(
            out,
            "# HELP tickwire_snapshot_bytes Encoded snapshot message sizes.\n# TYPE tickwire_snapshot_bytes histogram"
        );
        self.snapshot_full.render(&mut out, "tickwire_snapshot_bytes", "kind=\"full\"");
        self.snapshot_delta.render(&mut out, "tickwire_snapshot_bytes", "kind=\"delta\"");
        counter(
            &mut out,
            "tickwire_decode_errors_total",
            "Client messages that failed to decode or validate.",
            &self.decode_errors,
        );
        counter(
            &mut out,
            "tickwire_snapshots_superseded_total",
            "Snapshots replaced by a newer one before being sent.",
            &self.snapshots_superseded,
        );
        counter(
            &mut out,
            "tickwire_inputs_dropped_total",
            "Input frames dropped.",
            &self.inputs_dropped,
        );
        counter(
            &mut out,
            "tickwire_chat_dropped_total",
            "Chat lines dropped by the rate limit.",
            &self.chat_dropped,
        );
        counter(
            &mut out,
            "tickwire_handshakes_refused_total",
            "WebSocket handshakes refused.",
            &self.handshakes_refused,
        );
        let _ = writeln!(
            out,
            "# HELP tickwire_disconnects_total Sessions ended, by reason.\n# TYPE tickwire_disconnects_total counter"
        );
        for kind in DisconnectKind::ALL {
            let v = self.disconnects[kind.index()].load(r);
            let _ = writeln!(out, "tickwire_disconnects_total{{reason=\"{}\"}} {v}", kind.label());
        }
        out
    }
}
