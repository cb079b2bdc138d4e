//! libFuzzer entry point of the `client_message` target (see `tickwire_fuzz::client_message`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tickwire_fuzz::client_message(data));
