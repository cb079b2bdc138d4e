//! libFuzzer entry point of the `snapshot_apply` target (see `tickwire_fuzz::snapshot_apply`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tickwire_fuzz::snapshot_apply(data));
