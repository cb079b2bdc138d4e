//! Server configuration: CLI flags (clap) with `TICKWIRE_*` environment overrides, an optional
//! TOML file, and defaults that run locally. Precedence: flag or env > file > default.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use governor::Quota;
use serde::Deserialize;

use crate::tls::TlsSource;

pub use tickwire_shared::game::{DEFAULT_NPC_COUNT, DEFAULT_TICK_RATE};

/// Default snapshot rate. 30 Hz halves bandwidth against 60 Hz; interpolation hides the rest.
pub const DEFAULT_SNAPSHOT_RATE: u16 = 30;

/// The largest `--client-kbps`: 1 Gbit/s. Past it a budget limits nothing a client could
/// receive, and a typo (a rate in bits, not kilobits) is refused rather than taken as no limit.
pub const MAX_CLIENT_KBPS: u32 = 1_000_000;

/// The smallest snapshot budget `--client-kbps` may leave: a snapshot's envelope and the own
/// player's update take about this much, and a budget below it would send nothing else.
pub const MIN_SNAPSHOT_BUDGET_BYTES: u32 = 32;

/// Default players (humans) per room.
pub const DEFAULT_ROOM_CAPACITY: usize = 32;

/// Default radius of a client's area of interest, in world units: a bit more than a 1080p screen
/// at 1:1 zoom seen from its centre, so nothing pops in on screen.
pub const DEFAULT_INTEREST_RADIUS: f32 = 1_200.0;

/// Default limit on open rooms: far more than 2 cores tick comfortably (a room of 32 costs about
/// 5 % of a core), so a flood meets it long before memory matters (~0.3 MB a room).
pub const DEFAULT_MAX_ROOMS: usize = 256;

/// Default limit on named (private) rooms opened from one address that are open at once. A
/// named room closes a minute after its last player left, so this also caps the rate.
pub const DEFAULT_MAX_ROOMS_PER_IP: usize = 8;

/// The shortest JWT secret accepted, in bytes: HS256 keys shorter than the hash's 32 bytes are
/// guessable, and an empty one lets anyone sign tokens.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Guest tokens one IP may get in a burst: a page that reconnects a few times, or a handful of
/// tabs, never meets the limit.
pub const GUEST_TOKEN_BURST: f64 = 30.0;

/// Guest tokens one IP may get per second once its burst is spent: enough for a person, far too
/// few for a flood.
pub const GUEST_TOKENS_PER_SEC: f64 = 1.0;

/// The slowest refill a [`quota`] gets: a rate that is zero, negative or not a number means a
/// burst and then (nearly) nothing.
const SLOWEST_REFILL: Duration = Duration::from_secs(3600);

/// A [`governor`] quota of `per_sec` cells a second with bursts of `burst` cells, from the
/// floating-point rates of the configuration (a burst is at least one cell).
#[must_use]
pub fn quota(per_sec: f64, burst: f64) -> Quota {
    let period = Duration::try_from_secs_f64(1.0 / per_sec)
        .unwrap_or(SLOWEST_REFILL)
        .clamp(Duration::from_nanos(1), SLOWEST_REFILL);
    // `as` saturates (and maps NaN to 0), so the cast is exact for every sane burst.
    let burst = NonZeroU32::new(burst.round() as u32).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// Per-connection limits. Every one is configurable; the defaults suit a browser client.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest inbound WebSocket message (close 1009 past it).
    pub max_message_bytes: usize,
    /// Sustained inbound messages per second (a client sends about 60 inputs and a few pings).
    pub messages_per_sec: f64,
    /// Burst of messages allowed above the sustained rate.
    pub message_burst: f64,
    /// Sustained inbound bytes per second.
    pub bytes_per_sec: f64,
    /// Burst of bytes allowed above the sustained rate.
    pub byte_burst: f64,
    /// Chat lines per second (a burst of [`Limits::chat_burst`]); extra lines are dropped.
    pub chat_per_sec: f64,
    /// Chat lines allowed in a burst.
    pub chat_burst: f64,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A session with no inbound traffic (messages or pongs) for this long is closed.
    pub idle_timeout: Duration,
    /// Concurrent connections per client IP address.
    pub max_connections_per_ip: usize,
    /// Reliable messages (chat, events) queued for one client before it counts as too slow.
    pub max_reliable_queue: usize,
    /// A write that takes longer than this ends the session (the peer stopped reading).
    pub write_timeout: Duration,
    /// tungstenite's per-connection read buffer (allocated for each session and filled at each
    /// read). Its default of 128 KiB would cost gigabytes at tens of thousands of sessions; the
    /// largest client message is 1 KiB ([`tickwire_shared::codec::MAX_CLIENT_MESSAGE_BYTES`]),
    /// so the default is that and a frame header: any one message is read in one call, and an
    /// input (under 100 bytes) shares a read with several others.
    pub read_buffer_bytes: usize,
    /// tungstenite's write buffer target before a flush.
    pub write_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: tickwire_shared::codec::MAX_CLIENT_MESSAGE_BYTES,
            messages_per_sec: 120.0,
            message_burst: 240.0,
            bytes_per_sec: 32.0 * 1024.0,
            byte_burst: 64.0 * 1024.0,
            chat_per_sec: 1.0,
            chat_burst: 5.0,
            ping_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            max_connections_per_ip: 64,
            max_reliable_queue: 256,
            write_timeout: Duration::from_secs(5),
            read_buffer_bytes: tickwire_shared::codec::MAX_CLIENT_MESSAGE_BYTES + 16,
            write_buffer_bytes: 0,
        }
    }
}

