//! `tickwire bots`: N headless players over real WebSockets, for load and soak tests.
//!
//! Each bot ([`driver`]) is a tokio-tungstenite client driving the shared sans-IO
//! `tickwire_shared::client::Client`, the same core the browser runs: it joins with the
//! browser's query (`v=1&token=…&name=bot-N[&room=R]`), sends an input every tick at the
//! `Welcome`'s tick rate (with redundancy and acks), pings once a second, predicts its own
//! player and interpolates the others. Behaviours ([`behavior`]) are seeded per bot. Bots are
//! started at `--ramp-up` per second, all stop at `--duration`, and the run ends after a short
//! drain. The server's tick histogram is read from `/metrics` before and after, so the tick
//! quantiles cover this run only.
//!
//! ```sh
//! tickwire bots --url ws://127.0.0.1:8080/ws --count 200 --duration 30 --seed 1 \
//!     --behavior fight --report bots.json
//! ```

pub mod driver;
pub mod html;
pub mod report;
pub mod scrape;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tickwire_shared::game::{BotPolicy, Game};
use tickwire_shared::games::{self, GameVisitor};
use tickwire_shared::join::MAX_ROOM_ID_BYTES;
use tickwire_shared::protocol::PROTOCOL_VERSION;
use tickwire_shared::stream_frame::WEBTRANSPORT_PATH;
use tokio::time::Instant;

use crate::link::{TransportKind, Trust};
use scrape::HttpTarget;

pub use report::BotsReport;
pub use tickwire_shared::conditioner::ConditionerSpec;

/// Most bots one run may start: each holds a socket and a few KiB, so this is far past what one
/// machine's ports and the server's per-IP limit allow, and it stops a typo.
pub const MAX_BOTS: u32 = 100_000;

/// Longest run, in seconds (a day).
pub const MAX_DURATION_SECS: f64 = 86_400.0;

/// Default connections opened per second.
pub const DEFAULT_RAMP_UP: f64 = 50.0;

/// How often the progress bar is refreshed.
const PROGRESS_PERIOD: Duration = Duration::from_millis(250);

/// Why a bots URL was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a `ws://` or `wss://` URL at all.
    #[error("{0:?} is not a ws:// or wss:// URL (like ws://127.0.0.1:8080/ws)")]
    NotWs(String),
    /// An IPv6 host without its `]`.
    #[error("unclosed [ in the URL's host")]
    UnclosedBracket,
    /// No host, or one with credentials.
    #[error("{0:?} has no usable host")]
    NoHost(String),
    /// The port is not a number.
    #[error("{0:?} is not a port number")]
    Port(String),
}

/// A `ws://host:port/path` URL, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`: the server speaks TLS (HTTPS for its API too).
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path (`/ws` when the URL gave none).
    pub path: String,
    /// The query the URL already had (extra parameters for every bot), without `?`.
    pub query: Option<String>,
}

impl WsUrl {
    /// Parses and checks a `ws://` URL.
    ///
    /// # Errors
    ///
    /// For anything but `ws://host[:port][/path][?query]`.
    pub fn parse(text: &str) -> Result<WsUrl, UrlError> {
        let (rest, tls) = if let Some(rest) = text.strip_prefix("ws://") {
            (rest, false)
        } else if let Some(rest) = text.strip_prefix("wss://") {
            (rest, true)
        } else {
            return Err(UrlError::NotWs(text.to_owned()));
        };
        let (authority, path_query) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/ws"),
        };
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned()).filter(|q| !q.is_empty())),
            None => (path_query, None),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or(UrlError::UnclosedBracket)?;
            (format!("[{h}]"), p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() || host.contains('@') {
            return Err(UrlError::NoHost(text.to_owned()));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => p.parse::<u16>().map_err(|_| UrlError::Port(p.to_owned()))?,
        };
        Ok(WsUrl { tls, host, port, path: path.to_owned(), query })
    }

    /// The host as a socket address string (IPv6 without brackets).
    pub fn connect_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The URL for one bot of `game`, with its join query.
    fn bot_url(&self, token: &str, name: &str, game: &str, room: Option<&str>) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        self.session_url(
            &format!("{scheme}://{}:{}{}", self.host, self.port, self.path),
            token,
            name,
            game,
            room,
        )
    }

    /// `base` (a session endpoint's URL) with this URL's extra query and one bot's join query.
    fn session_url(
        &self,
        base: &str,
        token: &str,
        name: &str,
        game: &str,
        room: Option<&str>,
    ) -> String {
        let mut url = format!("{base}?");
        if let Some(q) = &self.query {
            url.push_str(q);
            url.push('&');
        }
        url.push_str(&format!("v={PROTOCOL_VERSION}&token={token}&name={name}&game={game}"));
        if let Some(room) = room {
            url.push_str(&format!("&room={room}"));
        }
        url
    }
}

