//! Helpers for tests over real sockets: start a server on `127.0.0.1:0`, mint tokens, open
//! WebSocket sessions, read messages and close frames with deadlines, and make HTTP requests.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tickwire_server::auth::{Claims, JwtKeys, unix_now};
use tickwire_server::config::ServerConfig;
use tickwire_server::server::Server;
use tickwire_shared::codec;
use tickwire_shared::protocol::{ClientMessage, PROTOCOL_VERSION, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The JWT secret every test server uses (the server refuses one under 32 bytes).
pub const TEST_SECRET: &str = "tickwire-test-secret-of-32-bytes-or-more";

/// Default deadline for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A test configuration: ephemeral port, known secret, fast rates.
#[must_use]
pub fn test_config() -> ServerConfig {
    ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        jwt_secret: Some(TEST_SECRET.to_owned()),
        ..ServerConfig::default()
    }
}

/// Starts a server.
pub async fn start(config: ServerConfig) -> Server {
    Server::start(config).await.expect("server starts")
}

/// A valid token for the test secret.
#[must_use]
pub fn token() -> String {
    token_for("tester")
}

/// A valid token for the test secret whose subject is `sub`.
#[must_use]
pub fn token_for(sub: &str) -> String {
    JwtKeys::new(TEST_SECRET.as_bytes()).sign(&Claims { sub: sub.into(), exp: unix_now() + 600 })
}

/// A neutral arena input message numbered `seq` (no ack).
#[must_use]
pub fn input(seq: u32) -> ClientMessage {
    ClientMessage::Input(tickwire_shared::protocol::InputBatch {
        ack: None,
        first_seq: seq,
        frames: codec::encode_inputs(&[tickwire_shared::games::arena::ArenaInput::default()])
            .expect("encodes"),
        view: None,
    })
}