/// Everything `tickwire serve` needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address for HTTP and WebSocket.
    pub bind: SocketAddr,
    /// Simulation ticks per second.
    pub tick_rate: u16,
    /// Snapshots per second (a divisor of the tick rate is best).
    pub snapshot_rate: u16,
    /// The game of new rooms (a join may ask for another with `?game=`).
    pub game: String,
    /// Human players per room.
    pub room_capacity: usize,
    /// Rooms open at once, all games; joins needing another get 1013.
    pub max_rooms: usize,
    /// Named rooms opened from one address open at once.
    pub max_rooms_per_ip: usize,
    /// Simulation threads that tick every room; 0: one per core.
    pub sim_threads: usize,
    /// NPC bots per room.
    pub npc_count: usize,
    /// Area-of-interest radius in world units.
    pub interest_radius: f32,
    /// Each client's snapshot bandwidth, kilobits per second; 0: unlimited (the bandwidth
    /// governor, [`tickwire_shared::room::RoomSettings::client_kbps`]).
    pub client_kbps: u32,
    /// Seconds a disconnected player's entity waits for its resume token.
    pub resume_grace: Duration,
    /// How far back (milliseconds) a player's shots are resolved where it saw its targets (lag
    /// compensation); 0 turns it off.
    pub max_rewind_ms: u32,
    /// A room with no human players for this long closes.
    pub room_idle_close: Duration,
    /// HS256 secret for JWTs. `None`: a random one per process (dev mode).
    pub jwt_secret: Option<String>,
    /// The audience tokens must name in `aud`. `None`: `aud` is not checked.
    pub jwt_audience: Option<String>,
    /// Whether `POST /api/guest` issues guest tokens.
    pub guest_tokens: bool,
    /// Extra allowed WebSocket origins (same-origin and localhost are always allowed).
    pub allowed_origins: Vec<String>,
    /// Where the built browser client is.
    pub static_dir: PathBuf,
    /// Seed for the rooms' game rules.
    pub seed: u64,
    /// Per-connection limits.
    pub limits: Limits,
    /// Enables test-only endpoints (`POST /api/debug/drop?entity=N`). Never in production.
    pub debug_endpoints: bool,
    /// TLS on the main port (HTTPS and WSS). `None`: plain HTTP and WS.
    pub tls: Option<TlsSource>,
    /// The QUIC/WebTransport endpoint.
    pub quic: QuicBind,
    /// Membership of a cluster of instances through Redis (`--redis`). `None`: one process on
    /// its own, no Redis.
    pub cluster: Option<ClusterConfig>,
    /// The bearer token of the admin API (`POST /api/admin/broadcast`); `None`: no admin API.
    pub admin_token: Option<String>,
    /// Development restarts (`--dev`): the directory rooms are saved to on shutdown and
    /// restored from at start. `None`: a restart ends the matches.
    pub dev_state: Option<PathBuf>,
    /// The live inspector (`GET /inspect`, `GET /api/inspect`): on with `--inspect`, and in
    /// dev mode (no `--jwt-secret`); behind the admin token when there is one.
    pub inspect: bool,
    /// Where every room writes its match recording (`--record DIR`); `None`: no recordings.
    pub record: Option<PathBuf>,
}

/// How an instance joins a cluster (`--redis`, `--public-url`, `--presence-ttl`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// The Redis server, `redis://[user:password@]host:port[/db]`.
    pub redis_url: String,
    /// The base URL players and other instances reach this one at (`http://host:port` or
    /// `https://…`). `None`: the bound address, which must then not be unspecified.
    pub public_url: Option<String>,
    /// How long the instance's presence lasts without a heartbeat: an instance that dies
    /// leaves the directory within it. Heartbeats go out every third of it.
    pub presence_ttl: Duration,
    /// How long a matchmaker's reservation holds a seat for a player who has not joined yet;
    /// an unused one frees its seat then, and a reserved room nobody opened expires too.
    pub seat_ttl: Duration,
}

