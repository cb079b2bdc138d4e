//! Attacks on the server, each reproduced over real sockets (or on the real CLI) and refused:
//! the rows of the hardening issue that have landed.

use std::net::Ipv4Addr;
use std::process::Command;

use futures_util::SinkExt;
use tickwire_server::config::ServerConfig;
use tickwire_server::server::Server;
use tickwire_shared::codec;
use tickwire_shared::protocol::ClientMessage;
use tickwire_tests::net;
use tokio_tungstenite::tungstenite::Message;

/// Row 1: a server must not start with a secret anyone can guess (tokens signed with the empty
/// key were let in), nor without any way to get a token.
#[tokio::test]
async fn an_empty_or_short_jwt_secret_is_refused_at_start() {
    for secret in ["", "short-secret"] {
        let config = ServerConfig { jwt_secret: Some(secret.into()), ..net::test_config() };
        let err = Server::start(config).await.err().expect("refused");
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
    }
    let no_way_in = ServerConfig { jwt_secret: None, guest_tokens: false, ..net::test_config() };
    let err = Server::start(no_way_in).await.err().expect("refused");
    assert!(err.to_string().contains("guest tokens"), "{err}");
    // The real CLI says so and exits 1.
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire-test-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--jwt-secret", ""])
        .output()
        .expect("the CLI runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    // No secret with guests on: a random one (dev mode), and the server starts.
    let dev = ServerConfig { jwt_secret: None, ..net::test_config() };
    Server::start(dev).await.expect("starts in dev mode").shutdown().await;
}

/// Row 12: the authorization scheme is case-insensitive (RFC 9110 §11.1).
#[tokio::test]
async fn a_lower_case_bearer_scheme_is_accepted() {
    let server = net::start(net::test_config()).await;
    let auth = format!("bearer {}", net::token());
    let ws =
        net::connect_with(server.local_addr(), "v=7", &[("Authorization", auth.as_str())]).await;
    assert!(ws.is_ok(), "{:?}", ws.err());
    server.shutdown().await;
}

/// A guest token from `POST /api/guest`.
async fn guest_token(addr: std::net::SocketAddr) -> String {
    let (status, body) = net::http(addr, "POST", "/api/guest").await;
    assert_eq!(status, 200, "{body}");
    body.split_once("\"token\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(token, _)| token.to_owned())
        .expect("a token")
}

/// The JWT rules over a real handshake (`jsonwebtoken`): an expired token, one signed with
/// another key, and, with `--jwt-audience`, one for no or another audience get 401; the
/// server's own guest tokens carry the audience and pass.
#[tokio::test]
async fn tokens_are_checked_for_expiry_key_and_a_configured_audience() {
    use tickwire_server::auth::{Claims, JwtKeys, unix_now};

    let refused = |addr, token: String| async move {
        net::connect_with(addr, &format!("v=7&token={token}"), &[]).await.err()
    };
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let keys = JwtKeys::new(net::TEST_SECRET.as_bytes());
    let expired = keys.sign(&Claims { sub: "late".into(), exp: unix_now() - 60 });
    let (status, body) = refused(addr, expired).await.expect("an expired token is refused");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("expired"), "{body}");
    let other = JwtKeys::new(b"some-other-secret-of-32-bytes-or-more");
    let forged = other.sign(&Claims { sub: "mallory".into(), exp: unix_now() + 60 });
    let (status, body) = refused(addr, forged).await.expect("another key's token is refused");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("signature"), "{body}");
    server.shutdown().await;

    let config = ServerConfig { jwt_audience: Some("tickwire".into()), ..net::test_config() };
    let server = net::start(config).await;
    let addr = server.local_addr();
    let (status, body) = refused(addr, net::token()).await.expect("no audience: refused");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("audience"), "{body}");
    let elsewhere = keys.clone().with_audience(Some("elsewhere"));
    let theirs = elsewhere.sign(&Claims { sub: "p".into(), exp: unix_now() + 60 });
    assert_eq!(refused(addr, theirs).await.map(|(s, _)| s), Some(401));
    let ours = keys.with_audience(Some("tickwire"));
    let token = ours.sign(&Claims { sub: "p".into(), exp: unix_now() + 60 });
    assert_eq!(refused(addr, token).await, None);
    assert_eq!(refused(addr, guest_token(addr).await).await, None);
    server.shutdown().await;
}

