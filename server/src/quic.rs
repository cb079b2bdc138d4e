//! The QUIC transport: a WebTransport (HTTP/3) endpoint on quinn, for browsers, bots and
//! native clients alike. One UDP socket carries every session. The HTTP/3 it takes (SETTINGS,
//! the extended CONNECT, stream and datagram headers) is [`crate::h3`]'s: a connection costs
//! quinn's state and the session's, no HTTP/3 task or queue of its own.
//!
//! The session layout is [`tickwire_shared::stream_frame`]'s: the server opens one bidirectional
//! stream for reliable messages (framed), snapshots go as datagrams (or, too large for one, on a
//! fresh unidirectional stream that a newer one resets), inputs come as datagrams, an empty
//! datagram is a heartbeat. The session logic is [`crate::session`]'s, the same as WebSocket's:
//! this module only moves bytes, and every per-session limit (message rate and size, idle
//! timeout, write timeout, outbox) holds here too. QUIC's own limits are sized for this traffic
//! in [`transport_config`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use quinn_proto::{SendDatagramError, TransportConfig, VarInt};
use tickwire_shared::join::{JoinRequest, truncate_utf8};
use tickwire_shared::protocol::{PROTOCOL_VERSION, SUBPROTOCOL};
use tickwire_shared::stream_frame::{FrameDecoder, WEBTRANSPORT_PATH, framed, write_frame};

use crate::config::Limits;
use crate::h3;
use crate::quic_rt::{Connection, QuicError, RecvStream, SendStream};
use crate::server::HEADER_READ_TIMEOUT;
use crate::session::{Inbound, TransportError, TransportRx, TransportTx};
use crate::state::{AppState, IpGuard, PendingGuard};

/// Streams a client may open toward the server at once, of each kind. A client opens none in
/// this protocol (HTTP/3's own control and QPACK streams are three unidirectional ones, and
/// the session's CONNECT request is one bidirectional one); a few spare keep a
/// standards-conforming browser happy, and an attacker cannot open more.
pub const MAX_CLIENT_UNI_STREAMS: u32 = 8;
/// See [`MAX_CLIENT_UNI_STREAMS`].
pub const MAX_CLIENT_BIDI_STREAMS: u32 = 4;

/// Bytes a client may have in flight on one stream (quinn's default is 1.25 MB): a few of the
/// largest client messages.
pub const STREAM_RECEIVE_WINDOW: u32 = 16 * 1024;

/// Bytes a client may have in flight on the whole connection.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 64 * 1024;

/// Bytes of unacknowledged data the server keeps for one connection (quinn's default is
/// unbounded in practice): the outbound budget the write timeout then enforces.
pub const SEND_WINDOW: u64 = 256 * 1024;

/// Inbound datagrams buffered per connection before the oldest are dropped (quinn's default is
/// 1.25 MB): a few dozen input batches.
pub const DATAGRAM_RECEIVE_BUFFER: usize = 16 * 1024;

/// Outbound datagrams buffered per connection before the oldest are dropped (quinn's default is
/// 1 MB): a few snapshots; older ones are worthless anyway.
pub const DATAGRAM_SEND_BUFFER: usize = 64 * 1024;

/// What `GET /api/transport` says of the WebTransport endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebTransportInfo {
    /// Its UDP port.
    pub port: u16,
    /// SHA-256 of its certificate when that is a development one (browsers accept it by hash
    /// only); `None` for a certificate a browser verifies.
    pub dev_cert_sha256: Option<[u8; 32]>,
}