/// The default `--presence-ttl`.
pub const DEFAULT_PRESENCE_TTL: Duration = Duration::from_secs(10);

/// The default `--seat-ttl`.
pub const DEFAULT_SEAT_TTL: Duration = Duration::from_secs(15);

/// Where the QUIC/WebTransport endpoint listens (`--quic-bind`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuicBind {
    /// With TLS on, the main address and port over UDP; without, none.
    #[default]
    Auto,
    /// No QUIC endpoint (`--quic-bind off`).
    Off,
    /// This UDP address. Without TLS on the main port, the endpoint uses a development
    /// certificate of its own (QUIC always needs one).
    Addr(SocketAddr),
}

impl std::str::FromStr for QuicBind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" | "none" => Ok(QuicBind::Off),
            "auto" => Ok(QuicBind::Auto),
            addr => addr.parse().map(QuicBind::Addr).map_err(|e| {
                format!("--quic-bind wants a UDP address like 0.0.0.0:8443, `auto` or `off`: {addr:?}: {e}")
            }),
        }
    }
}

impl<'de> Deserialize<'de> for QuicBind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tick_rate: DEFAULT_TICK_RATE,
            snapshot_rate: DEFAULT_SNAPSHOT_RATE,
            game: tickwire_shared::games::default_name().to_owned(),
            room_capacity: DEFAULT_ROOM_CAPACITY,
            max_rooms: DEFAULT_MAX_ROOMS,
            max_rooms_per_ip: DEFAULT_MAX_ROOMS_PER_IP,
            sim_threads: 0,
            npc_count: DEFAULT_NPC_COUNT,
            interest_radius: DEFAULT_INTEREST_RADIUS,
            client_kbps: 0,
            resume_grace: Duration::from_secs(30),
            max_rewind_ms: tickwire_shared::rewind::DEFAULT_MAX_REWIND_MS,
            room_idle_close: Duration::from_secs(60),
            jwt_secret: None,
            jwt_audience: None,
            guest_tokens: true,
            allowed_origins: Vec::new(),
            static_dir: PathBuf::from("client-web/dist"),
            seed: 1,
            limits: Limits::default(),
            debug_endpoints: false,
            tls: None,
            quic: QuicBind::Auto,
            cluster: None,
            admin_token: None,
            dev_state: None,
            inspect: false,
            record: None,
        }
    }
}