impl std::fmt::Display for WsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "wss" } else { "ws" };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

fn parse_url(text: &str) -> Result<WsUrl, UrlError> {
    WsUrl::parse(text)
}

fn parse_duration(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= MAX_DURATION_SECS) {
        return Err(format!("the duration must be more than 0 and at most {MAX_DURATION_SECS} s"));
    }
    Ok(secs)
}

fn parse_ramp(text: &str) -> Result<f64, String> {
    let rate: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if !(rate > 0.0 && rate.is_finite()) {
        return Err("the ramp-up must be a positive number of connections per second".into());
    }
    Ok(rate)
}

fn parse_room(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_ROOM_ID_BYTES
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!("room id must be 1-{MAX_ROOM_ID_BYTES} characters of A-Z a-z 0-9 _ -"))
    }
}

/// `tickwire bots` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BotsArgs {
    /// The server's WebSocket URL, like ws://127.0.0.1:8080/ws.
    #[arg(long, value_parser = parse_url)]
    pub url: WsUrl,
    /// How many bots.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_BOTS)))]
    pub count: u32,
    /// How long the run lasts, in seconds, from the first connection (a short drain follows).
    #[arg(long, value_parser = parse_duration)]
    pub duration: f64,
    /// Seed of the behaviours (bot i uses seed + i).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The game the bots play, from `tickwire games` (its rooms are matchmade).
    #[arg(long, default_value_t = games::default_name().to_owned(), value_parser = crate::matchrun::parse_game)]
    pub game: String,
    /// What the bots do: one of the game's bot behaviours (an unknown one is refused with the
    /// list) [default: the game's first].
    #[arg(long)]
    pub behavior: Option<String>,
    /// Where to write the JSON report.
    #[arg(long)]
    pub report: PathBuf,
    /// Also write the run as one HTML page with charts (round trip, snapshot rate, corrections
    /// by cause, bytes per client, the server's tick time over the run) [default: none].
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// New connections per second.
    #[arg(long, default_value_t = DEFAULT_RAMP_UP, value_parser = parse_ramp)]
    pub ramp_up: f64,
    /// Auth token for every bot [default: one from POST /api/guest on the same host].
    #[arg(long)]
    pub token: Option<String>,
    /// Join this room instead of matchmaking.
    #[arg(long, value_parser = parse_room)]
    pub room: Option<String>,
    /// Ask GET /api/matchmake where each bot plays and join there: in a cluster (`serve
    /// --redis`), a reserved seat on whichever instance holds the room; on a server on its
    /// own, that server. WebSocket only.
    #[arg(long, conflicts_with = "room")]
    pub matchmake: bool,
    /// Condition each bot's traffic both ways, seeded by --seed:
    /// latency=100ms,jitter=20ms,loss=2%,duplicate=1%,reorder=1%. Over WebSocket (and QUIC
    /// streams) a lost message arrives a retransmission late and duplicate/reorder do nothing;
    /// QUIC datagrams are dropped, duplicated or overtaken.
    #[arg(long)]
    pub conditioner: Option<ConditionerSpec>,
    /// The transport: ws, wss or webtransport [default: ws or wss, as the URL says].
    /// WebTransport's port (and, for a development certificate, its hash) comes from the
    /// server's GET /api/transport; all bots share one QUIC socket.
    #[arg(long)]
    pub transport: Option<TransportKind>,
    /// Trust the server certificates signed by (or equal to) this PEM certificate (wss://,
    /// HTTPS, WebTransport with a real certificate).
    #[arg(long, conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Accept any server certificate. For a development server only.
    #[arg(long)]
    pub insecure: bool,
    /// Hold idle sessions instead of playing: join, then only read (heartbeats answered), no
    /// input and no ping. For memory and scale runs (how many idle sessions a server holds).
    #[arg(long)]
    pub hold: bool,
}

