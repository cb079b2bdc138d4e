//! The server's QUIC runtime: `quinn-proto` connections driven by one task over one UDP socket.
//!
//! quinn's own runtime gives every connection a task, an unbounded channel from the endpoint
//! (whose first blocks alone are ~13 KiB) and a transmit buffer, which is most of what an idle
//! session costs. Here every connection lives in one table under one lock, the driver task
//! hands each received packet straight to its connection, sends with one shared buffer (GSO
//! batches where the kernel offers them, GRO on receive), and keeps the connections' timers in
//! one heap. A session's task reads and writes its connection's streams and datagrams through
//! [`Connection`], [`SendStream`] and [`RecvStream`] (a small subset of quinn's API, with the
//! same meaning), waking the driver when there is something to send.
//!
//! The same runtime is the bots' client side ([`Endpoint::client`], [`Endpoint::connect`]):
//! thousands of connections from one socket at the cost of one task, not four, each.
//!
//! Every wait here is cancel-safe: a future that is dropped leaves at most a waker behind.

use std::collections::{BinaryHeap, VecDeque};
use std::future::poll_fn;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn_proto::{
    ClientConfig, ConnectError, ConnectionError, ConnectionHandle, DatagramEvent, Dir,
    EndpointConfig, EndpointEvent, ReadError, ReadableError, SendDatagramError, ServerConfig,
    StreamId, VarInt, WriteError,
};
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Connections waiting to be accepted before new ones are refused outright.
pub const MAX_PENDING_INCOMING: usize = 1024;

/// Receive calls (each up to [`quinn_udp::BATCH_SIZE`] messages) per turn of the driver
/// before it serves timers and sends.
const RECV_BATCH_TURNS: usize = 4;

/// What a connection's stream or datagram operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QuicError {
    /// The connection is closed or lost.
    #[error("connection lost: {0}")]
    Lost(#[from] ConnectionError),
    /// The peer stopped the stream (`STOP_SENDING`).
    #[error("the peer stopped the stream with code {0}")]
    Stopped(VarInt),
    /// The peer reset the stream (`RESET_STREAM`).
    #[error("the peer reset the stream with code {0}")]
    Reset(VarInt),
    /// The stream was finished, reset or stopped here before.
    #[error("the stream is closed")]
    ClosedStream,
    /// A datagram could not be queued.
    #[error("datagram not sent: {0}")]
    Datagram(#[from] SendDatagramError),
    /// A connection could not be started (a client's bad address or server name).
    #[error("cannot connect: {0}")]
    Connect(#[from] ConnectError),
}

/// One connection's entry in the table.
struct Conn {
    proto: quinn_proto::Connection,
    /// Handles ([`Connection`], streams) alive; at 0 the connection is closed.
    refs: usize,
    /// Already in the driver's list of connections to serve.
    dirty: bool,
    connected: bool,
    error: Option<ConnectionError>,
    /// The connection's next deadline.
    timer: Option<Instant>,
    /// The earliest of its deadlines in the timer heap (never later than `timer`): a deadline
    /// that moves later (most do, as each packet pushes the idle timeout on) is queued only
    /// when the earlier one comes due, so the heap holds a couple of entries a connection.
    queued: Option<Instant>,
    /// Stream events so far (a stream opened, readable, finished, stopped…), for readers that
    /// look at their streams only when something happened to one.
    stream_events: u32,
    /// Tasks waiting on this connection: woken on any of its events.
    wakers: Vec<Waker>,
    /// The connection has drained: its handle is given back to the endpoint once no handle
    /// refers to it any more (so the endpoint cannot reuse the slot under a live handle).
    drained: bool,
}

impl Conn {
    fn wait(&mut self, cx: &Context<'_>) {
        if !self.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            self.wakers.push(cx.waker().clone());
        }
    }

    fn wake(&mut self) {
        for waker in self.wakers.drain(..) {
            waker.wake();
        }
    }
}

struct State {
    endpoint: quinn_proto::Endpoint,
    conns: Vec<Option<Box<Conn>>>,
    live: usize,
    dirty: Vec<usize>,
    timers: BinaryHeap<std::cmp::Reverse<(Instant, usize)>>,
    incoming: VecDeque<quinn_proto::Incoming>,
    accept_waker: Option<Waker>,
    idle_waker: Option<Waker>,
    /// The endpoint is closing: no new connection is taken.
    closed: bool,
    /// The one transmit buffer.
    buf: Vec<u8>,
}

struct Shared {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    /// Wakes the driver: a connection has something to send.
    driver: Notify,
    socket: tokio::net::UdpSocket,
    udp: quinn_udp::UdpSocketState,
    local: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, t: &quinn_proto::Transmit, contents: &[u8]) {
        let transmit = quinn_udp::Transmit {
            destination: t.destination,
            ecn: t.ecn.and_then(|e| quinn_udp::EcnCodepoint::from_bits(e as u8)),
            contents,
            segment_size: t.segment_size,
            src_ip: t.src_ip,
        };
        // A full socket buffer drops the packet: QUIC's recovery resends what mattered.
        if let Err(e) = self.udp.try_send((&self.socket).into(), &transmit) {
            tracing::trace!(error = %e, "QUIC packet not sent");
        }
    }
}

