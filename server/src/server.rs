//! The server's lifecycle: bind, accept HTTP/WebSocket connections, run sessions, shut down
//! gracefully (stop accepting, close every session with 1001, let rooms finish, exit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::auth::{JwtKeys, random_hex};
use anyhow::Context as _;

use crate::config::{QuicBind, ServerConfig};
use crate::http::PeerIp;
use crate::metrics::Metrics;
use crate::quic::{QuicEndpoint, WebTransportInfo};
use crate::rooms::Rooms;
use crate::state::{AppState, PendingGuard};
use crate::tls::Tls;

/// How long a client may take to send a request's headers: a slowloris socket trickling them
/// is closed then. Five seconds is far more than any real client on a real network needs. With
/// TLS the handshake has the same deadline, before the headers' own.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an HTTP connection may stay open before it is upgraded (pages, the client's files,
/// the API; browsers reconnect for the next request): an idle keep-alive socket costs a slot.
pub const PRE_UPGRADE_LIFETIME: Duration = Duration::from_secs(60);

/// The kernel's send buffer of each connection, in bytes (the kernel doubles it): what a
/// client that stops reading can hold of the server's memory in the kernel, on top of its
/// outbox. 16 KiB is a few full snapshots or a hundred deltas; a reader that keeps up never
/// fills it.
pub const SEND_BUFFER_BYTES: usize = 16 * 1024;

