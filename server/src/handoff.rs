//! Rolling restarts in a cluster: an instance that is stopped (SIGTERM, with `--redis`) hands
//! each of its rooms to another instance instead of ending the match.
//!
//! 1. The instance has left the directory (nobody is sent to it any more). Each room saves
//!    itself exactly ([`tickwire_shared::room::RoomCore::save`]) and stops stepping; its
//!    players are detached and wait for their resume, as after a dropped connection.
//! 2. For each room, the least-loaded other instance with space is offered it: the save goes
//!    to `tickwire:handoff-state:{room}`, the offer to that instance's channel
//!    `tickwire:handoff:{instance}` (an instance that does not listen is passed over).
//! 3. The receiver restores the room (it runs from the saved tick on), registers the players'
//!    resume tokens, writes its answer to `tickwire:moved:{room}` and beats at once, so the
//!    directory and matchmaking show the room where it now is.
//! 4. The sender closes the room's sessions with `Moved` (1012) and the receiver's WebSocket
//!    URL; the clients resume there with their resume tokens, as the same entities.
//!
//! Every wait has a deadline: a room not saved, not taken or not answered for in time ends as
//! at a plain shutdown (1001), and the instance goes on stopping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, InstanceRecord, PREFIX};
use crate::room::RoomHandle;
use crate::state::AppState;

/// How long the rooms have to save themselves.
pub const SAVE_WAIT: Duration = Duration::from_secs(2);

/// How long the receivers have to restore the rooms and answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// How long a save and an answer stay in Redis (long past both waits).
const KEEP_MS: u64 = 60_000;

/// How often the sender looks for the saves and the answers.
const POLL: Duration = Duration::from_millis(5);

/// The channel an instance takes offers on.
#[must_use]
pub fn channel(instance: &str) -> String {
    format!("{PREFIX}handoff:{instance}")
}

fn state_key(room: &str) -> String {
    format!("{PREFIX}handoff-state:{room}")
}

fn answer_key(room: &str) -> String {
    format!("{PREFIX}moved:{room}")
}

/// An offer of a room, on the receiver's channel.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The room (its save is at `tickwire:handoff-state:{room}`).
    pub room: String,
    /// The instance handing it off.
    pub from: String,
    /// Whether it is a named (private) room.
    pub named: bool,
}

/// The receiver's answer, at `tickwire:moved:{room}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The room runs at this WebSocket URL.
    Moved {
        /// The receiver's `/ws` URL.
        url: String,
    },
    /// The receiver could not take it: why.
    Refused {
        /// Why.
        why: String,
    },
}

/// What a hand-off did, for the log and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Rooms moved to another instance.
    pub moved: usize,
    /// Rooms ended as at a shutdown (not saved, nowhere to go, refused or not answered).
    pub ended: usize,
}