impl State {
    fn conn(&mut self, ch: usize) -> &mut Conn {
        self.conns[ch].as_deref_mut().expect("a live handle's connection is in the table")
    }

    /// Takes a new connection into the table, marked for the driver.
    fn insert(&mut self, shared: &Shared, ch: ConnectionHandle, proto: quinn_proto::Connection) {
        let ch = ch.0;
        if self.conns.len() <= ch {
            self.conns.resize_with(ch + 1, || None);
        }
        self.conns[ch] = Some(Box::new(Conn {
            proto,
            refs: 1,
            dirty: false,
            connected: false,
            error: None,
            timer: None,
            queued: None,
            stream_events: 0,
            wakers: Vec::new(),
            drained: false,
        }));
        self.live += 1;
        shared.metrics.quic_connections.fetch_add(1, Relaxed);
        self.touch(ch);
    }

    /// Marks `ch` for the driver's next turn (the caller wakes the driver).
    fn touch(&mut self, ch: usize) {
        let conn = self.conn(ch);
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(ch);
        }
    }

    /// Serves one connection: its endpoint events, its packets, its application events and
    /// its timer; frees it when it has drained and nothing refers to it.
    fn drive(&mut self, shared: &Shared, ch: usize, now: Instant) {
        let State { endpoint, conns, buf, timers, .. } = self;
        let Some(conn) = conns[ch].as_deref_mut() else { return };
        conn.dirty = false;
        let segments = shared.udp.max_gso_segments();
        loop {
            let mut progress = false;
            while let Some(event) = conn.proto.poll_endpoint_events() {
                progress = true;
                if event.is_drained() {
                    conn.drained = true;
                } else if let Some(back) = endpoint.handle_event(ConnectionHandle(ch), event) {
                    conn.proto.handle_event(back);
                }
            }
            buf.clear();
            while let Some(t) = conn.proto.poll_transmit(now, segments, buf) {
                progress = true;
                shared.send(&t, &buf[..t.size]);
                buf.clear();
            }
            if !progress {
                break;
            }
        }
        let mut woke = false;
        while let Some(event) = conn.proto.poll() {
            woke = true;
            match event {
                quinn_proto::Event::Connected => conn.connected = true,
                quinn_proto::Event::ConnectionLost { reason } => {
                    conn.error.get_or_insert(reason);
                    conn.stream_events = conn.stream_events.wrapping_add(1);
                }
                quinn_proto::Event::Stream(_) => {
                    conn.stream_events = conn.stream_events.wrapping_add(1);
                }
                _ => {}
            }
        }
        if woke {
            conn.wake();
        }
        conn.timer = conn.proto.poll_timeout();
        if let Some(at) = conn.timer
            && conn.queued.is_none_or(|queued| at < queued)
        {
            timers.push(std::cmp::Reverse((at, ch)));
            conn.queued = Some(at);
        }
        self.release_if_done(shared, ch);
    }

    /// Gives a drained, unreferenced connection back to the endpoint.
    fn release_if_done(&mut self, shared: &Shared, ch: usize) {
        let done = self.conns[ch].as_deref().is_some_and(|c| c.drained && c.refs == 0);
        if !done {
            return;
        }
        self.conns[ch] = None;
        self.live -= 1;
        shared.metrics.quic_connections.fetch_sub(1, Relaxed);
        self.endpoint.handle_event(ConnectionHandle(ch), EndpointEvent::drained());
        if self.live == 0
            && let Some(waker) = self.idle_waker.take()
        {
            waker.wake();
        }
    }

    /// Fires the timers that are due.
    fn expire(&mut self, now: Instant) {
        while let Some(&std::cmp::Reverse((at, ch))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conns[ch].as_deref_mut() else { continue };
            // An entry an earlier one replaced is stale.
            if conn.queued != Some(at) {
                continue;
            }
            conn.queued = None;
            match conn.timer {
                Some(due) if due <= now => {
                    conn.proto.handle_timeout(now);
                    self.touch(ch);
                }
                // The deadline moved on since it was queued: queue where it is now.
                Some(later) => {
                    conn.queued = Some(later);
                    self.timers.push(std::cmp::Reverse((later, ch)));
                }
                None => {}
            }
        }
        // Stale entries are few (one per deadline that moved earlier); should they pile up,
        // rebuild from the connections' own deadlines.
        if self.timers.len() > 4 * self.live + 1024 {
            for conn in self.conns.iter_mut().flatten() {
                conn.queued = conn.timer;
            }
            self.timers = self
                .conns
                .iter()
                .enumerate()
                .filter_map(|(ch, c)| Some(std::cmp::Reverse((c.as_deref()?.timer?, ch))))
                .collect();
        }
    }

    /// One received UDP datagram.
    fn datagram(&mut self, shared: &Shared, now: Instant, meta: &quinn_udp::RecvMeta, data: &[u8]) {
        let ecn = meta.ecn.and_then(|e| quinn_proto::EcnCodepoint::from_bits(e as u8));
        self.buf.clear();
        let event = self.endpoint.handle(
            now,
            meta.addr,
            meta.dst_ip,
            ecn,
            BytesMut::from(data),
            &mut self.buf,
        );
        match event {
            Some(DatagramEvent::ConnectionEvent(ch, event)) => {
                if let Some(conn) = self.conns.get_mut(ch.0).and_then(|c| c.as_deref_mut()) {
                    conn.proto.handle_event(event);
                    self.touch(ch.0);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                if self.closed || self.incoming.len() >= MAX_PENDING_INCOMING {
                    let t = self.endpoint.refuse(incoming, &mut self.buf);
                    shared.send(&t, &self.buf[..t.size]);
                } else {
                    self.incoming.push_back(incoming);
                    if let Some(waker) = self.accept_waker.take() {
                        waker.wake();
                    }
                }
            }
            Some(DatagramEvent::Response(t)) => shared.send(&t, &self.buf[..t.size]),
            None => {}
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|r| r.0.0)
    }
}

