//! The HTTP side of the server over real sockets: the built client's files with their content
//! types and headers, gzip when the client asks for it, HEAD, 405 for a wrong method, the page
//! shown before the client is built, and a WebSocket upgrade and `/metrics` through the same
//! compression.

use std::io::Read;
use std::path::PathBuf;

use tickwire_server::config::ServerConfig;
use tickwire_server::server::Server;
use tickwire_shared::protocol::{PROTOCOL_VERSION, ServerMessage};
use tickwire_tests::net::{self, Received, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fresh static root under the temp directory, named after the test, with a page, a script,
/// a stylesheet, an image and a wasm module big enough to compress.
fn static_root(test: &str) -> (PathBuf, Vec<u8>) {
    let root = std::env::temp_dir().join(format!("tickwire-http-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html><title>game</title>").unwrap();
    std::fs::write(root.join("pkg/app.js"), "export function start() {}\n".repeat(40)).unwrap();
    std::fs::write(root.join("style.css"), "body { margin: 0 }").unwrap();
    std::fs::write(root.join("logo.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    // A wasm header and a body that compresses but is not all one byte.
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend((0..20_000u32).map(|i| (i % 251) as u8 ^ (i / 997) as u8));
    std::fs::write(root.join("pkg/app_bg.wasm"), &wasm).unwrap();
    (root, wasm)
}

/// A server over a fresh [`static_root`]; returns it, the root and the wasm module's bytes.
async fn serve_files(test: &str) -> (Server, PathBuf, Vec<u8>) {
    let (root, wasm) = static_root(test);
    let config = ServerConfig { static_dir: root.clone(), ..net::test_config() };
    (net::start(config).await, root, wasm)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).expect("a gzip stream");
    out
}

#[tokio::test]
async fn static_files_have_their_content_types_and_security_headers() {
    let (server, root, wasm) = serve_files("types").await;
    let addr = server.local_addr();
    for (path, kind) in [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/pkg/app.js", "text/javascript; charset=utf-8"),
        ("/pkg/app_bg.wasm", "application/wasm"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/logo.png", "image/png"),
    ] {
        let (status, head, _) = net::http_request(addr, "GET", path, &[]).await;
        assert_eq!(status, 200, "{path}: {head}");
        assert_eq!(header(&head, "content-type"), Some(kind), "{path}: {head}");
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(header(&head, "cache-control"), Some("no-cache"), "{path}");
        let csp = header(&head, "content-security-policy");
        assert_eq!(csp.is_some(), kind.starts_with("text/html"), "{path}: {head}");
    }
    // Without Accept-Encoding the bytes are the file's, uncompressed.
    let (_, head, body) = net::http_request(addr, "GET", "/pkg/app_bg.wasm", &[]).await;
    assert_eq!(header(&head, "content-encoding"), None, "{head}");
    assert!(body == wasm, "the wasm module came back altered ({} bytes)", body.len());
    let (status, head, _) = net::http_request(addr, "GET", "/missing.js", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"), "{head}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn the_wasm_and_the_script_are_gzipped_when_the_client_accepts_it() {
    let (server, root, wasm) = serve_files("gzip").await;
    let addr = server.local_addr();
    let gzip = [("Accept-Encoding", "gzip, deflate, br")];
    let (status, head, body) = net::http_request(addr, "GET", "/pkg/app_bg.wasm", &gzip).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-encoding"), Some("gzip"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/wasm"), "{head}");
    assert!(header(&head, "vary").is_some_and(|v| v.contains("accept-encoding")), "{head}");
    assert!(body.len() < wasm.len(), "{} compressed bytes for {}", body.len(), wasm.len());
    assert!(gunzip(&body) == wasm, "the decompressed wasm module differs from the file");

    let script = std::fs::read(root.join("pkg/app.js")).unwrap();
    let (status, head, body) = net::http_request(addr, "GET", "/pkg/app.js", &gzip).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-encoding"), Some("gzip"), "{head}");
    assert_eq!(gunzip(&body), script);

    // /metrics through the same layer.
    let (status, head, body) = net::http_request(addr, "GET", "/metrics", &gzip).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-encoding"), Some("gzip"), "{head}");
    let text = String::from_utf8(gunzip(&body)).unwrap();
    assert!(text.contains("tickwire_connections"), "{text}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_websocket_upgrade_asked_with_gzip_is_never_compressed() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let query = format!("v={PROTOCOL_VERSION}&token={}", net::token());
    let mut ws = net::connect_with(addr, &query, &[("Accept-Encoding", "gzip")])
        .await
        .expect("the upgrade goes through");
    match net::recv(&mut ws).await {
        Received::Message(ServerMessage::Welcome(_)) => {}
        other => panic!("expected a welcome, got {other:?}"),
    }
    // The raw 101: no Content-Encoding, no Vary. (Read up to the end of its headers only: the
    // session's frames follow.)
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /ws?{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Accept-Encoding: gzip\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(net::DEADLINE, tcp.read_u8()).await.unwrap().unwrap();
        buf.push(byte);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head.split(' ').nth(1).unwrap_or_default();
    assert_eq!(status, "101", "{head}");
    assert_eq!(header(&head, "content-encoding"), None, "{head}");
    assert_eq!(header(&head, "vary"), None, "{head}");
    server.shutdown().await;
}

#[tokio::test]
async fn head_requests_get_the_headers_without_a_body() {
    let (server, root, wasm) = serve_files("head").await;
    let addr = server.local_addr();
    let (status, head, body) = net::http_request(addr, "HEAD", "/pkg/app_bg.wasm", &[]).await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/wasm"), "{head}");
    assert_eq!(header(&head, "content-length"), Some(wasm.len().to_string().as_str()), "{head}");
    assert!(body.is_empty(), "HEAD got {} body bytes", body.len());
    let (status, head, body) = net::http_request(addr, "HEAD", "/", &[]).await;
    assert_eq!(status, 200, "{head}");
    assert!(header(&head, "content-security-policy").is_some(), "{head}");
    assert!(body.is_empty());
    let (status, _, body) = net::http_request(addr, "HEAD", "/healthz", &[]).await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_wrong_method_is_answered_405() {
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    for (method, path) in [
        ("POST", "/"),
        ("PUT", "/index.html"),
        ("DELETE", "/pkg/app.js"),
        ("POST", "/healthz"),
        ("POST", "/metrics"),
        ("DELETE", "/api/rooms"),
        ("GET", "/api/guest"),
        ("POST", "/ws"),
        ("HEAD", "/ws"),
        // Off by default: not a route at all.
        ("POST", "/api/debug/drop?entity=1"),
    ] {
        let (status, head, _) = net::http_request(addr, method, path, &[]).await;
        assert_eq!(status, 405, "{method} {path}: {head}");
        assert!(header(&head, "allow").is_some(), "{method} {path}: {head}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_root_explains_how_to_build_the_client_until_it_is_built() {
    let root = std::env::temp_dir().join(format!("tickwire-http-unbuilt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let config = ServerConfig { static_dir: root.clone(), ..net::test_config() };
    let server = net::start(config).await;
    let addr = server.local_addr();
    for path in ["/", "/index.html"] {
        let (status, head, body) = net::http_request(addr, "GET", path, &[]).await;
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 200, "{path}: {head}");
        assert_eq!(header(&head, "content-type"), Some("text/html; charset=utf-8"), "{head}");
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"), "{head}");
        assert!(header(&head, "content-security-policy").is_some(), "{head}");
        assert!(body.contains("not built") && body.contains("client-web/build.sh"), "{body}");
    }
    let (status, _) = net::http(addr, "GET", "/pkg/app.js").await;
    assert_eq!(status, 404);
    // Once the client is built, the page is served instead.
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "<!doctype html><title>built</title>").unwrap();
    let (status, body) = net::http(addr, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("built</title>") && !body.contains("not built"), "{body}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

/// Issue 18, item 4: the server describes its protocol and games, and a client (bots or page)
/// that speaks another version or build says what differs from it.
#[tokio::test]
async fn the_server_describes_its_protocol_and_games() {
    use tickwire_shared::schema::Schema;
    let server = net::start(net::test_config()).await;
    let addr = server.local_addr();
    let (status, body) = net::http(addr, "GET", "/api/schema").await;
    assert_eq!(status, 200, "{body}");
    let described: Schema = serde_json::from_str(&body).expect("JSON schema");
    assert_eq!(described, Schema::current());
    assert!(described.diff(&Schema::current(), "arena").is_empty());
    let (status, bytes) = net::http(addr, "GET", "/api/schema?format=bincode").await;
    assert_eq!(status, 200);
    assert!(!bytes.is_empty());
    // A client one protocol version behind is refused at the handshake; the description tells
    // it what changed.
    let mut older = Schema::current();
    older.protocol -= 1;
    let diff = older.diff(&described, "arena");
    assert_eq!(
        diff,
        [format!(
            "protocol: version {} here, {} on the server",
            PROTOCOL_VERSION - 1,
            PROTOCOL_VERSION
        )]
    );
}
