//! `tickwire bots` over real sockets against an in-process server: the conditioner through the
//! library API, bots over every transport, and the refusals of an unreachable server and bad
//! flags. The CLI's load smoke test is `bots_load.rs`, a test binary of its own.

use std::process::Command;
use std::time::Duration;

use tickwire_server::bots::{self, BotsConfig, BotsReport, ConditionerSpec, WsUrl};
use tickwire_server::link::{TransportKind, Trust};
use tickwire_tests::{links, net};

const CLI: &str = env!("CARGO_BIN_EXE_tickwire-test-server");

fn url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditioner_delays_both_ways() {
    let server = net::start(net::test_config()).await;
    let config = BotsConfig {
        url: WsUrl::parse(&url(server.local_addr())).expect("valid"),
        count: 3,
        duration: Duration::from_secs(4),
        seed: 1,
        game: "arena".into(),
        behavior: "wander".into(),
        ramp_up: 50.0,
        token: Some(net::token()),
        room: Some("conditioned".into()),
        matchmake: false,
        conditioner: Some("latency=60ms,jitter=10ms".parse::<ConditionerSpec>().expect("spec")),
        transport: None,
        trust: None,
        hold: false,
        progress_bar: false,
    };
    let report = bots::run(&config).await.expect("the run starts");
    assert_eq!(report.bots.completed, 3);
    assert_eq!(report.decode_errors, 0);
    // 60 ms each way plus up to 10 ms of jitter each way.
    assert!(report.rtt_ms.p50 >= 120.0 && report.rtt_ms.p50 < 400.0, "{:?}", report.rtt_ms);
    assert!(report.prediction.reconciliations > 0);
    assert!(report.snapshots.fraction_of_expected.min >= 0.8, "{:?}", report.snapshots);
    assert_eq!(report.conditioner_dropped, 0);
    let back = BotsReport::from_json(&report.to_json()).expect("reads back");
    assert_eq!(back.conditioner, config.conditioner);
    assert_eq!(back.bots.completed, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn unreachable_server_is_an_error() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = BotsConfig {
        url: WsUrl::parse(&format!("ws://127.0.0.1:{port}/ws")).expect("valid"),
        count: 1,
        duration: Duration::from_secs(1),
        seed: 1,
        game: "arena".into(),
        behavior: "idle".into(),
        ramp_up: 50.0,
        token: None,
        room: None,
        matchmake: false,
        conditioner: None,
        transport: None,
        trust: None,
        hold: false,
        progress_bar: false,
    };
    let err = bots::run(&config).await.expect_err("nothing listens");
    assert!(format!("{err:#}").contains("cannot reach the server"), "{err:#}");
}

#[test]
fn cli_refuses_bad_flags() {
    let check = |args: &[&str], code: i32, says: &str| {
        let out = Command::new(CLI).args(args).output().expect("the CLI runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    };
    let base = ["bots", "--duration", "1", "--report", "/dev/null"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().chain(extra.iter()).copied().collect()
    };
    check(&with(&["--url", "ws://127.0.0.1:1/ws", "--count", "0"]), 2, "--count");
    check(&with(&["--url", "http://127.0.0.1/ws", "--count", "1"]), 2, "not a ws:// or wss:// URL");
    check(&with(&["--url", "wss://127.0.0.1:1/ws", "--count", "1"]), 1, "pass --ca");
    check(
        &with(&["--url", "ws://127.0.0.1:1/ws", "--count", "1", "--transport", "quic"]),
        2,
        "unknown transport",
    );
    check(
        &with(&["--url", "ws://127.0.0.1:1/ws", "--count", "1", "--ca", "/nonexistent.pem"]),
        1,
        "/nonexistent.pem",
    );
    check(
        &with(&["--url", "ws://127.0.0.1:1/ws", "--count", "1", "--conditioner", "drop=1"]),
        2,
        "unknown conditioner setting",
    );
    check(&with(&["--url", "ws://127.0.0.1:1/ws", "--count", "1"]), 1, "cannot reach the server");
}

/// A run of `count` bots of the arena in `room` for `secs` over `transport`.
fn run_config(
    url: &str,
    room: &str,
    transport: Option<TransportKind>,
    trust: Option<Trust>,
) -> BotsConfig {
    BotsConfig {
        url: WsUrl::parse(url).expect("valid"),
        count: 4,
        duration: Duration::from_secs(4),
        seed: 3,
        game: "arena".into(),
        behavior: "wander".into(),
        ramp_up: 50.0,
        token: Some(net::token()),
        room: Some(room.into()),
        matchmake: false,
        conditioner: Some("latency=30ms".parse::<ConditionerSpec>().expect("spec")),
        transport,
        trust,
        hold: false,
        progress_bar: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_play_over_webtransport_with_the_conditioner_on_datagrams() {
    // A plain-HTTP server with a QUIC endpoint: the bots learn its port and certificate hash
    // from GET /api/transport and share one QUIC socket.
    let server = net::start(links::quic_config()).await;
    let config =
        run_config(&url(server.local_addr()), "wt", Some(TransportKind::WebTransport), None);
    let report = bots::run(&config).await.expect("the run starts");
    assert_eq!(report.transport, TransportKind::WebTransport);
    assert_eq!(report.bots.completed, 4, "{:?}", report.connect_errors);
    assert_eq!(report.decode_errors, 0);
    assert!(report.snapshots.fraction_of_expected.min >= 0.8, "{:?}", report.snapshots);
    // 30 ms each way on datagrams and stream alike; an input is echoed after a round trip.
    assert!(report.rtt_ms.p50 >= 60.0, "{:?}", report.rtt_ms);
    assert!(report.input_echo_ms.samples > 100 && report.input_echo_ms.p50 >= 60.0);
    assert!(report.summary().contains("webtransport"));
    let back = BotsReport::from_json(&report.to_json()).expect("reads back");
    assert_eq!(back.transport, TransportKind::WebTransport);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_play_over_wss_and_webtransport_behind_the_dev_certificate() {
    let mut config = net::test_config();
    config.tls = Some(tickwire_server::tls::TlsSource::DevCert);
    let server = net::start(config).await;
    let hash = server.state().tls_cert_sha256.expect("a dev certificate");
    let wss = format!("wss://localhost:{}/ws", server.local_addr().port());
    for transport in [None, Some(TransportKind::WebTransport)] {
        let trust = Some(Trust::Hashes(vec![hash]));
        let config = run_config(&wss, "tls", transport, trust);
        let report = bots::run(&config).await.expect("the run starts");
        assert_eq!(report.transport, transport.unwrap_or(TransportKind::Wss));
        assert_eq!(report.bots.completed, 4, "{transport:?}: {:?}", report.connect_errors);
        assert_eq!(report.decode_errors, 0);
        assert!(report.snapshots.fraction_of_expected.min >= 0.8, "{:?}", report.snapshots);
    }
    // Without a way to trust the certificate, the run says what to pass.
    let err = bots::run(&run_config(&wss, "tls", None, None)).await.expect_err("untrusted");
    assert!(format!("{err:#}").contains("--ca"), "{err:#}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditioner_loss_drops_datagrams_and_delays_ordered_messages() {
    // Duplication and reordering touch only the datagrams.
    let server = net::start(links::quic_config()).await;
    let lossy = |transport| {
        let mut config = run_config(&url(server.local_addr()), "lossy", Some(transport), None);
        config.conditioner =
            Some("latency=20ms,loss=5%,duplicate=5%,reorder=5%".parse().expect("spec"));
        config
    };
    // WebTransport: inputs and snapshots are datagrams, lost outright; the redundancy of the
    // inputs and the next snapshot cover it.
    let wt = bots::run(&lossy(TransportKind::WebTransport)).await.expect("runs");
    assert_eq!(wt.bots.completed, 4, "{:?}", wt.connect_errors);
    assert!(wt.conditioner_lost > 30, "{} datagrams lost", wt.conditioner_lost);
    assert!(wt.conditioner_duplicated > 30, "{} duplicated", wt.conditioner_duplicated);
    assert!(wt.conditioner_reordered > 30, "{} reordered", wt.conditioner_reordered);
    assert_eq!(wt.decode_errors, 0);
    assert!(wt.snapshots.fraction_of_expected.mean >= 0.85, "{:?}", wt.snapshots);
    // WebSocket: nothing is lost, a lost segment is a retransmission late and holds what
    // follows, so the input → echo tail grows by about that.
    let ws = bots::run(&lossy(TransportKind::Ws)).await.expect("runs");
    assert_eq!(ws.bots.completed, 4, "{:?}", ws.connect_errors);
    assert_eq!(ws.conditioner_lost, 0);
    assert_eq!((ws.conditioner_duplicated, ws.conditioner_reordered), (0, 0));
    assert!(ws.conditioner_retransmitted > 30, "{} retransmitted", ws.conditioner_retransmitted);
    assert_eq!(ws.decode_errors, 0);
    assert!(ws.input_echo_ms.p99 >= 200.0, "{:?}", ws.input_echo_ms);
    assert!(
        wt.input_echo_ms.p99 < ws.input_echo_ms.p99,
        "{:?} vs {:?}",
        wt.input_echo_ms,
        ws.input_echo_ms
    );
    let back = BotsReport::from_json(&wt.to_json()).expect("reads back");
    assert_eq!(back.conditioner.map(|c| c.loss_per_10k), Some(500));
    assert_eq!(back.conditioner.map(|c| c.duplicate_per_10k), Some(500));
    assert_eq!(back.conditioner_duplicated, wt.conditioner_duplicated);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_sessions_stay_idle_and_alive_on_every_transport() {
    // A short idle timeout with heartbeats well inside it: held sessions send nothing but
    // heartbeat answers and must outlive several timeouts.
    let mut config = links::quic_config();
    config.limits.idle_timeout = Duration::from_millis(800);
    config.limits.ping_interval = Duration::from_millis(200);
    let server = net::start(config).await;
    for transport in [TransportKind::Ws, TransportKind::WebTransport] {
        let room = format!("held-{transport}");
        let mut run = run_config(&url(server.local_addr()), &room, Some(transport), None);
        run.count = 20;
        run.duration = Duration::from_secs(3);
        run.conditioner = None;
        run.hold = true;
        let report = bots::run(&run).await.expect("runs");
        assert_eq!(report.bots.completed, 20, "{transport}: {}", report.summary());
        assert!(report.snapshots.fraction_of_expected.min >= 0.8, "{:?}", report.snapshots);
        // No input and no ping went out: nothing measured on the bots' side.
        assert_eq!(report.rtt_ms.samples, 0);
        assert_eq!(report.input_echo_ms.samples, 0);
    }
    // Every idle timeout would have been counted; none was.
    let timeout = tickwire_server::metrics::DisconnectKind::Server(
        tickwire_shared::protocol::DisconnectReason::Timeout,
    );
    assert_eq!(server.state().metrics.disconnects(timeout), 0);
    server.shutdown().await;
}
