//! A WebTransport client on the server's own QUIC runtime ([`crate::quic_rt`]), for the bots:
//! every session of a bot run shares one UDP socket and one driver task, and a session is its
//! bot's task alone (no reader tasks, no channels). It speaks what a session needs of HTTP/3:
//! its control stream, the extended CONNECT and its answer, the session's bidirectional
//! stream, datagrams with their quarter stream id, and the unidirectional streams that carry
//! snapshots too large for a datagram. The independent client of the tests is wtransport
//! ([`crate::link::WtLink`]); the browser's is Chromium's.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use quinn_proto::{ConnectionError, TransportErrorCode, VarInt};
use tickwire_shared::codec::MAX_SERVER_MESSAGE_BYTES;
use tickwire_shared::stream_frame::{FrameDecoder, framed, is_unreliable_client_message};

use crate::h3;
use crate::link::{CONNECT_TIMEOUT, LinkEvent, Trust};
use crate::quic_rt::{self, Connection, QuicError, RecvStream, SendStream};

/// The client's HTTP/3 SETTINGS: no dynamic QPACK table, HTTP datagrams and WebTransport.
const CLIENT_SETTINGS: [(u64, u64); 4] = [
    (0x01, 0),        // SETTINGS_QPACK_MAX_TABLE_CAPACITY
    (0x07, 0),        // SETTINGS_QPACK_BLOCKED_STREAMS
    (0x33, 1),        // SETTINGS_H3_DATAGRAM
    (0x2b60_3742, 1), // SETTINGS_ENABLE_WEBTRANSPORT (draft-02)
];

/// Snapshot streams read at once; a further one stops the oldest (a newer snapshot wins).
const MAX_SNAPSHOT_STREAMS: usize = 4;

/// The largest chunk taken from a stream at once.
const CHUNK: usize = 64 * 1024;

/// The largest answer to the session request.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Received datagrams a connection holds before the oldest are dropped.
const DATAGRAM_RECEIVE_BUFFER: usize = 64 * 1024;

/// One QUIC endpoint (one UDP socket) from which many sessions connect.
pub struct WtClient {
    endpoint: quic_rt::Endpoint,
    config: quinn_proto::ClientConfig,
}

