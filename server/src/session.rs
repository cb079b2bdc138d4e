//! One client session, independent of the transport. A transport (WebSocket today, QUIC next)
//! implements [`TransportRx`] and [`TransportTx`]: it only moves message bytes. This module does
//! the rest: decoding and validating every inbound message, rate limits, heartbeat and idle
//! timeout, forwarding to the room over bounded channels, and writing the outbox.
//!
//! A failing session ends only itself: every error becomes a close with a reason.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tickwire_shared::ClientId;
use tickwire_shared::codec;
use tickwire_shared::protocol::{ClientMessage, DisconnectReason, ServerMessage};
use tokio_util::sync::CancellationToken;

use crate::config::Limits;
use crate::limiter::TokenBucket;
use crate::metrics::{DisconnectKind, Metrics};
use crate::outbox::{OutItem, Outbox};
use crate::room::RoomHandle;

/// How long the reader keeps reading after the server closed, waiting for the peer's close.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What a transport received.
#[derive(Debug)]
pub enum Inbound {
    /// A binary message.
    Binary(Bytes),
    /// A text message (not part of the protocol).
    Text,
    /// A heartbeat answer (or any transport-level liveness signal).
    Alive,
    /// A message over the size limit.
    TooLarge,
    /// The peer closed the connection.
    Closed,
    /// The transport failed.
    Error(String),
}

/// A transport's receiving half.
pub trait TransportRx: Send {
    /// The next inbound event.
    fn recv(&mut self) -> impl Future<Output = Inbound> + Send;
}

/// A transport's sending half.
pub trait TransportTx: Send {
    /// Sends one message.
    fn send(&mut self, bytes: Bytes) -> impl Future<Output = Result<(), String>> + Send;
    /// Sends a heartbeat probe.
    fn ping(&mut self) -> impl Future<Output = Result<(), String>> + Send;
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
}

/// Runs the session until it ends; the room is told the client is gone.
pub async fn run<R: TransportRx, T: TransportTx>(rx: R, tx: T, ctx: SessionContext) {
    let done = CancellationToken::new();
    let (left, end) = tokio::join!(read_loop(rx, &ctx, &done), write_loop(tx, &ctx, &done));
    let kind = end.unwrap_or(DisconnectKind::ClientClosed);
    ctx.metrics.disconnect(kind);
    ctx.room.disconnect(ctx.client, left).await;
}

