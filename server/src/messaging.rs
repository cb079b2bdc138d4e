//! What spans rooms: the lobby (a chat line that starts with `/lobby ` goes to every room, on
//! every instance of a cluster), operators' broadcasts (`POST /api/admin/broadcast`) and
//! player presence (`GET /api/players/{id}`).
//!
//! On its own a process delivers lobby lines and broadcasts to its own rooms. In a cluster
//! they travel over Redis pub/sub (`tickwire:lobby`, `tickwire:broadcast`): every instance,
//! the sender included, subscribes and hands each line to its rooms, so a line reaches every
//! player once. Presence is this process's sessions by subject (their rooms); in a cluster each
//! heartbeat writes them to Redis (`tickwire:player:{id}`, with the presence TTL). Redis is
//! never waited on by a session: lobby lines go through a bounded queue to one publisher task.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::state::AppState;

/// A chat line with this prefix goes to the lobby instead of the room.
pub const LOBBY_PREFIX: &str = "/lobby ";

/// Lobby lines waiting for the publisher, at most; past it a line is dropped (and counted as
/// dropped chat), as lines over a player's chat rate are.
pub const LOBBY_QUEUE: usize = 256;

/// The name an operator's broadcast is shown under.
pub const BROADCAST_NAME: &str = "server";

/// A message on the cluster's channels larger than this is ignored (a lobby line is a name and
/// at most 200 bytes of text).
const MAX_CHANNEL_MESSAGE_BYTES: usize = 4096;

/// The longest pause between two attempts to subscribe again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The Redis channels.
pub const LOBBY_CHANNEL: &str = "tickwire:lobby";
/// Operators' broadcasts.
pub const BROADCAST_CHANNEL: &str = "tickwire:broadcast";

/// A line for every room: who it is from and what it says.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Shown as the sender.
    pub name: String,
    /// The text.
    pub text: String,
}

/// Where a player is, as presence reports it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Whereabouts {
    /// The room.
    pub room: String,
    /// The instance (in a cluster).
    pub instance: Option<String>,
    /// The WebSocket URL of that instance (in a cluster).
    pub url: Option<String>,
}

/// The process's side of the lobby and of presence.
pub struct Messaging {
    lobby: mpsc::Sender<Line>,
    lobby_rx: Mutex<Option<mpsc::Receiver<Line>>>,
    /// Subjects with a session here: their room and how many sessions they have.
    present: Mutex<HashMap<String, (String, u32)>>,
}

impl Default for Messaging {
    fn default() -> Self {
        let (lobby, rx) = mpsc::channel(LOBBY_QUEUE);
        Messaging { lobby, lobby_rx: Mutex::new(Some(rx)), present: Mutex::new(HashMap::new()) }
    }
}

/// A subject's session counted in presence; uncounted when dropped (the session ended).
pub struct Presence {
    state: Arc<AppState>,
    subject: Box<str>,
}

impl Drop for Presence {
    fn drop(&mut self) {
        let mut present =
            self.state.messaging.present.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, n)) = present.get_mut(&*self.subject) {
            *n -= 1;
            if *n == 0 {
                present.remove(&*self.subject);
            }
        }
    }
}

impl Messaging {
    /// Queues a lobby line from a player; false when the queue is full (the line is dropped).
    pub fn lobby(&self, name: &str, text: &str) -> bool {
        self.lobby.try_send(Line { name: name.to_owned(), text: text.to_owned() }).is_ok()
    }

    /// Counts `subject`'s session in `room` until the returned guard is dropped.
    pub fn present(state: &Arc<AppState>, subject: &str, room: &str) -> Presence {
        let mut present =
            state.messaging.present.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = present.entry(subject.to_owned()).or_insert_with(|| (room.to_owned(), 0));
        // The newest session's room: a player who moved is where it plays now.
        room.clone_into(&mut entry.0);
        entry.1 += 1;
        Presence { state: state.clone(), subject: subject.into() }
    }

    /// The room of `subject`'s session here, if it has one.
    #[must_use]
    pub fn room_of(&self, subject: &str) -> Option<String> {
        let present = self.present.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        present.get(subject).map(|(room, _)| room.clone())
    }

    /// Every subject with a session here, and its room.
    #[must_use]
    pub fn everyone(&self) -> Vec<(String, String)> {
        let present = self.present.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        present.iter().map(|(s, (r, _))| (s.clone(), r.clone())).collect()
    }
}