impl WtClient {
    /// A client endpoint bound to `bind_ip` (any port), trusting what `trust` says. Needs a
    /// tokio runtime (its driver is a task).
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound or the TLS configuration is refused.
    pub fn new(trust: &Trust, bind_ip: IpAddr) -> anyhow::Result<WtClient> {
        let socket = crate::quic::udp_socket(SocketAddr::new(bind_ip, 0))
            .context("binding the QUIC client socket")?;
        let tls = trust.rustls_config(b"h3", true)?;
        let crypto = quinn_proto::crypto::rustls::QuicClientConfig::try_from(tls)
            .context("the TLS configuration cannot carry QUIC")?;
        let mut config = quinn_proto::ClientConfig::new(Arc::new(crypto));
        let mut transport = quinn_proto::TransportConfig::default();
        transport
            .datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER))
            .stream_receive_window(VarInt::from_u32(256 * 1024))
            .receive_window(VarInt::from_u32(1024 * 1024));
        config.transport_config(Arc::new(transport));
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let endpoint = quic_rt::Endpoint::client(socket, metrics)
            .context("registering the QUIC client socket")?;
        Ok(WtClient { endpoint, config })
    }

    /// Opens a session at `url` (`https://host:port/path?query`) within [`CONNECT_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// A bad URL, a refused connection or session (with its HTTP status), a timeout.
    pub async fn connect(&self, url: &str) -> anyhow::Result<WtSession> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.open(url)).await {
            Ok(session) => session,
            Err(_) => bail!("WebTransport session timed out"),
        }
    }

    async fn open(&self, url: &str) -> anyhow::Result<WtSession> {
        let uri: axum::http::Uri = url.parse().context("a bad WebTransport URL")?;
        if uri.scheme_str() != Some("https") {
            bail!("a WebTransport URL is https://");
        }
        let authority = uri.authority().context("the URL has no host")?.as_str();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let host = uri.host().context("the URL has no host")?;
        let name = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(443);
        let ipv4 = self.endpoint.local_addr().is_ok_and(|l| l.is_ipv4());
        let server = tokio::net::lookup_host((name, port))
            .await
            .with_context(|| format!("cannot resolve {authority}"))?
            .find(|a| a.is_ipv4() == ipv4)
            .with_context(|| format!("{authority} has no address of the socket's family"))?;
        let connection =
            self.endpoint.connect(self.config.clone(), server, name).await.map_err(describe)?;

        let mut control = connection.open_uni().await?;
        control.write_all(&h3::control_stream_preamble_with(&CLIENT_SETTINGS)).await?;

        let (mut connect_send, mut connect_recv) = connection.open_bi().await?;
        let request = h3::Request {
            method: "CONNECT".into(),
            protocol: "webtransport".into(),
            scheme: "https".into(),
            authority: authority.to_owned(),
            path: path.to_owned(),
            origin: None,
            authorization: None,
        };
        connect_send.write_all(&h3::request_frame(&request)).await?;
        let status = read_status(&mut connect_recv).await?;
        if status != 200 {
            bail!("the server refused the WebTransport session: HTTP {status}");
        }
        let session = u64::from(connect_send.id());

        // The server opens the session's stream at once: its first bytes name the session.
        let (send, recv) = connection.accept_bi().await?;
        Ok(WtSession {
            prefix: h3::datagram_prefix(session),
            connection,
            session,
            send,
            recv: Some(recv),
            header: Some(Vec::new()),
            frames: FrameDecoder::new(MAX_SERVER_MESSAGE_BYTES),
            started: false,
            snapshots: Vec::new(),
            pending: VecDeque::new(),
            _control: control,
            _connect: (connect_send, connect_recv),
        })
    }
}

/// Reads the answer's HEADERS frame on the CONNECT stream: its `:status`.
async fn read_status(recv: &mut RecvStream) -> anyhow::Result<u16> {
    let mut buffered = Vec::new();
    loop {
        if let Some((frame_type, header, len)) = h3::read_frame_header(&buffered) {
            let end = header + usize::try_from(len).unwrap_or(usize::MAX);
            if end > MAX_RESPONSE_BYTES {
                bail!("the session's answer is over {MAX_RESPONSE_BYTES} bytes");
            }
            if buffered.len() >= end {
                if frame_type != h3::frame_type::HEADERS {
                    // Frames of other types before the answer are skipped.
                    buffered.drain(..end);
                    continue;
                }
                let mut status = None;
                h3::decode_fields(&buffered[header..end], |name, value| {
                    if name == ":status" {
                        status = value.parse().ok();
                    }
                })?;
                return status.context("the session's answer has no :status");
            }
        }
        match recv.read_chunk(CHUNK).await? {
            Some(chunk) => buffered.extend_from_slice(&chunk),
            None => bail!("the server ended the request stream without an answer"),
        }
    }
}

/// A QUIC error as the bots report it (a refusal as wtransport words it: the bots retry on it).
fn describe(e: QuicError) -> anyhow::Error {
    match e {
        QuicError::Lost(ConnectionError::ConnectionClosed(close))
            if close.error_code == TransportErrorCode::CONNECTION_REFUSED =>
        {
            anyhow::anyhow!("the server refused to accept the connection")
        }
        QuicError::Lost(ConnectionError::TimedOut) => anyhow::anyhow!("handshake timed out"),
        other => other.into(),
    }
}

/// What the server's bidirectional stream holds before its messages: `0x41` and the session.
fn session_header(bytes: &[u8]) -> Option<(u64, usize)> {
    let (signal, a) = h3::read_varint(bytes)?;
    let (session, b) = h3::read_varint(&bytes[a..])?;
    (signal == h3::frame_type::WEBTRANSPORT_STREAM).then_some((session, a + b))
}