/// The server's QUIC endpoint. Dropping it closes the endpoint to new connections.
pub struct Endpoint {
    shared: Arc<Shared>,
}

impl Endpoint {
    /// An endpoint on `socket` (non-blocking, bound) serving `server`, and its driver task on
    /// the current runtime (a thread of its own measured 40 % more CPU: every wake crosses
    /// threads), which ends once the endpoint is closed or dropped and every connection has
    /// drained.
    ///
    /// # Errors
    ///
    /// When the socket cannot be registered with tokio.
    pub fn new(
        socket: std::net::UdpSocket,
        server: ServerConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Endpoint> {
        let shared = Shared::new(socket, Some(server), metrics)?;
        tokio::spawn(run_driver(shared.clone()));
        Ok(Endpoint { shared })
    }

    /// A client endpoint on `socket` (non-blocking, bound): it only connects
    /// ([`Endpoint::connect`]); its driver runs as [`Endpoint::new`]'s does.
    ///
    /// # Errors
    ///
    /// When the socket cannot be registered with tokio.
    pub fn client(socket: std::net::UdpSocket, metrics: Arc<Metrics>) -> std::io::Result<Endpoint> {
        let shared = Shared::new(socket, None, metrics)?;
        tokio::spawn(run_driver(shared.clone()));
        Ok(Endpoint { shared })
    }

    /// Connects to `server` (TLS name `server_name`) and waits for the handshake.
    ///
    /// # Errors
    ///
    /// A bad address or name, a closed endpoint, a failed handshake.
    pub async fn connect(
        &self,
        config: ClientConfig,
        server: SocketAddr,
        server_name: &str,
    ) -> Result<Connection, QuicError> {
        let connection = {
            let mut st = self.shared.lock();
            if st.closed {
                return Err(ConnectError::EndpointStopping.into());
            }
            let (ch, proto) = st.endpoint.connect(Instant::now(), config, server, server_name)?;
            st.insert(&self.shared, ch, proto);
            Connection { shared: self.shared.clone(), ch: ch.0 }
        };
        self.shared.driver.notify_one();
        connection.poll_until(|c| c.connected.then_some(Ok(()))).await?;
        Ok(connection)
    }
}

impl Shared {
    /// The endpoint's state on `socket`, registered with the current runtime.
    fn new(
        socket: std::net::UdpSocket,
        server: Option<ServerConfig>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Arc<Shared>> {
        let udp = quinn_udp::UdpSocketState::new((&socket).into())?;
        let local = socket.local_addr()?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        let endpoint = quinn_proto::Endpoint::new(
            Arc::new(EndpointConfig::default()),
            server.map(Arc::new),
            !udp.may_fragment(),
            None,
        );
        Ok(Arc::new(Shared {
            state: Mutex::new(State {
                endpoint,
                conns: Vec::new(),
                live: 0,
                dirty: Vec::new(),
                timers: BinaryHeap::new(),
                incoming: VecDeque::new(),
                accept_waker: None,
                idle_waker: None,
                closed: false,
                buf: Vec::new(),
            }),
            metrics,
            driver: Notify::new(),
            socket,
            udp,
            local,
        }))
    }
}

impl Endpoint {
    /// The bound address.
    ///
    /// # Errors
    ///
    /// Never; a `Result` as for a socket.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.shared.local)
    }