/// A bots run, for the library API.
#[derive(Clone, Debug)]
pub struct BotsConfig {
    /// The server.
    pub url: WsUrl,
    /// Bots.
    pub count: u32,
    /// Run length, from the first connection.
    pub duration: Duration,
    /// Behaviour seed.
    pub seed: u64,
    /// The game.
    pub game: String,
    /// Behaviour, one of the game's bot policy's.
    pub behavior: String,
    /// Connections per second.
    pub ramp_up: f64,
    /// Token (`None`: fetch a guest token).
    pub token: Option<String>,
    /// Room (`None`: matchmaking).
    pub room: Option<String>,
    /// Each bot asks `GET /api/matchmake` where to join (`--matchmake`).
    pub matchmake: bool,
    /// Link conditioner.
    pub conditioner: Option<ConditionerSpec>,
    /// Transport (`None`: ws or wss, as the URL says).
    pub transport: Option<TransportKind>,
    /// Which certificates to trust (`None`: for WebTransport, the development certificate's
    /// hash from GET /api/transport; nothing else).
    pub trust: Option<Trust>,
    /// Hold idle sessions instead of playing (`--hold`).
    pub hold: bool,
    /// Draw a progress bar on stderr (only ever when it is a terminal).
    pub progress_bar: bool,
}

impl BotsConfig {
    /// The run described by command-line flags.
    ///
    /// # Errors
    ///
    /// When the game's bots do not have the behaviour asked for.
    pub fn from_args(args: &BotsArgs) -> anyhow::Result<BotsConfig> {
        let bots = games::visit(&args.game, Bots)?;
        let behavior = match &args.behavior {
            None => bots.behaviors[0].to_owned(),
            Some(b) if bots.behaviors.contains(&b.as_str()) => b.clone(),
            Some(b) => bail!(
                "{} bots cannot {b:?}: --behavior is one of {}",
                args.game,
                bots.behaviors.join(", ")
            ),
        };
        Ok(BotsConfig {
            url: args.url.clone(),
            count: args.count,
            duration: Duration::from_secs_f64(args.duration),
            seed: args.seed,
            game: args.game.clone(),
            behavior,
            ramp_up: args.ramp_up,
            token: args.token.clone(),
            room: args.room.clone(),
            matchmake: args.matchmake,
            conditioner: args.conditioner,
            transport: args.transport,
            trust: match (&args.ca, args.insecure) {
                (Some(ca), _) => Some(Trust::from_pem_file(ca)?),
                (None, true) => Some(Trust::Insecure),
                (None, false) => None,
            },
            hold: args.hold,
            progress_bar: true,
        })
    }
}

/// A game's bots: their behaviours and the driver of one bot.
struct GameBots {
    behaviors: &'static [&'static str],
    run: fn(driver::BotSpec, Arc<driver::Progress>) -> BotFuture,
}

type BotFuture = std::pin::Pin<Box<dyn std::future::Future<Output = driver::BotResult> + Send>>;

/// Picks [`GameBots`] by game name.
struct Bots;

impl GameVisitor for Bots {
    type Output = GameBots;

    fn visit<G: Game>(self) -> GameBots {
        GameBots {
            behaviors: <G::Bot as BotPolicy<G>>::BEHAVIORS,
            run: |spec, progress| Box::pin(driver::run_bot::<G>(spec, progress)),
        }
    }
}

