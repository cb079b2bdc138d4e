//! The process's rooms: matchmaking (the fullest room of the requested game with space, else a
//! new one), named rooms, resume routing, the limits on how many rooms are open (in all, and
//! named rooms per address), and shutdown. Every room runs on the one simulation pool. Rooms of several games run side by side;
//! each is opened through [`tickwire_shared::games::visit`], so nothing here names a game.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tickwire_shared::games::{self, UnknownGame};
use tickwire_shared::join::JoinRequest;
use tickwire_shared::room::{RoomSave, RoomSettings};

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::room::{OpenRoom, RestoreRoom, ResumeIndex, RoomHandle, Seat};
use crate::sim_pool::SimPool;

/// How long shutdown waits for the rooms to close their sessions and stop.
const ROOMS_SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Why no room could be found or opened for a join.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PickError {
    /// The server has `--max-rooms` rooms open and none of them can take the join.
    #[error("the server has its limit of {0} rooms open; try again later")]
    TooManyRooms(usize),
    /// The address has `--max-rooms-per-ip` named rooms open already.
    #[error("{0} rooms opened from your address are still open; try again when one closes")]
    TooManyFromAddress(usize),
    /// The join asked for a game this server does not have.
    #[error(transparent)]
    UnknownGame(#[from] UnknownGame),
}

/// What `GET /api/rooms` lists for a room.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// Room id.
    pub id: String,
    /// The game it plays.
    pub game: String,
    /// Human players.
    pub players: usize,
    /// Capacity.
    pub capacity: usize,
    /// Ticks per second.
    pub tick_rate: u16,
    /// In a cluster (`--redis`): the instance that holds the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// In a cluster: the WebSocket URL of the instance that holds the room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Opened by a join that named it (private: never matchmade into).
    #[serde(skip)]
    pub named: bool,
}

struct Entry {
    handle: RoomHandle,
    /// Opened by a join that named it (private, never matchmade into): the address it came
    /// from, whose named rooms are limited.
    named_by: Option<IpAddr>,
}

/// Every room of this process.
pub struct Rooms {
    config: ServerConfig,
    metrics: Arc<Metrics>,
    rooms: Mutex<BTreeMap<String, Entry>>,
    resume_index: ResumeIndex,
    next_room: AtomicU32,
    pool: SimPool,
}

