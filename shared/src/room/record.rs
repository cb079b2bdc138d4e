//! A room's recording ([`crate::replay`]): started and taken by the driver, written by the
//! room's own hooks.

use bevy_ecs::prelude::*;

use super::RoomCore;
use crate::game::Game;
use crate::persist::{PersistError, Persistence};
use crate::replay::{self, Header, RECORDING_FORMAT, Recorder};

impl<G: Game> RoomCore<G> {
    /// Starts recording the match from now: a checkpoint of the world as it is, then every
    /// change from outside the schedule, a hash after every tick, a checkpoint every
    /// `checkpoint_every` ticks. `started_unix_ms` is the driver's clock (the core reads none).
    /// The driver takes the bytes with [`RoomCore::take_recording`] and appends them to a file.
    ///
    /// # Errors
    ///
    /// When the world does not save ([`PersistError::NotPersisted`] names an unlisted
    /// component).
    pub fn start_recording(
        &mut self,
        checkpoint_every: u64,
        started_unix_ms: u64,
    ) -> Result<(), PersistError> {
        let header = Header {
            format: RECORDING_FORMAT,
            game: G::NAME.to_owned(),
            settings: self.settings.clone(),
            components: self
                .registry
                .layout()
                .map(|(idx, _, _)| self.registry.name(idx).to_owned())
                .collect(),
            checkpoint_every,
            started_unix_ms,
        };
        let mut recorder = Recorder::new(&header)?;
        let tick = self.tick();
        recorder.checkpoint(tick, self.save_world()?);
        self.recorder = Some(recorder);
        Ok(())
    }

    /// Whether the room records.
    #[must_use]
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// The recording's bytes made since the last call (the first call's begin the file).
    /// Empty when the room does not record.
    pub fn take_recording(&mut self) -> Vec<u8> {
        self.recorder.as_mut().map(Recorder::take).unwrap_or_default()
    }

    /// Why the recording stopped early (a driver that did not take its bytes, a value that
    /// would not encode), if it did: the bytes taken so far still replay up to there.
    #[must_use]
    pub fn recording_failed(&self) -> Option<&str> {
        self.recorder.as_ref().and_then(|r| r.failed.as_deref())
    }

    /// Ends the recording with `reason` and returns its last bytes.
    pub fn stop_recording(&mut self, reason: &str) -> Vec<u8> {
        let Some(mut recorder) = self.recorder.take() else { return Vec::new() };
        recorder.push(replay::Entry::End { reason: reason.to_owned() });
        recorder.take()
    }

    fn save_world(&mut self) -> Result<crate::persist::WorldSave, PersistError> {
        self.world.resource_scope(|world, p: Mut<'_, Persistence>| p.save(world, &mut Vec::new()))
    }

    /// After a step: its fingerprint, and a checkpoint when one is due.
    pub(super) fn record_step(&mut self) {
        // The state the snapshots of this tick were made from, when clients were due: the
        // same capture, not a second one.
        let tick = self.tick();
        let (hash, sketches) = match self.replicator.newest() {
            Some((at, state)) if at == tick => replay::fingerprint(&self.registry, state),
            _ => {
                let state = self.registry.capture(&mut self.world);
                replay::fingerprint(&self.registry, &state)
            }
        };
        let Some(recorder) = self.recorder.as_mut() else { return };
        recorder.end_step(hash, sketches);
        if recorder.checkpoint_due() {
            match self.save_world() {
                Ok(world) => {
                    if let Some(r) = self.recorder.as_mut() {
                        r.checkpoint(tick, world);
                    }
                }
                Err(e) => {
                    if let Some(r) = self.recorder.as_mut() {
                        r.failed = Some(e.to_string());
                    }
                }
            }
        }
    }

    /// A replay's step: the players whose grace ran out in the original step are despawned
    /// where the original despawned them (after the schedule).
    pub(crate) fn replay_step(&mut self, expired: Vec<Entity>) {
        self.scripted_despawns = expired;
        self.step();
    }
}
