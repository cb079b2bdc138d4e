//! What attacks cost the server in memory, measured on a real `tickwire serve` process
//! (`VmRSS` of `/proc/<pid>/status`) while they run: clients that stop reading, and one address
//! or many opening room after room. Each test prints its figures (`--nocapture`) and fails when
//! the server's memory grows past a bound the unhardened server broke (36.9 MB for 50 slow
//! readers; 99 MB and 303 threads for 300 rooms from one address).
//!
//! `TICKWIRE_ATTACK_BIN` runs the attacks against another build (the release binary, for the
//! figures in docs/SECURITY.md) and `TICKWIRE_ATTACK_MAX_ROOMS` sets the room limit of the flood
//! from many addresses (default 64 here; the server's own default is 256).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tickwire_tests::net::{self, ServerProcess};

fn server_bin() -> String {
    std::env::var("TICKWIRE_ATTACK_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tickwire-test-server").to_owned())
}

/// Resident memory of the server in MiB.
fn rss_mib(server: &ServerProcess) -> f64 {
    server.status("VmRSS") as f64 / 1024.0
}

/// Samples the server's RSS every 50 ms for `how_long` and returns the largest, in MiB.
async fn peak_rss_over(server: &ServerProcess, how_long: Duration) -> f64 {
    let end = Instant::now() + how_long;
    let mut peak = rss_mib(server);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
        peak = peak.max(rss_mib(server));
    }
    peak
}

/// The open rooms, from `GET /api/rooms`.
async fn open_rooms(server: &ServerProcess) -> usize {
    let (status, body) = net::http(server.addr, "GET", "/api/rooms").await;
    assert_eq!(status, 200, "{body}");
    body.matches("\"id\"").count()
}

/// 50 clients join and never read a byte. Each is closed as too slow within seconds, and what
/// the server holds for them meanwhile is its bounded outbox and a 16 KiB kernel buffer.
#[tokio::test]
async fn fifty_clients_that_stop_reading_cost_little_memory() {
    let server = ServerProcess::start(&server_bin(), &["--npcs", "8"]).await;
    // Warm up: one ordinary session, so that the room and the runtime have their memory.
    let (_warm, _) = net::join_as(server.addr, "warm", "&name=warm").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_mib(&server);
    let mut silent = Vec::new();
    for i in 0..50 {
        // The handshake is read; after it, nothing is.
        silent.push(net::connect(server.addr, &format!("&name=silent{i}")).await);
    }
    let peak = peak_rss_over(&server, Duration::from_secs(8)).await;
    let after = rss_mib(&server);
    println!(
        "slow readers: RSS {before:.1} MiB before, peak {peak:.1} MiB with 50 clients that do \
         not read, {after:.1} MiB 8 s later"
    );
    assert!(peak - before < 24.0, "50 slow readers grew the server by {:.1} MiB", peak - before);
    drop(silent);
}

/// One address asks for 300 named rooms, then many addresses ask for a room each until the
/// server's limit: the rooms stop at the limits, and memory and threads with them.
#[tokio::test]
async fn a_room_flood_stops_at_the_limits() {
    let max_rooms: usize =
        std::env::var("TICKWIRE_ATTACK_MAX_ROOMS").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let max = max_rooms.to_string();
    let server = ServerProcess::start(&server_bin(), &["--max-rooms", &max]).await;
    let addr = server.addr;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (before, threads_before) = (rss_mib(&server), server.status("Threads"));

    // One address: join a new named room and go, 300 times.
    let started = Instant::now();
    let mut opened = 0;
    for i in 0..300 {
        let query = format!("&name=f{i}&room=flood-{i}");
        if net::join_from(Ipv4Addr::LOCALHOST, addr, "flooder", &query).await.is_ok() {
            opened += 1;
        }
    }
    let one_address = open_rooms(&server).await;
    let rss_one = rss_mib(&server);
    println!(
        "room flood, one address: {opened} of 300 named rooms opened in {:.1} s; RSS \
         {before:.1} → {rss_one:.1} MiB",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(opened, 8, "the per-address limit (8 by default)");
    assert_eq!(one_address, 8);

    // Many addresses (127.0.0.2, .3, …), each up to its own limit, until the server's.
    let mut refused = 0;
    'flood: for host in 2..=254u8 {
        for i in 0..8 {
            let query = format!("&name=g{i}&room=flood-{host}-{i}");
            let from = Ipv4Addr::new(127, 0, 0, host);
            if let Err((code, reason)) = net::join_from(from, addr, "flooder", &query).await {
                assert_eq!(code, 1013, "{reason}");
                refused += 1;
                if refused >= 20 {
                    break 'flood;
                }
            }
        }
    }
    let rooms = open_rooms(&server).await;
    let peak = peak_rss_over(&server, Duration::from_secs(2)).await;
    let threads = server.status("Threads");
    println!(
        "room flood, many addresses: {rooms} rooms open (limit {max_rooms}); RSS peak {peak:.1} \
         MiB ({:.2} MiB a room); threads {threads_before} → {threads}",
        (peak - before) / rooms as f64
    );
    assert_eq!(rooms, max_rooms);
    assert!(threads <= threads_before + 1, "{threads_before} → {threads} threads");
    let per_room = (peak - before) / rooms as f64;
    assert!(per_room < 1.0, "{per_room:.2} MiB a room");
}
