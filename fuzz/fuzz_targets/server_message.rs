//! libFuzzer entry point of the `server_message` target (see `tickwire_fuzz::server_message`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tickwire_fuzz::server_message(data));
