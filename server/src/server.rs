//! The server's lifecycle: bind, accept HTTP/WebSocket connections, run sessions, shut down
//! gracefully (stop accepting, close every session with 1001, let rooms finish, exit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::auth::{JwtKeys, random_hex};
use crate::config::ServerConfig;
use crate::http::PeerIp;
use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::state::{AppState, PendingGuard};

/// How long a client may take to send a request's headers: a slowloris socket trickling them
/// is closed then. Five seconds is far more than any real client on a real network needs.
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
    state: Arc<AppState>,
    accept: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds and starts accepting. With no JWT secret configured, a random one is made.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
        config.validate()?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let addr = listener.local_addr()?;
        let secret = match &config.jwt_secret {
            Some(s) => s.clone(),
            None => {
                tracing::warn!("no JWT secret configured: using a random one (dev mode)");
                random_hex(32)
            }
        };
        let metrics = Arc::new(Metrics::default());
        let rooms = Rooms::new(config.clone(), metrics.clone())?;
        let keys = JwtKeys::new(secret.as_bytes()).with_audience(config.jwt_audience.as_deref());
        let state = Arc::new(AppState::new(config, rooms, metrics, keys));
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Server { addr, state, accept })
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
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || state.rooms.shutdown()).await;
        self.state.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.state.tracker.wait()).await.is_err() {
            tracing::warn!("some sessions did not close in time");
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<AppState>) {
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
        state.tracker.spawn(async move {
            // The routes read the peer's address from each request's extensions.
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(PeerIp(peer.ip()));
                app.clone().oneshot(req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(16 * 1024)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = tokio::time::sleep(PRE_UPGRADE_LIFETIME) => {}
                () = conn_state.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
            drop(pending);
        });
    }
}
