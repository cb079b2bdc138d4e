//! The behaviour suite over every transport: WebSocket and WebTransport (QUIC) on one server,
//! WSS and WebTransport behind the development certificate. Join, inputs (datagrams on QUIC),
//! snapshots, chat, resume across transports, the session limits with their close codes, and
//! graceful shutdown.

use std::time::Duration;

use tickwire_server::link::{Link, TransportKind};
use tickwire_shared::client::{Client, ClientConfig};
use tickwire_shared::codec;
use tickwire_shared::games::arena::{ArenaGame, ArenaInput};
use tickwire_shared::protocol::{ClientMessage, DisconnectReason, ServerMessage};
use tickwire_tests::links::{self, Got, PLAIN_AND_QUIC};
use tickwire_tests::net;

use tickwire_tests::net::input;

#[tokio::test]
async fn join_inputs_snapshots_and_chat_over_every_transport() {
    let server = net::start(links::quic_config()).await;
    for kind in PLAIN_AND_QUIC {
        let room = format!("&room=suite-{kind}&name=ann");
        let (mut link, welcome) = links::join(&server, kind, "ann", &room).await;
        assert_eq!(link.kind(), kind);
        assert_eq!(welcome.tick_rate, 60);
        // Inputs (datagrams on WebTransport) are applied: a snapshot acknowledges the last.
        for seq in 0..5 {
            links::send(&mut link, &input(seq)).await;
        }
        let mut snapshots = 0;
        loop {
            if let Got::Message(ServerMessage::Snapshot(s)) = links::next(&mut link).await {
                snapshots += 1;
                // The echo is the slot of the last tick run: it reaches 4, then goes on.
                if s.last_input_seq.is_some_and(|e| e >= 4) {
                    break;
                }
            }
        }
        assert!(snapshots >= 1);
        // Chat goes on the reliable stream and comes back attributed.
        links::send(&mut link, &ClientMessage::Chat { text: format!("hi over {kind}") }).await;
        loop {
            if let Got::Message(ServerMessage::Chat { from, text, .. }) =
                links::next(&mut link).await
            {
                assert_eq!(from, welcome.entity);
                assert_eq!(text, format!("hi over {kind}"));
                break;
            }
        }
        // Leaving closes with 1000 after the Disconnect.
        links::send(&mut link, &ClientMessage::Leave).await;
        let (code, _, said) = links::expect_close(&mut link).await;
        assert_eq!((code, said), (1000, Some(DisconnectReason::Left)), "{kind}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_player_dropped_on_one_transport_resumes_on_the_other() {
    let server = net::start(links::quic_config()).await;
    for (from, to) in [
        (TransportKind::WebTransport, TransportKind::Ws),
        (TransportKind::Ws, TransportKind::WebTransport),
    ] {
        let room = format!("&room=resume-{from}&name=ann");
        let (link, first) = links::join(&server, from, "ann", &room).await;
        link.abort(); // the network fails
        let query = format!("{room}&resume={}", first.resume_token);
        let (mut again, welcome) = links::join(&server, to, "ann", &query).await;
        assert_eq!(welcome.entity, first.entity, "{from} → {to}");
        assert_eq!(welcome.room, first.room);
        // Snapshots flow on the new transport.
        loop {
            if let Got::Message(ServerMessage::Snapshot(_)) = links::next(&mut again).await {
                break;
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_session_limits_hold_over_every_transport() {
    let server = net::start(links::quic_config()).await;
    for kind in PLAIN_AND_QUIC {
        // Too large (on WebTransport, a frame announcing more than the limit): 1009.
        let mut link = links::open(&server, kind, "ann", "").await;
        link.send_reliable(&[0u8; 4096]).await.unwrap();
        let (code, reason, said) = links::expect_close(&mut link).await;
        assert_eq!(code, 1009, "{kind}: {reason}");
        assert_eq!(said, Some(DisconnectReason::MessageTooLarge));
        // Malformed: 1002.
        let mut link = links::open(&server, kind, "ann", "").await;
        link.send_reliable(&[0xff, 0xff, 0xff]).await.unwrap();
        let (code, reason, _) = links::expect_close(&mut link).await;
        assert_eq!(code, 1002, "{kind}: {reason}");
        // A flood of inputs (datagrams on WebTransport): 1008 rate limited.
        let mut link = links::open(&server, kind, "ann", "").await;
        for seq in 0..2_000 {
            let bytes = codec::encode_client(&input(seq)).unwrap();
            if link.send(bytes).await.is_err() {
                break;
            }
            if seq % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let (code, reason, said) = links::expect_close(&mut link).await;
        assert_eq!(code, 1008, "{kind}: {reason}");
        assert_eq!(said, Some(DisconnectReason::RateLimited));
    }
    let (_, body) = net::http(server.local_addr(), "GET", "/healthz").await;
    assert_eq!(body, "ok");
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_by_the_idle_timeout_over_every_transport() {
    let mut config = links::quic_config();
    config.limits.idle_timeout = Duration::from_millis(500);
    // No heartbeats: a client that sends nothing is silent.
    config.limits.ping_interval = Duration::from_secs(60);
    let server = net::start(config).await;
    for kind in PLAIN_AND_QUIC {
        let mut link = links::open(&server, kind, "ann", "").await;
        let (code, reason, said) = links::expect_close(&mut link).await;
        assert_eq!(code, 1001, "{kind}: {reason}");
        assert_eq!(said, Some(DisconnectReason::Timeout), "{kind}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn heartbeats_keep_an_idle_webtransport_session_alive() {
    let mut config = links::quic_config();
    config.limits.idle_timeout = Duration::from_millis(600);
    config.limits.ping_interval = Duration::from_millis(100);
    let server = net::start(config).await;
    // The link answers the server's empty datagrams; it sends nothing else for 2 s (over three
    // idle timeouts) and is still welcome to snapshots.
    let (mut link, _) = links::join(&server, TransportKind::WebTransport, "ann", "").await;
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        match links::next(&mut link).await {
            Got::Message(_) => {}
            other => panic!("the session ended: {other:?}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_bots_own_webtransport_client_plays_a_whole_session() {
    // The bots' client on the server's QUIC runtime (the suite's is wtransport's): join,
    // inputs as datagrams, a keyframe too large for a datagram (on its own stream), heartbeats
    // answered through several idle timeouts, chat, leave with 1000; a refusal is an error.
    let mut config = links::quic_config();
    config.npc_count = 200;
    config.limits.idle_timeout = Duration::from_millis(600);
    config.limits.ping_interval = Duration::from_millis(100);
    let server = net::start(config).await;
    let mut link = links::open_own_webtransport(&server, "ann", "&room=own").await.unwrap();
    assert_eq!(link.kind(), TransportKind::WebTransport);
    let welcome = match links::next(&mut link).await {
        Got::Message(ServerMessage::Welcome(w)) => w,
        other => panic!("expected a welcome, got {other:?}"),
    };
    let probe = codec::encode_client(&input(0)).unwrap();
    assert!(link.sends_as_datagram(&probe), "an input goes as a datagram");
    for seq in 0..5 {
        links::send(&mut link, &input(seq)).await;
    }
    // A keyframe of 200 NPCs is larger than any datagram the path takes: it came on a stream.
    let (mut acked, mut streamed) = (false, false);
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let give_up = until + net::DEADLINE;
    while !(acked && streamed) || tokio::time::Instant::now() < until {
        assert!(tokio::time::Instant::now() < give_up, "acked {acked}, keyframe {streamed}");
        match links::next(&mut link).await {
            Got::Message(ServerMessage::Snapshot(s)) => {
                acked |= s.last_input_seq.is_some_and(|e| e >= 4);
                let bytes = codec::encode_server(&ServerMessage::Snapshot(s)).unwrap();
                streamed |= bytes.len() > 1500;
            }
            Got::Message(_) => {}
            other => panic!("the session ended: {other:?}"),
        }
    }
    links::send(&mut link, &ClientMessage::Chat { text: "own".into() }).await;
    loop {
        if let Got::Message(ServerMessage::Chat { from, text, .. }) = links::next(&mut link).await {
            assert_eq!((from, text.as_str()), (welcome.entity, "own"));
            break;
        }
    }
    links::send(&mut link, &ClientMessage::Leave).await;
    let (code, _, said) = links::expect_close(&mut link).await;
    assert_eq!((code, said), (1000, Some(DisconnectReason::Left)));
    let refused = links::open_own_webtransport(&server, "ann", "&v=0").await;
    assert!(refused.is_err(), "a bad version is refused");
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_closes_every_transport_with_1001() {
    let server = net::start(links::quic_config()).await;
    let mut sessions = Vec::new();
    for kind in PLAIN_AND_QUIC {
        sessions.push(links::join(&server, kind, "ann", "").await.0);
    }
    let stopping = tokio::spawn(server.shutdown());
    for mut link in sessions {
        let kind = link.kind();
        let (code, reason, said) = links::expect_close(&mut link).await;
        assert_eq!(code, 1001, "{kind}: {reason}");
        assert_eq!(said, Some(DisconnectReason::ServerShutdown), "{kind}");
    }
    stopping.await.unwrap();
}

#[tokio::test]
async fn webtransport_refuses_what_the_websocket_refuses() {
    let server = net::start(links::quic_config()).await;
    let wt = TransportKind::WebTransport;
    let refused = |q: &str| {
        let q = q.to_owned();
        let server = &server;
        async move { links::open_with(server, wt, &q).await.err().map(|e| format!("{e:#}")) }
    };
    let v = tickwire_shared::protocol::PROTOCOL_VERSION;
    let token = net::token();
    // No token, a bad token, no version: refused, and no session is left behind.
    for query in [format!("v={v}"), format!("v={v}&token=forged"), format!("token={token}")] {
        let error = refused(&query).await.unwrap_or_else(|| panic!("{query} was accepted"));
        assert!(error.contains("reject"), "{query}: {error}");
    }
    // Another path: refused too.
    let endpoint = tickwire_server::link::quic_client_endpoint(
        &links::trust(&server),
        std::net::IpAddr::from([127, 0, 0, 1]),
    )
    .unwrap();
    let url = links::url(&server, wt, &format!("v={v}&token={token}")).replace("/wt?", "/nope?");
    assert!(tickwire_server::link::Link::webtransport(&endpoint, &url).await.is_err());
    assert_eq!(server.state().rooms.list().iter().map(|r| r.players).sum::<usize>(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn the_transport_api_offers_webtransport_with_the_dev_certificate_hash() {
    let server = net::start(links::quic_config()).await;
    let (status, body) = net::http(server.local_addr(), "GET", "/api/transport").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["websocket"]["path"], "/ws");
    let wt = &json["webtransport"];
    assert_eq!(wt["port"], server.quic_addr().unwrap().port());
    assert_eq!(wt["path"], "/wt");
    let hash = server.state().webtransport.as_ref().unwrap().dev_cert_sha256.unwrap();
    assert_eq!(wt["cert_sha256"], tickwire_server::tls::hex(&hash));
    server.shutdown().await;
    // Without QUIC there is nothing to offer.
    let server = net::start(net::test_config()).await;
    let (_, body) = net::http(server.local_addr(), "GET", "/api/transport").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(json["webtransport"].is_null(), "{body}");
    assert!(server.quic_addr().is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn with_the_dev_certificate_wss_and_webtransport_share_the_port_number() {
    let mut config = net::test_config();
    config.tls = Some(tickwire_server::tls::TlsSource::DevCert);
    let server = net::start(config).await;
    let quic = server.quic_addr().expect("QUIC is on with TLS");
    assert_eq!(quic.port(), server.local_addr().port());
    // One certificate for both, offered by hash in dev mode.
    let info = server.state().webtransport.clone().unwrap();
    assert_eq!(info.dev_cert_sha256, server.state().tls_cert_sha256);
    for kind in [TransportKind::Wss, TransportKind::WebTransport] {
        let (mut link, _) = links::join(&server, kind, "ann", "").await;
        assert_eq!(link.kind(), kind);
        loop {
            if let Got::Message(ServerMessage::Snapshot(_)) = links::next(&mut link).await {
                break;
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn snapshots_keep_coming_through_ten_percent_datagram_loss_both_ways() {
    use tickwire_shared::client::{ClientConfig, Session};
    use tickwire_shared::games::arena::ArenaGame;

    let server = net::start(links::quic_config()).await;
    let relay = links::LossyRelay::start(server.quic_addr().unwrap(), 0.10, 7).await;
    let endpoint = tickwire_server::link::quic_client_endpoint(
        &links::trust(&server),
        std::net::IpAddr::from([127, 0, 0, 1]),
    )
    .unwrap();
    let query = format!(
        "v={}&token={}&name=lossy",
        tickwire_shared::protocol::PROTOCOL_VERSION,
        net::token()
    );
    let url = format!("https://localhost:{}/wt?{query}", relay.addr().port());
    let mut link =
        tickwire_server::link::Link::webtransport(&endpoint, &url).await.expect("session");

    // A real client: inputs every tick acknowledging what it decoded, so the server deltas
    // against baselines the client holds, and lost snapshots must not break that.
    let mut session = Session::<ArenaGame>::new(ClientConfig::default());
    let start = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(16));
    let mut last_snapshot = start;
    let mut longest_gap = Duration::ZERO;
    let mut seen = 0;
    while start.elapsed() < Duration::from_secs(4) {
        tokio::select! {
            _ = tick.tick() => {
                if session.client().stats().snapshots > 0 {
                    session.push_input(ArenaInput::default());
                }
            }
            event = link.recv() => match event {
                tickwire_server::link::LinkEvent::Message(bytes)
                | tickwire_server::link::LinkEvent::Datagram(bytes) => {
                    let now_us = start.elapsed().as_micros() as u64;
                    session.handle_bytes(now_us, &bytes).expect("every message decodes");
                }
                other => panic!("the session ended: {other:?}"),
            },
        }
        let snapshots = session.client().stats().snapshots;
        if snapshots > seen {
            seen = snapshots;
            longest_gap = longest_gap.max(last_snapshot.elapsed());
            last_snapshot = tokio::time::Instant::now();
        }
        while let Some(bytes) = session.client_mut().poll_transmit() {
            link.send(bytes).await.expect("send");
        }
        while session.poll_event().is_some() {}
    }
    let stats = session.client().stats().clone();
    let (dropped, passed) = *relay.counts.lock().unwrap();
    let share = dropped as f64 / (dropped + passed) as f64;
    assert!((0.05..0.15).contains(&share), "the relay dropped {dropped} of {}", dropped + passed);
    // 30 snapshots a second for ~4 s, a tenth lost: most arrive, deltas keep decoding against
    // acknowledged baselines (a delta against a baseline the client lacks would be an error),
    // and nothing stalls.
    assert!(stats.snapshots >= 80, "{} snapshots through the loss", stats.snapshots);
    assert_eq!(stats.decode_errors, 0);
    assert!(stats.snapshots - stats.full_snapshots >= 60, "deltas: {stats:?}");
    assert!(longest_gap < Duration::from_millis(500), "a {longest_gap:?} stall");
    server.shutdown().await;
}

#[tokio::test]
async fn the_page_may_connect_to_the_webtransport_port() {
    let root = std::env::temp_dir().join(format!("tickwire-csp-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html>").unwrap();
    let mut config = links::quic_config();
    config.static_dir = root.clone();
    let server = net::start(config).await;
    let port = server.quic_addr().unwrap().port();
    let (status, head, _) = net::http_request(server.local_addr(), "GET", "/", &[]).await;
    assert_eq!(status, 200);
    let csp = net::header(&head, "content-security-policy").expect("a CSP").to_owned();
    assert!(csp.contains(&format!("connect-src 'self' https://*:{port};")), "{csp}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(root);
}

/// The server's own HTTP/3 against a client written here by hand (quinn and `h3`'s encoders):
/// a session the way the protocol lays it out, and the limits of what a client may send on
/// HTTP/3's streams.
#[tokio::test]
async fn the_servers_http3_serves_and_bounds_a_hand_written_client() {
    use tickwire_server::h3;
    use tickwire_shared::stream_frame::FrameDecoder;

    let server = net::start(links::quic_config()).await;
    let port = server.quic_addr().unwrap().port();
    let request = |name: &str| h3::Request {
        method: "CONNECT".into(),
        protocol: "webtransport".into(),
        scheme: "https".into(),
        authority: format!("localhost:{port}"),
        path: format!("/wt?v=7&name={name}&room=raw"),
        origin: None,
        authorization: Some(format!("Bearer {}", net::token_for(name))),
    };
    let closed = |conn: quinn::Connection| async move {
        tokio::time::timeout(net::DEADLINE, conn.closed()).await.expect("closed in time")
    };

    // A session by hand: 200, then the server's stream (its header, then the framed Welcome)
    // and snapshots as datagrams of the session.
    let (_endpoint, conn) = links::raw_quic(&server).await;
    let mut control = conn.open_uni().await.unwrap();
    control.write_all(&h3::control_stream_preamble()).await.unwrap();
    let (mut connect, mut answers) = conn.open_bi().await.unwrap();
    connect.write_all(&h3::request_frame(&request("raw"))).await.unwrap();
    let session = u64::from(connect.id());
    let (frame_type, section) = links::read_h3_frame(&mut answers, &mut Vec::new()).await;
    assert_eq!(frame_type, h3::frame_type::HEADERS);
    let mut status = None;
    h3::decode_fields(&section, |name, value| {
        if name == ":status" {
            status = Some(value);
        }
    })
    .unwrap();
    assert_eq!(status.as_deref(), Some("200"));
    // (Its sending side is kept: finishing it would end the session.)
    let (_send, mut stream) =
        tokio::time::timeout(net::DEADLINE, conn.accept_bi()).await.unwrap().unwrap();
    let header = h3::bidi_stream_header(session);
    let mut bytes = Vec::new();
    let mut decoder = FrameDecoder::new(64 * 1024);
    let welcome = loop {
        let chunk = tokio::time::timeout(net::DEADLINE, stream.read_chunk(4096, true))
            .await
            .unwrap()
            .unwrap()
            .expect("the stream goes on");
        bytes.extend_from_slice(&chunk.bytes);
        if bytes.len() >= header.len() {
            assert_eq!(bytes[..header.len()], header[..], "the stream names the session");
            decoder.push(&bytes[header.len()..]);
            bytes.truncate(header.len());
            if let Some(message) = decoder.next_frame().unwrap() {
                break codec::decode_server(&message).unwrap();
            }
        }
    };
    assert!(matches!(welcome, ServerMessage::Welcome(_)), "{welcome:?}");
    let datagram =
        tokio::time::timeout(net::DEADLINE, conn.read_datagram()).await.unwrap().unwrap();
    let at = h3::datagram_payload(session, &datagram).expect("a datagram of the session");
    assert!(matches!(codec::decode_server(&datagram[at..]).unwrap(), ServerMessage::Snapshot(_)));

    // More than the session allows on the client's HTTP/3 streams: closed with 1002.
    let junk = vec![0x21u8; 72 * 1024];
    let _ = tokio::time::timeout(net::DEADLINE, control.write_all(&junk)).await;
    match closed(conn).await {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, quinn::VarInt::from_u32(1002), "{close:?}");
        }
        other => panic!("expected an application close, got {other}"),
    }

    // The client ends the session by finishing its CONNECT stream: the server lets it go.
    let (_endpoint, conn) = links::raw_quic(&server).await;
    let (mut connect, mut answers) = conn.open_bi().await.unwrap();
    connect.write_all(&h3::request_frame(&request("quits"))).await.unwrap();
    let (_, _) = links::read_h3_frame(&mut answers, &mut Vec::new()).await;
    connect.finish().unwrap();
    closed(conn).await;

    // A request that refers to a dynamic QPACK table (the server allows none): dropped.
    let (_endpoint, conn) = links::raw_quic(&server).await;
    let (mut connect, _answers) = conn.open_bi().await.unwrap();
    let mut frame = Vec::new();
    h3::write_frame(h3::frame_type::HEADERS, &[0x01, 0x00, 0x80], &mut frame);
    connect.write_all(&frame).await.unwrap();
    closed(conn).await;

    server.shutdown().await;
}

/// The server's QUIC runtime gives every connection back once its session is over: sessions
/// that leave, clients that hang up without ending their session, a refused request, and a
/// client that never asks for a session (closed at the handshake deadline). The endpoint's
/// `tickwire_quic_connections` gauge counts what it holds.
#[tokio::test]
async fn every_quic_connection_is_given_back_when_its_session_ends() {
    let server = net::start(links::quic_config()).await;
    let wt = TransportKind::WebTransport;
    let held = || async {
        let (_, text) = net::http(server.local_addr(), "GET", "/metrics").await;
        net::metric(&text, "tickwire_quic_connections ")
    };
    let mut sessions = Vec::new();
    for i in 0..6 {
        let (link, _) = links::join(&server, wt, &format!("p{i}"), "&room=release").await;
        sessions.push(link);
    }
    let (_raw_endpoint, raw) = links::raw_quic(&server).await;
    assert_eq!(held().await, 7.0);
    for (i, mut link) in sessions.into_iter().enumerate() {
        if i % 2 == 0 {
            links::send(&mut link, &ClientMessage::Leave).await;
            let (code, _, said) = links::expect_close(&mut link).await;
            assert_eq!((code, said), (1000, Some(DisconnectReason::Left)));
        } else {
            drop(link);
        }
    }
    let v = tickwire_shared::protocol::PROTOCOL_VERSION;
    assert!(links::open_with(&server, wt, &format!("v={v}")).await.is_err());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let n = held().await;
        if n == 0.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{n} QUIC connections still held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The client that never asked saw its connection closed by the server.
    assert!(raw.close_reason().is_some());
    server.shutdown().await;
}

/// Hands `msg` to the sans-IO client as the bytes it came in.
fn feed(
    client: &mut Client<ArenaGame>,
    msg: &ServerMessage,
) -> Result<(), tickwire_shared::client::ClientError> {
    client.handle_bytes(0, &codec::encode_server(msg).expect("encodes"))
}

/// Reads `link` until the client has decoded `n` more snapshots, answering each with an input
/// (which acknowledges it). Returns the first of them as it came.
async fn play(
    link: &mut Link,
    client: &mut Client<ArenaGame>,
    n: usize,
) -> tickwire_shared::protocol::SnapshotMessage {
    let mut first = None;
    let mut decoded = 0;
    while decoded < n {
        match links::next(link).await {
            Got::Message(ServerMessage::Snapshot(s)) => {
                first.get_or_insert_with(|| s.clone());
                feed(client, &ServerMessage::Snapshot(s)).expect("the snapshot decodes");
                decoded += 1;
                client.push_input(ArenaInput::default());
                while let Some(bytes) = client.poll_transmit() {
                    link.send(bytes).await.expect("send");
                }
            }
            Got::Message(other) => feed(client, &other).expect("the message decodes"),
            other => panic!("the session ended: {other:?}"),
        }
    }
    first.expect("n > 0")
}

#[tokio::test]
async fn a_resumed_player_is_sent_a_delta_first_over_every_transport() {
    let server = net::start(links::quic_config()).await;
    for (from, to) in [
        (TransportKind::Ws, TransportKind::Ws),
        (TransportKind::WebTransport, TransportKind::Ws),
        (TransportKind::Ws, TransportKind::WebTransport),
    ] {
        let room = format!("&room=delta-{from}-{to}&name=ann");
        let (mut link, first) = links::join(&server, from, "ann", &room).await;
        let mut client = Client::<ArenaGame>::new(ClientConfig::default());
        feed(&mut client, &ServerMessage::Welcome(first.clone())).expect("welcome");
        play(&mut link, &mut client, 10).await;
        let full_before = client.stats().full_snapshots;
        link.abort(); // the network fails
        // Past the room's history of states (about a second of snapshots).
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let query = format!("{room}&resume={}", first.resume_token);
        let (mut again, welcome) = links::join(&server, to, "ann", &query).await;
        assert_eq!(welcome.entity, first.entity, "{from} → {to}");
        feed(&mut client, &ServerMessage::Welcome(welcome)).expect("welcome");
        assert!(client.ack().is_some(), "the states are kept over a resume");
        let snap = play(&mut again, &mut client, 10).await;
        let baseline = snap.baseline.expect("the first snapshot after the resume is a delta");
        assert!(snap.tick.is_after(baseline), "{from} → {to}");
        assert_eq!(client.stats().decode_errors, 0, "{from} → {to}");
        assert_eq!(client.stats().full_snapshots, full_before, "no full snapshot after resuming");
        assert_eq!(client.own_entity(), Some(first.entity));
        let own = client.latest().and_then(|(_, s)| s.get(first.entity).map(|_| ()));
        assert!(own.is_some(), "it sees itself");
    }
    server.shutdown().await;
}
