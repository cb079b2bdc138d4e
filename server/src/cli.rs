//! The `tickwire` command line: `tickwire serve` runs the game server. The binary's `main` is
//! only a call to [`main`], so tests can run the very same CLI as a process.
//!
//! ```sh
//! cargo run --release -p tickwire-server -- serve
//! # Tickwire is listening: open http://127.0.0.1:8080/
//! cargo run --release -p tickwire-server -- serve --dev-cert
//! # TLS certificate SHA-256: 3f1c…
//! # Tickwire is listening: open https://127.0.0.1:8080/
//! ```

use std::process::ExitCode;

use crate::config::ServeArgs;
use crate::server::Server;
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Tickwire: an authoritative multiplayer game-state server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text", env = "TICKWIRE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
#[expect(clippy::large_enum_variant, reason = "parsed once per process, never moved around")]
enum Command {
    /// Run the game server (HTTP, WebSocket, rooms). Logs obey RUST_LOG (default: info).
    Serve(ServeArgs),
    /// Run N headless bots against a server over WebSockets and write a JSON report.
    Bots(crate::bots::BotsArgs),
    /// Simulate a whole NPC match in-process as fast as possible; print scores and the state hash.
    Match(crate::matchrun::MatchArgs),
    /// Replay a match recording (serve --record, match --record): check every tick's state
    /// hash and name the first tick, component and entity that differ.
    Replay(crate::recording::ReplayArgs),
    /// List the games this build can play.
    Games(GamesArgs),
}

/// `tickwire games` flags.
#[derive(clap::Args, Debug, Clone)]
struct GamesArgs {
    /// Print a JSON array of `{"name", "description"}` instead of a table.
    #[arg(long)]
    json: bool,
}

/// `tickwire games`: the games, the default first.
fn games(args: &GamesArgs) -> anyhow::Result<()> {
    let all = tickwire_shared::games::ALL;
    let text = if args.json {
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|g| serde_json::json!({ "name": g.name, "description": g.description }))
            .collect();
        serde_json::to_string(&list)? + "\n"
    } else {
        let width = all.iter().map(|g| g.name.len()).max().unwrap_or(0);
        all.iter().map(|g| format!("{:<width$}  {}\n", g.name, g.description)).collect()
    };
    crate::bots::print_stdout(&text);
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Prints a line for the operator. A closed stdout (piped into `head`, say) is not a reason to
/// fail: unlike `println!`, this never panics.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let (http, ws) = if config.tls.is_some() { ("https", "wss") } else { ("http", "ws") };
    let server = Server::start(config).await?;
    let addr = server.local_addr();
    if let Some(hash) = server.state().tls_cert_sha256 {
        say(&format!("TLS certificate SHA-256: {}", crate::tls::hex(&hash)));
    }
    if let Some(cluster) = &server.state().cluster {
        say(&format!(
            "Cluster instance {} (players join it at {}); the directory is in Redis",
            cluster.id(),
            cluster.ws_url()
        ));
    }
    say(&format!("Tickwire is listening: open {http}://{addr}/ (WebSocket at {ws}://{addr}/ws)"));
    if let Some(quic) = server.quic_addr() {
        let info = server.state().webtransport.as_ref();
        if let Some(hash) = info.and_then(|i| i.dev_cert_sha256)
            && server.state().tls_cert_sha256 != Some(hash)
        {
            say(&format!("QUIC certificate SHA-256: {}", crate::tls::hex(&hash)));
        }
        say(&format!("WebTransport (QUIC) on udp://{quic} at https://{quic}/wt"));
    }
    wait_for_signal().await;
    server.shutdown().await;
    say("Tickwire stopped");
    Ok(())
}

/// Parses the command line, runs the command, and returns the process's exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Bots(args) => crate::bots::cli(&args).await,
            Command::Match(args) => crate::matchrun::cli(&args),
            Command::Replay(args) => crate::recording::cli(&args),
            Command::Games(args) => games(&args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
