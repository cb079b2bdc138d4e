//! The fuzz targets' pinned corpus (`fuzz/corpus/<target>/`: the seeds, and every input a fuzzer
//! found a bug with), replayed through the very target functions (`fuzz/src/lib.rs`, included
//! here) without libFuzzer, so that every `cargo test` runs them on stable.
//!
//! The seeds are built by `seeds()` with the real encoders and a real room. To write them again
//! (after a protocol change, or to add one):
//! `TICKWIRE_WRITE_SEEDS=1 cargo test -p tickwire-tests --test fuzz_corpus`.

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// A target's pinned inputs are in `fuzz/corpus/<target>/`.
fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

/// Fewer pinned inputs than this means the corpus went missing.
const MIN_PINNED_INPUTS: usize = 4;

#[test]
fn every_seed_is_pinned() {
    let write = std::env::var_os("TICKWIRE_WRITE_SEEDS").is_some();
    let mut missing = Vec::new();
    for (target, name, bytes) in targets::seeds() {
        let path = corpus_dir(target).join(&name);
        if write {
            std::fs::create_dir_all(corpus_dir(target)).expect("the corpus folder can be made");
            std::fs::write(&path, &bytes).expect("a seed can be written");
        } else if !path.is_file() {
            missing.push(path);
        }
    }
    assert!(
        missing.is_empty(),
        "seeds missing from the pinned corpus (write them with TICKWIRE_WRITE_SEEDS=1 cargo \
         test -p tickwire-tests --test fuzz_corpus): {missing:#?}"
    );
}

#[test]
fn every_pinned_input_passes_its_target() {
    let mut failed = Vec::new();
    for &(target, run) in targets::TARGETS {
        let dir = corpus_dir(target);
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a readable folder").path())
            .collect();
        inputs.sort();
        assert!(
            inputs.len() >= MIN_PINNED_INPUTS,
            "{target}: {} pinned inputs in {}",
            inputs.len(),
            dir.display()
        );
        for path in inputs {
            let bytes = std::fs::read(&path).expect("a readable input");
            if catch_unwind(AssertUnwindSafe(|| run(&bytes))).is_err() {
                failed.push(path);
            }
        }
    }
    assert!(failed.is_empty(), "pinned fuzz inputs that fail their target: {failed:#?}");
}

/// The handshake seeds reach past the token check (so the fuzzer starts from requests the
/// server accepts), and a refused one is refused.
#[test]
fn handshake_seeds_with_a_valid_token_are_accepted() {
    let check = |seed: &str| {
        let bytes = std::fs::read(corpus_dir("handshake_headers").join(seed)).expect("a seed");
        let req = targets::request_from_bytes(&bytes);
        targets::handshake_states()
            .iter()
            .map(|state| tickwire_server::ws::check_handshake(&req, state).map(|a| a.subject))
            .collect::<Vec<_>>()
    };
    let fuzzer = Ok("fuzzer".to_owned());
    assert_eq!(check("seed-query-token"), [fuzzer.clone(), fuzzer.clone()]);
    let [dev, prod] = <[_; 2]>::try_from(check("seed-localhost-origin")).expect("two servers");
    assert_eq!(dev, fuzzer, "dev mode allows localhost pages");
    assert_eq!(prod.map_err(|(status, _)| status.as_u16()), Err(403));
    assert_eq!(check("seed-bearer-subprotocol")[1], fuzzer, "an allowed origin, a bearer token");
}