fn progress_bar(config: &BotsConfig) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    let len = config.duration.as_secs().max(1);
    if !config.progress_bar || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} bots {bar:30} {pos}/{len} s  {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Runs the bots and returns the report. Failures of single bots are in the report; this
/// returns `Err` only when the run cannot start (the server is unreachable, no token).
///
/// # Errors
///
/// See above.
pub async fn run(config: &BotsConfig) -> anyhow::Result<BotsReport> {
    if config.count == 0 {
        bail!("--count must be at least 1");
    }
    let bots = games::visit(&config.game, Bots)?;
    if !bots.behaviors.contains(&config.behavior.as_str()) {
        bail!("{} bots cannot {:?} ({})", config.game, config.behavior, bots.behaviors.join(", "));
    }
    let url = &config.url;
    let http = HttpTarget {
        host: url.connect_host().to_owned(),
        port: url.port,
        tls: match (url.tls, &config.trust) {
            (false, _) => None,
            (true, Some(trust)) => Some(crate::link::https_client_config(trust)?),
            (true, None) => {
                bail!("{url} speaks TLS: pass --ca PEM (or --insecure for a dev server)")
            }
        },
    };
    let transport =
        config.transport.unwrap_or(if url.tls { TransportKind::Wss } else { TransportKind::Ws });
    let link = match transport {
        TransportKind::Ws if url.tls => bail!("--transport ws with a wss:// URL: use wss"),
        TransportKind::Wss if !url.tls => bail!("--transport wss needs a wss:// URL"),
        TransportKind::Ws | TransportKind::Wss => driver::LinkSpec::WebSocket(Arc::new(
            config.trust.clone().unwrap_or(Trust::Hashes(Vec::new())),
        )),
        TransportKind::WebTransport => {
            let (quic_port, hash) = scrape::webtransport_endpoint(&http)
                .await
                .context("asking the server for its WebTransport endpoint")?;
            let trust = match (&config.trust, hash) {
                (Some(trust), _) => trust.clone(),
                (None, Some(hash)) => Trust::Hashes(vec![hash]),
                (None, None) => bail!(
                    "the server's QUIC certificate is not a development one: pass --ca PEM or --insecure"
                ),
            };
            let bind = std::net::IpAddr::from([0, 0, 0, 0]);
            let endpoint = crate::wt_client::WtClient::new(&trust, bind)?;
            let base = format!("https://{}:{quic_port}{WEBTRANSPORT_PATH}", url.host);
            driver::LinkSpec::WebTransport { endpoint: Arc::new(endpoint), base }
        }
    };
    if config.matchmake && transport == TransportKind::WebTransport {
        bail!("--matchmake works over WebSocket (ws or wss): the placement is a WebSocket URL");
    }
    let token = match &config.token {
        Some(t) => t.clone(),
        None => {
            scrape::guest_token(&http).await.context("fetching a guest token (or pass --token)")?
        }
    };
    // The first scrape doubles as the reachability check when a token was given.
    let metrics_before = scrape::tick_metrics(&http).await;
    if let Err(e) = &metrics_before
        && e.to_string().starts_with("cannot reach")
    {
        bail!("{e:#}");
    }
    // Another build of the protocol or the game fails every bot the same way: say what
    // differs once, before connecting any.
    let differences = scrape::schema_differences(&http, &config.game).await.unwrap_or_default();
    if !differences.is_empty() {
        bail!(
            "the server at {url} runs another build of the protocol or of {}; what differs \
             (here = these bots):\n  - {}",
            config.game,
            differences.join("\n  - ")
        );
    }

    let progress = Arc::new(driver::Progress::default());
    let epoch = Instant::now();
    let deadline = epoch + config.duration;
    let bar = progress_bar(config);
    let ticker = {
        let bar = bar.clone();
        let progress = Arc::clone(&progress);
        let count = config.count;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PROGRESS_PERIOD);
            loop {
                every.tick().await;
                bar.set_position(epoch.elapsed().as_secs());
                let r = Ordering::Relaxed;
                bar.set_message(format!(
                    "{}/{count} connected, {} failed, {} ended, {} snapshots, {} decode errors",
                    progress.connected.load(r),
                    progress.failed.load(r),
                    progress.finished.load(r),
                    progress.snapshots.load(r),
                    progress.decode_errors.load(r),
                ));
            }
        })
    };

    let timeline = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample_timeline(
        Arc::clone(&progress),
        http.clone(),
        epoch,
        config.duration,
        Arc::clone(&timeline),
    ));

    let mut tasks = Vec::with_capacity(config.count as usize);
    let gap = Duration::from_secs_f64(1.0 / config.ramp_up);
    for index in 0..config.count {
        let start_at = epoch + gap.mul_f64(f64::from(index));
        if start_at >= deadline {
            break;
        }
        tokio::time::sleep_until(start_at).await;
        let name = format!("bot-{index}");
        let room = config.room.as_deref();
        let spec = driver::BotSpec {
            index,
            url: match &link {
                driver::LinkSpec::WebSocket(_) => url.bot_url(&token, &name, &config.game, room),
                driver::LinkSpec::WebTransport { base, .. } => {
                    url.session_url(base, &token, &name, &config.game, room)
                }
            },
            link: link.clone(),
            behavior: config.behavior.clone(),
            seed: config.seed.wrapping_add(u64::from(index)),
            conditioner: config.conditioner,
            epoch,
            deadline,
        };
        let run: fn(driver::BotSpec, Arc<driver::Progress>) -> BotFuture = if config.hold {
            |spec, progress| Box::pin(driver::hold_bot(spec, progress))
        } else {
            bots.run
        };
        let bot = if config.matchmake {
            matchmade(
                spec,
                Arc::clone(&progress),
                run,
                http.clone(),
                url.clone(),
                token.clone(),
                name,
                config.game.clone(),
            )
        } else {
            run(spec, Arc::clone(&progress))
        };
        tasks.push(tokio::spawn(bot));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(r) => results.push(r),
            Err(e) => bail!("a bot task failed: {e}"),
        }
    }
    let wall = epoch.elapsed();
    ticker.abort();
    sampler.abort();
    bar.finish_and_clear();
    let timeline =
        std::mem::take(&mut *timeline.lock().unwrap_or_else(std::sync::PoisonError::into_inner));

    let server = match metrics_before {
        Ok(before) => match scrape::tick_metrics(&http).await {
            Ok(after) => Ok(after.since(&before)),
            Err(e) => Err(format!("{e:#}")),
        },
        Err(e) => Err(format!("{e:#}")),
    };
    let mut report = report::build(config, transport, &results, wall, server);
    report.timeline = timeline;
    Ok(report)
}

