//! Sessions over any transport for the behaviour suite: the server's own client [`Link`]
//! (WebSocket, WSS, WebTransport), messages decoded, closes with their code, every wait under
//! [`DEADLINE`].

use std::net::{IpAddr, SocketAddr};

use tickwire_server::h3;

use tickwire_server::link::{Link, LinkEvent, TransportKind, Trust, quic_client_endpoint};
use tickwire_server::server::Server;
use tickwire_shared::codec;
use tickwire_shared::protocol::{ClientMessage, DisconnectReason, PROTOCOL_VERSION, ServerMessage};
use tickwire_shared::stream_frame::WEBTRANSPORT_PATH;

use crate::net::{DEADLINE, token_for};

/// The transports a plain-HTTP test server with a QUIC endpoint offers.
pub const PLAIN_AND_QUIC: [TransportKind; 2] = [TransportKind::Ws, TransportKind::WebTransport];

/// A test configuration with a QUIC endpoint on an ephemeral UDP port of 127.0.0.1 (and its
/// own development certificate).
#[must_use]
pub fn quic_config() -> tickwire_server::config::ServerConfig {
    let mut config = crate::net::test_config();
    config.quic = tickwire_server::config::QuicBind::Addr(SocketAddr::from(([127, 0, 0, 1], 0)));
    config
}

/// What a client of `server` trusts: its development certificates by hash.
#[must_use]
pub fn trust(server: &Server) -> Trust {
    let state = server.state();
    let hashes: Vec<[u8; 32]> = state
        .tls_cert_sha256
        .into_iter()
        .chain(state.webtransport.as_ref().and_then(|w| w.dev_cert_sha256))
        .collect();
    Trust::Hashes(hashes)
}

/// The URL of `server`'s `kind` endpoint with `query`.
#[must_use]
pub fn url(server: &Server, kind: TransportKind, query: &str) -> String {
    match kind {
        TransportKind::Ws => format!("ws://{}/ws?{query}", server.local_addr()),
        TransportKind::Wss => format!("wss://localhost:{}/ws?{query}", server.local_addr().port()),
        TransportKind::WebTransport => {
            let quic = server.quic_addr().expect("the server has a QUIC endpoint");
            format!("https://localhost:{}{WEBTRANSPORT_PATH}?{query}", quic.port())
        }
    }
}

/// Opens a session of `kind` with `query` (the whole join query).
///
/// # Errors
///
/// When the server refuses it or it fails.
pub async fn open_with(server: &Server, kind: TransportKind, query: &str) -> anyhow::Result<Link> {
    let url = url(server, kind, query);
    match kind {
        TransportKind::WebTransport => {
            let endpoint = quic_client_endpoint(&trust(server), IpAddr::from([127, 0, 0, 1]))?;
            let link = Link::webtransport(&endpoint, &url).await?;
            // The endpoint lives as long as any of its connections; dropping the handle is fine.
            Ok(link)
        }
        _ => Link::websocket(&url, &trust(server)).await,
    }
}

/// Opens a WebTransport session with the bots' own client ([`tickwire_server::wt_client`]) as
/// subject `sub` with extra query parameters.
///
/// # Errors
///
/// When the server refuses it or it fails.
pub async fn open_own_webtransport(
    server: &Server,
    sub: &str,
    extra: &str,
) -> anyhow::Result<Link> {
    let query = format!("v={PROTOCOL_VERSION}&token={}{extra}", token_for(sub));
    let url = url(server, TransportKind::WebTransport, &query);
    let client =
        tickwire_server::wt_client::WtClient::new(&trust(server), IpAddr::from([127, 0, 0, 1]))?;
    Ok(Link::Quic(Box::new(client.connect(&url).await?)))
}

/// Opens a session of `kind` as subject `sub` with extra query parameters (`&room=…`).
pub async fn open(server: &Server, kind: TransportKind, sub: &str, extra: &str) -> Link {
    let query = format!("v={PROTOCOL_VERSION}&token={}{extra}", token_for(sub));
    open_with(server, kind, &query).await.unwrap_or_else(|e| panic!("{kind} session: {e:#}"))
}

/// What arrived next.
#[derive(Debug)]
pub enum Got {
    /// A protocol message.
    Message(ServerMessage),
    /// The server closed with this code and reason.
    Closed(u16, String),
    /// The transport failed.
    Broken(String),
}

/// The next message or close. Panics at the deadline.
pub async fn next(link: &mut Link) -> Got {
    let event =
        tokio::time::timeout(DEADLINE, link.recv()).await.expect("nothing before the deadline");
    match event {
        LinkEvent::Message(bytes) | LinkEvent::Datagram(bytes) => {
            Got::Message(codec::decode_server(&bytes).expect("server bytes decode"))
        }
        LinkEvent::Closed { code, reason } => Got::Closed(code, reason),
        LinkEvent::Broken(why) => Got::Broken(why),
    }
}