/// Hands every room of this instance to the others (see the [module documentation](self));
/// the rooms that cannot be are ended as at a shutdown. Returns when every room has been told.
pub async fn hand_off(state: &AppState, cluster: &Cluster) -> Outcome {
    let rooms = state.rooms.handles();
    if rooms.is_empty() {
        return Outcome::default();
    }
    let started = Instant::now();
    for (room, _) in &rooms {
        room.hand_off();
    }
    let saves = collect_saves(&rooms).await;
    let mut outcome = Outcome::default();
    let mut candidates = match cluster.read_directory().await {
        Ok(records) => records
            .into_iter()
            .filter(|r| r.id != cluster.id() && r.rooms.len() < r.max_rooms)
            .collect::<Vec<InstanceRecord>>(),
        Err(e) => {
            tracing::warn!(error = %e, "Redis did not answer: the rooms cannot be handed off");
            Vec::new()
        }
    };
    let mut waiting: Vec<(&RoomHandle, String)> = Vec::new();
    for ((room, named), save) in rooms.iter().zip(saves) {
        let bytes = match save {
            Some(Ok(bytes)) => bytes,
            Some(Err(why)) => {
                tracing::warn!(room = room.id(), %why, "the room cannot be handed off");
                end(room, &mut outcome);
                continue;
            }
            None => {
                tracing::warn!(room = room.id(), "the room did not save itself in time");
                end(room, &mut outcome);
                continue;
            }
        };
        match offer(cluster, &mut candidates, room, *named, bytes).await {
            Some(target) => waiting.push((room, target)),
            None => end(room, &mut outcome),
        }
    }
    // The answers.
    let deadline = Instant::now() + ANSWER_WAIT;
    while !waiting.is_empty() {
        let keys: Vec<String> = waiting.iter().map(|(room, _)| answer_key(room.id())).collect();
        let mut conn = cluster.connection();
        let answers: redis::RedisResult<Vec<Option<String>>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await;
        let answers = answers.unwrap_or_else(|_| vec![None; keys.len()]);
        let mut still = Vec::new();
        for ((room, target), answer) in waiting.into_iter().zip(answers) {
            match answer.and_then(|a| serde_json::from_str::<Answer>(&a).ok()) {
                Some(Answer::Moved { url }) => {
                    tracing::info!(room = room.id(), %target, %url, "room handed off");
                    room.moved(Some(url));
                    outcome.moved += 1;
                }
                Some(Answer::Refused { why }) => {
                    tracing::warn!(room = room.id(), %target, %why, "the room was refused");
                    end(room, &mut outcome);
                }
                None => still.push((room, target)),
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            for (room, target) in waiting.drain(..) {
                tracing::warn!(room = room.id(), %target, "no answer in time for the room");
                end(room, &mut outcome);
            }
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    tracing::info!(
        moved = outcome.moved,
        ended = outcome.ended,
        ms = started.elapsed().as_millis() as u64,
        "hand-off done"
    );
    outcome
}

fn end(room: &RoomHandle, outcome: &mut Outcome) {
    room.moved(None);
    outcome.ended += 1;
}

/// Waits (at most [`SAVE_WAIT`]) for every room's save.
pub(crate) async fn collect_saves(
    rooms: &[(RoomHandle, bool)],
) -> Vec<Option<Result<Vec<u8>, String>>> {
    let mut saves: Vec<Option<Result<Vec<u8>, String>>> = vec![None; rooms.len()];
    let deadline = Instant::now() + SAVE_WAIT;
    loop {
        for ((room, _), save) in rooms.iter().zip(saves.iter_mut()) {
            if save.is_none() {
                *save = room.take_save();
            }
        }
        if saves.iter().all(Option::is_some) || Instant::now() >= deadline {
            return saves;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Offers `room` to the least-loaded candidate that listens; returns its id. A candidate
/// that does not listen is dropped; the one that takes the offer counts the room's players.
async fn offer(
    cluster: &Cluster,
    candidates: &mut Vec<InstanceRecord>,
    room: &RoomHandle,
    named: bool,
    bytes: Vec<u8>,
) -> Option<String> {
    let mut conn = cluster.connection();
    let stored: redis::RedisResult<()> =
        conn.set_options(state_key(room.id()), bytes, set_px(KEEP_MS)).await;
    if let Err(e) = stored {
        tracing::warn!(room = room.id(), error = %e, "cannot store the room's save in Redis");
        return None;
    }
    let offer = Offer { room: room.id().to_owned(), from: cluster.id().to_owned(), named };
    let payload = serde_json::to_string(&offer).unwrap_or_default();
    loop {
        let (i, target) = candidates
            .iter()
            .enumerate()
            .min_by_key(|(_, r)| (r.players, r.rooms.len(), r.id.clone()))
            .map(|(i, r)| (i, r.id.clone()))?;
        match cluster.publish(&channel(&target), &payload).await {
            Ok(listeners) if listeners > 0 => {
                let chosen = &mut candidates[i];
                chosen.players += room.players();
                chosen.rooms.push(crate::rooms::RoomInfo {
                    id: room.id().to_owned(),
                    game: room.game().to_owned(),
                    players: room.players(),
                    capacity: room.capacity(),
                    tick_rate: room.tick_rate(),
                    instance: None,
                    url: None,
                    named,
                });
                if chosen.rooms.len() >= chosen.max_rooms {
                    candidates.remove(i);
                }
                return Some(target);
            }
            _ => {
                tracing::debug!(%target, "the instance does not take hand-offs; trying another");
                candidates.remove(i);
            }
        }
    }
}

fn set_px(ms: u64) -> redis::SetOptions {
    redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ms))
}

/// Takes a room offered on this instance's channel: restores it from its save, answers, and
/// beats at once so the directory shows it here. A refusal is answered too (with why), so the
/// sender need not wait out its deadline.
pub async fn receive(state: Arc<AppState>, cluster: Arc<Cluster>, offer: Offer) {
    let started = Instant::now();
    let answer = match take(&state, &cluster, &offer).await {
        Ok(()) => Answer::Moved { url: cluster.ws_url().to_owned() },
        Err(why) => {
            tracing::warn!(room = %offer.room, from = %offer.from, %why, "a hand-off was refused");
            Answer::Refused { why }
        }
    };
    let mut conn = cluster.connection();
    let json = serde_json::to_string(&answer).unwrap_or_default();
    let answered: redis::RedisResult<()> =
        conn.set_options(answer_key(&offer.room), json, set_px(KEEP_MS)).await;
    if let Err(e) = answered {
        tracing::warn!(room = %offer.room, error = %e, "cannot answer a hand-off");
    }
    if matches!(answer, Answer::Moved { .. }) {
        tracing::info!(
            room = %offer.room,
            from = %offer.from,
            ms = started.elapsed().as_millis() as u64,
            "room taken over"
        );
        cluster.beat_now();
    }
}

async fn take(state: &Arc<AppState>, cluster: &Cluster, offer: &Offer) -> Result<(), String> {
    if state.shutdown.is_cancelled() {
        return Err("this instance is shutting down too".to_owned());
    }
    let mut conn = cluster.connection();
    let key = state_key(&offer.room);
    let bytes: Option<Vec<u8>> = conn.get(&key).await.map_err(|e| e.to_string())?;
    let bytes = bytes.ok_or_else(|| "the room's save is not in Redis".to_owned())?;
    if bytes.len() > tickwire_shared::persist::MAX_SAVE_BYTES {
        return Err(format!("a save of {} bytes is over the limit", bytes.len()));
    }
    let rooms = state.clone();
    let named = offer.named;
    // Building the world is CPU work: off the runtime's threads.
    let restored = tokio::task::spawn_blocking(move || rooms.rooms.restore(&bytes, named))
        .await
        .map_err(|e| e.to_string())?;
    restored.map_err(|e| format!("{e:#}"))?;
    let _: redis::RedisResult<()> = conn.del(&key).await;
    Ok(())
}
