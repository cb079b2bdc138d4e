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

pub mod conditioner;
pub mod driver;
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
use tokio::time::Instant;

pub use conditioner::ConditionerSpec;
pub use report::BotsReport;

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
    /// A `wss://` URL: the bots speak plain WebSocket.
    #[error(
        "wss:// is not supported: the bots speak plain ws:// (run them next to the server, or \
         against the plain port behind a TLS proxy)"
    )]
    Tls,
    /// Not a `ws://` URL at all.
    #[error("{0:?} is not a ws:// URL (like ws://127.0.0.1:8080/ws)")]
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
        let rest = if let Some(rest) = text.strip_prefix("ws://") {
            rest
        } else if text.starts_with("wss://") {
            return Err(UrlError::Tls);
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
            None => 80,
            Some(p) => p.parse::<u16>().map_err(|_| UrlError::Port(p.to_owned()))?,
        };
        Ok(WsUrl { host, port, path: path.to_owned(), query })
    }

    /// The host as a socket address string (IPv6 without brackets).
    fn connect_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// The URL for one bot of `game`, with its join query.
    fn bot_url(&self, token: &str, name: &str, game: &str, room: Option<&str>) -> String {
        let mut url = format!("ws://{}:{}{}?", self.host, self.port, self.path);
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
        write!(f, "ws://{}:{}{}", self.host, self.port, self.path)
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
    /// New connections per second.
    #[arg(long, default_value_t = DEFAULT_RAMP_UP, value_parser = parse_ramp)]
    pub ramp_up: f64,
    /// Auth token for every bot [default: one from POST /api/guest on the same host].
    #[arg(long)]
    pub token: Option<String>,
    /// Join this room instead of matchmaking.
    #[arg(long, value_parser = parse_room)]
    pub room: Option<String>,
    /// Delay each bot's traffic both ways, like latency=100ms,jitter=20ms.
    #[arg(long)]
    pub conditioner: Option<ConditionerSpec>,
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
    /// Link conditioner.
    pub conditioner: Option<ConditionerSpec>,
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
            conditioner: args.conditioner,
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
    let host = config.url.connect_host().to_owned();
    let port = config.url.port;
    let token = match &config.token {
        Some(t) => t.clone(),
        None => scrape::guest_token(&host, port)
            .await
            .context("fetching a guest token (or pass --token)")?,
    };
    // The first scrape doubles as the reachability check when a token was given.
    let metrics_before = scrape::tick_metrics(&host, port).await;
    if let Err(e) = &metrics_before
        && e.to_string().starts_with("cannot reach")
    {
        bail!("{e:#}");
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

    let mut tasks = Vec::with_capacity(config.count as usize);
    let gap = Duration::from_secs_f64(1.0 / config.ramp_up);
    for index in 0..config.count {
        let start_at = epoch + gap.mul_f64(f64::from(index));
        if start_at >= deadline {
            break;
        }
        tokio::time::sleep_until(start_at).await;
        let spec = driver::BotSpec {
            index,
            url: config.url.bot_url(
                &token,
                &format!("bot-{index}"),
                &config.game,
                config.room.as_deref(),
            ),
            behavior: config.behavior.clone(),
            seed: config.seed.wrapping_add(u64::from(index)),
            conditioner: config.conditioner,
            epoch,
            deadline,
        };
        tasks.push(tokio::spawn((bots.run)(spec, Arc::clone(&progress))));
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
    bar.finish_and_clear();

    let server = match metrics_before {
        Ok(before) => match scrape::tick_metrics(&host, port).await {
            Ok(after) => Ok(after.since(&before)),
            Err(e) => Err(format!("{e:#}")),
        },
        Err(e) => Err(format!("{e:#}")),
    };
    Ok(report::build(config, &results, wall, server))
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
        assert_eq!(WsUrl::parse("wss://x/ws"), Err(UrlError::Tls));
        assert!(UrlError::Tls.to_string().contains("not supported"));
        assert!(WsUrl::parse("ws://x:notaport/ws").is_err());
        assert!(WsUrl::parse("ws://:80/ws").is_err());
    }
}