/// Row 7: a resume token works only for the subject that got it, and `Leave` revokes it at once.
#[tokio::test]
async fn a_resume_needs_the_same_subject_and_leave_revokes_it_at_once() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let (ws, first) = net::join_as(addr, "alice", "&name=alice&room=resume-row").await;
    drop(ws);
    // Someone else with alice's resume token gets a player of their own.
    let resume = format!("&name=mallory&room=resume-row&resume={}", first.resume_token);
    let (_mallory, stolen) = net::join_as(addr, "mallory", &resume).await;
    assert_ne!(stolen.entity, first.entity, "mallory took over alice's player");
    // Alice herself resumes.
    let resume = format!("&name=alice&room=resume-row&resume={}", first.resume_token);
    let (mut ws, again) = net::join_as(addr, "alice", &resume).await;
    assert_eq!(again.entity, first.entity, "alice could not resume");
    // She leaves: the token is dead before the session has finished closing.
    let leave = codec::encode_client(&ClientMessage::Leave).unwrap();
    ws.send(Message::Binary(leave.into())).await.unwrap();
    let (code, _) = net::expect_close(&mut ws).await;
    assert_eq!(code, 1000);
    let (_ws, after) = net::join_as(addr, "alice", &resume).await;
    assert_ne!(after.entity, first.entity, "the token outlived Leave");
    server.shutdown().await;
}

/// Row 5: one address made 300 rooms (and 300 threads) in ten seconds. Named rooms are capped
/// per address and rooms in all, a refused join gets 1013 and a reason, and rooms run on a fixed
/// pool of simulation threads: the process does not grow a thread per room.
#[tokio::test]
async fn rooms_are_capped_per_address_and_in_all_and_share_a_fixed_thread_pool() {
    let bin = env!("CARGO_BIN_EXE_tickwire-test-server");
    let limits =
        ["--max-rooms", "6", "--max-rooms-per-ip", "4", "--sim-threads", "2", "--npcs", "1"];
    let server = net::ServerProcess::start(bin, &limits).await;
    let addr = server.addr;
    let threads_at_start = server.status("Threads");
    let (a, b, c) =
        (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));
    let mut sessions = Vec::new();
    for i in 0..4 {
        let query = format!("&name=a{i}&room=flood-a{i}");
        sessions.push(
            net::join_from(a, addr, &format!("a{i}"), &query).await.expect("within the limit"),
        );
    }
    let refused = net::join_from(a, addr, "a4", "&name=a4&room=flood-a4").await.err();
    let (code, reason) = refused.expect("a fifth named room from one address is refused");
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("from your address"), "{reason}");
    // Joining a room that is open is not opening one.
    sessions.push(net::join_from(a, addr, "a5", "&name=a5&room=flood-a0").await.expect("joins"));
    for i in 0..2 {
        let query = format!("&name=b{i}&room=flood-b{i}");
        sessions.push(net::join_from(b, addr, &format!("b{i}"), &query).await.expect("joins"));
    }
    // Six rooms: the server's limit, whoever asks and however.
    let refused = net::join_from(b, addr, "b2", "&name=b2&room=flood-b2").await.err();
    let (code, reason) = refused.expect("a seventh room is refused");
    assert_eq!(code, 1013, "{reason}");
    assert!(reason.contains("6 rooms"), "{reason}");
    let refused = net::join_from(c, addr, "c", "&name=c").await.err();
    let (code, reason) = refused.expect("matchmaking needs a new room and cannot open one");
    assert_eq!(code, 1013, "{reason}");
    let (_, metrics) = net::http(addr, "GET", "/metrics").await;
    assert_eq!(net::metric(&metrics, "tickwire_rooms_refused_total"), 3.0, "{metrics}");
    // Six rooms ticking, and no thread more than at the start (a thread a room made six).
    let threads = server.status("Threads");
    assert!(
        threads <= threads_at_start + 1,
        "{threads_at_start} threads at start, {threads} with 6 rooms"
    );
    drop(sessions);
}

