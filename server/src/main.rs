//! The `tickwire` binary; everything is in [`tickwire_server::cli`].

fn main() -> std::process::ExitCode {
    tickwire_server::cli::main()
}
