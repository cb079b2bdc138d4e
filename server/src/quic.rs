//! The QUIC transport: a WebTransport (HTTP/3) endpoint on quinn, through `wtransport`, for
//! browsers, bots and native clients alike. One UDP socket carries every session.
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

use axum::http::StatusCode;
use bytes::Bytes;
use tickwire_shared::join::{JoinRequest, truncate_utf8};
use tickwire_shared::protocol::{PROTOCOL_VERSION, SUBPROTOCOL};
use tickwire_shared::stream_frame::{FrameDecoder, WEBTRANSPORT_PATH, framed};
use wtransport::endpoint::SessionRequest;
use wtransport::endpoint::endpoint_side::Server as ServerSide;
use wtransport::quinn::{TransportConfig, VarInt as QuicVarInt};
use wtransport::{Connection, Endpoint, RecvStream, SendStream, VarInt};

use crate::config::Limits;
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
    t.max_concurrent_uni_streams(QuicVarInt::from_u32(MAX_CLIENT_UNI_STREAMS))
        .max_concurrent_bidi_streams(QuicVarInt::from_u32(MAX_CLIENT_BIDI_STREAMS))
        .stream_receive_window(QuicVarInt::from_u32(STREAM_RECEIVE_WINDOW))
        .receive_window(QuicVarInt::from_u32(CONNECTION_RECEIVE_WINDOW))
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
pub type QuicEndpoint = Endpoint<ServerSide>;

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
) -> anyhow::Result<Endpoint<ServerSide>> {
    let socket =
        udp_socket(addr).map_err(|e| anyhow::anyhow!("cannot listen on udp://{addr}: {e}"))?;
    let config = wtransport::ServerConfig::builder()
        .with_bind_socket(socket)
        .with_custom_tls_and_transport(tls, transport_config(limits))
        .build();
    Endpoint::server(config).map_err(|e| anyhow::anyhow!("cannot listen on udp://{addr}: {e}"))
}

