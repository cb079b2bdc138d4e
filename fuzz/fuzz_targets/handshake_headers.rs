//! libFuzzer entry point of the `handshake_headers` target (see `tickwire_fuzz::handshake_headers`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tickwire_fuzz::handshake_headers(data));
