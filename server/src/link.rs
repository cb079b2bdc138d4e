//! The client side of a session's transport, for the bots and the tests: one [`Link`] over a
//! WebSocket (`ws://`, `wss://`) or a WebTransport session (`https://…/wt`), moving whole
//! protocol messages. It mirrors the server's [`crate::quic`] layout: inputs go as datagrams
//! when they fit, everything else on the session's stream; snapshots arrive as datagrams or on
//! unidirectional streams; heartbeats are answered. [`Link::recv`] is cancel-safe (it can sit
//! in a `select!`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use tickwire_shared::codec::MAX_SERVER_MESSAGE_BYTES;
use tickwire_shared::stream_frame::{
    FRAME_HEADER_BYTES, frame_len, framed, is_unreliable_client_message,
};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wtransport::endpoint::endpoint_side::Client as ClientSide;
use wtransport::tls::Sha256Digest;
use wtransport::{Connection, Endpoint, RecvStream, SendStream};

/// Which transport a client uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// WebSocket over plain TCP.
    #[default]
    Ws,
    /// WebSocket over TLS.
    Wss,
    /// WebTransport (HTTP/3 over QUIC).
    WebTransport,
}

impl TransportKind {
    /// Its name on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
            TransportKind::WebTransport => "webtransport",
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TransportKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ws" => Ok(TransportKind::Ws),
            "wss" => Ok(TransportKind::Wss),
            "webtransport" | "wt" => Ok(TransportKind::WebTransport),
            other => Err(format!("unknown transport {other:?} (ws, wss, webtransport)")),
        }
    }
}

/// Which server certificates a TLS client (WSS, WebTransport) accepts.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Certificates signed by these (or these very certificates): `--ca PEM`.
    Roots(Vec<CertificateDer<'static>>),
    /// A short-lived self-signed certificate with one of these SHA-256 hashes, the way browsers
    /// accept a development certificate for WebTransport.
    Hashes(Vec<[u8; 32]>),
    /// Any certificate (`--insecure`). For tests against a development server only.
    Insecure,
}

impl Trust {
    /// Trust the certificates of a PEM file (a CA, or the server's own self-signed one).
    ///
    /// # Errors
    ///
    /// When the file cannot be read or holds no certificate.
    pub fn from_pem_file(path: &Path) -> anyhow::Result<Trust> {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .with_context(|| format!("reading the CA certificate {}", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no PEM certificate", path.display());
        }
        Ok(Trust::Roots(certs))
    }

    /// A rustls client configuration (ring, `alpn`) that trusts what `self` says.
    pub fn rustls_config(
        &self,
        alpn: &[u8],
        tls13_only: bool,
    ) -> anyhow::Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone());
        let builder = if tls13_only {
            builder.with_protocol_versions(&[&rustls::version::TLS13])?
        } else {
            builder.with_safe_default_protocol_versions()?
        };
        let mut roots = rustls::RootCertStore::empty();
        match self {
            Trust::Roots(certs) => {
                for cert in certs {
                    roots.add(cert.clone()).context("a CA certificate rustls refuses")?;
                }
            }
            Trust::Hashes(_) | Trust::Insecure => {}
        }
        let mut config = builder.with_root_certificates(roots).with_no_client_auth();
        let hashes = match self {
            Trust::Hashes(hashes) => Some(Some(hashes.clone())),
            Trust::Insecure => Some(None),
            Trust::Roots(_) => None,
        };
        if let Some(hashes) = hashes {
            let check = CertificateCheck { hashes, provider };
            config.dangerous().set_certificate_verifier(Arc::new(check));
        }
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(config)
    }
}

