//! libFuzzer entry point of the `join_query` target (see `tickwire_fuzz::join_query`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tickwire_fuzz::join_query(data));