/// Opens a session as subject `sub` with the given extra query (`&resume=…`) and returns it
/// with its `Welcome`.
pub async fn join_as(
    addr: SocketAddr,
    sub: &str,
    extra_query: &str,
) -> (Ws, tickwire_shared::protocol::Welcome) {
    let query = format!("v={PROTOCOL_VERSION}&token={}{extra_query}", token_for(sub));
    let mut ws = connect_with(addr, &query, &[]).await.expect("handshake accepted");
    match recv(&mut ws).await {
        Received::Message(ServerMessage::Welcome(w)) => (ws, w),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/ws?{query}` with extra headers. On a refused handshake, returns the HTTP status and
/// body.
pub async fn connect_with(
    addr: SocketAddr,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, (u16, String)> {
    let mut req = format!("ws://{addr}/ws?{query}").into_client_request().expect("valid url");
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes())
            .expect("valid header name");
        req.headers_mut().insert(name, HeaderValue::from_str(v).expect("valid header"));
    }
    match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(req)).await {
        Err(_) => Err((0, "handshake timed out".into())),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((status, body))
        }
        Ok(Err(e)) => Err((0, e.to_string())),
    }
}

/// Opens a session with protocol v1, a valid token and the given extra query (`&room=…`).
pub async fn connect(addr: SocketAddr, extra_query: &str) -> Ws {
    let query = format!("v={PROTOCOL_VERSION}&token={}{extra_query}", token());
    connect_with(addr, &query, &[]).await.expect("handshake accepted")
}

/// What the next frame was.
#[derive(Debug)]
pub enum Received {
    /// A protocol message.
    Message(ServerMessage),
    /// A close frame: code and reason.
    Close(u16, String),
    /// The stream ended without a close frame.
    Ended,
}

/// The next protocol message or close, skipping pings. Panics at the deadline. Any stream
/// (plain TCP, TLS) will do.
pub async fn recv<S>(ws: &mut WebSocketStream<S>) -> Received
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no frame before the deadline");
        match next {
            None => return Received::Ended,
            Some(Err(_)) => return Received::Ended,
            Some(Ok(Message::Binary(b))) => {
                return Received::Message(codec::decode_server(&b).expect("server bytes decode"));
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                return Received::Close(code, reason);
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Reads until a close frame and returns its code and reason (messages before it are skipped).
pub async fn expect_close(ws: &mut Ws) -> (u16, String) {
    loop {
        match recv(ws).await {
            Received::Close(code, reason) => return (code, reason),
            Received::Ended => panic!("connection ended without a close frame"),
            Received::Message(_) => {}
        }
    }
}

/// Sends a client message.
pub async fn send(ws: &mut Ws, msg: &ClientMessage) {
    send_result(ws, msg).await.expect("send");
}

/// Sends a client message, returning the transport's error (the server may have closed).
pub async fn send_result(
    ws: &mut Ws,
    msg: &ClientMessage,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let bytes = codec::encode_client(msg).expect("encodes");
    ws.send(Message::Binary(bytes.into())).await
}

/// The value of a metric line (`name{labels} value`) in Prometheus text, 0 when absent.
#[must_use]
pub fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A plain HTTP/1.1 request; returns the status and body.
pub async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http_with_headers(addr, method, path).await;
    (status, body)
}

/// Like [`http`], with the response's header block (lines `Name: value`, as sent).
pub async fn http_with_headers(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> (u16, String, String) {
    let (status, head, body) = http_request(addr, method, path, &[]).await;
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// A plain HTTP/1.1 request with extra request headers; returns the status, the response's
/// header block and its body's bytes (a chunked body joined, a compressed one left as sent).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    http_with_body(addr, method, path, headers, &[]).await
}

/// [`http_request`] with a body: status, head and body (de-chunked).
pub async fn http_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut buf))
        .await
        .expect("reply in time")
        .expect("read");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let body = buf.get(split + 4..).unwrap_or_default();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    (status, head, body)
}

/// The data of a chunked body (RFC 9112 §7.1), trailers dropped.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let line = std::str::from_utf8(&data[..eol]).expect("chunk size is text");
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).expect("chunk size is hex");
        data = &data[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    out
}

/// The value of header `name` in a response's header block, if present (names compared
/// case-insensitively).
#[must_use]
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Like [`join_as`], from the loopback address `from` (any of 127.0.0.0/8 reaches the server,
/// so one test can be several clients' IPs). A refused join comes back as its close frame.
pub async fn join_from(
    from: std::net::Ipv4Addr,
    addr: SocketAddr,
    sub: &str,
    extra_query: &str,
) -> Result<(Ws, tickwire_shared::protocol::Welcome), (u16, String)> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((from, 0))).expect("bind a loopback address");
    let tcp = tokio::time::timeout(DEADLINE, socket.connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    let query = format!("v={PROTOCOL_VERSION}&token={}{extra_query}", token_for(sub));
    let req = format!("ws://{addr}/ws?{query}").into_client_request().expect("valid url");
    let (mut ws, _) = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp)),
    )
    .await
    .expect("handshake in time")
    .expect("handshake accepted");
    match recv(&mut ws).await {
        Received::Message(ServerMessage::Welcome(w)) => Ok((ws, w)),
        // A refusal says why in a message, then in the close frame.
        Received::Message(ServerMessage::Disconnect { .. }) => Err(expect_close(&mut ws).await),
        Received::Close(code, reason) => Err((code, reason)),
        other => panic!("expected a welcome or a close, got {other:?}"),
    }
}

/// A `tickwire serve` process (the test server binary), killed when dropped.
pub struct ServerProcess {
    /// The process.
    pub child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether its URL is `https://`.
    pub tls: bool,
    /// What it printed up to and including the line with its URL.
    pub banner: Vec<String>,
}

impl ServerProcess {
    /// Starts `tickwire-test-server serve --bind 127.0.0.1:0 --jwt-secret … {args}` (`bin` is
    /// `env!("CARGO_BIN_EXE_tickwire-test-server")`) and waits for the line naming its address
    /// (`Tickwire is listening: open http://…` or `https://…`).
    pub async fn start(bin: &str, args: &[&str]) -> ServerProcess {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(bin)
            .args(["serve", "--bind", "127.0.0.1:0", "--jwt-secret", TEST_SECRET])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("server starts");
        let stdout = child.stdout.take().expect("piped");
        let lines = tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufReader::new(stdout);
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if out.read_line(&mut line)? == 0 || line.contains("Tickwire is listening") {
                    lines.push(line);
                    return Ok::<_, std::io::Error>(lines);
                }
                lines.push(line);
            }
        });
        let banner =
            tokio::time::timeout(DEADLINE, lines).await.expect("prints its URL").unwrap().unwrap();
        let line = banner.last().cloned().unwrap_or_default();
        let (tls, rest) = match line.split_once("https://") {
            Some((_, rest)) => (true, Some(rest)),
            None => (false, line.split_once("http://").map(|(_, rest)| rest)),
        };
        let addr = rest
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        ServerProcess { child, addr, tls, banner }
    }

    /// A line of the process's `/proc/<pid>/status` (`Threads`, `VmRSS`…) as a number.
    #[must_use]
    pub fn status(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process runs");
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