/// `tickwire serve` flags. Each has a `TICKWIRE_…` environment override; unset ones fall back
/// to the TOML file given with `--config`, then to the defaults.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// TOML file with any of the options below (snake_case keys).
    #[arg(long, env = "TICKWIRE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address for HTTP and WebSocket [default: 127.0.0.1:8080].
    #[arg(long, env = "TICKWIRE_BIND")]
    pub bind: Option<SocketAddr>,
    /// Simulation ticks per second [default: 60].
    #[arg(long, env = "TICKWIRE_TICK_RATE")]
    pub tick_rate: Option<u16>,
    /// Snapshots per second [default: 30].
    #[arg(long, env = "TICKWIRE_SNAPSHOT_RATE")]
    pub snapshot_rate: Option<u16>,
    /// The game of new rooms, from `tickwire games` [default: arena].
    #[arg(long, env = "TICKWIRE_GAME")]
    pub game: Option<String>,
    /// Human players per room [default: 32].
    #[arg(long, env = "TICKWIRE_ROOM_CAPACITY")]
    pub room_capacity: Option<usize>,
    /// Rooms open at once, all games; a join that needs another is closed with 1013
    /// [default: 256].
    #[arg(long, env = "TICKWIRE_MAX_ROOMS")]
    pub max_rooms: Option<usize>,
    /// Named rooms (`?room=`) opened from one IP address that may be open at once
    /// [default: 8].
    #[arg(long, env = "TICKWIRE_MAX_ROOMS_PER_IP")]
    pub max_rooms_per_ip: Option<usize>,
    /// Simulation threads ticking every room [default: one per core].
    #[arg(long, env = "TICKWIRE_SIM_THREADS")]
    pub sim_threads: Option<usize>,
    /// NPC bots per room [default: 4].
    #[arg(long, env = "TICKWIRE_NPCS")]
    pub npcs: Option<usize>,
    /// Area-of-interest radius in world units: every entity within it is seen (views are made per cell of radius/8, so some up to 1.09 × it away) [default: 1200].
    #[arg(long, env = "TICKWIRE_INTEREST_RADIUS")]
    pub interest_radius: Option<f32>,
    /// Each client's snapshot bandwidth in kilobits (1,000 bits) per second, 1-1000000: each
    /// snapshot fits its share by priority (own player first, then near and fast entities; one
    /// left out gains priority until sent, and none waits more than 16 snapshots) [default: 0,
    /// unlimited].
    #[arg(long, env = "TICKWIRE_CLIENT_KBPS")]
    pub client_kbps: Option<u32>,
    /// Seconds a dropped player can resume [default: 30].
    #[arg(long, env = "TICKWIRE_RESUME_GRACE_SECS")]
    pub resume_grace_secs: Option<u64>,
    /// How far back, in milliseconds, shots are resolved against where the shooter saw its
    /// targets (lag compensation; 0: off; at most 1000) [default: 400].
    #[arg(long, env = "TICKWIRE_MAX_REWIND_MS")]
    pub max_rewind_ms: Option<u32>,
    /// HS256 secret for JWTs, at least 32 bytes [default: random per process, with guest
    /// tokens on (dev mode)].
    #[arg(long, env = "TICKWIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Audience a token's `aud` must name; when set, tokens without it are refused and guest
    /// tokens carry it [default: none, `aud` not checked].
    #[arg(long, env = "TICKWIRE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Issue guest tokens at POST /api/guest [default: true].
    #[arg(long, env = "TICKWIRE_GUEST_TOKENS")]
    pub guest_tokens: Option<bool>,
    /// Allowed WebSocket origin (repeatable; same-origin and localhost always allowed).
    #[arg(long = "allow-origin", env = "TICKWIRE_ALLOW_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Directory of the built browser client [default: client-web/dist].
    #[arg(long, env = "TICKWIRE_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
    /// Seed for the game rules [default: 1].
    #[arg(long, env = "TICKWIRE_SEED")]
    pub seed: Option<u64>,
    /// Largest inbound message in bytes [default: 1024].
    #[arg(long, env = "TICKWIRE_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Sustained inbound messages per second per connection [default: 120].
    #[arg(long, env = "TICKWIRE_MESSAGES_PER_SEC")]
    pub messages_per_sec: Option<f64>,
    /// Seconds without inbound traffic before a session is closed [default: 15].
    #[arg(long, env = "TICKWIRE_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Concurrent connections per IP [default: 64].
    #[arg(long, env = "TICKWIRE_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Serve HTTPS and WSS with this PEM certificate chain (the server's certificate first);
    /// needs --tls-key [default: plain HTTP].
    #[arg(long, env = "TICKWIRE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "TICKWIRE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS and WSS with a self-signed certificate for localhost made at start (valid 14
    /// days; its SHA-256 is printed). For development; excludes --tls-cert/--tls-key.
    #[arg(long, env = "TICKWIRE_DEV_CERT")]
    pub dev_cert: bool,
    /// The QUIC/WebTransport endpoint's UDP address, `auto` or `off` [default: auto: with TLS
    /// on, the main address and port over UDP; without TLS, none]. An address given without
    /// TLS serves QUIC with a development certificate (its SHA-256 is printed and offered at
    /// GET /api/transport).
    #[arg(long, env = "TICKWIRE_QUIC_BIND")]
    pub quic_bind: Option<QuicBind>,
    /// Enable test-only endpoints (POST /api/debug/drop?entity=N drops that player's
    /// connection). Never in production.
    #[arg(long)]
    pub debug_endpoints: bool,
    /// Join a cluster through this Redis server (`redis://host:port[/db]`): the instance and
    /// its rooms are registered there, and GET /api/rooms answers for every instance
    /// [default: none, one process on its own].
    #[arg(long, env = "TICKWIRE_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// With --redis: the base URL players and other instances reach this instance at, e.g.
    /// `https://eu1.example.com:8443` [default: http(s)://the bound address].
    #[arg(long, env = "TICKWIRE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// With --redis: seconds the instance stays in the directory without a heartbeat (a dead
    /// instance leaves within it; heartbeats go every third of it), 0.3-3600 [default: 10].
    #[arg(long, env = "TICKWIRE_PRESENCE_TTL")]
    pub presence_ttl: Option<f64>,
    /// With --redis: seconds a matchmaker's seat waits for its player before it is free again,
    /// 1-600 [default: 15].
    #[arg(long, env = "TICKWIRE_SEAT_TTL")]
    pub seat_ttl: Option<u64>,
    /// Bearer token of the admin API (POST /api/admin/broadcast), at least 32 bytes
    /// [default: none, the admin API is off].
    #[arg(long, env = "TICKWIRE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Development restarts: on shutdown every room is saved to --dev-state, and at start the
    /// rooms saved there come back with their state; players' pages reconnect by themselves
    /// and resume as the same entities. Edit, rebuild, and keep playing the same match.
    #[arg(long, env = "TICKWIRE_DEV")]
    pub dev: bool,
    /// With --dev: where rooms are saved between runs [default: .tickwire-dev].
    #[arg(long, env = "TICKWIRE_DEV_STATE")]
    pub dev_state: Option<PathBuf>,
    /// Serve the live network inspector at GET /inspect (and its data at GET /api/inspect):
    /// rooms, clients, round trips, ack lag, input buffers, bytes. On by default in dev mode
    /// (no --jwt-secret); with --admin-token it asks for that token.
    #[arg(long, env = "TICKWIRE_INSPECT")]
    pub inspect: bool,
    /// Record every room's match into DIR (one file per room; `tickwire replay FILE` replays
    /// it, and the inspector's /replay page shows it): the inputs as applied, joins and
    /// leaves, a state hash every tick, a checkpoint every 10 s.
    #[arg(long, env = "TICKWIRE_RECORD", value_name = "DIR")]
    pub record: Option<PathBuf>,
}

