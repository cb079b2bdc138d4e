//! libFuzzer entry point of the `webtransport_request` target (see `tickwire_fuzz::webtransport_request`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tickwire_fuzz::webtransport_request(data));
