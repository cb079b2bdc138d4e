//! The server's lifecycle: bind, accept HTTP/WebSocket connections, run sessions, shut down
//! gracefully (stop accepting, close every session with 1001, let rooms finish, exit).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tickwire_shared::ClientId;
use tickwire_shared::codec;
use tickwire_shared::join::JoinRequest;
use tickwire_shared::protocol::{DisconnectReason, ServerMessage};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{JwtKeys, random_hex};
use crate::config::ServerConfig;
use crate::metrics::{DisconnectKind, Metrics};
use crate::outbox::Outbox;
use crate::rooms::Rooms;
use crate::session::{self, SessionContext, TransportRx, TransportTx};
use tickwire_shared::room::JoinRefused;

/// How long shutdown waits for sessions to finish closing.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// State shared by every connection.
pub struct AppState {
    /// The configuration.
    pub config: ServerConfig,
    /// The rooms.
    pub rooms: Rooms,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// JWT keys.
    pub keys: JwtKeys,
    /// Tracks connection and session tasks for shutdown.
    pub tracker: TaskTracker,
    /// Cancelled when shutdown begins.
    pub shutdown: CancellationToken,
    ips: Mutex<HashMap<IpAddr, usize>>,
    next_client: AtomicU32,
}

/// Holds one of an IP's connection slots; released on drop.
pub struct IpGuard {
    state: Arc<AppState>,
    ip: IpAddr,
}

impl IpGuard {
    /// Takes a slot for `ip`, or `None` at the per-IP limit.
    pub fn acquire(state: &Arc<AppState>, ip: IpAddr) -> Option<IpGuard> {
        let mut ips = state.ips.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = ips.entry(ip).or_insert(0);
        if *n >= state.config.limits.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(IpGuard { state: state.clone(), ip })
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut ips = self.state.ips.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = ips.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                ips.remove(&self.ip);
            }
        }
    }
}

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
        let state = Arc::new(AppState {
            rooms: Rooms::new(config.clone(), metrics.clone()),
            keys: JwtKeys::new(secret.as_bytes()),
            config,
            metrics,
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            ips: Mutex::new(HashMap::new()),
            next_client: AtomicU32::new(1),
        });
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
        let _ = stream.set_nodelay(true);
        let conn_state = state.clone();
        state.tracker.spawn(async move {
            let ip = peer.ip();
            let svc_state = conn_state.clone();
            let service = service_fn(move |req| crate::http::handle(req, svc_state.clone(), ip));
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = conn_state.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
        });
    }
}

async fn refuse<T: TransportTx>(mut tx: T, reason: DisconnectReason, message: &str) {
    let msg = ServerMessage::Disconnect { reason, message: message.to_owned() };
    if let Ok(b) = codec::encode_server(&msg) {
        let _ = tx.send(Bytes::from(b)).await;
    }
    tx.close(reason.close_code(), message).await;
}

/// Joins a room and runs the session on an accepted transport.
pub async fn run_session<R: TransportRx, T: TransportTx>(
    state: Arc<AppState>,
    join: JoinRequest,
    rx: R,
    tx: T,
) {
    let client = ClientId(state.next_client.fetch_add(1, Ordering::Relaxed));
    state.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let outbox = Arc::new(Outbox::new(state.config.limits.max_reliable_queue));
    let mut joined = None;
    let mut refused = JoinRefused::Closed;
    // A room picked just as it closes refuses; pick again a few times.
    for _ in 0..3 {
        if state.shutdown.is_cancelled() {
            break;
        }
        let seat = match state.rooms.pick(&join) {
            Ok(seat) => seat,
            Err(e) => {
                tracing::error!(error = %e, "cannot open a room");
                break;
            }
        };
        let room = seat.room().clone();
        match seat.join(client, join.name.clone(), join.resume.clone(), outbox.clone()).await {
            Ok(info) => {
                joined = Some((room, info));
                break;
            }
            Err(e) => refused = e,
        }
    }
    match joined {
        Some((room, _info)) => {
            let ctx = SessionContext {
                client,
                room,
                outbox,
                limits: state.config.limits.clone(),
                metrics: state.metrics.clone(),
            };
            session::run(rx, tx, ctx).await;
        }
        None => {
            let (reason, message) = if state.shutdown.is_cancelled() {
                (DisconnectReason::ServerShutdown, "server shutting down".to_owned())
            } else {
                (DisconnectReason::RoomFull, format!("cannot join: {refused}"))
            };
            state.metrics.disconnect(DisconnectKind::Server(reason));
            refuse(tx, reason, &message).await;
            drop(rx);
        }
    }
    state.metrics.connections.fetch_sub(1, Ordering::Relaxed);
}