impl Rooms {
    /// No rooms yet; the simulation threads are started (`config.sim_threads`, or one per
    /// core).
    ///
    /// # Errors
    ///
    /// When the threads cannot be started.
    pub fn new(config: ServerConfig, metrics: Arc<Metrics>) -> anyhow::Result<Rooms> {
        let threads = match config.sim_threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        };
        let pool = SimPool::new(threads)
            .map_err(|e| anyhow::anyhow!("cannot start {threads} simulation threads: {e}"))?;
        tracing::info!(threads, "simulation pool started");
        Ok(Rooms {
            config,
            metrics,
            rooms: Mutex::new(BTreeMap::new()),
            resume_index: ResumeIndex::default(),
            next_room: AtomicU32::new(1),
            pool,
        })
    }

    /// The number of simulation threads.
    #[must_use]
    pub fn sim_threads(&self) -> usize {
        self.pool.threads()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn room_settings(&self, id: String) -> RoomSettings {
        let c = &self.config;
        let tick_rate = u64::from(c.tick_rate);
        RoomSettings {
            id,
            tick_rate: c.tick_rate,
            ticks_per_snapshot: c.ticks_per_snapshot(),
            capacity: c.room_capacity,
            interest_radius: c.interest_radius,
            resume_grace_ticks: c.resume_grace.as_secs() * tick_rate
                + u64::from(c.resume_grace.subsec_millis()) * tick_rate / 1000,
            idle_close_ticks: c.room_idle_close.as_secs().max(1) * tick_rate,
            npcs: c.npc_count,
            seed: c.seed,
            max_rewind_ms: c.max_rewind_ms,
            client_kbps: c.client_kbps,
        }
    }

    /// Opens a room if the limits allow: `--max-rooms` in all, `--max-rooms-per-ip` named
    /// rooms per address (`named_by`).
    fn open(
        &self,
        rooms: &mut BTreeMap<String, Entry>,
        id: String,
        game: &str,
        named_by: Option<IpAddr>,
    ) -> Result<RoomHandle, PickError> {
        if rooms.len() >= self.config.max_rooms {
            self.metrics.rooms_refused.fetch_add(1, Ordering::Relaxed);
            return Err(PickError::TooManyRooms(self.config.max_rooms));
        }
        if let Some(ip) = named_by {
            let from_ip = rooms.values().filter(|e| e.named_by == Some(ip)).count();
            if from_ip >= self.config.max_rooms_per_ip {
                self.metrics.rooms_refused.fetch_add(1, Ordering::Relaxed);
                return Err(PickError::TooManyFromAddress(self.config.max_rooms_per_ip));
            }
        }
        let open = OpenRoom {
            settings: self.room_settings(id.clone()),
            metrics: self.metrics.clone(),
            resume_index: self.resume_index.clone(),
            pool: &self.pool,
            dev: self.config.dev_state.is_some(),
            record: self.config.record.clone(),
        };
        let handle = games::visit(game, open)?;
        rooms.insert(id, Entry { handle: handle.clone(), named_by });
        Ok(handle)
    }

    /// The room a join request goes to: the room holding its resume token, else the named room
    /// (opened if new, with the requested game), else the fullest matchmade (not named) room of
    /// the requested game (the server's default when none) with space, else a new room of that
    /// game. The returned seat
    /// counts against the room's space until dropped (after the room answered the join), so
    /// joins picked at the same moment spread over rooms instead of overfilling one. `from` is
    /// the joining client's address: the named rooms it opens are limited.
    ///
    /// # Errors
    ///
    /// A room limit is reached, or the game is unknown.
    pub fn pick(&self, req: &JoinRequest, from: IpAddr) -> Result<Seat, PickError> {
        let mut rooms = self.lock();
        self.pick_locked(&mut rooms, req, from).map(|room| room.reserve())
    }

    fn pick_locked(
        &self,
        rooms: &mut BTreeMap<String, Entry>,
        req: &JoinRequest,
        from: IpAddr,
    ) -> Result<RoomHandle, PickError> {
        rooms.retain(|_, e| !e.handle.is_closed());
        if let Some(token) = &req.resume {
            let room_id = self
                .resume_index
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(token)
                .cloned();
            if let Some(entry) = room_id.and_then(|id| rooms.get(&id)) {
                return Ok(entry.handle.clone());
            }
        }
        let game = req.game.as_deref().unwrap_or(&self.config.game);
        // A cluster's matchmaker reserved a seat in this room (the transport checked the seat):
        // a matchmade room, opened here if it is new.
        if req.seat.is_some()
            && let Some(id) = &req.room
        {
            if let Some(entry) = rooms.get(id) {
                return Ok(entry.handle.clone());
            }
            return self.open(rooms, id.clone(), game, None);
        }
        if let Some(id) = &req.room {
            if let Some(entry) = rooms.get(id) {
                return Ok(entry.handle.clone());
            }
            return self.open(rooms, id.clone(), game, Some(from));
        }
        // Named rooms are their namers' (and whoever they share the name with): never matchmade.
        let best = rooms
            .values()
            .filter(|e| e.named_by.is_none() && e.handle.game() == game)
            .filter(|e| e.handle.players_and_joining() < e.handle.capacity())
            .max_by_key(|e| e.handle.players_and_joining())
            .map(|e| e.handle.clone());
        if let Some(handle) = best {
            return Ok(handle);
        }
        let id = loop {
            let id = format!("room-{}", self.next_room.fetch_add(1, Ordering::Relaxed));
            if !rooms.contains_key(&id) {
                break id;
            }
        };
        self.open(rooms, id, game, None)
    }

    /// The open rooms.
    #[must_use]
    pub fn list(&self) -> Vec<RoomInfo> {
        self.lock()
            .values()
            .filter(|e| !e.handle.is_closed())
            .map(|e| RoomInfo {
                id: e.handle.id().to_owned(),
                game: e.handle.game().to_owned(),
                players: e.handle.players(),
                capacity: e.handle.capacity(),
                tick_rate: e.handle.tick_rate(),
                instance: None,
                url: None,
                named: e.named_by.is_some(),
            })
            .collect()
    }

    /// What the live inspector shows of every open room.
    #[must_use]
    pub fn inspect(&self) -> Vec<std::sync::Arc<crate::room::RoomInspection>> {
        self.lock()
            .values()
            .filter(|e| !e.handle.is_closed())
            .filter_map(|e| e.handle.inspection())
            .collect()
    }

    /// Every open room's handle, with whether it is named (a hand-off keeps it private).
    #[must_use]
    pub fn handles(&self) -> Vec<(RoomHandle, bool)> {
        self.lock()
            .values()
            .filter(|e| !e.handle.is_closed())
            .map(|e| (e.handle.clone(), e.named_by.is_some()))
            .collect()
    }

    /// Restores a room another instance saved (a rolling restart's hand-off): it runs here
    /// from the saved tick, its players waiting for their resume tokens. A `named` room stays
    /// private (never matchmade into; it counts against no address's limit here).
    ///
    /// # Errors
    ///
    /// When the save does not decode or restore, names an unknown game, or this process has
    /// `--max-rooms` rooms or a room of that id open.
    pub fn restore(&self, bytes: &[u8], named: bool) -> anyhow::Result<RoomHandle> {
        let mut save = RoomSave::decode(bytes)?;
        // The budget is this instance's (saves do not carry it).
        save.settings.client_kbps = self.config.client_kbps;
        let mut rooms = self.lock();
        rooms.retain(|_, e| !e.handle.is_closed());
        let id = save.settings.id.clone();
        if rooms.contains_key(&id) {
            anyhow::bail!("a room {id:?} is open here already");
        }
        if rooms.len() >= self.config.max_rooms {
            self.metrics.rooms_refused.fetch_add(1, Ordering::Relaxed);
            return Err(PickError::TooManyRooms(self.config.max_rooms).into());
        }
        let game = save.game.clone();
        let restore = RestoreRoom {
            save,
            metrics: self.metrics.clone(),
            resume_index: self.resume_index.clone(),
            pool: &self.pool,
            dev: self.config.dev_state.is_some(),
            record: self.config.record.clone(),
        };
        let handle = games::visit(&game, restore)??;
        // A named room came from somebody's address on the other instance: it stays private.
        let named_by = named.then_some(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
        rooms.insert(id, Entry { handle: handle.clone(), named_by });
        Ok(handle)
    }

    /// Sends a line from outside the rooms (an operator's broadcast, the lobby) to every
    /// room's clients; returns how many rooms took it (a room with a full inbox drops it).
    pub fn announce(&self, name: &str, text: &str) -> usize {
        self.lock().values().filter(|e| e.handle.try_announce(name, text)).count()
    }

    /// Asks every room to drop the connection of the player with entity `entity` (test hook).
    pub fn drop_connection(&self, entity: tickwire_shared::NetId) {
        for e in self.lock().values() {
            e.handle.drop_connection(entity);
        }
    }

    /// Tells every room to close its sessions with 1001 and stop, waits (a little) for them,
    /// and stops the simulation threads.
    pub fn shutdown(&self) {
        for e in self.lock().values() {
            e.handle.shutdown();
        }
        if !self.pool.wait_finished(ROOMS_SHUTDOWN_WAIT) {
            tracing::warn!(rooms = self.pool.tasks(), "some rooms did not stop in time");
        }
        self.pool.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A join request for matchmaking (no room named, no resume).
    fn matchmade() -> JoinRequest {
        JoinRequest { name: "p".into(), ..JoinRequest::default() }
    }

    #[test]
    fn joins_on_their_way_in_count_against_a_rooms_space() {
        let config = ServerConfig { room_capacity: 3, ..ServerConfig::default() };
        let rooms = Rooms::new(config, Arc::new(Metrics::default())).unwrap();
        let req = matchmade();
        // Seven joins picked before any room answered: 3 + 3 + 1, never 7 in one room.
        let seats: Vec<Seat> = (0..7).map(|_| rooms.pick(&req, LOCAL).unwrap()).collect();
        let mut per_room = BTreeMap::<String, usize>::new();
        for seat in &seats {
            *per_room.entry(seat.room().id().to_owned()).or_default() += 1;
        }
        let mut counts: Vec<usize> = per_room.values().copied().collect();
        counts.sort_unstable();
        assert_eq!(counts, vec![1, 3, 3], "{per_room:?}");
        // Dropped seats free their places.
        let first = seats[0].room().clone();
        drop(seats);
        assert_eq!(first.players_and_joining(), 0);
        rooms.shutdown();
    }

    #[tokio::test]
    async fn a_seated_join_is_counted_once() {
        let config = ServerConfig { room_capacity: 2, ..ServerConfig::default() };
        let rooms = Rooms::new(config, Arc::new(Metrics::default())).unwrap();
        let req = matchmade();
        for (i, expected) in [(1, 1), (2, 2)] {
            let seat = rooms.pick(&req, LOCAL).unwrap();
            let room = seat.room().clone();
            let outbox = Arc::new(crate::outbox::Outbox::new(8));
            let ticket =
                crate::room::JoinTicket { name: "p".into(), subject: "s".into(), resume: None };
            seat.join(tickwire_shared::ClientId(i), ticket, outbox).await.unwrap();
            // The room released the seat when it counted the player: one count, not two.
            assert_eq!(room.players_and_joining(), expected);
        }
        // Full: the next join goes to a new room.
        let seat = rooms.pick(&req, LOCAL).unwrap();
        assert_eq!(rooms.list().len(), 2, "{:?}", rooms.list());
        drop(seat);
        rooms.shutdown();
    }

    /// Every game can be played side by side; a join asking for one never lands in a room of
    /// another.
    #[test]
    fn matchmaking_keeps_games_apart() {
        let rooms = Rooms::new(ServerConfig::default(), Arc::new(Metrics::default())).unwrap();
        let mut seats = Vec::new();
        for info in games::ALL {
            let req = JoinRequest { game: Some(info.name.to_owned()), ..matchmade() };
            let seat = rooms.pick(&req, LOCAL).unwrap();
            assert_eq!(seat.room().game(), info.name);
            seats.push(seat);
        }
        // No game asked for: the server's default game.
        let seat = rooms.pick(&matchmade(), LOCAL).unwrap();
        assert_eq!(seat.room().game(), games::default_name());
        assert_eq!(rooms.list().len(), games::ALL.len(), "{:?}", rooms.list());
        drop((seat, seats));
        rooms.shutdown();
    }
}