/// The TOML file's shape: the same keys as the flags.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    tick_rate: Option<u16>,
    snapshot_rate: Option<u16>,
    game: Option<String>,
    room_capacity: Option<usize>,
    max_rooms: Option<usize>,
    max_rooms_per_ip: Option<usize>,
    sim_threads: Option<usize>,
    npcs: Option<usize>,
    interest_radius: Option<f32>,
    client_kbps: Option<u32>,
    resume_grace_secs: Option<u64>,
    max_rewind_ms: Option<u32>,
    jwt_secret: Option<String>,
    jwt_audience: Option<String>,
    guest_tokens: Option<bool>,
    allowed_origins: Option<Vec<String>>,
    static_dir: Option<PathBuf>,
    seed: Option<u64>,
    max_message_bytes: Option<usize>,
    messages_per_sec: Option<f64>,
    idle_timeout_secs: Option<u64>,
    max_connections_per_ip: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    dev_cert: Option<bool>,
    quic_bind: Option<QuicBind>,
    redis: Option<String>,
    public_url: Option<String>,
    presence_ttl: Option<f64>,
    seat_ttl: Option<u64>,
    admin_token: Option<String>,
    dev: Option<bool>,
    dev_state: Option<PathBuf>,
    inspect: Option<bool>,
    record: Option<PathBuf>,
}

