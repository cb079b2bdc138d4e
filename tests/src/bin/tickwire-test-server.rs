//! The `tickwire` CLI built inside the tests crate, so integration tests can run it as a child
//! process (`CARGO_BIN_EXE_tickwire-test-server`): it is the same `tickwire_server::cli::main`.

fn main() -> std::process::ExitCode {
    tickwire_server::cli::main()
}