/// Row 6: a room someone named is theirs: matchmaking never puts strangers in it.
#[tokio::test]
async fn named_rooms_are_never_matchmade_into() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let (_owner, named) = net::join_as(addr, "owner", "&name=owner&room=private-1").await;
    assert_eq!(named.room, "private-1");
    for i in 0..3 {
        let (_ws, w) = net::join_as(addr, &format!("stranger{i}"), "&name=stranger").await;
        assert_ne!(w.room, "private-1", "a stranger was matchmade into a named room");
    }
    server.shutdown().await;
}

/// Row 6: guest tokens are rate-limited per IP (a flood got 7,590 a second).
#[tokio::test]
async fn a_flood_of_guest_token_requests_is_refused_with_429() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let mut statuses = Vec::new();
    for _ in 0..80 {
        statuses.push(net::http(addr, "POST", "/api/guest").await.0);
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(ok >= 20, "a page that reconnects a few times must still get tokens: {statuses:?}");
    assert!(statuses.contains(&429), "80 guest tokens in a burst: {statuses:?}");
    let (status, body) = net::http(addr, "POST", "/api/guest").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too many guest tokens"), "{body}");
    server.shutdown().await;
}

/// The name the room announced for `entity`.
async fn announced_name(ws: &mut net::Ws, entity: tickwire_shared::NetId) -> String {
    use tickwire_shared::protocol::{RoomEvent, ServerMessage};
    loop {
        match net::recv(ws).await {
            net::Received::Message(ServerMessage::Event(RoomEvent::Joined {
                entity: e,
                name,
                ..
            })) if e == entity => {
                return name;
            }
            net::Received::Message(_) => {}
            other => panic!("no Joined for {entity}: {other:?}"),
        }
    }
}

/// Row 9: names and chat are normalised (NFC) and cleaned of control, bidi-override and
/// zero-width characters; names are unique in a room.
#[tokio::test]
async fn names_and_chat_are_cleaned_and_names_are_unique_per_room() {
    use tickwire_shared::protocol::ServerMessage;
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    // "é" written as e + combining acute, a right-to-left override and a zero-width space.
    let (mut a, wa) =
        net::join_as(addr, "a", "&room=names&name=Ze%CC%81%E2%80%AEro%E2%80%8B").await;
    assert_eq!(announced_name(&mut a, wa.entity).await, "Zéro");
    let (mut b, wb) = net::join_as(addr, "b", "&room=names&name=Z%C3%A9ro").await;
    assert_eq!(announced_name(&mut b, wb.entity).await, "Zéro (2)");
    // Nothing left after cleaning: refused at the handshake.
    let q = format!("v=7&token={}&name=%E2%80%8B%E2%80%AE", net::token());
    let (status, body) = net::connect_with(addr, &q, &[]).await.unwrap_err();
    assert_eq!(status, 400, "{body}");
    // Chat is cleaned the same way.
    let chat = ClientMessage::Chat { text: "gg\u{202E}\u{2066} wp\u{200D}".into() };
    b.send(Message::Binary(codec::encode_client(&chat).unwrap().into())).await.unwrap();
    loop {
        if let net::Received::Message(ServerMessage::Chat { text, .. }) = net::recv(&mut a).await {
            assert_eq!(text, "gg wp");
            break;
        }
    }
    server.shutdown().await;
}