/// Points a run's timeline keeps at most: a longer run samples less often.
const MAX_TIMELINE_POINTS: u32 = 600;

/// Every second (every `duration / 600` for a run longer than ten minutes) adds one
/// [`report::TimelinePoint`] to `timeline`: what the bots counted since the last one, and the
/// server's tick times from its `/metrics`.
async fn sample_timeline(
    progress: Arc<driver::Progress>,
    http: HttpTarget,
    epoch: Instant,
    duration: Duration,
    timeline: Arc<std::sync::Mutex<Vec<report::TimelinePoint>>>,
) {
    let period = (duration / MAX_TIMELINE_POINTS).max(Duration::from_secs(1));
    let r = Ordering::Relaxed;
    let counters = |p: &driver::Progress| {
        let corrections: Vec<u64> = p.corrections.iter().map(|c| c.load(r)).collect();
        (
            p.snapshots.load(r),
            p.bytes_received.load(r),
            p.rtts.load(r),
            p.rtt_us_total.load(r),
            corrections,
        )
    };
    let mut last = counters(&progress);
    let mut last_metrics = scrape::tick_metrics(&http).await.ok();
    let mut last_live = 0;
    let mut every = tokio::time::interval_at(epoch + period, period);
    loop {
        every.tick().await;
        let now = counters(&progress);
        let metrics = scrape::tick_metrics(&http).await.ok();
        let ticks = metrics.as_ref().zip(last_metrics.as_ref()).map(|(m, l)| m.since(l).tick);
        let ms = |q: f64| ticks.as_ref().and_then(|t| t.quantile_upper_bound(q)).map(|s| s * 1e3);
        let live = progress.live.load(r);
        // Bots that ended within the interval still counted in it.
        let counted = live.max(last_live);
        last_live = live;
        let secs = period.as_secs_f64();
        let per_bot = |delta: u64| (counted > 0).then(|| delta as f64 / counted as f64 / secs);
        let rtts = now.2 - last.2;
        let point = report::TimelinePoint {
            t_secs: epoch.elapsed().as_secs_f64(),
            live_bots: live,
            snapshots_per_bot_per_sec: per_bot(now.0 - last.0),
            bytes_per_bot_per_sec: per_bot(now.1 - last.1),
            rtt_ms: (rtts > 0).then(|| (now.3 - last.3) as f64 / rtts as f64 / 1e3),
            corrections: now.4.iter().zip(&last.4).map(|(n, l)| n - l).collect(),
            tick_p50_ms: ms(0.5),
            tick_p99_ms: ms(0.99),
        };
        timeline.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(point);
        last = now;
        if metrics.is_some() {
            last_metrics = metrics;
        }
    }
}

