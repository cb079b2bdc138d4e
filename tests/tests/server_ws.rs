//! The server over real sockets on 127.0.0.1: what only sockets show — the handshake's refusals,
//! size and rate limits with their close codes, HTTP routes, metrics, and SIGTERM.

use std::time::Duration;

use futures_util::SinkExt;
use tickwire_shared::codec;
use tickwire_shared::games::arena::ArenaInput;
use tickwire_shared::protocol::{ClientMessage, InputBatch, SUBPROTOCOL, ServerMessage};
use tickwire_tests::net::{self, Received};
use tokio_tungstenite::tungstenite::Message;

use tickwire_tests::net::input;

#[tokio::test]
async fn handshake_refusals_say_why_before_upgrading() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let token = net::token();

    // 401: no token, then a bad one.
    let (status, body) = net::connect_with(addr, "v=7", &[]).await.unwrap_err();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing token"), "{body}");
    let (status, body) = net::connect_with(addr, "v=7&token=a.b.c", &[]).await.unwrap_err();
    assert_eq!(status, 401, "{body}");

    // 403: a foreign origin; the same origin passes (localhost pages only in dev mode:
    // tests/tests/hardening.rs).
    let q = format!("v=7&token={token}");
    let (status, body) =
        net::connect_with(addr, &q, &[("Origin", "https://evil.example")]).await.unwrap_err();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("evil.example"), "{body}");
    let same = format!("http://{addr}");
    assert!(net::connect_with(addr, &q, &[("Origin", same.as_str())]).await.is_ok());

    // 426: wrong or missing version; the subprotocol alone is enough.
    let (status, body) =
        net::connect_with(addr, &format!("v=1&token={token}"), &[]).await.unwrap_err();
    // (Version 1 is the protocol before games were plug-ins: refused.)
    assert_eq!(status, 426, "{body}");
    assert!(body.contains(SUBPROTOCOL), "{body}");
    let (status, _) = net::connect_with(addr, &format!("token={token}"), &[]).await.unwrap_err();
    assert_eq!(status, 426);
    let by_subprotocol = net::connect_with(
        addr,
        &format!("token={token}"),
        &[("Sec-WebSocket-Protocol", SUBPROTOCOL)],
    )
    .await;
    assert!(by_subprotocol.is_ok(), "{:?}", by_subprotocol.err());

    // 400: a bad join query.
    let (status, body) =
        net::connect_with(addr, &format!("v=7&token={token}&room=a%20b"), &[]).await.unwrap_err();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("room id"), "{body}");
    let (status, body) =
        net::connect_with(addr, &format!("v=7&token={token}&game=chess"), &[]).await.unwrap_err();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown game \"chess\"") && body.contains("arena"), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn welcome_comes_first_then_snapshots() {
    let server = net::start(net::test_config()).await;
    let mut ws = net::connect(server.local_addr(), "&name=ann").await;
    let Received::Message(ServerMessage::Welcome(welcome)) = net::recv(&mut ws).await else {
        panic!("first message is not Welcome");
    };
    assert_eq!(welcome.tick_rate, 60);
    assert_eq!(welcome.snapshot_rate, 30);
    assert!(!welcome.resume_token.is_empty());
    let mut snapshots = 0;
    while snapshots < 3 {
        if let Received::Message(ServerMessage::Snapshot(s)) = net::recv(&mut ws).await {
            // No ack sent, so every snapshot is full.
            assert_eq!(s.baseline, None);
            snapshots += 1;
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversize_message_closes_with_1009() {
    let server = net::start(net::test_config()).await;
    let mut ws = net::connect(server.local_addr(), "").await;
    ws.send(Message::Binary(vec![0u8; 4096].into())).await.unwrap();
    let (code, reason) = net::expect_close(&mut ws).await;
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("1024"), "{reason}");
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_text_messages_close_with_1002() {
    let server = net::start(net::test_config()).await;
    let mut ws = net::connect(server.local_addr(), "").await;
    ws.send(Message::Binary(vec![0xff, 0xff, 0xff].into())).await.unwrap();
    let (code, reason) = net::expect_close(&mut ws).await;
    assert_eq!(code, 1002, "{reason}");
    let mut ws = net::connect(server.local_addr(), "").await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    let (code, reason) = net::expect_close(&mut ws).await;
    assert_eq!(code, 1002, "{reason}");
    assert!(reason.contains("binary"), "{reason}");
    // A well-formed envelope whose frames the game refuses (a button that means nothing) is
    // found by the room, which decodes them with its game's type: 1002 as well, and counted.
    let mut ws = net::connect(server.local_addr(), "").await;
    let bad = ArenaInput {
        buttons: tickwire_shared::games::arena::Buttons(0x80),
        ..ArenaInput::default()
    };
    let msg = ClientMessage::Input(InputBatch {
        ack: None,
        first_seq: 0,
        frames: codec::encode_inputs(&[bad]).unwrap(),
        view: None,
    });
    ws.send(Message::Binary(codec::encode_client(&msg).unwrap().into())).await.unwrap();
    let (code, reason) = net::expect_close(&mut ws).await;
    assert_eq!(code, 1002, "{reason}");
    assert!(reason.contains("unknown button bits 0x80"), "{reason}");
    // The server is still fine.
    let (status, body) = net::http(server.local_addr(), "GET", "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_flood_closes_with_1008_while_a_neighbour_keeps_its_snapshots() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let mut good = net::connect(addr, "&room=flood&name=good").await;
    let mut bad = net::connect(addr, "&room=flood&name=bad").await;

    let flooder = tokio::spawn(async move {
        // Far past 120 messages/s with a burst of 240.
        for seq in 0..2_000u32 {
            if net::send_result(&mut bad, &input(seq)).await.is_err() {
                break;
            }
        }
        net::expect_close(&mut bad).await
    });

    // Meanwhile the good client receives snapshots at the configured rate: at 30 Hz, 30
    // snapshots take one second; allow twice that.
    let start = tokio::time::Instant::now();
    let mut snapshots = 0;
    while snapshots < 30 {
        if let Received::Message(ServerMessage::Snapshot(_)) = net::recv(&mut good).await {
            snapshots += 1;
        }
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "30 snapshots took {took:?}");
    let (code, reason) = flooder.await.unwrap();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("rate"), "{reason}");
    server.shutdown().await;
}

#[tokio::test]
async fn http_routes_and_metric_names() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let _ws = net::connect(addr, "&room=metrics").await;
    let (status, body) = net::http(addr, "GET", "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "tickwire_connections",
        "tickwire_rooms",
        "tickwire_players",
        "tickwire_tick_duration_seconds_bucket",
        "tickwire_tick_overruns_total",
        "tickwire_tick_duration_max_seconds",
        "tickwire_input_to_snapshot_seconds_bucket",
        "tickwire_bytes_sent_total",
        "tickwire_bytes_received_total",
        "tickwire_snapshot_bytes_bucket{kind=\"full\"",
        "tickwire_snapshot_bytes_bucket{kind=\"delta\"",
        "tickwire_decode_errors_total",
        "tickwire_disconnects_total{reason=\"rate_limited\"}",
    ] {
        assert!(body.contains(name), "/metrics lacks {name}");
    }
    assert!(body.contains("tickwire_connections 1"), "{body}");
    let (status, body) = net::http(addr, "GET", "/api/rooms").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"id\":\"metrics\"") && body.contains("\"capacity\":32"), "{body}");
    assert!(body.contains("\"game\":\"arena\""), "{body}");
    let (status, body) = net::http(addr, "POST", "/api/guest").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"token\":\"ey"), "{body}");
    let (status, _) = net::http(addr, "GET", "/../etc/passwd").await;
    assert!(status == 400 || status == 404, "{status}");
    let (status, body) = net::http(addr, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("Tickwire"), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn per_ip_connection_limit_answers_429() {
    let mut config = net::test_config();
    config.limits.max_connections_per_ip = 2;
    let server = net::start(config).await;
    let addr = server.local_addr();
    let _a = net::connect(addr, "").await;
    let _b = net::connect(addr, "").await;
    let q = format!("v=7&token={}", net::token());
    let (status, body) = net::connect_with(addr, &q, &[]).await.unwrap_err();
    assert_eq!(status, 429, "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_resumes_as_the_same_entity_over_sockets() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let mut ws = net::connect(addr, "&name=ann").await;
    let Received::Message(ServerMessage::Welcome(first)) = net::recv(&mut ws).await else {
        panic!("no welcome");
    };
    drop(ws); // the network fails: no close handshake
    let mut ws = net::connect(addr, &format!("&name=ann&resume={}", first.resume_token)).await;
    let Received::Message(ServerMessage::Welcome(again)) = net::recv(&mut ws).await else {
        panic!("no welcome on resume");
    };
    assert_eq!(again.entity, first.entity);
    assert_eq!(again.room, first.room);
    assert_eq!(again.resume_token, first.resume_token);
    // An unknown token is just a fresh join.
    let mut other = net::connect(addr, "&name=bob&resume=nope").await;
    let Received::Message(ServerMessage::Welcome(fresh)) = net::recv(&mut other).await else {
        panic!("no welcome");
    };
    assert_ne!(fresh.entity, first.entity);
    server.shutdown().await;
}

#[tokio::test]
async fn the_debug_drop_endpoint_is_off_by_default_and_drops_without_a_close_frame() {
    let server = net::start(net::test_config()).await;
    let (status, _) = net::http(server.local_addr(), "POST", "/api/debug/drop?entity=1").await;
    assert_eq!(status, 405, "debug endpoints must be off by default");
    server.shutdown().await;

    let mut config = net::test_config();
    config.debug_endpoints = true;
    let server = net::start(config).await;
    let addr = server.local_addr();
    let mut ws = net::connect(addr, "").await;
    let Received::Message(ServerMessage::Welcome(w)) = net::recv(&mut ws).await else {
        panic!("no welcome");
    };
    let (status, _) =
        net::http(addr, "POST", &format!("/api/debug/drop?entity={}", w.entity.0)).await;
    assert_eq!(status, 202);
    loop {
        match net::recv(&mut ws).await {
            Received::Ended => break,
            Received::Close(code, reason) => panic!("got a close frame {code} {reason}"),
            Received::Message(_) => {}
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_by_the_idle_timeout() {
    let mut config = net::test_config();
    config.limits.idle_timeout = Duration::from_millis(400);
    config.limits.ping_interval = Duration::from_secs(60);
    let server = net::start(config).await;
    let mut ws = net::connect(server.local_addr(), "").await;
    // Not reading means not answering pings: wait until the server counts the timeout.
    let metrics = server.state().metrics.clone();
    let timeout = tickwire_server::metrics::DisconnectKind::Server(
        tickwire_shared::protocol::DisconnectReason::Timeout,
    );
    let deadline = tokio::time::Instant::now() + net::DEADLINE;
    while metrics.disconnects(timeout) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no idle timeout");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, reason) = net::expect_close(&mut ws).await;
    assert_eq!(code, 1001, "{reason}");
    assert!(reason.contains("idle"), "{reason}");
    server.shutdown().await;
}

#[tokio::test]
async fn input_to_snapshot_latency_is_measured_per_applied_input() {
    let server = net::start(net::test_config()).await;
    let mut ws = net::connect(server.local_addr(), "&room=latency").await;
    let metrics = server.state().metrics.clone();
    assert_eq!(metrics.input_to_snapshot.count(), 0);
    // Three inputs, each sent after the previous one is echoed: each is one observation, taken
    // when the first snapshot echoing it has been handed to the socket. Each sequence number
    // is a tick, so a frame sent later is numbered a few ticks past the slot echoed last (the
    // room runs one a tick), or it would come after its tick and not be applied.
    let mut seq = 0;
    for round in 0..3 {
        net::send(&mut ws, &input(seq)).await;
        let echoed = loop {
            if let Received::Message(ServerMessage::Snapshot(s)) = net::recv(&mut ws).await
                && let Some(echo) = s.last_input_seq.filter(|&e| e >= seq)
            {
                break echo;
            }
        };
        seq = echoed + 4;
        // Observed right after the send returns, which may be just after we read it.
        let deadline = tokio::time::Instant::now() + net::DEADLINE;
        while metrics.input_to_snapshot.count() < round + 1 {
            assert!(tokio::time::Instant::now() < deadline, "input {round} not measured");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(metrics.input_to_snapshot.count(), round + 1);
    }
    let (_, body) = net::http(server.local_addr(), "GET", "/metrics").await;
    assert!(body.contains("tickwire_input_to_snapshot_seconds_count 3"), "{body}");
    server.shutdown().await;
}