impl ServeArgs {
    /// Merges flags, the file and defaults, and checks the result.
    pub fn resolve(&self) -> anyhow::Result<ServerConfig> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let d = ServerConfig::default();
        let mut limits = Limits::default();
        limits.max_message_bytes =
            self.max_message_bytes.or(file.max_message_bytes).unwrap_or(limits.max_message_bytes);
        limits.messages_per_sec =
            self.messages_per_sec.or(file.messages_per_sec).unwrap_or(limits.messages_per_sec);
        limits.message_burst = limits.messages_per_sec * 2.0;
        if let Some(secs) = self.idle_timeout_secs.or(file.idle_timeout_secs) {
            limits.idle_timeout = Duration::from_secs(secs);
        }
        limits.max_connections_per_ip = self
            .max_connections_per_ip
            .or(file.max_connections_per_ip)
            .unwrap_or(limits.max_connections_per_ip);
        let mut origins = file.allowed_origins.unwrap_or_default();
        origins.extend(self.allowed_origins.iter().cloned());
        let tls = tls_source(
            self.tls_cert.clone().or(file.tls_cert),
            self.tls_key.clone().or(file.tls_key),
            self.dev_cert || file.dev_cert.unwrap_or(false),
        )?;
        let cluster = cluster_config(
            self.redis.clone().or(file.redis),
            self.public_url.clone().or(file.public_url),
            self.presence_ttl.or(file.presence_ttl),
            self.seat_ttl.or(file.seat_ttl),
        )?;
        let cfg = ServerConfig {
            bind: self.bind.or(file.bind).unwrap_or(d.bind),
            tick_rate: self.tick_rate.or(file.tick_rate).unwrap_or(d.tick_rate),
            snapshot_rate: self.snapshot_rate.or(file.snapshot_rate).unwrap_or(d.snapshot_rate),
            game: self.game.clone().or(file.game).unwrap_or(d.game),
            room_capacity: self.room_capacity.or(file.room_capacity).unwrap_or(d.room_capacity),
            max_rooms: self.max_rooms.or(file.max_rooms).unwrap_or(d.max_rooms),
            max_rooms_per_ip: self
                .max_rooms_per_ip
                .or(file.max_rooms_per_ip)
                .unwrap_or(d.max_rooms_per_ip),
            sim_threads: self.sim_threads.or(file.sim_threads).unwrap_or(d.sim_threads),
            npc_count: self.npcs.or(file.npcs).unwrap_or(d.npc_count),
            interest_radius: self
                .interest_radius
                .or(file.interest_radius)
                .unwrap_or(d.interest_radius),
            client_kbps: self.client_kbps.or(file.client_kbps).unwrap_or(d.client_kbps),
            resume_grace: self
                .resume_grace_secs
                .or(file.resume_grace_secs)
                .map_or(d.resume_grace, Duration::from_secs),
            max_rewind_ms: self.max_rewind_ms.or(file.max_rewind_ms).unwrap_or(d.max_rewind_ms),
            room_idle_close: d.room_idle_close,
            jwt_secret: self.jwt_secret.clone().or(file.jwt_secret),
            jwt_audience: self.jwt_audience.clone().or(file.jwt_audience),
            guest_tokens: self.guest_tokens.or(file.guest_tokens).unwrap_or(d.guest_tokens),
            allowed_origins: origins,
            static_dir: self.static_dir.clone().or(file.static_dir).unwrap_or(d.static_dir),
            seed: self.seed.or(file.seed).unwrap_or(d.seed),
            limits,
            debug_endpoints: self.debug_endpoints,
            tls,
            quic: self.quic_bind.or(file.quic_bind).unwrap_or_default(),
            cluster,
            admin_token: self.admin_token.clone().or(file.admin_token),
            dev_state: dev_state(
                self.dev || file.dev.unwrap_or(false),
                self.dev_state.clone().or(file.dev_state),
            )?,
            inspect: self.inspect || file.inspect.unwrap_or(false),
            record: self.record.clone().or(file.record),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The development-restart directory: `--dev-state` (default `.tickwire-dev`) with `--dev`,
/// none without (and `--dev-state` alone is refused).
fn dev_state(dev: bool, dir: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    match (dev, dir) {
        (true, dir) => Ok(Some(dir.unwrap_or_else(|| PathBuf::from(".tickwire-dev")))),
        (false, None) => Ok(None),
        (false, Some(_)) => bail!("--dev-state goes with --dev"),
    }
}

/// The cluster options: none without `--redis`; `--public-url` and `--presence-ttl` only with
/// it. The URLs are checked here; the Redis server is reached once the server runs.
fn cluster_config(
    redis: Option<String>,
    public_url: Option<String>,
    presence_ttl: Option<f64>,
    seat_ttl: Option<u64>,
) -> anyhow::Result<Option<ClusterConfig>> {
    let Some(redis_url) = redis else {
        if public_url.is_some() || presence_ttl.is_some() || seat_ttl.is_some() {
            bail!(
                "--public-url, --presence-ttl and --seat-ttl are for a cluster: they need --redis"
            );
        }
        return Ok(None);
    };
    let seat_ttl = match seat_ttl {
        None => DEFAULT_SEAT_TTL,
        Some(secs @ 1..=600) => Duration::from_secs(secs),
        Some(secs) => bail!("--seat-ttl {secs} must be 1-600 seconds"),
    };
    let presence_ttl = match presence_ttl {
        None => DEFAULT_PRESENCE_TTL,
        Some(secs) if (0.3..=3600.0).contains(&secs) => Duration::from_secs_f64(secs),
        Some(secs) => bail!("--presence-ttl {secs} must be 0.3-3600 seconds"),
    };
    Ok(Some(ClusterConfig { redis_url, public_url, presence_ttl, seat_ttl }))
}

/// Where the certificate comes from, given the TLS options: both files, or `--dev-cert`, or
/// nothing (plain HTTP).
fn tls_source(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    dev_cert: bool,
) -> anyhow::Result<Option<TlsSource>> {
    match (cert, key, dev_cert) {
        (None, None, false) => Ok(None),
        (None, None, true) => Ok(Some(TlsSource::DevCert)),
        (Some(_), _, true) | (_, Some(_), true) => {
            bail!("--dev-cert and --tls-cert/--tls-key exclude each other: give one or the other")
        }
        (Some(cert), Some(key), false) => Ok(Some(TlsSource::Files { cert, key })),
        (Some(_), None, false) => {
            bail!("--tls-cert needs --tls-key (the certificate's private key)")
        }
        (None, Some(_), false) => bail!("--tls-key needs --tls-cert (the key's certificate)"),
    }
}

impl ServerConfig {
    /// Refuses settings that cannot work, with a message that says which.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_rewind_ms > 1000 {
            bail!("max rewind {} ms must be at most 1000", self.max_rewind_ms);
        }
        if !(1..=240).contains(&self.tick_rate) {
            bail!("tick rate {} must be 1-240", self.tick_rate);
        }
        if self.snapshot_rate == 0 || self.snapshot_rate > self.tick_rate {
            bail!(
                "snapshot rate {} must be 1..=tick rate ({})",
                self.snapshot_rate,
                self.tick_rate
            );
        }
        match &self.jwt_secret {
            Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => bail!(
                "the JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes (this one has {}): \
                 anyone could sign tokens with a short one",
                secret.len()
            ),
            None if !self.guest_tokens => bail!(
                "no --jwt-secret and guest tokens are off: nobody could get a token (give a \
                 secret of at least {MIN_JWT_SECRET_BYTES} bytes, or turn guest tokens on for \
                 development)"
            ),
            _ => {}
        }
        if self.jwt_audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
            bail!("the JWT audience must not be empty (leave it out to not check `aud`)");
        }
        if !tickwire_shared::games::exists(&self.game) {
            bail!("{}", tickwire_shared::games::UnknownGame(self.game.clone()));
        }
        if self.room_capacity == 0 {
            bail!("room capacity must be at least 1");
        }
        if self.max_rooms == 0 || self.max_rooms_per_ip == 0 {
            bail!("--max-rooms and --max-rooms-per-ip must be at least 1");
        }
        if self.sim_threads > 1024 {
            bail!("--sim-threads {} is more than 1024", self.sim_threads);
        }
        if !(self.interest_radius.is_finite() && self.interest_radius > 0.0) {
            bail!("interest radius must be a positive number");
        }
        if self.client_kbps > MAX_CLIENT_KBPS {
            bail!(
                "--client-kbps {} is more than {MAX_CLIENT_KBPS} (1 Gbit/s): give kilobits a second \
                 (e.g. 64), or 0 for no limit",
                self.client_kbps
            );
        }
        let budget = tickwire_shared::room::snapshot_budget(
            self.client_kbps,
            u32::from(self.tick_rate),
            self.ticks_per_snapshot(),
        );
        if budget.is_some_and(|b| b < MIN_SNAPSHOT_BUDGET_BYTES) {
            bail!(
                "--client-kbps {} leaves {} bytes a snapshot at {} snapshots a second: at least \
                 {MIN_SNAPSHOT_BUDGET_BYTES} are needed (a snapshot's envelope and the own player)",
                self.client_kbps,
                budget.unwrap_or(0),
                self.snapshot_rate
            );
        }
        if self.limits.max_message_bytes < 64 {
            bail!("max message bytes must be at least 64");
        }
        if self.limits.messages_per_sec.is_nan() || self.limits.messages_per_sec <= 0.0 {
            bail!("messages per second must be positive");
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < MIN_JWT_SECRET_BYTES) {
            bail!(
                "the admin token must be at least {MIN_JWT_SECRET_BYTES} bytes: it is the only \
                 lock on the admin API"
            );
        }
        if self.dev_state.is_some() && self.cluster.is_some() {
            bail!(
                "--dev keeps rooms in a local directory across restarts, --redis hands them to                  other instances: use one or the other"
            );
        }
        if let Some(cluster) = &self.cluster {
            crate::cluster::check(cluster)?;
            if self.jwt_secret.is_none() {
                bail!(
                    "--redis needs --jwt-secret, the same on every instance: a player's token \
                     and a matchmaker's seat must verify on whichever instance they reach"
                );
            }
        }
        Ok(())
    }

    /// Ticks between snapshots (at least 1).
    #[must_use]
    pub fn ticks_per_snapshot(&self) -> u32 {
        u32::from((self.tick_rate / self.snapshot_rate.max(1)).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("tickwire-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tickwire.toml");
        std::fs::write(&file, "tick_rate = 30\nsnapshot_rate = 10\nnpcs = 7\n").unwrap();
        let args = ServeArgs { config: Some(file.clone()), npcs: Some(2), ..ServeArgs::default() };
        let cfg = args.resolve().unwrap();
        assert_eq!((cfg.tick_rate, cfg.snapshot_rate, cfg.npc_count), (30, 10, 2));
        assert_eq!(cfg.ticks_per_snapshot(), 3);
        assert_eq!(cfg.bind, ServerConfig::default().bind);

        std::fs::write(&file, "tick_rat = 30\n").unwrap();
        let err = args.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        std::fs::write(&file, "snapshot_rate = 90\n").unwrap();
        let err = args.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("snapshot rate 90"), "{err:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tls_options_come_as_a_pair_or_as_the_dev_cert() {
        let file = |name: &str| Some(PathBuf::from(name));
        let resolve = |args: ServeArgs| args.resolve().map(|c| c.tls).map_err(|e| format!("{e:#}"));
        assert_eq!(resolve(ServeArgs::default()), Ok(None));
        let dev = ServeArgs { dev_cert: true, ..ServeArgs::default() };
        assert_eq!(resolve(dev.clone()), Ok(Some(TlsSource::DevCert)));
        let pair =
            ServeArgs { tls_cert: file("c.pem"), tls_key: file("k.pem"), ..ServeArgs::default() };
        assert_eq!(
            resolve(pair.clone()),
            Ok(Some(TlsSource::Files { cert: "c.pem".into(), key: "k.pem".into() }))
        );
        let both = ServeArgs { dev_cert: true, ..pair };
        assert!(resolve(both).unwrap_err().contains("exclude each other"));
        let alone = ServeArgs { tls_cert: file("c.pem"), ..ServeArgs::default() };
        assert!(resolve(alone).unwrap_err().contains("--tls-cert needs --tls-key"));
        let alone = ServeArgs { tls_key: file("k.pem"), ..ServeArgs::default() };
        assert!(resolve(alone).unwrap_err().contains("--tls-key needs --tls-cert"));
    }

    #[test]
    fn dev_restarts_keep_a_directory_and_no_cluster() {
        let resolve =
            |args: ServeArgs| args.resolve().map(|c| c.dev_state).map_err(|e| format!("{e:#}"));
        assert_eq!(resolve(ServeArgs::default()), Ok(None));
        let dev = ServeArgs { dev: true, ..ServeArgs::default() };
        assert_eq!(resolve(dev.clone()), Ok(Some(PathBuf::from(".tickwire-dev"))));
        let dir = ServeArgs { dev_state: Some("/tmp/d".into()), ..dev.clone() };
        assert_eq!(resolve(dir.clone()), Ok(Some(PathBuf::from("/tmp/d"))));
        let alone = ServeArgs { dev: false, ..dir };
        assert!(resolve(alone).unwrap_err().contains("--dev-state goes with --dev"));
        let cluster = ServeArgs {
            redis: Some("redis://127.0.0.1:6379".into()),
            jwt_secret: Some("x".repeat(32)),
            ..dev
        };
        assert!(resolve(cluster).unwrap_err().contains("one or the other"));
    }

    #[test]
    fn quotas_keep_the_configured_rate_and_burst() {
        let q = quota(120.0, 240.0);
        assert_eq!(q.burst_size().get(), 240);
        assert_eq!(q.replenish_interval(), Duration::from_nanos(8_333_333));
        // 1 / 32 KiB s, to the nearest nanosecond.
        let bytes = quota(32.0 * 1024.0, 64.0 * 1024.0);
        assert_eq!(bytes.burst_size().get(), 65_536);
        assert_eq!(bytes.replenish_interval(), Duration::from_nanos(30_518));
        // Nonsense rates still make a quota: a burst of at least one, then next to nothing.
        for (rate, burst) in [(0.0, 0.0), (-1.0, f64::NAN), (f64::NAN, 3.0)] {
            let q = quota(rate, burst);
            assert!(q.burst_size().get() >= 1);
            assert_eq!(q.replenish_interval(), SLOWEST_REFILL);
        }
        assert_eq!(quota(1e12, 1.0).replenish_interval(), Duration::from_nanos(1));
    }

    #[test]
    fn the_client_bandwidth_is_a_sane_number_of_kilobits() {
        let resolve = |kbps: u32| {
            ServeArgs { client_kbps: Some(kbps), ..ServeArgs::default() }
                .resolve()
                .map(|c| c.client_kbps)
                .map_err(|e| format!("{e:#}"))
        };
        assert_eq!(ServeArgs::default().resolve().unwrap().client_kbps, 0, "unlimited by default");
        assert_eq!(resolve(0), Ok(0));
        assert_eq!(resolve(64), Ok(64));
        assert_eq!(resolve(MAX_CLIENT_KBPS), Ok(MAX_CLIENT_KBPS));
        assert!(resolve(MAX_CLIENT_KBPS + 1).unwrap_err().contains("kilobits"));
        // 7 kbps at 30 snapshots a second is 29 bytes a snapshot: too few.
        let err = resolve(7).unwrap_err();
        assert!(err.contains("29 bytes a snapshot"), "{err}");
        assert_eq!(resolve(8), Ok(8));
        // From the file, and the flag over it.
        let dir = std::env::temp_dir().join(format!("tickwire-kbps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tickwire.toml");
        std::fs::write(&file, "client_kbps = 64\n").unwrap();
        let args = ServeArgs { config: Some(file.clone()), ..ServeArgs::default() };
        assert_eq!(args.resolve().unwrap().client_kbps, 64);
        let args = ServeArgs { client_kbps: Some(0), ..args };
        assert_eq!(args.resolve().unwrap().client_kbps, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_jwt_audience_is_optional_but_not_empty() {
        let secret = Some("x".repeat(MIN_JWT_SECRET_BYTES));
        let args = ServeArgs {
            jwt_secret: secret.clone(),
            jwt_audience: Some("tickwire".into()),
            ..ServeArgs::default()
        };
        assert_eq!(args.resolve().unwrap().jwt_audience.as_deref(), Some("tickwire"));
        let args = ServeArgs { jwt_secret: secret, ..ServeArgs::default() };
        assert_eq!(args.resolve().unwrap().jwt_audience, None);
        let empty = ServerConfig { jwt_audience: Some(" ".into()), ..ServerConfig::default() };
        assert!(format!("{:#}", empty.validate().unwrap_err()).contains("audience"));
    }
}
