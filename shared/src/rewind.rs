//! Lag compensation: a short history of what a game opted into rewind, so that a player's
//! action is resolved against the world as that player saw it.
//!
//! A client draws other entities in the past: its snapshots took half a round trip to come,
//! and interpolation shows them a little later still. Its own inputs run ahead of the server
//! (time sync). By the time the room applies a shot, the target has moved on by a round trip
//! plus the interpolation delay, and a shot aimed exactly at what was on the screen misses.
//!
//! The engine fixes that for any game:
//!
//! - Each input message names the moment the client was showing ([`ViewTime`]); the room
//!   keeps it with each frame and, when it applies the frame at tick `t`, writes on the
//!   player's entity how far behind `t` that moment was ([`ViewLag`], in ticks), capped at
//!   [`RewindSettings::max_ticks`] (a client claiming an older moment is rewound by the cap
//!   only, and a moment after `t` counts as no lag).
//! - A game opts a component into rewind with [`track`] (the arena: the combatants'
//!   `Position`): after every tick the engine records it for every entity the game's filter
//!   selects, keeping [`RewindSettings::max_ticks`] + 1 ticks.
//! - The game's rule reads [`ViewLag`] off the acting entity and asks the history where each
//!   target was then ([`RewindHistory::rewound`]). The arena's projectiles carry their
//!   shooter's lag for their whole flight and are tested against the targets rewound by it.
//!
//! Only what the game resolves is rewound: the world is never moved back, so rewinding costs a
//! lookup per test, and other players' moves are not undone (what the victim did in the last
//! round trip stands, only where it stood is looked up).

use std::collections::VecDeque;

use bevy_ecs::prelude::*;
use bevy_ecs::query::QueryFilter;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::game::{SimClock, TickSet, advance_clock};
use crate::ids::NetId;
use crate::persist::Persistence;
use crate::protocol::ViewTime;
use crate::tick::Tick;

/// The default cap on rewinding, in milliseconds: 400 ms covers a 300 ms round trip plus a
/// 100 ms interpolation delay. Past that a player must lead targets; it also bounds what a
/// client lying about its view can gain, and the history kept.
pub const DEFAULT_MAX_REWIND_MS: u32 = 400;

/// How far the room rewinds at the most (a resource the engine inserts; the room sets it from
/// its settings).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RewindSettings {
    /// The cap, in ticks (0: no rewind at all).
    pub max_ticks: u32,
}

impl RewindSettings {
    /// The cap of `max_rewind_ms` at `tick_rate` ticks a second (rounded up to whole ticks).
    #[must_use]
    pub fn from_ms(max_rewind_ms: u32, tick_rate: u16) -> RewindSettings {
        let ticks = (u64::from(max_rewind_ms) * u64::from(tick_rate.max(1))).div_ceil(1000);
        RewindSettings { max_ticks: u32::try_from(ticks).unwrap_or(u32::MAX) }
    }

    /// How far behind `now` the moment `view` is, in ticks, within `0..=max_ticks`
    /// (no view: 0).
    #[must_use]
    pub fn lag(&self, view: Option<ViewTime>, now: Tick) -> f32 {
        let Some(view) = view else { return 0.0 };
        let lag = view.ticks_before(now);
        if lag.is_finite() { lag.clamp(0.0, self.max_ticks as f32) } else { 0.0 }
    }
}

/// How many ticks behind the tick it was applied at the world was, as the player saw it when
/// it produced its current input: written by the engine on every player-controlled entity
/// before each tick (capped by [`RewindSettings`]); absent or 0 for everything else.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewLag(pub f32);

/// A component the engine can record and rewind: between two recorded ticks it is blended by
/// [`Rewind::blend`].
pub trait Rewind: Component + Clone {
    /// The value `t` (`0.0..=1.0`) of the way from `self` to `later`. By default the nearer
    /// of the two.
    #[must_use]
    fn blend(&self, later: &Self, t: f32) -> Self {
        if t < 0.5 { self.clone() } else { later.clone() }
    }
}