/// How long shutdown waits for sessions to finish closing.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A running server.
pub struct Server {
    addr: SocketAddr,
    quic_addr: Option<SocketAddr>,
    state: Arc<AppState>,
    accept: tokio::task::JoinHandle<()>,
    quic: Option<(Arc<QuicEndpoint>, tokio::task::JoinHandle<()>)>,
    /// The cluster heartbeat (`--redis`), which leaves the directory when shutdown begins.
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Binds and starts accepting. With no JWT secret configured, a random one is made. With
    /// TLS configured, the certificate is read (or made, `--dev-cert`) first: a file that cannot
    /// be read, is not PEM, or a key that does not match the certificate stops the start.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
        config.validate()?;
        let tls = config.tls.as_ref().map(Tls::new).transpose()?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let addr = listener.local_addr()?;
        let secret = match (&config.jwt_secret, &config.dev_state) {
            (Some(s), _) => s.clone(),
            (None, Some(dir)) => crate::devstate::secret(dir)?,
            (None, None) => {
                tracing::warn!("no JWT secret configured: using a random one (dev mode)");
                random_hex(32)
            }
        };
        if let Some(dir) = &config.record {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("--record: cannot make {}", dir.display()))?;
        }
        let metrics = Arc::new(Metrics::default());
        let rooms = Rooms::new(config.clone(), metrics.clone())?;
        if let Some(dir) = &config.dev_state {
            let restored = crate::devstate::restore_rooms(&rooms, dir);
            tracing::info!(rooms = restored.len(), dir = %dir.display(), "--dev: rooms kept across restarts");
        }
        let keys = JwtKeys::new(secret.as_bytes()).with_audience(config.jwt_audience.as_deref());
        let quic_addr = match config.quic {
            QuicBind::Off => None,
            QuicBind::Auto => tls.as_ref().map(|_| addr),
            QuicBind::Addr(a) => Some(a),
        };
        // QUIC always needs a certificate: the main port's, else a development one of its own.
        let quic_tls = match (&tls, quic_addr) {
            (_, None) => None,
            (Some(t), Some(_)) => Some((t.quic.clone(), t.dev, t.cert_sha256)),
            (None, Some(_)) => {
                let cert = crate::tls::dev_cert().context("making the development certificate")?;
                let hash = crate::tls::sha256(&cert.chain[0]);
                Some((crate::tls::quic_server_config(&cert)?, true, hash))
            }
        };
        let quic_endpoint = match (quic_addr, quic_tls) {
            (Some(a), Some((quic_tls, dev, hash))) => {
                let endpoint = crate::quic::bind(a, quic_tls, &config.limits, metrics.clone())?;
                let bound = endpoint.local_addr()?;
                Some((endpoint, bound, dev.then_some(hash)))
            }
            _ => None,
        };
        let cluster = match &config.cluster {
            Some(c) => Some(Arc::new(crate::cluster::Cluster::new(
                c,
                addr,
                tls.is_some(),
                metrics.clone(),
            )?)),
            None => None,
        };
        let mut state = AppState::new(config, rooms, metrics, keys);
        state.cluster.clone_from(&cluster);
        state.tls_cert_sha256 = tls.as_ref().map(|t| t.cert_sha256);
        state.tls_certificate = tls.as_ref().map(|t| t.cert.clone());
        state.webtransport = quic_endpoint.as_ref().map(|(_, bound, hash)| WebTransportInfo {
            port: bound.port(),
            dev_cert_sha256: *hash,
        });
        let state = Arc::new(state);
        let acceptor = tls.map(|t| t.acceptor);
        let accept = tokio::spawn(accept_loop(listener, state.clone(), acceptor));
        let quic_addr = quic_endpoint.as_ref().map(|(_, bound, _)| *bound);
        let quic = quic_endpoint.map(|(endpoint, _, _)| {
            let endpoint = Arc::new(endpoint);
            let task = tokio::spawn(crate::quic::accept_loop(
                endpoint.clone(),
                state.clone(),
                addr.port(),
            ));
            (endpoint, task)
        });
        tokio::spawn(crate::messaging::publisher(state.clone()));
        tokio::spawn(crate::messaging::subscriber(state.clone()));
        let heartbeat = cluster.map(|cluster| {
            tracing::info!(instance = %cluster.id(), url = %cluster.ws_url(), "joining the cluster");
            tokio::spawn(crate::cluster::heartbeat(state.clone(), cluster))
        });
        Ok(Server { addr, quic_addr, state, accept, quic, heartbeat })
    }

    /// The QUIC/WebTransport endpoint's bound UDP address, when there is one.
    #[must_use]
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic_addr
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (tests read metrics from it).
    #[must_use]
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops accepting, closes every session with 1001 and a reason, stops the rooms, and waits
    /// (at most [`SHUTDOWN_GRACE`]) for sessions to finish.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.state.shutdown.cancel();
        let _ = self.accept.await;
        // Out of the directory first: nobody is sent to an instance that is leaving.
        if let Some(heartbeat) = self.heartbeat {
            let _ = heartbeat.await;
        }
        // In a cluster, the matches go on elsewhere: each room is handed to another instance
        // and its players sent there (a rolling restart).
        if let Some(cluster) = &self.state.cluster {
            crate::handoff::hand_off(&self.state, cluster).await;
        }
        // In development, the matches wait on disk for the next start.
        if let Some(dir) = &self.state.config.dev_state {
            crate::devstate::save_rooms(&self.state, dir).await;
        }
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || state.rooms.shutdown()).await;
        self.state.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.state.tracker.wait()).await.is_err() {
            tracing::warn!("some sessions did not close in time");
        }
        if let Some((endpoint, task)) = self.quic {
            let _ = task.await;
            // Connections still open are closed with 1001; the close frames are given a moment
            // to leave the socket.
            endpoint.close(quinn_proto::VarInt::from_u32(1001), b"server shutting down");
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<AppState>, tls: Option<TlsAcceptor>) {
    let app = crate::http::router(state.clone());
    loop {
        let (stream, peer) = tokio::select! {
            () = state.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // A connection counts against its IP's and the server's pre-handshake slots until it
        // is upgraded or closed; past either cap it is closed at once.
        let Some(pending) = PendingGuard::acquire(&state, peer.ip()) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER_BYTES);
        let conn_state = state.clone();
        let app = app.clone();
        let tls = tls.clone();
        state.tracker.spawn(async move {
            // The routes read the peer's address from each request's extensions.
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(PeerIp(peer.ip()));
                app.clone().oneshot(req)
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.max_buf_size(16 * 1024)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let lifetime = tokio::time::sleep(PRE_UPGRADE_LIFETIME);
            match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
                    serve_until_upgraded(conn, lifetime, &conn_state).await;
                }
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        () = conn_state.shutdown.cancelled() => return drop(pending),
                        done = tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)) => done,
                    };
                    let stream = match handshake {
                        Ok(Ok(stream)) => stream,
                        failed => {
                            let error = match failed {
                                Ok(Err(e)) => e.to_string(),
                                _ => "timed out".to_owned(),
                            };
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            conn_state.metrics.tls_handshakes_failed.fetch_add(1, Relaxed);
                            return drop(pending);
                        }
                    };
                    let conn = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
                    serve_until_upgraded(conn, lifetime, &conn_state).await;
                }
            }
            drop(pending);
        });
    }
}

/// Serves one HTTP connection until it ends, is upgraded (the upgraded session then runs on its
/// own task), outlives `lifetime`, or shutdown begins (then it is given [`SHUTDOWN_GRACE`] to
/// finish its request).
async fn serve_until_upgraded<I, S>(
    conn: hyper::server::conn::http1::UpgradeableConnection<I, S>,
    lifetime: tokio::time::Sleep,
    state: &AppState,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = lifetime => {}
        () = state.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}
