//! The live network inspector (issue 18, item 1): `GET /api/inspect` and its stream show every
//! room and its clients (transport, round trip, ack lag, input buffer, bytes) from real
//! sessions, and are off in production unless asked for, behind the admin token when there is
//! one.

use std::time::Duration;

use serde_json::Value;
use tickwire_server::config::ServerConfig;
use tickwire_shared::codec;
use tickwire_shared::games::arena::ArenaInput;
use tickwire_shared::protocol::{ClientMessage, InputBatch, ServerMessage};
use tickwire_tests::net::{self, Received};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "an-admin-token-of-at-least-32-bytes!!";

fn inspecting() -> ServerConfig {
    ServerConfig { inspect: true, npc_count: 2, ..net::test_config() }
}

/// Polls `GET /api/inspect` until `ok` holds (15 s at most).
async fn inspect_until(
    addr: std::net::SocketAddr,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = net::http(addr, "GET", "/api/inspect").await;
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if ok(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_inspector_shows_each_clients_link_from_real_sessions() {
    let server = net::start(inspecting()).await;
    let addr = server.local_addr();
    let mut players = Vec::new();
    for name in ["ann", "bob"] {
        let (ws, welcome) = net::join_as(addr, name, &format!("&name={name}&room=seen")).await;
        players.push((ws, welcome));
    }
    // Two seconds of play: inputs acknowledging the newest snapshot, so the room knows how far
    // behind each client is.
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut seq = 0u32;
    while tokio::time::Instant::now() < until {
        for (ws, _) in &mut players {
            if let Received::Message(ServerMessage::Snapshot(s)) = net::recv(ws).await {
                let input = ClientMessage::Input(InputBatch {
                    ack: Some(s.tick),
                    first_seq: seq,
                    frames: codec::encode_inputs(&[ArenaInput::default()]).unwrap(),
                    view: None,
                });
                net::send(ws, &input).await;
            }
        }
        seq += 1;
    }
    let v = inspect_until(addr, "two clients with traffic", |v| {
        v["rooms"].as_array().is_some_and(|rooms| {
            rooms.iter().any(|r| {
                r["id"] == "seen"
                    && r["clients"].as_array().is_some_and(|c| {
                        c.len() == 2
                            && c.iter().all(|c| {
                                c["bytes_out_per_sec"].as_f64().unwrap_or(0.0) > 0.0
                                    && c["bytes_in_per_sec"].as_f64().unwrap_or(0.0) > 0.0
                                    && c["ack_lag_ticks"].is_u64()
                            })
                    })
                    && r["components"].as_array().is_some_and(|c| !c.is_empty())
            })
        })
    })
    .await;
    let room = v["rooms"].as_array().unwrap().iter().find(|r| r["id"] == "seen").unwrap();
    assert_eq!(room["game"], "arena");
    assert_eq!(room["players"], 2);
    assert!(room["entities"].as_u64().unwrap() >= 4, "players, NPCs, pickups: {room:#}");
    let stages: Vec<&str> = room["stages_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["inputs", "simulate", "events", "replicate"]);
    // Where the snapshots' bytes go: the arena's components, shares adding up to the whole.
    let components = room["components"].as_array().unwrap();
    let names: Vec<&str> = components.iter().map(|c| c["component"].as_str().unwrap()).collect();
    assert_eq!(names[0], "Position", "{room:#}");
    assert_eq!(names.last(), Some(&"ids, kinds and masks"));
    let shares: f64 = components.iter().map(|c| c["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-6, "{room:#}");
    let simulate = &room["stages_us"][1]["mean_us"];
    assert!(simulate.as_f64().unwrap() > 0.0, "the schedule takes time: {room:#}");
    for c in room["clients"].as_array().unwrap() {
        assert_eq!(c["transport"], "websocket");
        assert!(["ann", "bob"].contains(&c["name"].as_str().unwrap()), "{c:#}");
        let lag = c["ack_lag_ticks"].as_u64().unwrap();
        assert!(lag < 60, "acknowledging as it goes: {c:#}");
        assert!(c["input_buffer"].as_u64().unwrap() <= 64, "{c:#}");
        // Snapshots at 30 a second are the most of what a client is sent.
        let out = c["bytes_out_per_sec"].as_f64().unwrap();
        assert!((100.0..100_000.0).contains(&out), "{c:#}");
    }
    let entities: Vec<u64> = players.iter().map(|(_, w)| u64::from(w.entity.0)).collect();
    for c in room["clients"].as_array().unwrap() {
        assert!(entities.contains(&c["entity"].as_u64().unwrap()), "{c:#}");
    }

    // The stream sends the same, again and again.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /api/inspect/stream HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while String::from_utf8_lossy(&got).matches("data: {").count() < 2 {
        let n =
            tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await.expect("events").unwrap();
        assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("text/event-stream"), "{text}");
    assert!(text.contains(r#""id":"seen""#), "{text}");
}

#[tokio::test]
async fn the_inspector_is_off_in_production_and_behind_the_admin_token() {
    // A production server (a JWT secret) without --inspect: nothing to see.
    let server = net::start(net::test_config()).await;
    let (status, _) = net::http(server.local_addr(), "GET", "/api/inspect").await;
    assert_eq!(status, 404);
    let (status, _) = net::http(server.local_addr(), "GET", "/inspect").await;
    assert_eq!(status, 404);

    let config = ServerConfig { admin_token: Some(ADMIN.into()), ..inspecting() };
    let server = net::start(config).await;
    let addr = server.local_addr();
    let (status, body) = net::http(addr, "GET", "/api/inspect").await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = net::http(addr, "GET", "/api/inspect?token=wrong-token").await;
    assert_eq!(status, 401);
    let (status, body) = net::http(addr, "GET", &format!("/api/inspect?token={ADMIN}")).await;
    assert_eq!(status, 200, "{body}");
    let auth = format!("Bearer {ADMIN}");
    let (status, _, _) =
        net::http_request(addr, "GET", "/api/inspect", &[("Authorization", auth.as_str())]).await;
    assert_eq!(status, 200);
}