/// Accepts a server certificate whose SHA-256 is one of `hashes`, or any certificate when
/// `hashes` is `None` (`--insecure`); the handshake's signatures are checked either way.
#[derive(Debug)]
struct CertificateCheck {
    hashes: Option<Vec<[u8; 32]>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for CertificateCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.hashes {
            Some(hashes) if !hashes.contains(&crate::tls::sha256(end_entity)) => {
                Err(rustls::Error::General("not the pinned certificate".into()))
            }
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A rustls client configuration for WSS or HTTPS (ALPN http/1.1) trusting `trust`.
///
/// # Errors
///
/// When a CA certificate is unusable.
pub fn https_client_config(trust: &Trust) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    Ok(Arc::new(trust.rustls_config(b"http/1.1", false)?))
}

/// A QUIC client endpoint on an ephemeral UDP port of `bind_ip`, trusting `trust`. One endpoint
/// (one socket) carries any number of connections.
///
/// # Errors
///
/// When the socket cannot be bound or a CA certificate is unusable.
pub fn quic_client_endpoint(
    trust: &Trust,
    bind_ip: std::net::IpAddr,
) -> anyhow::Result<Endpoint<ClientSide>> {
    let socket = crate::quic::udp_socket(std::net::SocketAddr::new(bind_ip, 0))
        .context("binding the QUIC client socket")?;
    let builder = wtransport::ClientConfig::builder().with_bind_socket(socket);
    let config = match trust {
        Trust::Hashes(hashes) => builder
            .with_server_certificate_hashes(hashes.iter().map(|h| Sha256Digest::new(*h)))
            .build(),
        other => builder.with_custom_tls(other.rustls_config(b"h3", true)?).build(),
    };
    Endpoint::client(config).context("binding the QUIC client socket")
}

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the link received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// One server message, delivered reliably and in order.
    Message(Vec<u8>),
    /// One server message that came as a datagram (WebTransport: a snapshot).
    Datagram(Vec<u8>),
    /// The server closed the session with this code (a WebSocket close code; on WebTransport
    /// the application close code) and reason.
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The transport failed.
    Broken(String),
}

/// A byte stream under a WebSocket: plain TCP or TLS.
pub trait ByteStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ByteStream for T {}

type Ws = WebSocketStream<Box<dyn ByteStream>>;

/// A client's connection to a session, over either transport.
pub enum Link {
    /// A WebSocket.
    Ws {
        /// Over TLS.
        tls: bool,
        /// Sending half.
        sink: SplitSink<Ws, Message>,
        /// Receiving half.
        stream: SplitStream<Ws>,
    },
    /// A WebTransport session (wtransport's client: the tests' independent one).
    WebTransport(WtLink),
    /// A WebTransport session on this crate's own QUIC runtime (the bots').
    Quic(Box<crate::wt_client::WtSession>),
}