    /// Connections open (or still draining).
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.shared.lock().live
    }

    /// The next connection attempt; `None` once the endpoint is closed.
    pub async fn accept(&self) -> Option<Incoming> {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if let Some(incoming) = st.incoming.pop_front() {
                return Poll::Ready(Some(Incoming {
                    shared: self.shared.clone(),
                    inner: Some(incoming),
                }));
            }
            if st.closed {
                return Poll::Ready(None);
            }
            st.accept_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Closes every connection with `code` and `reason` and takes no new one.
    pub fn close(&self, code: VarInt, reason: &[u8]) {
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        st.closed = true;
        let now = Instant::now();
        let reason = Bytes::copy_from_slice(reason);
        for ch in 0..st.conns.len() {
            if let Some(conn) = st.conns[ch].as_deref_mut() {
                conn.proto.close(now, code, reason.clone());
                st.touch(ch);
            }
        }
        while let Some(incoming) = st.incoming.pop_front() {
            st.buf.clear();
            let t = st.endpoint.refuse(incoming, &mut st.buf);
            self.shared.send(&t, &st.buf[..t.size]);
        }
        if let Some(waker) = st.accept_waker.take() {
            waker.wake();
        }
        drop(guard);
        self.shared.driver.notify_one();
    }

    /// Waits until every connection has drained.
    pub async fn wait_idle(&self) {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if st.live == 0 {
                return Poll::Ready(());
            }
            st.idle_waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closed = true;
        if let Some(waker) = st.accept_waker.take() {
            waker.wake();
        }
        drop(st);
        self.shared.driver.notify_one();
    }
}

/// The driver: reads packets, fires timers, sends what connections have to send. Ends when
/// the endpoint is closed and every connection has drained.
async fn run_driver(shared: Arc<Shared>) {
    // One 64 KiB buffer per message of a batch (a GRO message holds several datagrams).
    const SLOT: usize = 65_536;
    let mut storage = vec![0u8; SLOT * quinn_udp::BATCH_SIZE];
    let mut meta = [quinn_udp::RecvMeta::default(); quinn_udp::BATCH_SIZE];
    let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
    let sleep = tokio::time::sleep_until(far());
    tokio::pin!(sleep);
    loop {
        let next = {
            let st = shared.lock();
            if st.closed && st.live == 0 && st.incoming.is_empty() {
                return;
            }
            st.next_timer()
        };
        sleep.as_mut().reset(next.map_or_else(far, tokio::time::Instant::from_std));
        tokio::select! {
            readable = shared.socket.readable() => {
                if let Err(e) = readable {
                    tracing::warn!(error = %e, "the QUIC socket failed");
                    return;
                }
            }
            () = shared.driver.notified() => {}
            () = &mut sleep => {}
        }
        let mut st = shared.lock();
        let now = Instant::now();
        for _ in 0..RECV_BATCH_TURNS {
            let mut bufs: Vec<IoSliceMut<'_>> =
                storage.chunks_mut(SLOT).map(IoSliceMut::new).collect();
            let received = shared.socket.try_io(tokio::io::Interest::READABLE, || {
                shared.udp.recv((&shared.socket).into(), &mut bufs, &mut meta)
            });
            drop(bufs);
            match received {
                Ok(n) => {
                    for (m, slot) in meta[..n].iter().zip(storage.chunks(SLOT)) {
                        let stride = m.stride.max(1);
                        for data in slot[..m.len].chunks(stride) {
                            st.datagram(&shared, now, m, data);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // An ICMP error for an earlier send and the like: nothing to do here.
                    tracing::trace!(error = %e, "QUIC receive error");
                    break;
                }
            }
        }
        st.expire(now);
        while let Some(ch) = st.dirty.pop() {
            st.drive(&shared, ch, now);
        }
    }
}

/// A connection attempt not yet accepted or refused. Dropped, it is ignored.
pub struct Incoming {
    shared: Arc<Shared>,
    inner: Option<quinn_proto::Incoming>,
}

impl Incoming {
    /// The peer's address.
    #[must_use]
    pub fn remote_address(&self) -> SocketAddr {
        self.inner.as_ref().map_or(self.shared.local, quinn_proto::Incoming::remote_address)
    }

    /// Refuses the attempt (the peer is told at once).
    pub fn refuse(mut self) {
        let Some(incoming) = self.inner.take() else { return };
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        st.buf.clear();
        let t = st.endpoint.refuse(incoming, &mut st.buf);
        self.shared.send(&t, &st.buf[..t.size]);
    }

    /// Accepts the attempt and waits for the handshake to complete.
    ///
    /// # Errors
    ///
    /// When the handshake fails.
    pub async fn accept(mut self) -> Result<Connection, QuicError> {
        let incoming = self.inner.take().expect("an incoming is accepted once");
        let connection = {
            let mut st = self.shared.lock();
            let now = Instant::now();
            let st = &mut *st;
            st.buf.clear();
            match st.endpoint.accept(incoming, now, &mut st.buf, None) {
                Ok((ch, proto)) => {
                    st.insert(&self.shared, ch, proto);
                    Connection { shared: self.shared.clone(), ch: ch.0 }
                }
                Err(e) => {
                    if let Some(t) = e.response {
                        self.shared.send(&t, &st.buf[..t.size]);
                    }
                    return Err(e.cause.into());
                }
            }
        };
        self.shared.driver.notify_one();
        connection.poll_until(|c| c.connected.then_some(Ok(()))).await?;
        Ok(connection)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(incoming) = self.inner.take() {
            self.shared.lock().endpoint.ignore(incoming);
        }
    }
}

/// A handle on one connection. Cloning is cheap; when the last handle (streams included) is
/// dropped, the connection is closed with code 0.
pub struct Connection {
    shared: Arc<Shared>,
    ch: usize,
}

impl Clone for Connection {
    fn clone(&self) -> Self {
        self.shared.lock().conn(self.ch).refs += 1;
        Connection { shared: self.shared.clone(), ch: self.ch }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let conn = st.conn(self.ch);
        conn.refs -= 1;
        if conn.refs > 0 {
            return;
        }
        if !conn.proto.is_closed() {
            conn.proto.close(Instant::now(), VarInt::from_u32(0), Bytes::new());
        }
        st.touch(self.ch);
        st.release_if_done(&self.shared, self.ch);
        drop(st);
        self.shared.driver.notify_one();
    }
}

impl Connection {
    /// Runs `op` on the connection under the lock, then has the driver serve it (the
    /// operation may have queued something to send).
    fn act<R>(&self, op: impl FnOnce(&mut Conn) -> R) -> R {
        let mut st = self.shared.lock();
        let r = op(st.conn(self.ch));
        st.touch(self.ch);
        drop(st);
        self.shared.driver.notify_one();
        r
    }

    /// Waits until `op` answers; fails once the connection is lost (after `op` had its say).
    async fn poll_until<R>(
        &self,
        mut op: impl FnMut(&mut Conn) -> Option<Result<R, QuicError>>,
    ) -> Result<R, QuicError> {
        poll_fn(|cx| self.poll_op(cx, &mut op)).await
    }

    /// `op`'s answer, or the connection's error, or pending (the task woken by the
    /// connection's next event).
    fn poll_op<R>(
        &self,
        cx: &Context<'_>,
        op: impl FnOnce(&mut Conn) -> Option<Result<R, QuicError>>,
    ) -> Poll<Result<R, QuicError>> {
        let mut st = self.shared.lock();
        let conn = st.conn(self.ch);
        let answer = op(conn).or_else(|| conn.error.clone().map(|e| Err(e.into())));
        match answer {
            Some(answer) => {
                st.touch(self.ch);
                drop(st);
                self.shared.driver.notify_one();
                Poll::Ready(answer)
            }
            None => {
                conn.wait(cx);
                Poll::Pending
            }
        }
    }

    /// [`Connection::read_datagram`] as a poll.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub fn poll_datagram(&self, cx: &Context<'_>) -> Poll<Result<Bytes, QuicError>> {
        self.poll_op(cx, |c| c.proto.datagrams().recv().map(Ok))
    }

    /// [`Connection::accept_uni`] as a poll.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub fn poll_accept_uni(&self, cx: &Context<'_>) -> Poll<Result<RecvStream, QuicError>> {
        self.poll_op(cx, |c| {
            let id = c.proto.streams().accept(Dir::Uni)?;
            Some(Ok(RecvStream { conn: self.stream_handle(c), id }))
        })
    }

    /// A handle for a stream of this connection (the caller holds the lock on `conn`).
    fn stream_handle(&self, conn: &mut Conn) -> Connection {
        conn.refs += 1;
        Connection { shared: self.shared.clone(), ch: self.ch }
    }

    /// The peer's address.
    #[must_use]
    pub fn remote_address(&self) -> SocketAddr {
        self.shared.lock().conn(self.ch).proto.remote_address()
    }

    /// How many stream events the connection has had, registering the task to be woken by
    /// the next: a reader whose count has not moved has nothing new on its streams.
    pub fn poll_stream_events(&self, cx: &Context<'_>) -> u32 {
        let mut st = self.shared.lock();
        let conn = st.conn(self.ch);
        conn.wait(cx);
        conn.stream_events
    }

    /// Opens a unidirectional stream, waiting for the peer's credit.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub async fn open_uni(&self) -> Result<SendStream, QuicError> {
        self.poll_until(|c| {
            let id = c.proto.streams().open(Dir::Uni)?;
            Some(Ok(SendStream { conn: self.stream_handle(c), id }))
        })
        .await
    }