/// Row 10: the Origin check compares scheme, host and port; localhost is allowed only in dev
/// mode (no configured secret) or by `--allow-origin`.
#[tokio::test]
async fn origins_are_compared_by_scheme_host_and_port() {
    let config =
        ServerConfig { allowed_origins: vec!["https://game.example".into()], ..net::test_config() };
    let server = net::start(config).await;
    let addr = server.local_addr();
    let q = format!("v=7&token={}", net::token());
    let origin_ok = |origin: String| {
        let q = q.clone();
        async move { net::connect_with(addr, &q, &[("Origin", origin.as_str())]).await.is_ok() }
    };
    let port = addr.port();
    assert!(origin_ok(format!("http://127.0.0.1:{port}")).await, "the same origin");
    assert!(origin_ok("https://game.example".into()).await, "an allowed origin");
    for refused in [
        format!("https://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "http://localhost:3000".to_owned(),
        "http://game.example".to_owned(),
        "https://game.example:8443".to_owned(),
        "null".to_owned(),
    ] {
        assert!(!origin_ok(refused.clone()).await, "{refused} was let in");
    }
    server.shutdown().await;
    // Dev mode (no secret: a random one, guest tokens on): any localhost page may connect.
    let dev = net::start(ServerConfig { jwt_secret: None, ..net::test_config() }).await;
    let token = guest_token(dev.local_addr()).await;
    let q = format!("v=7&token={token}");
    let ws = net::connect_with(dev.local_addr(), &q, &[("Origin", "http://localhost:3000")]).await;
    assert!(ws.is_ok(), "{:?}", ws.err());
    dev.shutdown().await;
}

/// Row 11: static files are regular files under the static root only (no symlink out of it,
/// no FIFO that would hang a reader), sent with `nosniff`; the page carries a CSP.
#[tokio::test]
async fn static_files_stay_under_the_root_and_carry_security_headers() {
    let base = std::env::temp_dir().join(format!("tickwire-static-{}", std::process::id()));
    let root = base.join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html><title>t</title>").unwrap();
    std::fs::write(root.join("app.js"), "export {};").unwrap();
    std::fs::write(base.join("secret.txt"), "outside the root").unwrap();
    let _ = std::fs::remove_file(root.join("leak"));
    std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak")).unwrap();
    let fifo = root.join("fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let config = ServerConfig { static_dir: root.clone(), ..net::test_config() };
    let server = net::start(config).await;
    let addr = server.local_addr();
    let (status, head, _) = net::http_with_headers(addr, "GET", "/").await;
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'self'"), "{head}");
    let (status, head, _) = net::http_with_headers(addr, "GET", "/app.js").await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("x-content-type-options: nosniff"), "{head}");
    let (status, body) = net::http(addr, "GET", "/leak").await;
    assert_eq!(status, 404, "a symlink out of the root was followed: {body}");
    let (status, _) = net::http(addr, "GET", "/fifo").await;
    assert_eq!(status, 404, "a FIFO was opened");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&base);
}

/// Row 3: every frame counts toward a connection's limits, pings too (80,000 pings a second
/// were accepted): a ping flood is closed with 1008.
#[tokio::test]
async fn a_ping_flood_is_closed_with_1008() {
    let server = net::start(net::test_config()).await;
    let mut ws = net::connect(server.local_addr(), "&name=pinger").await;
    let flood = async {
        for _ in 0..2_000 {
            if ws.send(Message::Ping(vec![0u8; 100].into())).await.is_err() {
                break;
            }
        }
        net::expect_close(&mut ws).await
    };
    let (code, reason) = tokio::time::timeout(net::DEADLINE * 2, flood)
        .await
        .expect("the server never closed a flood of pings");
    assert_eq!(code, 1008, "{reason}");
    server.shutdown().await;
}

