//! `tickwire-benches`: criterion benchmarks (`benches/benches/`) and load-bench scripts.