/// quinn's transport parameters for game sessions: small windows and stream counts (see the
/// constants), datagrams bounded both ways, the idle timeout of the session limits (the
/// session's own heartbeat keeps a live client above it), and a bounded send window.
#[must_use]
pub fn transport_config(limits: &Limits) -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_concurrent_uni_streams(VarInt::from_u32(MAX_CLIENT_UNI_STREAMS))
        .max_concurrent_bidi_streams(VarInt::from_u32(MAX_CLIENT_BIDI_STREAMS))
        .stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
        .send_window(SEND_WINDOW)
        .datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BUFFER))
        .datagram_send_buffer_size(DATAGRAM_SEND_BUFFER);
    // Twice the session's idle timeout: the session closes an idle client first, with a reason.
    let idle = limits.idle_timeout.saturating_mul(2);
    if let Ok(idle) = idle.try_into() {
        t.max_idle_timeout(Some(idle));
    }
    t
}

/// The server's QUIC endpoint.
pub type QuicEndpoint = crate::quic_rt::Endpoint;

/// The kernel buffers of the one UDP socket every session shares, each way (the kernel caps
/// them at `net.core.rmem_max` / `wmem_max`). Its default (~208 KiB) overflows under a burst of
/// thousands of sessions' packets: dropped heartbeats, snapshots and handshakes.
pub const UDP_SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// A UDP socket bound to `addr` with [`UDP_SOCKET_BUFFER_BYTES`] buffers (as large as the
/// kernel allows; smaller is not an error).
///
/// # Errors
///
/// When the address cannot be bound.
pub fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    let _ = socket.set_recv_buffer_size(UDP_SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds the endpoint on `addr` with `tls` (TLS 1.3, ALPN h3).
pub fn bind(
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    limits: &Limits,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<QuicEndpoint> {
    let socket =
        udp_socket(addr).map_err(|e| anyhow::anyhow!("cannot listen on udp://{addr}: {e}"))?;
    let crypto = quinn_proto::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| anyhow::anyhow!("the TLS configuration cannot serve QUIC: {e}"))?;
    let mut server = quinn_proto::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport_config(limits)));
    crate::quic_rt::Endpoint::new(socket, server, metrics)
        .map_err(|e| anyhow::anyhow!("cannot listen on udp://{addr}: {e}"))
}

/// Accepts sessions until shutdown. `main_port` is the HTTP port pages come from (the origin
/// check's "same origin").
pub async fn accept_loop(endpoint: Arc<QuicEndpoint>, state: Arc<AppState>, main_port: u16) {
    loop {
        let incoming = tokio::select! {
            () = state.shutdown.cancelled() => return,
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => return,
            },
        };
        let ip = incoming.remote_address().ip();
        // A handshake counts against the same pre-handshake slots as a TCP connection.
        let Some(pending) = PendingGuard::acquire(&state, ip) else {
            incoming.refuse();
            continue;
        };
        let conn_state = state.clone();
        state.tracker.spawn(async move {
            // The QUIC handshake and the session request, under one deadline.
            let request = tokio::select! {
                () = conn_state.shutdown.cancelled() => return,
                r = tokio::time::timeout(HEADER_READ_TIMEOUT, SessionRequest::read(incoming)) => r,
            };
            let request = match request {
                Ok(Ok(request)) => request,
                failed => {
                    let error = match failed {
                        Ok(Err(e)) => format!("{e:#}"),
                        _ => "timed out".to_owned(),
                    };
                    tracing::debug!(%ip, %error, "QUIC handshake failed");
                    conn_state.metrics.tls_handshakes_failed.fetch_add(1, Relaxed);
                    return;
                }
            };
            drop(pending);
            serve(request, conn_state, ip, main_port).await;
        });
    }
}

/// Bytes taken from a stream at a time: a few messages.
const STREAM_CHUNK: usize = 4 * 1024;

/// HTTP/3's error codes the server closes with.
const H3_NO_ERROR: u32 = 0x100;
/// See [`H3_NO_ERROR`].
const H3_STREAM_CREATION_ERROR: u32 = 0x103;

/// A WebTransport session request, read and not yet answered: the QUIC connection, the
/// server's control stream, the client's HTTP/3 streams and the CONNECT stream.
struct SessionRequest {
    connection: Connection,
    /// Open for the connection's life (closing it is an HTTP/3 error).
    control: SendStream,
    /// The client's unidirectional streams so far (its control and QPACK streams).
    peer_streams: Vec<RecvStream>,
    connect: (SendStream, RecvStream),
    request: h3::Request,
}

