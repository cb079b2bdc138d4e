//! A room saved whole and restored elsewhere ([`RoomCore::save`], [`RoomCore::restore`]): the
//! world exactly ([`crate::persist`]), the players with their resume tokens, and the room's
//! counters. What a rolling restart hands from one instance to the next.

use serde::{Deserialize, Serialize};

use super::{Player, RoomCore, RoomSettings};
use crate::game::Game;
use crate::ids::NetId;
use crate::persist::{self, PersistError, Persistence, WorldSave};

/// The save format this build writes and reads.
pub const SAVE_FORMAT: u32 = 1;

/// A saved room (what [`RoomCore::save`] encodes).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RoomSave {
    /// [`SAVE_FORMAT`].
    pub format: u32,
    /// The game ([`Game::NAME`]).
    pub game: String,
    /// The room's settings.
    pub settings: RoomSettings,
    /// Steps run.
    pub steps: u64,
    /// The step since which the room has had no players (0: it has some).
    pub empty_since: u64,
    /// The world.
    pub world: WorldSave,
    /// The players, every one detached.
    pub players: Vec<SavedPlayer>,
}

/// A player of a saved room.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SavedPlayer {
    /// The resume token that brings the player back.
    pub token: String,
    /// Who it is (the JWT subject): only they may resume it.
    pub subject: String,
    /// Its name in the room.
    pub name: String,
    /// Its entity's id.
    pub net_id: NetId,
    /// Its entity's place in [`WorldSave::entities`].
    pub entity: u32,
    /// Steps it has been detached for (its resume grace goes on where it was).
    pub detached_for: u64,
}

impl RoomSave {
    /// Reads a save without restoring it (the game and the room it is of).
    ///
    /// # Errors
    ///
    /// When the bytes are not a save of this format.
    pub fn decode(bytes: &[u8]) -> Result<RoomSave, PersistError> {
        let save: RoomSave = persist::decode(bytes)?;
        if save.format != SAVE_FORMAT {
            return Err(PersistError::Format(save.format));
        }
        Ok(save)
    }
}

impl<G: Game> RoomCore<G> {
    /// Saves the room for [`RoomCore::restore`], after detaching every client as if its
    /// connection had dropped: the players wait for their resume (in the restored room, or in
    /// this one), and the driver must end the sessions. The room can go on stepping, but a
    /// restored copy is only the same match while this one does not.
    ///
    /// # Errors
    ///
    /// When the world holds a component the game does not persist
    /// ([`PersistError::NotPersisted`], naming it) or a value does not encode.
    pub fn save(&mut self) -> Result<Vec<u8>, PersistError> {
        let clients: Vec<_> = self.clients.keys().copied().collect();
        for client in clients {
            self.disconnect(client, false);
        }
        let mut order = Vec::new();
        let world = self.world.resource_scope(
            |world, p: bevy_ecs::change_detection::Mut<'_, Persistence>| p.save(world, &mut order),
        )?;
        let players = self
            .players
            .iter()
            .map(|(token, p)| {
                let entity = order.iter().position(|e| *e == p.entity).ok_or_else(|| {
                    PersistError::Inconsistent(format!("player {} has no entity", p.net_id.0))
                })?;
                Ok(SavedPlayer {
                    token: token.clone(),
                    subject: p.subject.clone(),
                    name: p.name.clone(),
                    net_id: p.net_id,
                    entity: entity as u32,
                    detached_for: p.detached_at.map_or(0, |at| self.steps - at),
                })
            })
            .collect::<Result<Vec<_>, PersistError>>()?;
        persist::encode(&RoomSave {
            format: SAVE_FORMAT,
            game: G::NAME.to_owned(),
            settings: self.settings.clone(),
            steps: self.steps,
            empty_since: self.empty_since,
            world,
            players,
        })
    }

    /// The room [`RoomCore::save`] saved, every player detached and waiting for its resume
    /// token within what was left of its grace period. Its clients' first snapshots are full
    /// ones (the saving room's record of what they acknowledged stays behind).
    ///
    /// # Errors
    ///
    /// When the bytes are not a save, or one of another game, format or persisted schema.
    pub fn restore(bytes: &[u8]) -> Result<RoomCore<G>, PersistError> {
        RoomCore::from_save(RoomSave::decode(bytes)?)
    }

