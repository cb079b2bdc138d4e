//! One client session, independent of the transport. A transport (WebSocket today, QUIC next)
//! implements [`TransportRx`] and [`TransportTx`]: it only moves message bytes. This module does
//! the rest: decoding and validating every inbound message, rate limits, heartbeat and idle
//! timeout, forwarding to the room over bounded channels, and writing the outbox.
//!
//! A failing session ends only itself: every error becomes a close with a reason.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, RateLimiter};
use tickwire_shared::ClientId;
use tickwire_shared::codec;
use tickwire_shared::protocol::{ClientMessage, DisconnectReason, ServerMessage};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use tickwire_shared::join::JoinRequest;
use tickwire_shared::room::JoinRefused;

use crate::config::{Limits, quota};
use crate::metrics::{DisconnectKind, Metrics};
use crate::outbox::{OutItem, Outbox};
use crate::room::{JoinTicket, RoomHandle};
use crate::state::AppState;

/// How long the reader keeps reading after the server closed, waiting for the peer's close.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What a transport received.
#[derive(Debug)]
pub enum Inbound {
    /// A binary message.
    Binary(Bytes),
    /// A text message (not part of the protocol).
    Text,
    /// A heartbeat (a ping or a pong, or any transport-level liveness signal) of this many
    /// payload bytes. It counts toward the rate limits like any message.
    Alive(usize),
    /// A message over the size limit.
    TooLarge,
    /// The peer broke the transport's own protocol (a reserved opcode, an unmasked frame,
    /// invalid UTF-8 in a text frame…): the session is closed with 1002 and the reason.
    Malformed(TransportError),
    /// The peer closed the connection.
    Closed,
    /// The transport failed.
    Error(TransportError),
}

/// A transport failed (the connection broke); the session ends.
#[derive(Debug, thiserror::Error)]
#[error("transport failed: {0}")]
pub struct TransportError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// A transport's receiving half.
pub trait TransportRx: Send {
    /// The next inbound event.
    fn recv(&mut self) -> impl Future<Output = Inbound> + Send;
}

