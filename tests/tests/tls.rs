//! TLS on the main port over real sockets: HTTPS and WSS with a client that verifies the
//! certificate (the `--dev-cert` one, and one from PEM files), refused handshakes, plain HTTP on
//! a TLS port, a handshake that never comes, the same-origin check with `https`, and the
//! configurations the server refuses to start with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tickwire_server::server::HEADER_READ_TIMEOUT;
use tickwire_server::tls::{TlsSource, hex, sha256};
use tickwire_shared::protocol::{PROTOCOL_VERSION, ServerMessage};
use tickwire_tests::net::{self, DEADLINE, Received, ServerProcess, TEST_SECRET};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

const BIN: &str = env!("CARGO_BIN_EXE_tickwire-test-server");

/// How the test client decides whether to trust the server: the bots' and tests' own client
/// (`link::Trust`): `Roots` is the usual web PKI check against those trust anchors (and the
/// name `localhost`); `Hashes` accepts the certificate whose DER has that SHA-256, as a browser
/// does with WebTransport's `serverCertificateHashes` (the handshake's signatures still
/// checked).
use tickwire_server::link::Trust as ClientVerifier;

/// A TLS connection to `addr` for the name `localhost`.
async fn tls_connect(
    addr: SocketAddr,
    verifier: ClientVerifier,
) -> std::io::Result<TlsStream<TcpStream>> {
    let config = tickwire_server::link::https_client_config(&verifier).expect("a client config");
    let connector = TlsConnector::from(config);
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("a valid name");
    tokio::time::timeout(DEADLINE, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// The certificate the server presented on `stream`.
fn peer_cert(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let certs = stream.get_ref().1.peer_certificates().expect("the server sent a certificate");
    certs[0].clone().into_owned()
}

/// `GET path` over `stream`; returns the status and body.
async fn https_get(mut stream: TlsStream<TcpStream>, path: &str) -> (u16, String) {
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    // A peer that closes without close_notify ends in UnexpectedEof; what came before counts.
    let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut buf)).await.expect("in time");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// Opens `wss://localhost:port/ws?{query}` over `stream` with extra headers; a refused
/// handshake gives its status.
async fn wss_open(
    stream: TlsStream<TcpStream>,
    port: u16,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Wss, u16> {
    let mut req = format!("wss://localhost:{port}/ws?{query}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    match tokio::time::timeout(DEADLINE, tokio_tungstenite::client_async(req, stream)).await {
        Err(_) => panic!("WebSocket handshake timed out"),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => Err(resp.status().as_u16()),
        Ok(Err(e)) => panic!("WebSocket handshake failed: {e}"),
    }
}

/// Joins as `sub` over WSS and expects the `Welcome`.
async fn wss_join(stream: TlsStream<TcpStream>, port: u16, sub: &str) -> Wss {
    let query = format!("v={PROTOCOL_VERSION}&token={}", net::token_for(sub));
    let mut ws = wss_open(stream, port, &query, &[]).await.expect("handshake accepted");
    match net::recv(&mut ws).await {
        Received::Message(ServerMessage::Welcome(_)) => ws,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// GET /healthz over HTTPS and a WSS join, both with `verifier`; returns the certificate the
/// server presented.
async fn https_and_wss(addr: SocketAddr, verifier: impl Fn() -> ClientVerifier) -> Vec<u8> {
    let stream = tls_connect(addr, verifier()).await.expect("TLS handshake");
    let cert = peer_cert(&stream);
    let (status, body) = https_get(stream, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let stream = tls_connect(addr, verifier()).await.expect("TLS handshake");
    let mut ws = wss_join(stream, addr.port(), "tls-player").await;
    // Snapshots follow the welcome (events may come first); `recv` panics at the deadline.
    loop {
        match net::recv(&mut ws).await {
            Received::Message(ServerMessage::Snapshot(_)) => break,
            Received::Message(_) => {}
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }
    cert.to_vec()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tickwire-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A certificate for `localhost` and its key, written as `cert.pem` and `key.pem` in `dir`.
fn write_pem_pair(dir: &Path) -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().clone())
}

/// Waits until the server has counted `n` failed TLS handshakes.
async fn until_failed_handshakes(server: &tickwire_server::server::Server, n: u64) {
    let deadline = Instant::now() + DEADLINE;
    let failed = || server.state().metrics.tls_handshakes_failed.load(Relaxed);
    while failed() < n {
        assert!(Instant::now() < deadline, "{} failed handshakes counted, not {n}", failed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn dev_cert_config() -> tickwire_server::config::ServerConfig {
    tickwire_server::config::ServerConfig { tls: Some(TlsSource::DevCert), ..net::test_config() }
}

#[tokio::test]
async fn dev_cert_serves_https_and_wss_to_a_verifying_client() {
    let server = net::start(dev_cert_config()).await;
    let state = server.state();
    let cert = state.tls_certificate.clone().expect("TLS is on");
    let hash = state.tls_cert_sha256.expect("TLS is on");
    let received =
        https_and_wss(server.local_addr(), || ClientVerifier::Roots(vec![cert.clone()])).await;
    assert_eq!(received, cert.to_vec());
    assert_eq!(sha256(&received), hash);
    assert_eq!(state.metrics.tls_handshakes_failed.load(Relaxed), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn the_printed_hash_is_the_dev_certificate_s() {
    let server = ServerProcess::start(BIN, &["--dev-cert"]).await;
    assert!(server.tls, "the URL says https: {:?}", server.banner);
    let last = server.banner.last().unwrap();
    assert!(last.contains("wss://"), "{last}");
    let printed = server
        .banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("TLS certificate SHA-256: "))
        .unwrap_or_else(|| panic!("no hash in {:?}", server.banner));
    let mut hash = [0u8; 32];
    assert_eq!(printed.len(), 64, "{printed}");
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&printed[2 * i..2 * i + 2], 16).expect("hex");
    }
    // A client that trusts only the printed hash gets through, and the certificate it was
    // shown hashes to it.
    let received = https_and_wss(server.addr, || ClientVerifier::Hashes(vec![hash])).await;
    assert_eq!(hex(&sha256(&received)), printed);
    // Another hash is refused.
    hash[0] ^= 1;
    assert!(tls_connect(server.addr, ClientVerifier::Hashes(vec![hash])).await.is_err());
}

#[tokio::test]
async fn pem_files_serve_https_and_wss_to_a_verifying_client() {
    let dir = temp_dir("pem");
    let (cert, key, der) = write_pem_pair(&dir);
    let server = ServerProcess::start(
        BIN,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    )
    .await;
    assert!(server.tls, "the URL says https: {:?}", server.banner);
    let received = https_and_wss(server.addr, || ClientVerifier::Roots(vec![der.clone()])).await;
    assert_eq!(received, der.to_vec());
    let printed = format!("TLS certificate SHA-256: {}", hex(&sha256(&der)));
    assert!(server.banner.iter().any(|l| l.trim() == printed), "{:?}", server.banner);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let server = net::start(dev_cert_config()).await;
    let addr = server.local_addr();
    let err = tls_connect(addr, ClientVerifier::Roots(Vec::new())).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let err =
        tls_connect(addr, ClientVerifier::Roots(vec![other.cert.der().clone()])).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    // The server saw both handshakes fail (the clients' alerts).
    until_failed_handshakes(&server, 2).await;
    server.shutdown().await;
}

#[tokio::test]
async fn plain_http_on_a_tls_port_gets_no_http_answer() {
    let server = net::start(dev_cert_config()).await;
    let addr = server.local_addr();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    // Closed (possibly after a TLS alert, possibly with a reset), well before the deadline.
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut buf)).await.expect("closed");
    assert!(!buf.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&buf));
    until_failed_handshakes(&server, 1).await;
    // TLS clients are still served.
    let cert = server.state().tls_certificate.clone().unwrap();
    https_and_wss(addr, || ClientVerifier::Roots(vec![cert.clone()])).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_handshake_that_never_comes_is_closed_at_the_deadline() {
    let server = net::start(dev_cert_config()).await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(HEADER_READ_TIMEOUT + DEADLINE, tcp.read_to_end(&mut buf))
        .await
        .expect("closed by the server");
    let waited = start.elapsed();
    assert!(waited >= HEADER_READ_TIMEOUT - Duration::from_millis(200), "{waited:?}");
    assert!(buf.is_empty());
    until_failed_handshakes(&server, 1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn same_origin_is_https_when_tls_is_on() {
    let server = net::start(dev_cert_config()).await;
    let addr = server.local_addr();
    let port = addr.port();
    let cert = server.state().tls_certificate.clone().unwrap();
    let query = format!("v={PROTOCOL_VERSION}&token={}", net::token_for("origin"));
    let open = |origin: String| {
        let (cert, query) = (cert.clone(), query.clone());
        async move {
            let stream = tls_connect(addr, ClientVerifier::Roots(vec![cert])).await.unwrap();
            wss_open(stream, port, &query, &[("Origin", &origin)]).await
        }
    };
    let mut ws = open(format!("https://localhost:{port}")).await.expect("same origin");
    assert!(matches!(net::recv(&mut ws).await, Received::Message(ServerMessage::Welcome(_))));
    assert_eq!(open(format!("http://localhost:{port}")).await.err(), Some(403));
    assert_eq!(open(format!("https://localhost:{}", port ^ 1)).await.err(), Some(403));
    server.shutdown().await;
}

/// Runs `tickwire serve` with `args` and `env`, expecting it to refuse to start; returns its
/// stderr.
async fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--jwt-secret", TEST_SECRET])
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started with {args:?} {env:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}

/// Flags, environment, and what the error must say.
type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<&'a str>);

#[tokio::test]
async fn bad_tls_configurations_are_refused_with_a_clear_error() {
    let dir = temp_dir("bad");
    let (cert, key, _) = write_pem_pair(&dir);
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let other = temp_dir("bad-other");
    let (_, other_key, _) = write_pem_pair(&other);
    let other_key = other_key.to_str().unwrap();
    let missing = dir.join("missing.pem");
    let missing = missing.to_str().unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let broken = dir.join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
        .unwrap();
    let broken = broken.to_str().unwrap();

    let cases: Vec<Case<'_>> = vec![
        (vec!["--dev-cert", "--tls-cert", cert, "--tls-key", key], vec![], vec!["exclude"]),
        (vec!["--tls-cert", cert], vec![], vec!["--tls-cert needs --tls-key"]),
        (vec!["--tls-key", key], vec![], vec!["--tls-key needs --tls-cert"]),
        (vec![], vec![("TICKWIRE_TLS_CERT", cert)], vec!["--tls-cert needs --tls-key"]),
        (vec![], vec![("TICKWIRE_DEV_CERT", "true"), ("TICKWIRE_TLS_KEY", key)], vec!["exclude"]),
        (vec!["--tls-cert", missing, "--tls-key", key], vec![], vec![missing]),
        (vec!["--tls-cert", garbage, "--tls-key", key], vec![], vec![garbage, "no PEM"]),
        (vec!["--tls-cert", broken, "--tls-key", key], vec![], vec![broken]),
        (vec!["--tls-cert", cert, "--tls-key", missing], vec![], vec![missing]),
        (vec!["--tls-cert", cert, "--tls-key", garbage], vec![], vec![garbage]),
        (vec!["--tls-cert", cert, "--tls-key", other_key], vec![], vec![cert, other_key, "pair"]),
    ];
    for (args, env, expected) in cases {
        let stderr = refused(&args, &env).await;
        for part in expected {
            assert!(stderr.contains(part), "{args:?} {env:?}: {part:?} not in {stderr}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

#[tokio::test]
async fn the_config_file_and_the_environment_turn_tls_on() {
    let dir = temp_dir("file");
    let (cert, key, der) = write_pem_pair(&dir);
    let toml = dir.join("tickwire.toml");
    std::fs::write(
        &toml,
        format!("tls_cert = {:?}\ntls_key = {:?}\n", cert.to_str().unwrap(), key.to_str().unwrap()),
    )
    .unwrap();
    let server = ServerProcess::start(BIN, &["--config", toml.to_str().unwrap()]).await;
    assert!(server.tls, "{:?}", server.banner);
    let stream = tls_connect(server.addr, ClientVerifier::Roots(vec![der])).await.unwrap();
    assert_eq!(https_get(stream, "/healthz").await.0, 200);
    drop(server);
    std::fs::write(&toml, "dev_cert = true\n").unwrap();
    let server = ServerProcess::start(BIN, &["--config", toml.to_str().unwrap()]).await;
    assert!(server.tls, "{:?}", server.banner);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