    /// [`RoomCore::restore`] from a decoded save.
    ///
    /// # Errors
    ///
    /// See [`RoomCore::restore`].
    pub fn from_save(save: RoomSave) -> Result<RoomCore<G>, PersistError> {
        if save.game != G::NAME {
            return Err(PersistError::Game { saved: save.game, here: G::NAME.to_owned() });
        }
        let mut room = RoomCore::<G>::new(save.settings);
        let entities = room.world.resource_scope(
            |world, p: bevy_ecs::change_detection::Mut<'_, Persistence>| p.load(world, &save.world),
        )?;
        room.world.clear_trackers();
        room.steps = save.steps;
        room.empty_since = save.empty_since;
        for p in save.players {
            let entity = *entities.get(p.entity as usize).ok_or_else(|| {
                PersistError::Inconsistent(format!("player {} has no entity", p.net_id.0))
            })?;
            let player = Player {
                entity,
                net_id: p.net_id,
                name: p.name,
                subject: p.subject,
                client: None,
                detached_at: Some(save.steps.saturating_sub(p.detached_for)),
                parked: None,
            };
            room.players.insert(p.token, player);
        }
        Ok(room)
    }
}

/// The check every game runs on its own rules (its `a_saved_match_goes_on_exactly` test): a
/// busy match (NPCs, three players with inputs from `make`, lag compensation in use) is saved
/// after a while and restored; the players resume in both rooms, which then take the same
/// inputs. Both must stay the same match tick for tick (the replicated state's hash each tick,
/// and at the end every component and resource, server-only ones included).
///
/// # Panics
///
/// When the rooms part, naming the tick.
#[cfg(test)]
pub(crate) fn check_a_saved_match_goes_on_exactly<G: Game>(
    mut make: impl FnMut(&mut crate::rng::Rng) -> G::Input,
) {
    use crate::ids::ClientId;
    use crate::protocol::{InputBatch, ViewTime};
    use crate::tick::Tick;

    let settings = RoomSettings {
        id: "saved".into(),
        tick_rate: 60,
        ticks_per_snapshot: 2,
        capacity: 8,
        interest_radius: 400.0,
        resume_grace_ticks: 600,
        idle_close_ticks: 6_000,
        npcs: 6,
        seed: 42,
        max_rewind_ms: 200,
        client_kbps: 0,
    };
    let mut rng = crate::rng::Rng::from_state(0x5eed);
    let feed = |room: &mut RoomCore<G>, clients: &[ClientId], seq: u32, frames: &[G::Input]| {
        let now = room.tick();
        for (client, frame) in clients.iter().zip(frames) {
            let batch = InputBatch {
                ack: None,
                first_seq: seq,
                frames: crate::codec::encode_inputs(std::slice::from_ref(frame)).unwrap(),
                view: Some(ViewTime { tick: Tick(now.0.saturating_sub(5)), frac: 128 }),
            };
            room.input(*client, &batch, 0);
        }
    };
    let drain = |room: &mut RoomCore<G>| while room.poll_output().is_some() {};
    let mut a = RoomCore::<G>::new(settings);
    let mut tokens = Vec::new();
    for i in 0..3u32 {
        let token = format!("token-{i}");
        let info =
            a.join(ClientId(i + 1), &format!("p{i}"), &format!("s{i}"), None, || token.clone());
        tokens.push(info.unwrap().token);
    }
    let first: Vec<ClientId> = (1..=3).map(ClientId).collect();
    for seq in 0..400u32 {
        let frames: Vec<G::Input> = (0..3).map(|_| make(&mut rng)).collect();
        feed(&mut a, &first, seq, &frames);
        a.step();
        drain(&mut a);
    }
    let bytes = a.save().unwrap();
    let mut b = RoomCore::<G>::restore(&bytes).unwrap();
    assert_eq!((b.tick(), b.player_count()), (a.tick(), 3));
    assert_eq!(b.state_hash(), a.state_hash(), "restored as saved");
    // The players come back (new connections) to both rooms, with their tokens.
    let again: Vec<ClientId> = (11..=13).map(ClientId).collect();
    for (i, (client, token)) in again.iter().zip(&tokens).enumerate() {
        for room in [&mut a, &mut b] {
            let subject = format!("s{i}");
            let info = room.join(*client, "x", &subject, Some(token), || unreachable!());
            assert!(info.unwrap().resumed, "player {i} resumed");
        }
    }
    for seq in 0..600u32 {
        let frames: Vec<G::Input> = (0..3).map(|_| make(&mut rng)).collect();
        for room in [&mut a, &mut b] {
            feed(room, &again, seq, &frames);
            room.step();
            drain(room);
        }
        assert_eq!(
            a.state_hash(),
            b.state_hash(),
            "{}: the rooms parted at {:?}",
            G::NAME,
            a.tick()
        );
    }
    assert_eq!(a.standings(), b.standings());
    // Every component and resource, server-only ones included, whatever order the worlds
    // keep their entities in.
    let canonical = |room: &mut RoomCore<G>| {
        let mut save = RoomSave::decode(&room.save().unwrap()).unwrap();
        save.world.entities.sort();
        save.players.iter_mut().for_each(|p| p.entity = 0);
        save
    };
    assert_eq!(canonical(&mut a), canonical(&mut b), "{}: the worlds differ", G::NAME);
}
