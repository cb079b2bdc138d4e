//! The `tickwire` binary. Its subcommands (`serve`, `bots`, `match`) arrive with the server issue.

fn main() -> std::process::ExitCode {
    eprintln!("tickwire {}: the server is not built yet", env!("CARGO_PKG_VERSION"));
    std::process::ExitCode::FAILURE
}