impl Link {
    /// Opens a WebSocket to `url` (`ws://` or `wss://`, trusting `trust`).
    ///
    /// # Errors
    ///
    /// A refused handshake (with its HTTP status and body), a timeout, a bad URL.
    pub async fn websocket(url: &str, trust: &Trust) -> anyhow::Result<Link> {
        let request = url.into_client_request().context("a bad WebSocket URL")?;
        let tls = request.uri().scheme_str() == Some("wss");
        let host = request.uri().host().context("the URL has no host")?.to_owned();
        let port = request.uri().port_u16().unwrap_or(if tls { 443 } else { 80 });
        let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let tcp =
                TcpStream::connect((bare, port)).await.map_err(|e| format!("io: {}", e.kind()))?;
            let _ = tcp.set_nodelay(true);
            let stream: Box<dyn ByteStream> = if tls {
                let config = https_client_config(trust).map_err(|e| format!("{e:#}"))?;
                let name = rustls::pki_types::ServerName::try_from(bare.to_owned())
                    .map_err(|e| e.to_string())?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                Box::new(tls)
            } else {
                Box::new(tcp)
            };
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(|e| describe_ws_error(&e))
        })
        .await;
        let (ws, _) = match connected {
            Ok(Ok(ok)) => ok,
            Ok(Err(e)) => bail!("{e}"),
            Err(_) => bail!("handshake timed out"),
        };
        let (sink, stream) = ws.split();
        Ok(Link::Ws { tls, sink, stream })
    }

    /// Opens a WebTransport session to `url` (`https://host:port/wt?…`) from `endpoint`.
    ///
    /// # Errors
    ///
    /// A refused session, a failed handshake, a timeout.
    pub async fn webtransport(endpoint: &Endpoint<ClientSide>, url: &str) -> anyhow::Result<Link> {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let connection = endpoint.connect(url).await?;
            // The server opens the session's stream at once.
            let (send, recv) = connection.accept_bi().await?;
            anyhow::Ok((connection, send, recv))
        })
        .await;
        match connected {
            Ok(Ok((connection, send, recv))) => {
                Ok(Link::WebTransport(WtLink::new(connection, send, recv)))
            }
            Ok(Err(e)) => bail!("{e}"),
            Err(_) => bail!("WebTransport session timed out"),
        }
    }

    /// Whether `bytes` (an encoded client message) would travel as a datagram.
    #[must_use]
    pub fn sends_as_datagram(&self, bytes: &[u8]) -> bool {
        match self {
            Link::Ws { .. } => false,
            Link::WebTransport(wt) => {
                is_unreliable_client_message(bytes)
                    && wt.connection.max_datagram_size().is_some_and(|max| bytes.len() <= max)
            }
            Link::Quic(wt) => wt.sends_as_datagram(bytes),
        }
    }

    /// Which transport this is.
    #[must_use]
    pub fn kind(&self) -> TransportKind {
        match self {
            Link::Ws { tls: true, .. } => TransportKind::Wss,
            Link::Ws { tls: false, .. } => TransportKind::Ws,
            Link::WebTransport(_) | Link::Quic(_) => TransportKind::WebTransport,
        }
    }

    /// Sends one client message: on WebTransport, inputs as datagrams when they fit.
    ///
    /// # Errors
    ///
    /// When the transport failed.
    pub async fn send(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Link::Ws { sink, .. } => Ok(sink.send(Message::Binary(bytes.into())).await?),
            Link::WebTransport(wt) => wt.send(bytes).await,
            Link::Quic(wt) => wt.send(&bytes).await,
        }
    }

    /// Sends `bytes` on the reliable channel whatever they are (tests: an input on the
    /// stream, a hostile frame).
    ///
    /// # Errors
    ///
    /// When the transport failed.
    pub async fn send_reliable(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Link::Ws { sink, .. } => Ok(sink.send(Message::Binary(bytes.to_vec().into())).await?),
            Link::WebTransport(wt) => Ok(wt.stream.write_all(&framed(bytes)).await?),
            Link::Quic(wt) => wt.send_reliable(bytes).await,
        }
    }

    /// The next event. Cancel-safe.
    pub async fn recv(&mut self) -> LinkEvent {
        match self {
            Link::Ws { stream, .. } => loop {
                return match stream.next().await {
                    None => LinkEvent::Broken("stream ended".into()),
                    Some(Err(e)) => LinkEvent::Broken(e.to_string()),
                    Some(Ok(Message::Binary(b))) => LinkEvent::Message(b.to_vec()),
                    Some(Ok(Message::Close(frame))) => LinkEvent::Closed {
                        code: frame.as_ref().map_or(1005, |f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    },
                    // Pings are answered by tungstenite.
                    Some(Ok(_)) => continue,
                };
            },
            Link::WebTransport(wt) => wt
                .inbound
                .recv()
                .await
                .unwrap_or_else(|| LinkEvent::Broken("the session's readers stopped".into())),
            Link::Quic(wt) => wt.recv().await,
        }
    }

    /// Closes the link: a WebSocket close frame, or a WebTransport close with `code`.
    pub async fn close(&mut self, code: u16, reason: &str) {
        match self {
            Link::Ws { sink, .. } => {
                let frame = tokio_tungstenite::tungstenite::protocol::frame::CloseFrame {
                    code: code.into(),
                    reason: reason.to_owned().into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                let _ = sink.close().await;
            }
            Link::WebTransport(wt) => {
                wt.connection.close(wtransport::VarInt::from_u32(code.into()), reason.as_bytes());
            }
            Link::Quic(wt) => wt.close(code, reason),
        }
    }

    /// Drops the transport without a word, as a network failure would (WebTransport: a close
    /// with code 0, which the server treats as a lost connection).
    pub fn abort(self) {
        match &self {
            Link::WebTransport(wt) => wt.connection.close(wtransport::VarInt::from_u32(0), b""),
            Link::Quic(wt) => wt.close(0, ""),
            Link::Ws { .. } => {}
        }
    }
}

fn describe_ws_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(resp) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .unwrap_or_default();
            let body: String = body.chars().take(120).collect();
            format!("HTTP {}: {body}", resp.status().as_u16())
        }
        Error::Io(io) => format!("io: {}", io.kind()),
        other => other.to_string(),
    }
}