/// A WebSocket opened by hand over TCP (to send what no well-behaved client library would).
async fn raw_ws(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /ws?v=7&token={}&name=raw HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        net::token()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// Reads the server's frames until a close frame; returns its code (`None`: the connection
/// ended without one).
async fn close_code(tcp: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let read = async {
        loop {
            let mut h = [0u8; 2];
            tcp.read_exact(&mut h).await.ok()?;
            let opcode = h[0] & 0x0f;
            let len = match h[1] & 0x7f {
                126 => {
                    let mut l = [0u8; 2];
                    tcp.read_exact(&mut l).await.ok()?;
                    usize::from(u16::from_be_bytes(l))
                }
                127 => {
                    let mut l = [0u8; 8];
                    tcp.read_exact(&mut l).await.ok()?;
                    usize::try_from(u64::from_be_bytes(l)).ok()?
                }
                n => usize::from(n),
            };
            let mut payload = vec![0u8; len];
            tcp.read_exact(&mut payload).await.ok()?;
            if opcode == 0x8 {
                return Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
            }
        }
    };
    tokio::time::timeout(net::DEADLINE, read).await.expect("the server answered in time")
}

/// Row 8: a protocol error gets a close frame with a code and a reason, not a dropped TCP
/// connection; a client's close is echoed before the socket is shut.
#[tokio::test]
async fn protocol_errors_and_client_closes_get_close_frames() {
    use tokio::io::AsyncWriteExt;
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    // A frame with a reserved opcode (0x3), masked as a client's must be.
    let mut tcp = raw_ws(addr).await;
    tcp.write_all(&[0x83, 0x80, 1, 2, 3, 4]).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1002), "no close frame for a protocol error");
    // A client's close (1000, masked with a zero key) is answered with a close frame.
    let mut tcp = raw_ws(addr).await;
    tcp.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1000), "the client's close was not echoed");
    server.shutdown().await;
}

/// Row 2: slowloris. Sockets that never finish their headers are closed after the header-read
/// deadline, and at most a few per IP wait before their handshake; the server stays usable.
#[tokio::test]
async fn slowloris_sockets_are_capped_and_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let started = std::time::Instant::now();
    let mut sockets = Vec::new();
    for _ in 0..100 {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Headers that never end.
        let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        sockets.push(tcp);
    }
    // Every one is closed by the server (capped ones at once, the others at the deadline).
    let closed = async {
        for tcp in &mut sockets {
            let mut buf = [0u8; 256];
            while let Ok(n) = tcp.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), closed)
        .await
        .expect("slowloris sockets were held open");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "{:?}", started.elapsed());
    let (status, body) = net::http(addr, "GET", "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    server.shutdown().await;
}

/// Row 4: a client that stops reading is closed as too slow once it has fallen a second of
/// snapshots behind, and counted; it does not hold the server's memory.
#[tokio::test]
async fn clients_that_stop_reading_are_closed_as_too_slow() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let mut stalled = Vec::new();
    for i in 0..5 {
        // A tiny receive window, so the server's writes back up within a few snapshots.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let url = format!("ws://{addr}/ws?v=7&token={}&name=slow{i}&room=slow", net::token());
        let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.expect("handshake");
        stalled.push(ws); // never read again
    }
    let too_slow = r#"tickwire_disconnects_total{reason="too_slow"}"#;
    // Small deltas fill a kernel buffer slowly: give it a minute.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let ping = codec::encode_client(&ClientMessage::Ping { id: 0, client_time_us: 0 }).unwrap();
    loop {
        // They keep talking (no idle timeout saves the server), they just never read.
        for ws in &mut stalled {
            let send = ws.send(Message::Binary(ping.clone().into()));
            let _ = tokio::time::timeout(std::time::Duration::from_millis(20), send).await;
        }
        let (_, text) = net::http(addr, "GET", "/metrics").await;
        if net::metric(&text, too_slow) >= 5.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not closed as too slow:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(stalled);
    server.shutdown().await;
}
