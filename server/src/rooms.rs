//! The process's rooms: matchmaking (the fullest room of the requested game with space, else a
//! new one), named rooms, resume routing, and shutdown. Rooms of several games run side by side;
//! each is opened through [`tickwire_shared::games::visit`], so nothing here names a game.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tickwire_shared::games;
use tickwire_shared::join::JoinRequest;
use tickwire_shared::room::RoomSettings;

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::room::{OpenRoom, ResumeIndex, RoomHandle, Seat};

/// What `GET /api/rooms` lists for a room.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
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
}

struct Entry {
    handle: RoomHandle,
    /// Opened by a join that named it: private, never matchmade into.
    named: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Every room of this process.
pub struct Rooms {
    config: ServerConfig,
    metrics: Arc<Metrics>,
    rooms: Mutex<BTreeMap<String, Entry>>,
    resume_index: ResumeIndex,
    next_room: AtomicU32,
}

impl Rooms {
    /// No rooms yet.
    #[must_use]
    pub fn new(config: ServerConfig, metrics: Arc<Metrics>) -> Rooms {
        Rooms {
            config,
            metrics,
            rooms: Mutex::new(BTreeMap::new()),
            resume_index: ResumeIndex::default(),
            next_room: AtomicU32::new(1),
        }
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
        }
    }

    fn open(
        &self,
        rooms: &mut BTreeMap<String, Entry>,
        id: String,
        game: &str,
        named: bool,
    ) -> anyhow::Result<RoomHandle> {
        let open = OpenRoom {
            settings: self.room_settings(id.clone()),
            metrics: self.metrics.clone(),
            resume_index: self.resume_index.clone(),
        };
        let (handle, thread) = games::visit(game, open)??;
        rooms.insert(id, Entry { handle: handle.clone(), named, thread: Some(thread) });
        Ok(handle)
    }

    /// The room a join request goes to: the room holding its resume token, else the named room
    /// (opened if new, with the requested game), else the fullest matchmade (not named) room of
    /// the requested game (the server's default when none) with space, else a new room of that
    /// game. The returned seat
    /// counts against the room's space until dropped (after the room answered the join), so
    /// joins picked at the same moment spread over rooms instead of overfilling one.
    pub fn pick(&self, req: &JoinRequest) -> anyhow::Result<Seat> {
        let mut rooms = self.lock();
        self.pick_locked(&mut rooms, req).map(|room| room.reserve())
    }

    fn pick_locked(
        &self,
        rooms: &mut BTreeMap<String, Entry>,
        req: &JoinRequest,
    ) -> anyhow::Result<RoomHandle> {
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
        if let Some(id) = &req.room {
            if let Some(entry) = rooms.get(id) {
                return Ok(entry.handle.clone());
            }
            return self.open(rooms, id.clone(), game, true);
        }
        // Named rooms are their namers' (and whoever they share the name with): never matchmade.
        let best = rooms
            .values()
            .filter(|e| !e.named && e.handle.game() == game)
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
        self.open(rooms, id, game, false)
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
            })
            .collect()
    }

    /// Asks every room to drop the connection of the player with entity `entity` (test hook).
    pub fn drop_connection(&self, entity: tickwire_shared::NetId) {
        for e in self.lock().values() {
            e.handle.drop_connection(entity);
        }
    }

    /// Tells every room to close its sessions with 1001 and stop, and waits for their threads.
    pub fn shutdown(&self) {
        let threads: Vec<std::thread::JoinHandle<()>> = {
            let mut rooms = self.lock();
            rooms
                .values_mut()
                .filter_map(|e| {
                    e.handle.shutdown();
                    e.thread.take()
                })
                .collect()
        };
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A join request for matchmaking (no room named, no resume).
    fn matchmade() -> JoinRequest {
        JoinRequest { name: "p".into(), ..JoinRequest::default() }
    }

    #[test]
    fn joins_on_their_way_in_count_against_a_rooms_space() {
        let config = ServerConfig { room_capacity: 3, ..ServerConfig::default() };
        let rooms = Rooms::new(config, Arc::new(Metrics::default()));
        let req = matchmade();
        // Seven joins picked before any room answered: 3 + 3 + 1, never 7 in one room.
        let seats: Vec<Seat> = (0..7).map(|_| rooms.pick(&req).unwrap()).collect();
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
        let rooms = Rooms::new(config, Arc::new(Metrics::default()));
        let req = matchmade();
        for (i, expected) in [(1, 1), (2, 2)] {
            let seat = rooms.pick(&req).unwrap();
            let room = seat.room().clone();
            let outbox = Arc::new(crate::outbox::Outbox::new(8));
            let ticket =
                crate::room::JoinTicket { name: "p".into(), subject: "s".into(), resume: None };
            seat.join(tickwire_shared::ClientId(i), ticket, outbox).await.unwrap();
            // The room released the seat when it counted the player: one count, not two.
            assert_eq!(room.players_and_joining(), expected);
        }
        // Full: the next join goes to a new room.
        let seat = rooms.pick(&req).unwrap();
        assert_eq!(rooms.list().len(), 2, "{:?}", rooms.list());
        drop(seat);
        rooms.shutdown();
    }

    /// Every game can be played side by side; a join asking for one never lands in a room of
    /// another.
    #[test]
    fn matchmaking_keeps_games_apart() {
        let rooms = Rooms::new(ServerConfig::default(), Arc::new(Metrics::default()));
        let mut seats = Vec::new();
        for info in games::ALL {
            let req = JoinRequest { game: Some(info.name.to_owned()), ..matchmade() };
            let seat = rooms.pick(&req).unwrap();
            assert_eq!(seat.room().game(), info.name);
            seats.push(seat);
        }
        // No game asked for: the server's default game.
        let seat = rooms.pick(&matchmade()).unwrap();
        assert_eq!(seat.room().game(), games::default_name());
        assert_eq!(rooms.list().len(), games::ALL.len(), "{:?}", rooms.list());
        drop((seat, seats));
        rooms.shutdown();
    }
}