impl SessionRequest {
    /// Completes the QUIC handshake, sends the server's SETTINGS, and reads the client's
    /// CONNECT request. The client's own unidirectional streams are kept, unread, for the
    /// session to drain: quinn's stream limit bounds how many, its window what they hold.
    async fn read(incoming: crate::quic_rt::Incoming) -> anyhow::Result<SessionRequest> {
        let connection = incoming.accept().await?;
        let mut control = connection.open_uni().await?;
        control.write_all(&h3::control_stream_preamble()).await?;
        let mut peer_streams = Vec::new();
        let (send, mut recv) = loop {
            tokio::select! {
                uni = connection.accept_uni() => peer_streams.push(uni?),
                bi = connection.accept_bi() => break bi?,
            }
        };
        let mut buffered = Vec::new();
        let request = loop {
            if let Some((request, _)) = h3::parse_request(&buffered)? {
                break request;
            }
            if buffered.len() as u64 > h3::MAX_REQUEST_BYTES {
                anyhow::bail!("the session request is over {} bytes", h3::MAX_REQUEST_BYTES);
            }
            match recv.read_chunk(STREAM_CHUNK).await? {
                Some(chunk) => buffered.extend_from_slice(&chunk),
                None => anyhow::bail!("the request stream ended before its headers"),
            }
        };
        Ok(SessionRequest { connection, control, peer_streams, connect: (send, recv), request })
    }

    /// Refuses the session with `status`: the answer is delivered (within a moment), then the
    /// connection closed.
    async fn refuse(mut self, status: StatusCode) {
        let send = &mut self.connect.0;
        let _ = send.write_all(&h3::response_frame(status.as_u16())).await;
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
        self.connection.close(VarInt::from_u32(H3_NO_ERROR), b"");
    }
}

/// Checks a session request the way the WebSocket handshake is checked: the method and
/// protocol (400), the path (404), the join query (400), the protocol version (426), the
/// origin (403) and the token (401).
fn check_request(
    request: &h3::Request,
    state: &AppState,
    main_port: u16,
) -> Result<(JoinRequest, String), (StatusCode, String)> {
    if !request.is_webtransport() {
        return Err((StatusCode::BAD_REQUEST, "not a WebTransport session request".to_owned()));
    }
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    if path != WEBTRANSPORT_PATH {
        return Err((StatusCode::NOT_FOUND, format!("no WebTransport endpoint at {path}")));
    }
    let mut join = JoinRequest::from_query(query)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad join query: {e}")))?;
    if join.version != Some(PROTOCOL_VERSION) {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "protocol version mismatch: this server speaks {SUBPROTOCOL} (?v={PROTOCOL_VERSION})"
            ),
        ));
    }
    let served = crate::ws::split_host_port(&request.authority, main_port)
        .map(|(host, _)| (host, main_port));
    let bearer = crate::ws::bearer_token(request.authorization.as_deref());
    let subject = crate::ws::check_origin_and_token(
        &mut join,
        request.origin.as_deref(),
        served,
        bearer,
        state,
    )?;
    Ok((join, subject))
}