    /// Opens a bidirectional stream, waiting for the peer's credit.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub async fn open_bi(&self) -> Result<(SendStream, RecvStream), QuicError> {
        self.poll_until(|c| {
            let id = c.proto.streams().open(Dir::Bi)?;
            let send = SendStream { conn: self.stream_handle(c), id };
            let recv = RecvStream { conn: self.stream_handle(c), id };
            Some(Ok((send, recv)))
        })
        .await
    }

    /// The next unidirectional stream the peer opens.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub async fn accept_uni(&self) -> Result<RecvStream, QuicError> {
        poll_fn(|cx| self.poll_accept_uni(cx)).await
    }

    /// The next bidirectional stream the peer opens.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub async fn accept_bi(&self) -> Result<(SendStream, RecvStream), QuicError> {
        self.poll_until(|c| {
            let id = c.proto.streams().accept(Dir::Bi)?;
            let send = SendStream { conn: self.stream_handle(c), id };
            let recv = RecvStream { conn: self.stream_handle(c), id };
            Some(Ok((send, recv)))
        })
        .await
    }

    /// The next datagram the peer sends.
    ///
    /// # Errors
    ///
    /// When the connection is lost.
    pub async fn read_datagram(&self) -> Result<Bytes, QuicError> {
        poll_fn(|cx| self.poll_datagram(cx)).await
    }

    /// Queues a datagram (the oldest queued ones are dropped when the send buffer is full).
    ///
    /// # Errors
    ///
    /// When the connection is lost, the peer takes no datagrams, or `data` is too large.
    pub fn send_datagram(&self, data: Bytes) -> Result<(), QuicError> {
        self.act(|c| match &c.error {
            Some(e) => Err(e.clone().into()),
            None => c.proto.datagrams().send(data, true).map_err(QuicError::from),
        })
    }

    /// The largest datagram payload the path takes now; `None` when the peer takes none.
    #[must_use]
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.shared.lock().conn(self.ch).proto.datagrams().max_size()
    }

    /// Closes the connection with `code` and `reason` (at once; unsent data is discarded).
    pub fn close(&self, code: VarInt, reason: &[u8]) {
        let reason = Bytes::copy_from_slice(reason);
        self.act(|c| c.proto.close(Instant::now(), code, reason));
    }
}