/// The recorded values of `C`: per tick (newest last), every tracked entity's, sorted by id.
#[derive(Resource, Serialize, Deserialize)]
#[serde(bound(serialize = "C: Serialize", deserialize = "C: DeserializeOwned"))]
pub struct RewindHistory<C: Rewind> {
    ticks: VecDeque<(Tick, Vec<(NetId, C)>)>,
}

impl<C: Rewind> Default for RewindHistory<C> {
    fn default() -> Self {
        RewindHistory { ticks: VecDeque::new() }
    }
}

impl<C: Rewind> RewindHistory<C> {
    /// The ticks recorded, oldest first.
    pub fn ticks(&self) -> impl Iterator<Item = Tick> + '_ {
        self.ticks.iter().map(|(t, _)| *t)
    }

    /// `id`'s value recorded for `tick`, if it was tracked then.
    #[must_use]
    pub fn at(&self, id: NetId, tick: Tick) -> Option<&C> {
        let newest = self.ticks.back()?.0;
        let back = usize::try_from(newest.diff(tick)).ok()?;
        let (t, values) = self.ticks.get(self.ticks.len().checked_sub(back + 1)?)?;
        debug_assert_eq!(*t, tick, "one record per tick");
        let i = values.binary_search_by_key(&id, |(id, _)| *id).ok()?;
        Some(&values[i].1)
    }

    /// Where `id` was `lag` ticks before `now`, when its value at `now` is `current`: blended
    /// between the two recorded ticks around that moment (`now` itself being `current`). A
    /// tick the history does not have (older than it keeps, before the entity existed) gives
    /// the nearest later value it has, at worst `current`.
    #[must_use]
    pub fn rewound(&self, id: NetId, current: &C, now: Tick, lag: f32) -> C {
        if lag.is_nan() || lag <= 0.0 {
            return current.clone();
        }
        let whole = lag.floor();
        let later_back = whole as u32;
        let t = 1.0 - (lag - whole);
        let value = |back: u32| {
            if back == 0 {
                return Some(current);
            }
            self.at(id, Tick(now.0.wrapping_sub(back)))
        };
        // The nearest later value the history has, when the one asked for is missing.
        let later = (0..=later_back).rev().find_map(value).unwrap_or(current);
        match value(later_back + 1) {
            Some(earlier) if t < 1.0 => earlier.blend(later, t),
            _ => later.clone(),
        }
    }
}

/// Opts component `C` of the entities matching `F` into rewind: the engine records it after
/// every tick (in [`TickSet::Replicate`], after the clock moves on, so each record is labelled
/// with the tick of the snapshot that shows it). Call it from [`crate::game::Game::build`].
pub fn track<C: Rewind + Serialize + DeserializeOwned, F: QueryFilter + 'static>(
    world: &mut World,
    schedule: &mut Schedule,
) {
    world.init_resource::<RewindHistory<C>>();
    // The history is part of the room's state: a restored room resolves the next shots where
    // the original would have.
    if let Some(mut persistence) = world.get_resource_mut::<Persistence>() {
        persistence.resource::<RewindHistory<C>>();
    }
    schedule.add_systems(record::<C, F>.in_set(TickSet::Replicate).after(advance_clock));
}

fn record<C: Rewind, F: QueryFilter + 'static>(
    clock: Res<'_, SimClock>,
    settings: Res<'_, RewindSettings>,
    mut history: ResMut<'_, RewindHistory<C>>,
    tracked: Query<'_, '_, (&NetId, &C), F>,
) {
    let keep = settings.max_ticks as usize + 1;
    // The oldest record's vector is reused for the new one.
    let mut values = if history.ticks.len() >= keep {
        history.ticks.pop_front().map(|(_, v)| v).unwrap_or_default()
    } else {
        Vec::new()
    };
    while history.ticks.len() >= keep {
        history.ticks.pop_front();
    }
    values.clear();
    values.extend(tracked.iter().map(|(id, c)| (*id, c.clone())));
    values.sort_unstable_by_key(|(id, _)| *id);
    // A gap in the labels (a room restored, a test stepping the clock) restarts the history.
    if history.ticks.back().is_some_and(|(t, _)| t.next() != clock.tick) {
        history.ticks.clear();
    }
    history.ticks.push_back((clock.tick, values));
}

#[cfg(test)]
mod tests;