/// Answers a session request: refused with an HTTP status, or accepted and run.
async fn serve(request: SessionRequest, state: Arc<AppState>, ip: IpAddr, main_port: u16) {
    let (join, subject) = match check_request(&request.request, &state, main_port) {
        Ok(ok) => ok,
        Err((status, why)) => {
            state.metrics.handshakes_refused.fetch_add(1, Relaxed);
            tracing::debug!(%status, %why, "WebTransport session refused");
            // WebTransport answers a refusal with a status only; the reason stays in the log.
            let status = match status {
                StatusCode::NOT_FOUND => StatusCode::NOT_FOUND,
                _ => StatusCode::FORBIDDEN,
            };
            return request.refuse(status).await;
        }
    };
    let Some(guard) = IpGuard::acquire(&state, ip) else {
        state.metrics.handshakes_refused.fetch_add(1, Relaxed);
        return request.refuse(StatusCode::TOO_MANY_REQUESTS).await;
    };
    let SessionRequest { connection, control, peer_streams, connect, .. } = request;
    let (mut connect_send, connect_recv) = connect;
    let session = u64::from(connect_send.id());
    let opened = tokio::time::timeout(state.config.limits.write_timeout, async {
        connect_send.write_all(&h3::response_frame(200)).await?;
        let (mut send, recv) = connection.open_bi().await?;
        send.write_all(&h3::bidi_stream_header(session)).await?;
        anyhow::Ok((send, recv))
    })
    .await;
    let (send, recv) = match opened {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return tracing::debug!(error = %e, "cannot open the session's stream"),
        Err(_) => return tracing::debug!("the client gave no stream credit in time"),
    };
    let max = state.config.limits.max_message_bytes;
    let mut peer =
        PeerStreams { streams: Vec::with_capacity(peer_streams.len() + 1), drained: 0, seen: None };
    peer.streams.push(PeerStream { recv: connect_recv, role: Role::Connect });
    for recv in peer_streams {
        peer.push(recv);
    }
    let rx = WtRx {
        connection: connection.clone(),
        session,
        stream: recv,
        decoder: FrameDecoder::new(max),
        max,
        stream_broken: false,
        peer,
    };
    let tx = WtTx {
        connection,
        session,
        stream: send,
        snapshot_stream: None,
        _control: control,
        _connect: connect_send,
    };
    crate::session::join_and_run(state, join, subject, ip, rx, tx, guard).await;
}

/// Bytes the client may send on its HTTP/3 streams (control, QPACK, CONNECT) over a session:
/// a few SETTINGS and capsules; nothing else is expected there.
const MAX_PEER_STREAM_BYTES: u64 = 64 * 1024;

/// What a stream the client opened is to the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Its type is not read yet.
    Untyped,
    /// HTTP/3's control stream or a QPACK stream: drained, and its end ends the session.
    Critical,
    /// The CONNECT stream: its end (after a `CLOSE_WEBTRANSPORT_SESSION` capsule) ends the
    /// session.
    Connect,
}

struct PeerStream {
    recv: RecvStream,
    role: Role,
}

/// The client's HTTP/3 streams: read and thrown away (their content does not matter with no
/// dynamic table and one session), watched for their end, bounded in what they may carry.
struct PeerStreams {
    streams: Vec<PeerStream>,
    drained: u64,
    /// The connection's stream-event count when the streams were last read to the end: while
    /// it stays, there is nothing to read (the session's task wakes for every snapshot, and
    /// would otherwise look at each stream each time).
    seen: Option<u32>,
}

/// Why the client's HTTP/3 streams end the session.
enum PeerEnd {
    /// The client ended its session or its HTTP/3 connection.
    Closed,
    /// The client broke this protocol or HTTP/3's.
    Malformed(String),
}

impl PeerStreams {
    fn push(&mut self, recv: RecvStream) {
        self.streams.push(PeerStream { recv, role: Role::Untyped });
        self.seen = None;
    }