/// Events buffered between a WebTransport session's readers and its user.
const LINK_QUEUE: usize = 64;

/// A client's WebTransport session: the stream for sending, reader tasks feeding a queue.
pub struct WtLink {
    connection: Connection,
    stream: SendStream,
    inbound: mpsc::Receiver<LinkEvent>,
    _tasks: JoinSet<()>,
}

impl WtLink {
    fn new(connection: Connection, send: SendStream, recv: RecvStream) -> WtLink {
        let (tx, inbound) = mpsc::channel(LINK_QUEUE);
        let mut tasks = JoinSet::new();
        // Datagrams that overtake the session's first reliable message (the `Welcome`) are
        // dropped, as if lost: a snapshot means nothing before it.
        let (started_tx, started) = tokio::sync::watch::channel(false);
        let c = connection.clone();
        let to_user = tx.clone();
        tasks.spawn(async move {
            let mut recv = recv;
            while let Some(message) = read_frame(&mut recv).await {
                if to_user.send(LinkEvent::Message(message)).await.is_err() {
                    return;
                }
                started_tx.send_replace(true);
            }
            // The stream ended: the session is closing; report how.
            let event = match c.closed().await {
                wtransport::error::ConnectionError::ApplicationClosed(close) => LinkEvent::Closed {
                    code: u16::try_from(close.code().into_inner()).unwrap_or(u16::MAX),
                    reason: String::from_utf8_lossy(close.reason()).into_owned(),
                },
                other => LinkEvent::Broken(other.to_string()),
            };
            let _ = to_user.send(event).await;
        });
        let c = connection.clone();
        let to_user = tx.clone();
        let uni_started = started.clone();
        tasks.spawn(async move {
            while let Ok(d) = c.receive_datagram().await {
                if d.payload().is_empty() {
                    // A heartbeat: answer it.
                    let _ = c.send_datagram([]);
                } else if !*started.borrow() {
                    // Before the welcome: dropped.
                } else if to_user.send(LinkEvent::Datagram(d.payload().to_vec())).await.is_err() {
                    return;
                }
            }
        });
        let c = connection.clone();
        tasks.spawn(async move {
            let mut readers = JoinSet::new();
            // A snapshot too large for a datagram, alone on its stream: unreliable like one (a
            // newer one may reset it), and like one dropped before the welcome.
            while let Ok(mut stream) = c.accept_uni().await {
                let to_user = tx.clone();
                let started = uni_started.clone();
                readers.spawn(async move {
                    if let Some(message) = read_frame(&mut stream).await
                        && *started.borrow()
                    {
                        let _ = to_user.send(LinkEvent::Datagram(message)).await;
                    }
                });
                while readers.try_join_next().is_some() {}
            }
        });
        WtLink { connection, stream: send, inbound, _tasks: tasks }
    }

    async fn send(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        let fits = self.connection.max_datagram_size().is_some_and(|max| bytes.len() <= max);
        if fits && is_unreliable_client_message(&bytes) {
            match self.connection.send_datagram(&bytes) {
                Ok(()) => return Ok(()),
                Err(wtransport::error::SendDatagramError::TooLarge) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.stream.write_all(&framed(&bytes)).await?)
    }

    /// The underlying connection (tests read its statistics).
    #[must_use]
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

/// Reads one framed server message; `None` at the end of the stream or on an error.
async fn read_frame(stream: &mut RecvStream) -> Option<Vec<u8>> {
    let mut header = [0; FRAME_HEADER_BYTES];
    stream.read_exact(&mut header).await.ok()?;
    let len = frame_len(header);
    if len > MAX_SERVER_MESSAGE_BYTES {
        return None;
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.ok()?;
    Some(body)
}