/// One bot that first asks `GET /api/matchmake` where to play, then runs (`run`) there.
#[expect(clippy::too_many_arguments, reason = "what one bot's task owns")]
fn matchmade(
    mut spec: driver::BotSpec,
    progress: Arc<driver::Progress>,
    run: fn(driver::BotSpec, Arc<driver::Progress>) -> BotFuture,
    http: HttpTarget,
    url: WsUrl,
    token: String,
    name: String,
    game: String,
) -> BotFuture {
    Box::pin(async move {
        match scrape::matchmake(&http, &game).await {
            Ok(place) => {
                let base = match WsUrl::parse(&place.url) {
                    Ok(other) => other,
                    // A relative URL (`/ws`): the server asked.
                    Err(_) => WsUrl { path: place.url.clone(), ..url.clone() },
                };
                spec.url = base.bot_url(&token, &name, &game, place.room.as_deref());
                if let Some(seat) = &place.seat {
                    spec.url.push_str(&format!(
                        "&seat={}",
                        tickwire_shared::join::percent_encode(seat)
                    ));
                }
                run(spec, progress).await
            }
            Err(e) => {
                progress.failed.fetch_add(1, Ordering::Relaxed);
                progress.finished.fetch_add(1, Ordering::Relaxed);
                let mut result = driver::BotResult::new(spec.index);
                result.end = driver::BotEnd::ConnectFailed(format!("matchmaking: {e:#}"));
                result
            }
        }
    })
}

/// Writes `text` to stdout. A closed stdout (piped into `head`) is not an error worth a panic.
pub fn print_stdout(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Runs `tickwire bots`: the run, the summary on stdout, the JSON report file.
///
/// # Errors
///
/// When the run cannot start, the report cannot be written, or any bot failed to connect or
/// saw a decode error (after the report is written).
pub async fn cli(args: &BotsArgs) -> anyhow::Result<()> {
    let config = BotsConfig::from_args(args)?;
    let report = run(&config).await?;
    print_stdout(&report.summary());
    std::fs::write(&args.report, report.to_json() + "\n")
        .with_context(|| format!("writing the report to {}", args.report.display()))?;
    print_stdout(&format!("report written to {}\n", args.report.display()));
    if let Some(path) = &args.html {
        std::fs::write(path, html::render(&report))
            .with_context(|| format!("writing the HTML report to {}", path.display()))?;
        print_stdout(&format!("HTML report written to {}\n", path.display()));
    }
    if report.bots.failed > 0 || report.decode_errors > 0 {
        bail!(
            "{} of {} bots failed to connect, {} decode errors",
            report.bots.failed,
            report.bots.requested,
            report.decode_errors
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://127.0.0.1:8080/ws").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str(), u.query),
            ("127.0.0.1", 8080, "/ws", None)
        );
        let u = WsUrl::parse("ws://example.test").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/ws"));
        let u = WsUrl::parse("ws://[::1]:9/x?a=b").unwrap();
        assert_eq!((u.connect_host(), u.port, u.query.as_deref()), ("::1", 9, Some("a=b")));
        assert_eq!(
            u.bot_url("T", "bot-1", "arena", Some("r")),
            format!("ws://[::1]:9/x?a=b&v={PROTOCOL_VERSION}&token=T&name=bot-1&game=arena&room=r")
        );
        assert!(WsUrl::parse("http://x/ws").is_err());
        let u = WsUrl::parse("wss://x/ws").unwrap();
        assert!(u.tls && u.port == 443);
        assert!(u.bot_url("T", "b", "arena", None).starts_with("wss://x:443/ws?"));
        assert!(WsUrl::parse("ws://x:notaport/ws").is_err());
        assert!(WsUrl::parse("ws://:80/ws").is_err());
    }
}