/// Reads until the peer closes, the transport fails, or the writer finished closing. Returns
/// whether the client asked to leave for good.
async fn read_loop<R: TransportRx>(
    mut rx: R,
    ctx: &SessionContext,
    done: &CancellationToken,
) -> bool {
    let now = Instant::now();
    let limits = &ctx.limits;
    let mut messages = TokenBucket::new(limits.messages_per_sec, limits.message_burst, now);
    let mut bytes = TokenBucket::new(limits.bytes_per_sec, limits.byte_burst, now);
    let mut chat = TokenBucket::new(limits.chat_per_sec, limits.chat_burst, now);
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
                ctx.outbox.close(DisconnectReason::Timeout, "no traffic within the idle timeout");
                closing = true;
                deadline = tokio::time::Instant::now() + CLOSE_LINGER;
                continue;
            }
            inbound = rx.recv() => inbound,
        };
        if !closing {
            deadline = tokio::time::Instant::now() + limits.idle_timeout;
        }
        let reject = |reason: DisconnectReason, message: String| {
            ctx.outbox.close(reason, message);
        };
        match inbound {
            Inbound::Binary(data) => {
                if closing {
                    continue;
                }
                ctx.metrics
                    .bytes_received
                    .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                let now = Instant::now();
                if !messages.take(1.0, now) || !bytes.take(data.len() as f64, now) {
                    reject(DisconnectReason::RateLimited, "message rate limit exceeded".into());
                    closing = true;
                    deadline = tokio::time::Instant::now() + CLOSE_LINGER;
                    continue;
                }
                match codec::decode_client(&data) {
                    Err(e) => {
                        ctx.metrics
                            .decode_errors
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let reason = match e {
                            codec::CodecError::TooLarge { .. } => DisconnectReason::MessageTooLarge,
                            _ => DisconnectReason::ProtocolError,
                        };
                        reject(reason, format!("bad message: {e}"));
                        closing = true;
                        deadline = tokio::time::Instant::now() + CLOSE_LINGER;
                    }
                    Ok(ClientMessage::Input(batch)) => ctx.room.input(ctx.client, batch),
                    Ok(ClientMessage::Ping { id, client_time_us }) => {
                        let pong =
                            ServerMessage::Pong { id, client_time_us, tick: ctx.room.tick() };
                        if let Ok(b) = codec::encode_server(&pong)
                            && ctx.outbox.push_reliable(Bytes::from(b)).is_err()
                        {
                            reject(DisconnectReason::TooSlow, "not reading replies".into());
                        }
                    }
                    Ok(ClientMessage::Chat { text }) => {
                        if chat.take(1.0, Instant::now()) {
                            ctx.room.chat(ctx.client, text).await;
                        } else {
                            ctx.metrics
                                .chat_dropped
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Ok(ClientMessage::Leave) => {
                        left = true;
                        reject(DisconnectReason::Left, "goodbye".into());
                        closing = true;
                        deadline = tokio::time::Instant::now() + CLOSE_LINGER;
                    }
                }
            }
            Inbound::Text => {
                if !closing {
                    ctx.metrics.decode_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    reject(
                        DisconnectReason::ProtocolError,
                        "text messages are not part of the protocol; send binary".into(),
                    );
                    closing = true;
                    deadline = tokio::time::Instant::now() + CLOSE_LINGER;
                }
            }
            Inbound::TooLarge => {
                if !closing {
                    ctx.metrics.decode_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    reject(
                        DisconnectReason::MessageTooLarge,
                        format!("message larger than {} bytes", limits.max_message_bytes),
                    );
                    closing = true;
                    deadline = tokio::time::Instant::now() + CLOSE_LINGER;
                }
            }
            Inbound::Alive => {}
            Inbound::Closed | Inbound::Error(_) if closing => {
                // Our close is on its way. Dropping the socket now, with the peer's unread
                // bytes in it, would make the kernel answer with a reset that can destroy the
                // close frame before the peer reads it: wait for the writer and the linger.
                tokio::select! {
                    () = done.cancelled() => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
                return left;
            }
            Inbound::Closed | Inbound::Error(_) => {
                // The peer went first: stop the writer.
                done.cancel();
                return left;
            }
        }
    }
}

/// Writes the outbox, pings on the interval, and performs the close. Returns how the session
/// ended, or `None` when the reader saw the peer go first.
async fn write_loop<T: TransportTx>(
    mut tx: T,
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
                    Ok(Ok(())) => continue,
                    _ => break Some(DisconnectKind::TransportError),
                }
            }
            item = ctx.outbox.next() => item,
        };
        match item {
            OutItem::Send(bytes) => {
                let n = bytes.len() as u64;
                match tokio::time::timeout(limits.write_timeout, tx.send(bytes)).await {
                    Ok(Ok(())) => {
                        ctx.metrics.bytes_sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ => break Some(DisconnectKind::TransportError),
                }
            }
            OutItem::Abort => {
                // No close frame: stop the reader now so the socket drops at once.
                done.cancel();
                return Some(DisconnectKind::TransportError);
            }
            OutItem::Close(reason, message) => {
                let goodbye = ServerMessage::Disconnect { reason, message: message.clone() };
                if let Ok(b) = codec::encode_server(&goodbye) {
                    let _ =
                        tokio::time::timeout(limits.write_timeout, tx.send(Bytes::from(b))).await;
                }
                let _ = tokio::time::timeout(
                    limits.write_timeout,
                    tx.close(reason.close_code(), &message),
                )
                .await;
                break Some(DisconnectKind::Server(reason));
            }
        }
    };
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