/// How a lobby line is shown in the rooms.
fn lobby_name(name: &str) -> String {
    format!("{name} (lobby)")
}

/// Delivers a line to this process's rooms.
fn deliver(state: &AppState, channel: &str, line: &Line) {
    let name = if channel == LOBBY_CHANNEL { lobby_name(&line.name) } else { line.name.clone() };
    state.rooms.announce(&name, &line.text);
}

/// Sends an operator's broadcast to every room: through Redis in a cluster (every instance
/// delivers it), else (or when Redis does not answer) to this process's rooms. Returns the
/// number of instances that received it (1 on its own, or when Redis was away).
pub async fn broadcast(state: &AppState, text: &str) -> usize {
    let line = Line { name: BROADCAST_NAME.to_owned(), text: text.to_owned() };
    if let Some(cluster) = &state.cluster {
        let payload = serde_json::to_string(&line).unwrap_or_default();
        match cluster.publish(BROADCAST_CHANNEL, &payload).await {
            Ok(instances) => return instances,
            Err(e) => {
                tracing::warn!(error = %e, "broadcast to this instance only: Redis did not answer")
            }
        }
    }
    deliver(state, BROADCAST_CHANNEL, &line);
    1
}

/// Publishes the lobby's lines (in a cluster; else delivers them here) until shutdown.
pub async fn publisher(state: Arc<AppState>) {
    let rx =
        state.messaging.lobby_rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    let Some(mut rx) = rx else { return };
    loop {
        let line = tokio::select! {
            () = state.shutdown.cancelled() => return,
            line = rx.recv() => match line { Some(l) => l, None => return },
        };
        match &state.cluster {
            Some(cluster) => {
                let payload = serde_json::to_string(&line).unwrap_or_default();
                if let Err(e) = cluster.publish(LOBBY_CHANNEL, &payload).await {
                    tracing::debug!(error = %e, "lobby line delivered here only: Redis did not answer");
                    deliver(&state, LOBBY_CHANNEL, &line);
                }
            }
            None => deliver(&state, LOBBY_CHANNEL, &line),
        }
    }
}

/// In a cluster: receives the lobby's and the operators' lines from Redis and delivers them
/// to this instance's rooms, subscribing again (with backoff) whenever the connection breaks.
pub async fn subscriber(state: Arc<AppState>) {
    let Some(cluster) = state.cluster.clone() else { return };
    let mut backoff = Duration::from_millis(100);
    loop {
        let subscribed = async {
            let mut pubsub = cluster.pubsub().await?;
            let handoffs = crate::handoff::channel(cluster.id());
            pubsub.subscribe(&[LOBBY_CHANNEL, BROADCAST_CHANNEL, handoffs.as_str()]).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = state.shutdown.cancelled() => return,
            p = subscribed => p,
        };
        match pubsub {
            Ok(mut pubsub) => {
                backoff = Duration::from_millis(100);
                state.metrics.cluster_subscribed.set(1);
                let mut messages = pubsub.on_message();
                loop {
                    let message = tokio::select! {
                        () = state.shutdown.cancelled() => return,
                        m = messages.next() => m,
                    };
                    let Some(message) = message else { break };
                    let channel = message.get_channel_name().to_owned();
                    let payload: Vec<u8> = message.get_payload().unwrap_or_default();
                    if payload.len() > MAX_CHANNEL_MESSAGE_BYTES {
                        continue;
                    }
                    if channel == crate::handoff::channel(cluster.id()) {
                        match serde_json::from_slice::<crate::handoff::Offer>(&payload) {
                            Ok(offer) => {
                                let receive =
                                    crate::handoff::receive(state.clone(), cluster.clone(), offer);
                                tokio::spawn(receive);
                            }
                            Err(_) => tracing::debug!("an unreadable hand-off offer is skipped"),
                        }
                        continue;
                    }
                    match serde_json::from_slice::<Line>(&payload) {
                        Ok(line) => deliver(&state, &channel, &line),
                        Err(_) => {
                            tracing::debug!(%channel, "an unreadable line on a cluster channel is skipped")
                        }
                    }
                }
                state.metrics.cluster_subscribed.set(0);
                tracing::debug!("the cluster's channels closed; subscribing again");
            }
            Err(e) => {
                state.metrics.redis_errors.fetch_add(1, Relaxed);
                tracing::debug!(error = %e, "cannot subscribe to the cluster's channels; retrying");
            }
        }
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