/// A transport's sending half.
pub trait TransportTx: Send {
    /// The transport's name (the live inspector shows it): `websocket`, `webtransport`.
    const NAME: &'static str;
    /// Sends one message reliably and in order.
    fn send(&mut self, bytes: Bytes) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Sends one message that may be lost and that a newer one supersedes (a snapshot). A
    /// transport without such a channel sends it like any other.
    fn send_unreliable(
        &mut self,
        bytes: Bytes,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.send(bytes)
    }
    /// Sends a heartbeat probe.
    fn ping(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Closes with a code and a reason.
    fn close(&mut self, code: u16, reason: &str) -> impl Future<Output = ()> + Send;
}

/// What a session needs besides its transport.
pub struct SessionContext {
    /// This session's client.
    pub client: ClientId,
    /// The room it joined.
    pub room: RoomHandle,
    /// Its outbox (registered with the room).
    pub outbox: Arc<Outbox>,
    /// Limits.
    pub limits: Limits,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The lobby: where a `/lobby …` chat line goes, and the player's name on it.
    pub lobby: (Arc<AppState>, Box<str>),
}

/// One open session in `tickwire_connections`: counted out when dropped.
struct Counted(Arc<Metrics>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs the session until it ends; the room is told the client is gone. `held` (the
/// connection's slot, its count) is kept until then.
pub async fn run<R: TransportRx, T: TransportTx, H: Send>(
    mut rx: R,
    mut tx: T,
    ctx: SessionContext,
    held: H,
) {
    let done = CancellationToken::new();
    // The loops borrow the transport halves: a half moved into a nested future would be kept
    // twice in the session's task for its whole life.
    // Both loops at once, polled in place (`tokio::join!` kept a second copy of each).
    let (left, end) = {
        let mut read = std::pin::pin!(read_loop(&mut rx, &ctx, &done));
        let mut write = std::pin::pin!(write_loop(&mut tx, &ctx, &done));
        let (mut left, mut end) = (None, None);
        std::future::poll_fn(|cx| {
            if left.is_none()
                && let Poll::Ready(v) = read.as_mut().poll(cx)
            {
                left = Some(v);
            }
            if end.is_none()
                && let Poll::Ready(v) = write.as_mut().poll(cx)
            {
                end = Some(v);
            }
            if left.is_some() && end.is_some() { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
        (left.unwrap_or(false), end.flatten())
    };
    let kind = end.unwrap_or(DisconnectKind::ClientClosed);
    ctx.metrics.disconnect(kind);
    ctx.room.disconnect(ctx.client, left).await;
    drop(held);
}

/// Why the reader asks for a close.
type CloseRequest = (DisconnectReason, String);

/// The reader's per-session state: its rate limits, one [`governor`] limiter each (direct, not
/// keyed: each connection has its own).
struct Limiters {
    /// Inbound messages and heartbeats, one cell each.
    messages: DefaultDirectRateLimiter,
    /// Inbound bytes, one cell a byte.
    bytes: DefaultDirectRateLimiter,
    /// Chat lines, one cell each.
    chat: DefaultDirectRateLimiter,
}

impl Limiters {
    fn new(limits: &Limits) -> Limiters {
        Limiters {
            messages: RateLimiter::direct(quota(limits.messages_per_sec, limits.message_burst)),
            bytes: RateLimiter::direct(quota(limits.bytes_per_sec, limits.byte_burst)),
            chat: RateLimiter::direct(quota(limits.chat_per_sec, limits.chat_burst)),
        }
    }

    /// Takes one message of `len` bytes from the message and byte budgets; false (and nothing
    /// taken from the byte budget) when either is spent. A message larger than the whole byte
    /// burst never fits.
    fn frame(&self, len: usize) -> bool {
        if self.messages.check().is_err() {
            return false;
        }
        match u32::try_from(len).map(NonZeroU32::new) {
            Ok(None) => true,
            Ok(Some(cells)) => matches!(self.bytes.check_n(cells), Ok(Ok(()))),
            Err(_) => false,
        }
    }

    /// Takes one chat line; false when the chat budget is spent.
    fn chat(&self) -> bool {
        self.chat.check().is_ok()
    }
}

fn count_decode_error(ctx: &SessionContext) {
    ctx.metrics.decode_errors.fetch_add(1, Ordering::Relaxed);
}

/// Handles one binary message: rate limits, decoding, forwarding. `Err` asks for a close.
/// Nothing here waits: the room's inboxes are bounded and a full one drops what it cannot
/// take (counted), so the session's task keeps no room for a wait either.
fn handle_binary(
    data: &[u8],
    ctx: &SessionContext,
    limiters: &Limiters,
) -> Result<(), CloseRequest> {
    ctx.metrics.bytes_received.fetch_add(data.len() as u64, Ordering::Relaxed);
    ctx.outbox.stats.bytes_in.fetch_add(data.len() as u64, Ordering::Relaxed);
    if !limiters.frame(data.len()) {
        return Err((DisconnectReason::RateLimited, "message rate limit exceeded".into()));
    }
    let msg = codec::decode_client(data).map_err(|e| {
        count_decode_error(ctx);
        let reason = match e {
            codec::CodecError::TooLarge { .. } => DisconnectReason::MessageTooLarge,
            _ => DisconnectReason::ProtocolError,
        };
        (reason, format!("bad message: {e}"))
    })?;
    match msg {
        ClientMessage::Input(batch) => ctx.room.input(ctx.client, batch),
        ClientMessage::Ping { id, client_time_us } => {
            let pong = ServerMessage::Pong { id, client_time_us, tick: ctx.room.tick() };
            if let Ok(b) = codec::encode_server(&pong)
                && ctx.outbox.push_reliable(Bytes::from(b)).is_err()
            {
                return Err((DisconnectReason::TooSlow, "not reading replies".into()));
            }
        }
        ClientMessage::Chat { text } => {
            let sent = limiters.chat()
                && match text.strip_prefix(crate::messaging::LOBBY_PREFIX) {
                    Some(line) => ctx.lobby.0.messaging.lobby(&ctx.lobby.1, line),
                    None => ctx.room.try_chat(ctx.client, text),
                };
            if !sent {
                ctx.metrics.chat_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        ClientMessage::Leave => {
            // Gone for good now, not when the close has finished: the resume token dies here
            // (or, with the room's inbox full, when the session ends: it says `left` again).
            ctx.room.try_disconnect(ctx.client, true);
            return Err((DisconnectReason::Left, "goodbye".into()));
        }
    }
    Ok(())
}

/// Reads until the peer closes, the transport fails, or the writer finished closing. Returns
/// whether the client asked to leave for good.
async fn read_loop<R: TransportRx>(
    rx: &mut R,
    ctx: &SessionContext,
    done: &CancellationToken,
) -> bool {
    let limits = &ctx.limits;
    let limiters = Limiters::new(limits);
    let mut left = false;
    let mut deadline = tokio::time::Instant::now() + limits.idle_timeout;
    let mut closing = false;
    loop {
        let inbound = tokio::select! {
            biased;
            () = done.cancelled() => return left,
            () = tokio::time::sleep_until(deadline) => {
                if closing {
                    return left;
                }
                None
            }
            inbound = rx.recv() => Some(inbound),
        };
        let request = match inbound {
            None => Err((DisconnectReason::Timeout, "no traffic within the idle timeout".into())),
            Some(Inbound::Closed | Inbound::Error(_)) => {
                if closing {
                    // Our close is on its way. Dropping the socket now, with the peer's unread
                    // bytes in it, would make the kernel answer with a reset that can destroy
                    // the close frame before the peer reads it: wait for the writer and the
                    // linger.
                    tokio::select! {
                        () = done.cancelled() => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                } else {
                    // The peer went first: stop the writer.
                    done.cancel();
                }
                return left;
            }
            // Once closing, the rest of what the peer sends is ignored.
            Some(_) if closing => continue,
            Some(Inbound::Alive(len)) => {
                ctx.outbox.stats.alive();
                if limiters.frame(len) {
                    Ok(())
                } else {
                    Err((DisconnectReason::RateLimited, "frame rate limit exceeded".into()))
                }
            }
            Some(Inbound::Binary(data)) => handle_binary(&data, ctx, &limiters),
            Some(Inbound::Malformed(e)) => {
                count_decode_error(ctx);
                Err((DisconnectReason::ProtocolError, format!("broken frame: {}", e.0)))
            }
            Some(Inbound::Text) => {
                count_decode_error(ctx);
                Err((
                    DisconnectReason::ProtocolError,
                    "text messages are not part of the protocol; send binary".into(),
                ))
            }
            Some(Inbound::TooLarge) => {
                count_decode_error(ctx);
                Err((
                    DisconnectReason::MessageTooLarge,
                    format!("message larger than {} bytes", limits.max_message_bytes),
                ))
            }
        };
        match request {
            Ok(()) => deadline = tokio::time::Instant::now() + limits.idle_timeout,
            Err((reason, message)) => {
                left |= reason == DisconnectReason::Left;
                ctx.outbox.close(reason, message);
                closing = true;
                deadline = tokio::time::Instant::now() + CLOSE_LINGER;
            }
        }
    }
}

/// Writes the outbox, pings on the interval, and performs the close. Returns how the session
/// ended, or `None` when the reader saw the peer go first.
/// Sends `bytes` within the write timeout and counts them; false when the transport failed.
/// A send that could not finish within the write timeout is a client too slow to read (its
/// buffers are full): [`DisconnectReason::TooSlow`]; a failed one, a broken transport.
async fn send_counted<T: TransportTx>(
    tx: &mut T,
    ctx: &SessionContext,
    bytes: Bytes,
    unreliable: bool,
) -> Result<(), DisconnectKind> {
    let n = bytes.len() as u64;
    let sent =
        async { if unreliable { tx.send_unreliable(bytes).await } else { tx.send(bytes).await } };
    match tokio::time::timeout(ctx.limits.write_timeout, sent).await {
        Ok(Ok(())) => {
            ctx.metrics.bytes_sent.fetch_add(n, Ordering::Relaxed);
            ctx.outbox.stats.bytes_out.fetch_add(n, Ordering::Relaxed);
            Ok(())
        }
        Ok(Err(_)) => Err(DisconnectKind::TransportError),
        Err(_) => Err(DisconnectKind::Server(DisconnectReason::TooSlow)),
    }
}

async fn write_loop<T: TransportTx>(
    tx: &mut T,
    ctx: &SessionContext,
    done: &CancellationToken,
) -> Option<DisconnectKind> {
    let limits = &ctx.limits;
    let mut ping = tokio::time::interval(limits.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let result = loop {
        let item = tokio::select! {
            biased;
            () = done.cancelled() => break None,
            _ = ping.tick() => {
                match tokio::time::timeout(limits.write_timeout, tx.ping()).await {
                    Ok(Ok(())) => {
                        ctx.outbox.stats.ping_sent();
                        continue;
                    }
                    _ => break Some(DisconnectKind::TransportError),
                }
            }
            item = ctx.outbox.next() => item,
        };
        match item {
            OutItem::Send(bytes) => {
                if let Err(kind) = send_counted(tx, ctx, bytes, false).await {
                    break Some(kind);
                }
            }
            OutItem::Snapshot { bytes, input_arrivals } => {
                if let Err(kind) = send_counted(tx, ctx, bytes, true).await {
                    break Some(kind);
                }
                for arrival in input_arrivals {
                    let micros = u64::try_from(arrival.elapsed().as_micros()).unwrap_or(u64::MAX);
                    ctx.metrics.input_to_snapshot.observe(micros);
                }
            }
            OutItem::Abort => {
                // No close frame: stop the reader now so the socket drops at once.
                done.cancel();
                return Some(DisconnectKind::TransportError);
            }
            OutItem::Close(reason, message) => {
                // Once per session: boxed, so a running session keeps no room for it.
                Box::pin(say_goodbye(tx, limits, reason, message)).await;
                break Some(DisconnectKind::Server(reason));
            }
        }
    };
    if result.is_none() {
        // The peer closed first: answer with a close frame (the transport has one queued, or
        // sends one) before the socket is dropped, so the peer sees an orderly close.
        let _ = tokio::time::timeout(limits.write_timeout, tx.close(1000, "")).await;
    }
    // Give the reader a moment to see the peer's close, then stop it.
    if result.is_some() {
        let stopper = done.clone();
        tokio::spawn(async move {
            tokio::time::sleep(CLOSE_LINGER).await;
            stopper.cancel();
        });
    } else {
        done.cancel();
    }
    result
}

/// Sends the `Disconnect` and closes, each within the write timeout.
async fn say_goodbye<T: TransportTx>(
    tx: &mut T,
    limits: &Limits,
    reason: DisconnectReason,
    message: String,
) {
    let goodbye = ServerMessage::Disconnect { reason, message: message.clone() };
    if let Ok(b) = codec::encode_server(&goodbye) {
        let _ = tokio::time::timeout(limits.write_timeout, tx.send(Bytes::from(b))).await;
    }
    let _ =
        tokio::time::timeout(limits.write_timeout, tx.close(reason.close_code(), &message)).await;
}

async fn refuse<T: TransportTx>(mut tx: T, reason: DisconnectReason, message: &str) {
    let msg = ServerMessage::Disconnect { reason, message: message.to_owned() };
    if let Ok(b) = codec::encode_server(&msg) {
        let _ = tx.send(Bytes::from(b)).await;
    }
    tx.close(reason.close_code(), message).await;
}

/// Joins a room with an accepted transport, then runs the session on a task of its own until
/// it ends, holding `guard` (the connection's slot) as long. Returns once the session is
/// running (or refused): what the handshake and the join took is freed then, and the running
/// session's task holds only what it needs. A long-lived session costs no more than that.
pub async fn join_and_run<R, T, G>(
    state: Arc<AppState>,
    join: JoinRequest,
    subject: String,
    remote: std::net::IpAddr,
    rx: R,
    tx: T,
    guard: G,
) where
    R: TransportRx + 'static,
    T: TransportTx + 'static,
    G: Send + 'static,
{
    let client = state.next_client();
    let span = tracing::info_span!("session", %client, %remote, room = tracing::field::Empty);
    state.metrics.connections.fetch_add(1, Ordering::Relaxed);
    let joined =
        join_room(&state, &join, &subject, client, remote, T::NAME).instrument(span.clone()).await;
    match joined {
        Ok(ctx) => {
            // `run` itself is the task (an `async` block around it would keep what it moves
            // into `run` twice for the session's life).
            let presence = crate::messaging::Messaging::present(&state, &subject, ctx.room.id());
            let held = (guard, Counted(state.metrics.clone()), presence);
            state.tracker.spawn(run(rx, tx, ctx, held).instrument(span));
        }
        Err((reason, message)) => {
            state.metrics.disconnect(DisconnectKind::Server(reason));
            refuse(tx, reason, &message).instrument(span).await;
            drop(rx);
            drop(guard);
            drop(Counted(state.metrics.clone()));
        }
    }
}

/// Picks a room and joins it: the running session's context, or why not.
async fn join_room(
    state: &Arc<AppState>,
    join: &JoinRequest,
    subject: &str,
    client: ClientId,
    remote: std::net::IpAddr,
    transport: &'static str,
) -> Result<SessionContext, CloseRequest> {
    let mut outbox = Outbox::new(state.config.limits.max_reliable_queue);
    outbox.stats.transport = transport;
    let outbox = Arc::new(outbox);
    let mut joined = None;
    let mut refused = JoinRefused::Closed.to_string();
    // A room picked just as it closes refuses; pick again a few times.
    for _ in 0..3 {
        if state.shutdown.is_cancelled() {
            break;
        }
        let seat = match state.rooms.pick(join, remote) {
            Ok(seat) => seat,
            Err(e) => {
                tracing::info!(error = %e, "no room for a join");
                refused = e.to_string();
                break;
            }
        };
        let room = seat.room().clone();
        let ticket = JoinTicket {
            name: join.name.clone(),
            subject: subject.to_owned(),
            resume: join.resume.clone(),
        };
        match seat.join(client, ticket, outbox.clone()).await {
            Ok(info) => {
                if let (Some(cluster), Some(seat)) = (&state.cluster, &join.seat) {
                    cluster.admitted(room.id(), seat);
                }
                joined = Some((room, info));
                break;
            }
            Err(e) => refused = e.to_string(),
        }
    }
    match joined {
        Some((room, info)) => {
            tracing::Span::current().record("room", room.id());
            tracing::debug!(entity = %info.entity, game = room.game(), "session started");
            Ok(SessionContext {
                lobby: (state.clone(), join.name.clone().into_boxed_str()),
                client,
                room,
                outbox,
                limits: state.config.limits.clone(),
                metrics: state.metrics.clone(),
            })
        }
        None if state.shutdown.is_cancelled() => {
            Err((DisconnectReason::ServerShutdown, "server shutting down".to_owned()))
        }
        None => Err((DisconnectReason::RoomFull, format!("cannot join: {refused}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            messages_per_sec: 1.0,
            message_burst: 5.0,
            bytes_per_sec: 1.0,
            byte_burst: 100.0,
            chat_per_sec: 0.5,
            chat_burst: 2.0,
            ..Limits::default()
        }
    }

    #[test]
    fn messages_are_limited_by_count_then_bytes() {
        // A burst of five messages, then (at one a second) nothing for a while.
        let l = Limiters::new(&limits());
        for _ in 0..5 {
            assert!(l.frame(0));
        }
        assert!(!l.frame(0));
        // Bytes: 100 in a burst. A refused size takes nothing; a frame over the burst never fits.
        let l = Limiters::new(&limits());
        assert!(!l.frame(101));
        assert!(!l.frame(usize::MAX));
        assert!(l.frame(60));
        assert!(!l.frame(41));
        assert!(l.frame(40));
    }

    #[test]
    fn chat_has_its_own_budget() {
        let l = Limiters::new(&limits());
        assert!(l.chat() && l.chat());
        assert!(!l.chat());
        // The message budget is untouched by chat.
        assert!(l.frame(10));
    }
}