/// A snapshot stream being read: its bytes so far.
struct SnapshotStream {
    recv: RecvStream,
    bytes: Vec<u8>,
}

/// One WebTransport session, read and written by its bot's task.
pub struct WtSession {
    connection: Connection,
    session: u64,
    prefix: Vec<u8>,
    send: SendStream,
    /// The server's side of the session stream; `None` once it ended.
    recv: Option<RecvStream>,
    /// The stream's header while it is being read; `None` once checked.
    header: Option<Vec<u8>>,
    frames: FrameDecoder,
    /// The first message (the `Welcome`) came: datagrams that overtake it are dropped.
    started: bool,
    snapshots: Vec<SnapshotStream>,
    pending: VecDeque<LinkEvent>,
    /// Open for the session's life.
    _control: SendStream,
    _connect: (SendStream, RecvStream),
}

impl WtSession {
    /// The next event. Cancel-safe: what was read is kept for the next call.
    pub async fn recv(&mut self) -> LinkEvent {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &Context<'_>) -> Poll<LinkEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Poll::Ready(event);
            }
            let mut progress = false;
            if let Some(recv) = &mut self.recv {
                match recv.poll_chunk(cx, CHUNK) {
                    Poll::Ready(Ok(Some(chunk))) => {
                        progress = true;
                        if let Err(why) = self.take_stream_bytes(&chunk) {
                            return Poll::Ready(LinkEvent::Broken(why));
                        }
                    }
                    // The server finished its side: its close follows.
                    Poll::Ready(Ok(None)) => {
                        progress = true;
                        self.recv = None;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(self.ended(e)),
                    Poll::Pending => {}
                }
            }
            match self.connection.poll_datagram(cx) {
                Poll::Ready(Ok(datagram)) => {
                    progress = true;
                    self.take_datagram(&datagram);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(self.ended(e)),
                Poll::Pending => {}
            }
            match self.connection.poll_accept_uni(cx) {
                Poll::Ready(Ok(recv)) => {
                    progress = true;
                    if self.snapshots.len() == MAX_SNAPSHOT_STREAMS {
                        let mut oldest = self.snapshots.remove(0);
                        let _ = oldest.recv.stop(VarInt::from_u32(0));
                    }
                    self.snapshots.push(SnapshotStream { recv, bytes: Vec::new() });
                }
                Poll::Ready(Err(e)) => return Poll::Ready(self.ended(e)),
                Poll::Pending => {}
            }
            progress |= self.poll_snapshot_streams(cx);
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Bytes of the session stream: its header first, then framed messages.
    fn take_stream_bytes(&mut self, chunk: &[u8]) -> Result<(), String> {
        let mut chunk = chunk;
        if let Some(header) = &mut self.header {
            header.extend_from_slice(chunk);
            let Some((session, len)) = session_header(header) else {
                if header.len() > 16 {
                    return Err("the session stream does not start with its header".into());
                }
                return Ok(());
            };
            if session != self.session {
                return Err(format!("the session stream names session {session}"));
            }
            let header = self.header.take().unwrap_or_default();
            self.frames.push(&header[len..]);
            chunk = &[];
        }
        self.frames.push(chunk);
        loop {
            match self.frames.next_frame() {
                Ok(Some(message)) => {
                    self.started = true;
                    self.pending.push_back(LinkEvent::Message(message));
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// A datagram: a heartbeat is answered, a snapshot kept (once the session started).
    fn take_datagram(&mut self, datagram: &Bytes) {
        let Some(at) = h3::datagram_payload(self.session, datagram) else { return };
        let payload = &datagram[at..];
        if payload.is_empty() {
            let _ = self.connection.send_datagram(Bytes::from(self.prefix.clone()));
        } else if self.started {
            self.pending.push_back(LinkEvent::Datagram(payload.to_vec()));
        }
    }

    /// Reads the snapshot streams; one that ended yields its snapshot. Whether any moved.
    fn poll_snapshot_streams(&mut self, cx: &Context<'_>) -> bool {
        let mut progress = false;
        let mut i = 0;
        while i < self.snapshots.len() {
            let stream = &mut self.snapshots[i];
            match stream.recv.poll_chunk(cx, CHUNK) {
                Poll::Ready(Ok(Some(chunk))) => {
                    progress = true;
                    stream.bytes.extend_from_slice(&chunk);
                    if stream.bytes.len() > MAX_SERVER_MESSAGE_BYTES + 32 {
                        let mut stream = self.snapshots.remove(i);
                        let _ = stream.recv.stop(VarInt::from_u32(0));
                    }
                }
                Poll::Ready(Ok(None)) => {
                    progress = true;
                    let stream = self.snapshots.remove(i);
                    if let Some(message) = self.snapshot_of(&stream.bytes)
                        && self.started
                    {
                        self.pending.push_back(LinkEvent::Datagram(message));
                    }
                }
                // Reset by the server (a newer snapshot won) or lost with the connection (the
                // connection's own poll reports that).
                Poll::Ready(Err(_)) => {
                    progress = true;
                    self.snapshots.remove(i);
                }
                Poll::Pending => i += 1,
            }
        }
        progress
    }

    /// The message a whole snapshot stream holds: stream type, session, one frame.
    fn snapshot_of(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let (kind, a) = h3::read_varint(bytes)?;
        let (session, b) = h3::read_varint(&bytes[a..])?;
        if kind != h3::stream_type::WEBTRANSPORT || session != self.session {
            return None;
        }
        let mut frames = FrameDecoder::new(MAX_SERVER_MESSAGE_BYTES);
        frames.push(&bytes[a + b..]);
        frames.next_frame().ok().flatten()
    }

    /// How the session ended.
    fn ended(&self, e: QuicError) -> LinkEvent {
        match e {
            QuicError::Lost(ConnectionError::ApplicationClosed(close)) => LinkEvent::Closed {
                code: u16::try_from(close.error_code.into_inner()).unwrap_or(u16::MAX),
                reason: String::from_utf8_lossy(&close.reason).into_owned(),
            },
            other => LinkEvent::Broken(other.to_string()),
        }
    }

    /// Whether `bytes` (an encoded client message) would travel as a datagram.
    #[must_use]
    pub fn sends_as_datagram(&self, bytes: &[u8]) -> bool {
        is_unreliable_client_message(bytes)
            && self
                .connection
                .max_datagram_size()
                .is_some_and(|max| self.prefix.len() + bytes.len() <= max)
    }

    /// Sends one client message: inputs as datagrams when they fit, the rest on the stream.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        if self.sends_as_datagram(bytes) {
            let mut datagram = Vec::with_capacity(self.prefix.len() + bytes.len());
            datagram.extend_from_slice(&self.prefix);
            datagram.extend_from_slice(bytes);
            match self.connection.send_datagram(datagram.into()) {
                Ok(()) => return Ok(()),
                // The path's MTU shrank since: on the stream below.
                Err(QuicError::Datagram(quinn_proto::SendDatagramError::TooLarge)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.send_reliable(bytes).await
    }

    /// Sends `bytes` on the session stream whatever they are.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub async fn send_reliable(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        Ok(self.send.write_all(&framed(bytes)).await?)
    }

    /// Closes the session with `code` and `reason`.
    pub fn close(&self, code: u16, reason: &str) {
        self.connection.close(VarInt::from_u32(code.into()), reason.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_header_is_the_signal_and_the_session() {
        let mut bytes = h3::bidi_stream_header(8);
        bytes.extend_from_slice(b"rest");
        assert_eq!(session_header(&bytes), Some((8, 3)), "0x41 takes two bytes");
        assert_eq!(session_header(&bytes[..1]), None);
        let mut other = Vec::new();
        h3::write_varint(0x40, &mut other);
        h3::write_varint(8, &mut other);
        assert_eq!(session_header(&other), None);
    }
}
