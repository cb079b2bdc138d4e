//! `tickwire bots` through the CLI, a CI-sized load smoke test against an in-process server:
//! 50 bots for 10 s, all connect, no decode errors, every bot gets at least 90 % of the
//! snapshots, the report parses.
//!
//! A test binary of its own, so that no other test shares the machine's two cores with its
//! debug-built server and bots (`cargo test` runs test binaries one after another).

use std::process::Command;

use tickwire_server::bots::BotsReport;
use tickwire_tests::net;

const CLI: &str = env!("CARGO_BIN_EXE_tickwire-test-server");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_bots_for_ten_seconds() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let report_path =
        std::env::temp_dir().join(format!("tickwire-bots-smoke-{}.json", std::process::id()));
    let args: Vec<String> = [
        "bots",
        "--url",
        &format!("ws://{addr}/ws"),
        "--count",
        "50",
        "--duration",
        "10",
        "--seed",
        "7",
        "--behavior",
        "wander",
        "--ramp-up",
        "100",
        "--token",
        &net::token(),
        "--report",
        report_path.to_str().expect("UTF-8 temp path"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = tokio::task::spawn_blocking(move || Command::new(CLI).args(&args).output())
        .await
        .expect("joined")
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("rtt ms p50 / p95 / p99"), "summary table: {stdout}");

    let text = std::fs::read_to_string(&report_path).expect("report written");
    let _ = std::fs::remove_file(&report_path);
    let report = BotsReport::from_json(&text).expect("the report parses with every field");
    assert_eq!(report.bots.requested, 50);
    assert_eq!(report.bots.connected, 50, "{:?}", report.connect_errors);
    assert_eq!(report.bots.failed, 0);
    assert_eq!(report.bots.completed, 50, "{:?}", report.disconnects);
    assert_eq!(report.decode_errors, 0);
    assert_eq!(report.snapshots.expected_per_sec, 30.0);
    assert_eq!(report.per_bot.len(), 50);
    for bot in &report.per_bot {
        assert!(
            bot.snapshot_fraction >= 0.9,
            "bot-{} got {:.1}% of the snapshots ({} in {:.1} s); server ticks: {:?}",
            bot.index,
            bot.snapshot_fraction * 100.0,
            bot.snapshots,
            bot.active_secs,
            report.server
        );
        assert!(bot.active_secs > 8.5, "bot-{} ran {:.1} s", bot.index, bot.active_secs);
    }
    assert_eq!(report.snapshots.bots_below_90_percent, 0);
    // About ten pings per bot; a loopback round trip is well under a second even in debug.
    assert!(report.rtt_ms.samples >= 50 * 8, "{} RTT samples", report.rtt_ms.samples);
    assert!(report.rtt_ms.p50 > 0.0 && report.rtt_ms.p99 < 1_000.0, "{:?}", report.rtt_ms);
    assert!(report.bytes_received_per_bot_per_sec.min > 0.0);
    assert!(report.bytes_sent_per_bot_per_sec.min > 0.0);
    assert!(report.prediction.reconciliations > 0);
    let tick = report.server.as_ref().expect("server metrics read");
    assert!(tick.quantiles_are_bucket_upper_bounds);
    assert!(tick.ticks >= 500, "{} ticks in 10 s", tick.ticks);
    assert!(tick.tick_p50_seconds.is_some());
    server.shutdown().await;
}
