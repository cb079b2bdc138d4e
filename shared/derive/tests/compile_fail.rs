//! What `#[derive(Replicate)]` refuses, and the errors it gives (tests/ui/*.rs, with the
//! expected compiler output beside each in a `.stderr` file).
//!
//! After changing a message, regenerate the expected output with
//! `TRYBUILD=overwrite cargo test --test compile_fail` and review the diff.

#[test]
fn compile_fail() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