    /// Reads whatever the streams have; ready when one of them ends the session.
    fn poll(&mut self, cx: &mut Context<'_>, connection: &Connection) -> Poll<PeerEnd> {
        let events = connection.poll_stream_events(cx);
        if self.seen == Some(events) {
            return Poll::Pending;
        }
        self.seen = Some(events);
        let mut buf = [0u8; 256];
        let mut i = 0;
        while i < self.streams.len() {
            let stream = &mut self.streams[i];
            let read = match stream.recv.poll_read(cx, &mut buf) {
                Poll::Pending => {
                    i += 1;
                    continue;
                }
                Poll::Ready(read) => read,
            };
            match (read, stream.role) {
                (Ok(0) | Err(_), Role::Untyped) => {
                    // A stream that ended before saying what it is: nothing to keep.
                    self.streams.swap_remove(i);
                }
                (Ok(0) | Err(_), Role::Critical | Role::Connect) => {
                    return Poll::Ready(PeerEnd::Closed);
                }
                (Ok(n), role) => {
                    self.drained += n as u64;
                    if self.drained > MAX_PEER_STREAM_BYTES {
                        return Poll::Ready(PeerEnd::Malformed(format!(
                            "the client's HTTP/3 streams carried over {MAX_PEER_STREAM_BYTES} bytes"
                        )));
                    }
                    if role != Role::Untyped {
                        continue;
                    }
                    // A stream type is one byte for HTTP/3's own and two for WebTransport's,
                    // read as the stream's first bytes; a type split over reads is refused.
                    match h3::read_varint(&buf[..n]).map(|(t, _)| t) {
                        Some(h3::stream_type::CONTROL)
                        | Some(h3::stream_type::QPACK_ENCODER)
                        | Some(h3::stream_type::QPACK_DECODER) => stream.role = Role::Critical,
                        Some(h3::stream_type::WEBTRANSPORT) => {
                            return Poll::Ready(PeerEnd::Malformed(
                                "the client opened a unidirectional stream; clients open none in this protocol"
                                    .to_owned(),
                            ));
                        }
                        _ => {
                            // An unknown (reserved, "grease") stream type: not read (RFC 9114 §6.2.3).
                            let _ = stream.recv.stop(VarInt::from_u32(H3_STREAM_CREATION_ERROR));
                            self.streams.swap_remove(i);
                        }
                    }
                }
            }
        }
        Poll::Pending
    }
}

/// The receiving side of a WebTransport session. No task and no queue of its own: each
/// [`TransportRx::recv`] waits on the session's stream, its datagrams, the client's HTTP/3
/// streams and any stream a client opens (every one of those waits is cancel-safe), so an idle
/// session costs only its state.
pub struct WtRx {
    connection: Connection,
    session: u64,
    stream: RecvStream,
    decoder: FrameDecoder,
    max: usize,
    /// The stream's framing was lost (a frame over the limit): it is read no more.
    stream_broken: bool,
    peer: PeerStreams,
}

fn transport_error(e: impl std::error::Error + Send + Sync + 'static) -> TransportError {
    TransportError(Box::new(e))
}

fn malformed(why: String) -> Inbound {
    Inbound::Malformed(transport_error(std::io::Error::other(why)))
}

impl TransportRx for WtRx {
    async fn recv(&mut self) -> Inbound {
        loop {
            if !self.stream_broken {
                match self.decoder.next_frame() {
                    Ok(Some(message)) => return Inbound::Binary(Bytes::from(message)),
                    Err(_) => {
                        // The framing is lost with it: nothing after can be read (and the next
                        // call must wait, not answer this again at once).
                        self.stream_broken = true;
                        return Inbound::TooLarge;
                    }
                    Ok(None) => {}
                }
            }
            let WtRx { connection, session, stream, decoder, max, stream_broken, peer } = self;
            let broken = *stream_broken;
            tokio::select! {
                chunk = stream.read_chunk(STREAM_CHUNK), if !broken => {
                    match chunk {
                        Ok(Some(chunk)) => decoder.push(&chunk),
                        Ok(None) => return Inbound::Closed,
                        Err(e) => return Inbound::Error(transport_error(e)),
                    }
                }
                datagram = connection.read_datagram() => {
                    let Ok(datagram) = datagram else { return Inbound::Closed };
                    // A datagram of no session of this connection is dropped.
                    let Some(at) = h3::datagram_payload(*session, &datagram) else { continue };
                    let payload = datagram.len() - at;
                    return match payload {
                        0 => Inbound::Alive(0),
                        n if n > *max => Inbound::TooLarge,
                        _ => Inbound::Binary(datagram.slice(at..)),
                    };
                }
                opened = connection.accept_uni() => match opened {
                    Ok(recv) => peer.push(recv),
                    Err(_) => return Inbound::Closed,
                },
                opened = connection.accept_bi() => {
                    if opened.is_ok() {
                        return malformed(
                            "the client opened a bidirectional stream; clients open none in this protocol"
                                .to_owned(),
                        );
                    }
                    return Inbound::Closed;
                }
                end = std::future::poll_fn(|cx| peer.poll(cx, connection)) => {
                    return match end {
                        PeerEnd::Closed => Inbound::Closed,
                        PeerEnd::Malformed(why) => malformed(why),
                    };
                }
            }
        }
    }
}