/// The sending side of a stream.
pub struct SendStream {
    conn: Connection,
    id: StreamId,
}

impl SendStream {
    /// The stream's id.
    #[must_use]
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// Writes all of `data`, waiting for flow-control credit as needed.
    ///
    /// # Errors
    ///
    /// When the peer stopped the stream or the connection is lost.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), QuicError> {
        let id = self.id;
        let mut written = 0;
        self.conn
            .poll_until(|c| {
                if c.error.is_some() {
                    return None;
                }
                loop {
                    if written == data.len() {
                        return Some(Ok(()));
                    }
                    match c.proto.send_stream(id).write(&data[written..]) {
                        Ok(n) => written += n,
                        Err(WriteError::Blocked) => return None,
                        Err(WriteError::Stopped(code)) => {
                            return Some(Err(QuicError::Stopped(code)));
                        }
                        Err(WriteError::ClosedStream) => return Some(Err(QuicError::ClosedStream)),
                    }
                }
            })
            .await
    }

    /// Finishes the stream: no more data, what is written is still delivered.
    ///
    /// # Errors
    ///
    /// When the stream was finished, reset or stopped.
    pub fn finish(&mut self) -> Result<(), QuicError> {
        let id = self.id;
        self.conn.act(|c| c.proto.send_stream(id).finish().map_err(|_| QuicError::ClosedStream))
    }

    /// Abandons the stream: what is unsent is dropped.
    ///
    /// # Errors
    ///
    /// When the stream was finished and acknowledged, reset or stopped.
    pub fn reset(&mut self, code: VarInt) -> Result<(), QuicError> {
        let id = self.id;
        self.conn.act(|c| c.proto.send_stream(id).reset(code).map_err(|_| QuicError::ClosedStream))
    }

    /// Waits until the peer has everything (`None`) or stopped the stream (its code).
    ///
    /// # Errors
    ///
    /// When the connection is lost first.
    pub async fn stopped(&mut self) -> Result<Option<VarInt>, QuicError> {
        let id = self.id;
        self.conn
            .poll_until(|c| match c.proto.send_stream(id).stopped() {
                // Gone from the connection's streams: finished and acknowledged.
                Err(_) => Some(Ok(None)),
                Ok(Some(code)) => Some(Ok(Some(code))),
                Ok(None) => None,
            })
            .await
    }
}