/// Joins and returns the session with its `Welcome`.
pub async fn join(
    server: &Server,
    kind: TransportKind,
    sub: &str,
    extra: &str,
) -> (Link, tickwire_shared::protocol::Welcome) {
    let mut link = open(server, kind, sub, extra).await;
    match next(&mut link).await {
        Got::Message(ServerMessage::Welcome(w)) => (link, w),
        other => panic!("{kind}: expected a welcome, got {other:?}"),
    }
}

/// Reads until the session ends; returns the close code and reason and the `Disconnect`
/// reason that came before, if any.
pub async fn expect_close(link: &mut Link) -> (u16, String, Option<DisconnectReason>) {
    let mut said = None;
    loop {
        match next(link).await {
            Got::Message(ServerMessage::Disconnect { reason, .. }) => said = Some(reason),
            Got::Message(_) => {}
            Got::Closed(code, reason) => return (code, reason, said),
            Got::Broken(why) => panic!("the session broke instead of closing: {why}"),
        }
    }
}

/// Sends a client message the way a client does (inputs as datagrams on WebTransport).
pub async fn send(link: &mut Link, msg: &ClientMessage) {
    link.send(codec::encode_client(msg).expect("encodes")).await.expect("send");
}

/// A UDP relay that drops a share of the datagrams in each direction: a lossy network between
/// one client and a QUIC server, seeded and reproducible. The client sends to
/// [`LossyRelay::addr`]; the server sees the relay's other socket as the client.
pub struct LossyRelay {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    /// Datagrams dropped and passed, both directions.
    pub counts: std::sync::Arc<std::sync::Mutex<(u64, u64)>>,
}

impl LossyRelay {
    /// Starts a relay to `server` dropping `loss` (0..1) of the datagrams each way.
    pub async fn start(server: SocketAddr, loss: f64, seed: u64) -> LossyRelay {
        let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let back = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        back.connect(server).await.expect("connect");
        let addr = front.local_addr().expect("addr");
        let counts = std::sync::Arc::new(std::sync::Mutex::new((0, 0)));
        let tally = counts.clone();
        let task = tokio::spawn(async move {
            let mut rng = tickwire_shared::rng::Rng::new(seed);
            let mut client: Option<SocketAddr> = None;
            let (mut a, mut b) = (vec![0u8; 65_536], vec![0u8; 65_536]);
            loop {
                let (bytes, to_server) = tokio::select! {
                    r = front.recv_from(&mut a) => match r {
                        Ok((n, from)) => { client = Some(from); (&a[..n], true) }
                        Err(_) => continue,
                    },
                    r = back.recv(&mut b) => match r {
                        Ok(n) => (&b[..n], false),
                        Err(_) => continue,
                    },
                };
                let drop = rng.unit_f64() < loss;
                {
                    let mut c = tally.lock().unwrap();
                    if drop { c.0 += 1 } else { c.1 += 1 }
                }
                if drop {
                    continue;
                }
                if to_server {
                    let _ = back.send(bytes).await;
                } else if let Some(c) = client {
                    let _ = front.send_to(bytes, c).await;
                }
            }
        });
        LossyRelay { addr, task, counts }
    }

    /// Where the client sends.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A bare QUIC connection to `server`'s WebTransport port (ALPN h3, its development
/// certificate trusted by hash), for tests that speak HTTP/3 by hand. The endpoint comes along:
/// it must outlive the connection.
///
/// # Panics
///
/// When the server has no QUIC endpoint or the handshake fails.
pub async fn raw_quic(server: &Server) -> (quinn::Endpoint, quinn::Connection) {
    let quic = server.quic_addr().expect("the server has a QUIC endpoint");
    let crypto = trust(server).rustls_config(b"h3", true).expect("a client TLS configuration");
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).expect("TLS 1.3");
    let mut endpoint =
        quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a client socket");
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
    let connecting = endpoint.connect(quic, "localhost").expect("a connection attempt");
    let connection = tokio::time::timeout(DEADLINE, connecting)
        .await
        .expect("the QUIC handshake finishes in time")
        .expect("the QUIC handshake succeeds");
    (endpoint, connection)
}

/// Reads one whole HTTP/3 frame from `recv` into `buffered` (which may hold more after it):
/// its type and payload.
///
/// # Panics
///
/// When the stream ends or fails first, or nothing comes for 10 s.
pub async fn read_h3_frame(recv: &mut quinn::RecvStream, buffered: &mut Vec<u8>) -> (u64, Vec<u8>) {
    loop {
        if let Some((frame_type, header, len)) = h3::read_frame_header(buffered) {
            let end = header + usize::try_from(len).expect("a small frame");
            if buffered.len() >= end {
                let payload = buffered[header..end].to_vec();
                buffered.drain(..end);
                return (frame_type, payload);
            }
        }
        let chunk = tokio::time::timeout(DEADLINE, recv.read_chunk(4096, true))
            .await
            .expect("the frame comes in time")
            .expect("the stream is readable")
            .expect("the stream goes on");
        buffered.extend_from_slice(&chunk.bytes);
    }
}