/// Accepts sessions until shutdown. `main_port` is the HTTP port pages come from (the origin
/// check's "same origin").
pub async fn accept_loop(endpoint: Arc<QuicEndpoint>, state: Arc<AppState>, main_port: u16) {
    loop {
        let incoming = tokio::select! {
            () = state.shutdown.cancelled() => return,
            incoming = endpoint.accept() => incoming,
        };
        let ip = incoming.remote_address().ip();
        // A handshake counts against the same pre-handshake slots as a TCP connection.
        let Some(pending) = PendingGuard::acquire(&state, ip) else {
            incoming.refuse();
            continue;
        };
        let conn_state = state.clone();
        state.tracker.spawn(async move {
            let request = tokio::select! {
                () = conn_state.shutdown.cancelled() => return,
                r = tokio::time::timeout(HEADER_READ_TIMEOUT, incoming) => r,
            };
            let request = match request {
                Ok(Ok(request)) => request,
                failed => {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
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

/// Checks a session request the way the WebSocket handshake is checked: the path (404), the
/// join query (400), the protocol version (426), the origin (403) and the token (401).
fn check_request(
    path: &str,
    authority: &str,
    headers: &std::collections::HashMap<String, String>,
    origin: Option<&str>,
    state: &AppState,
    main_port: u16,
) -> Result<(JoinRequest, String), (StatusCode, String)> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path != WEBTRANSPORT_PATH {
        return Err((StatusCode::NOT_FOUND, format!("no WebTransport endpoint at {path}")));
    }
    let join = JoinRequest::from_query(query)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad join query: {e}")))?;
    if join.version != Some(PROTOCOL_VERSION) {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            format!(
                "protocol version mismatch: this server speaks {SUBPROTOCOL} (?v={PROTOCOL_VERSION})"
            ),
        ));
    }
    let served =
        crate::ws::split_host_port(authority, main_port).map(|(host, _)| (host, main_port));
    let bearer = crate::ws::bearer_token(headers.get("authorization").map(String::as_str));
    let subject = crate::ws::check_origin_and_token(&join, origin, served, bearer, state)?;
    Ok((join, subject))
}

/// Answers a session request: refused with an HTTP status, or accepted and run.
async fn serve(request: SessionRequest, state: Arc<AppState>, ip: IpAddr, main_port: u16) {
    let checked = check_request(
        request.path(),
        request.authority(),
        request.headers(),
        request.origin(),
        &state,
        main_port,
    );
    let (join, subject) = match checked {
        Ok(ok) => ok,
        Err((status, why)) => {
            state.metrics.handshakes_refused.fetch_add(1, Relaxed);
            tracing::debug!(%status, %why, "WebTransport session refused");
            // WebTransport answers a refusal with a status only; the reason stays in the log.
            match status {
                StatusCode::NOT_FOUND => request.not_found().await,
                _ => request.forbidden().await,
            }
            return;
        }
    };
    let Some(guard) = IpGuard::acquire(&state, ip) else {
        state.metrics.handshakes_refused.fetch_add(1, Relaxed);
        request.too_many_requests().await;
        return;
    };
    let connection = match request.accept().await {
        Ok(c) => c,
        Err(e) => return tracing::debug!(error = %e, "WebTransport accept failed"),
    };
    let opened = tokio::time::timeout(state.config.limits.write_timeout, async {
        connection.open_bi().await?.await.map_err(anyhow::Error::from)
    })
    .await;
    let (send, recv) = match opened {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return tracing::debug!(error = %e, "cannot open the session's stream"),
        Err(_) => return tracing::debug!("the client gave no stream credit in time"),
    };
    let max = state.config.limits.max_message_bytes;
    let rx = WtRx::new(connection.clone(), recv, max);
    let tx = WtTx { connection, stream: send, snapshot_stream: None };
    let _guard = guard;
    crate::session::join_and_run(state, join, subject, ip, rx, tx).await;
}

/// The receiving side of a WebTransport session. No task and no queue of its own: each
/// [`TransportRx::recv`] waits on the session's stream, its datagrams and the streams a client
/// must not open at once (every one of those waits is cancel-safe), so an idle session costs
/// only its state.
pub struct WtRx {
    connection: Connection,
    stream: RecvStream,
    decoder: FrameDecoder,
    max: usize,
    /// The stream's framing was lost (a frame over the limit): it is read no more.
    stream_broken: bool,
}

fn transport_error(e: impl std::error::Error + Send + Sync + 'static) -> TransportError {
    TransportError(Box::new(e))
}

/// Bytes taken from the session's stream at a time: a few messages.
const STREAM_CHUNK: usize = 4 * 1024;

impl WtRx {
    fn new(connection: Connection, stream: RecvStream, max: usize) -> WtRx {
        WtRx { connection, stream, decoder: FrameDecoder::new(max), max, stream_broken: false }
    }
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
            let max = self.max;
            let broken = self.stream_broken;
            tokio::select! {
                chunk = self.stream.quic_stream_mut().read_chunk(STREAM_CHUNK, true), if !broken => {
                    match chunk {
                        Ok(Some(chunk)) => self.decoder.push(&chunk.bytes),
                        Ok(None) => return Inbound::Closed,
                        Err(e) => return Inbound::Error(transport_error(e)),
                    }
                }
                datagram = self.connection.receive_datagram() => {
                    return match datagram {
                        Ok(d) if d.payload().is_empty() => Inbound::Alive(0),
                        Ok(d) if d.payload().len() > max => Inbound::TooLarge,
                        Ok(d) => Inbound::Binary(d.payload()),
                        Err(_) => Inbound::Closed,
                    };
                }
                opened = self.connection.accept_uni() => {
                    if opened.is_ok() {
                        return client_opened_a_stream("unidirectional");
                    }
                    return Inbound::Closed;
                }
                opened = self.connection.accept_bi() => {
                    if opened.is_ok() {
                        return client_opened_a_stream("bidirectional");
                    }
                    return Inbound::Closed;
                }
            }
        }
    }
}

fn client_opened_a_stream(kind: &str) -> Inbound {
    let e = std::io::Error::other(format!(
        "the client opened a {kind} stream; clients open none in this protocol"
    ));
    Inbound::Malformed(transport_error(e))
}

/// The sending side of a WebTransport session.
pub struct WtTx {
    connection: Connection,
    stream: SendStream,
    /// The stream of the last snapshot too large for a datagram, reset if still unsent when the
    /// next one comes (newest wins).
    snapshot_stream: Option<SendStream>,
}

impl TransportTx for WtTx {
    async fn send(&mut self, bytes: Bytes) -> Result<(), TransportError> {
        self.stream.write_all(&framed(&bytes)).await.map_err(transport_error)
    }

    async fn send_unreliable(&mut self, bytes: Bytes) -> Result<(), TransportError> {
        let fits = self.connection.max_datagram_size().is_some_and(|max| bytes.len() <= max);
        if fits {
            match self.connection.send_datagram(&bytes) {
                Ok(()) => return Ok(()),
                // The path's MTU shrank since: send it on a stream below.
                Err(wtransport::error::SendDatagramError::TooLarge) => {}
                Err(e) => return Err(transport_error(e)),
            }
        }
        if let Some(mut older) = self.snapshot_stream.take() {
            let _ = older.reset(VarInt::from_u32(0));
        }
        let mut stream = self
            .connection
            .open_uni()
            .await
            .map_err(transport_error)?
            .await
            .map_err(transport_error)?;
        stream.write_all(&framed(&bytes)).await.map_err(transport_error)?;
        // Finish without waiting for the acknowledgement (wtransport's `finish` waits).
        stream.quic_stream_mut().finish().map_err(transport_error)?;
        self.snapshot_stream = Some(stream);
        Ok(())
    }

    async fn ping(&mut self) -> Result<(), TransportError> {
        match self.connection.send_datagram([]) {
            Ok(()) => Ok(()),
            Err(e) => Err(transport_error(e)),
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        // Everything written (the `Disconnect` last) is delivered first: `finish` completes when
        // the client acknowledged it (the caller bounds the wait with the write timeout). Closing
        // the connection before would discard it.
        let _ = self.stream.finish().await;
        let reason = truncate_utf8(reason, 123);
        self.connection.close(VarInt::from_u32(u32::from(code)), reason.as_bytes());
    }
}