/// The sending side of a WebTransport session.
pub struct WtTx {
    connection: Connection,
    session: u64,
    stream: SendStream,
    /// The stream of the last snapshot too large for a datagram, reset if still unsent when the
    /// next one comes (newest wins).
    snapshot_stream: Option<SendStream>,
    /// Open for the session's life: the server's HTTP/3 control stream and its side of the
    /// CONNECT stream (finishing it would end the session).
    _control: SendStream,
    _connect: SendStream,
}

impl WtTx {
    /// `payload` as a datagram of this session.
    fn datagram(&self, payload: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(8 + payload.len());
        out.extend_from_slice(&h3::datagram_prefix(self.session));
        out.extend_from_slice(payload);
        out.freeze()
    }

    /// Sends a snapshot too large for a datagram on a fresh unidirectional stream, resetting
    /// the previous one if it is still unsent (newest wins).
    async fn send_on_stream(&mut self, bytes: Bytes) -> Result<(), TransportError> {
        if let Some(mut older) = self.snapshot_stream.take() {
            let _ = older.reset(VarInt::from_u32(0));
        }
        let mut stream = self.connection.open_uni().await.map_err(transport_error)?;
        let mut out = h3::uni_stream_header(self.session);
        write_frame(&bytes, &mut out);
        stream.write_all(&out).await.map_err(transport_error)?;
        // Finished without waiting for the acknowledgement.
        stream.finish().map_err(transport_error)?;
        self.snapshot_stream = Some(stream);
        Ok(())
    }
}

impl TransportTx for WtTx {
    const NAME: &'static str = "webtransport";

    async fn send(&mut self, bytes: Bytes) -> Result<(), TransportError> {
        self.stream.write_all(&framed(&bytes)).await.map_err(transport_error)
    }

    async fn send_unreliable(&mut self, bytes: Bytes) -> Result<(), TransportError> {
        let datagram = self.datagram(&bytes);
        let fits = self.connection.max_datagram_size().is_some_and(|max| datagram.len() <= max);
        if fits {
            match self.connection.send_datagram(datagram) {
                Ok(()) => return Ok(()),
                // The path's MTU shrank since: send it on a stream below.
                Err(QuicError::Datagram(SendDatagramError::TooLarge)) => {}
                Err(e) => return Err(transport_error(e)),
            }
        }
        // Rare (a snapshot larger than a datagram): boxed, so a session keeps no room for it.
        Box::pin(self.send_on_stream(bytes)).await
    }

    async fn ping(&mut self) -> Result<(), TransportError> {
        let datagram = self.datagram(&[]);
        self.connection.send_datagram(datagram).map_err(transport_error)
    }

    async fn close(&mut self, code: u16, reason: &str) {
        // Everything written (the `Disconnect` last) is delivered first: `stopped` completes
        // when the client acknowledged it (the caller bounds the wait with the write timeout).
        // Closing the connection before would discard it.
        if self.stream.finish().is_ok() {
            let _ = self.stream.stopped().await;
        }
        let reason = truncate_utf8(reason, 123);
        self.connection.close(VarInt::from_u32(u32::from(code)), reason.as_bytes());
    }
}