/// The receiving side of a stream.
pub struct RecvStream {
    conn: Connection,
    id: StreamId,
}

impl RecvStream {
    /// Takes up to `max` bytes from `c`'s stream; `None` while nothing is there.
    fn take(id: StreamId, c: &mut Conn, max: usize) -> Option<Result<Option<Bytes>, QuicError>> {
        let mut stream = c.proto.recv_stream(id);
        let mut chunks = match stream.read(true) {
            Ok(chunks) => chunks,
            Err(ReadableError::ClosedStream) => return Some(Err(QuicError::ClosedStream)),
            Err(ReadableError::IllegalOrderedRead) => unreachable!("reads are always ordered"),
        };
        let answer = match chunks.next(max) {
            Ok(Some(chunk)) => Some(Ok(Some(chunk.bytes))),
            Ok(None) => Some(Ok(None)),
            Err(ReadError::Blocked) => None,
            Err(ReadError::Reset(code)) => Some(Err(QuicError::Reset(code))),
        };
        let _ = chunks.finalize();
        answer
    }

    /// The next bytes of the stream (at most `max`); `None` at its end.
    ///
    /// # Errors
    ///
    /// When the peer reset the stream or the connection is lost.
    pub async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, QuicError> {
        poll_fn(|cx| self.poll_chunk(cx, max)).await
    }

    /// [`RecvStream::read_chunk`] as a poll.
    ///
    /// # Errors
    ///
    /// When the peer reset the stream or the connection is lost.
    pub fn poll_chunk(
        &mut self,
        cx: &Context<'_>,
        max: usize,
    ) -> Poll<Result<Option<Bytes>, QuicError>> {
        let id = self.id;
        self.conn.poll_op(cx, |c| Self::take(id, c, max))
    }

    /// Copies what the stream has into `buf`: `Ok(0)` at its end.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<usize, QuicError>> {
        self.poll_chunk(cx, buf.len()).map_ok(|bytes| {
            let bytes = bytes.unwrap_or_default();
            buf[..bytes.len()].copy_from_slice(&bytes);
            bytes.len()
        })
    }

    /// Asks the peer to stop sending on the stream.
    ///
    /// # Errors
    ///
    /// When the stream was finished, reset or stopped.
    pub fn stop(&mut self, code: VarInt) -> Result<(), QuicError> {
        let id = self.id;
        self.conn.act(|c| c.proto.recv_stream(id).stop(code).map_err(|_| QuicError::ClosedStream))
    }
}
