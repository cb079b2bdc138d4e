use bevy_ecs::prelude::*;
use glam::Vec2;

use super::*;
use crate::game::{SimClock, TickSet, advance_clock};

#[derive(Component, Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct At(Vec2);

impl Rewind for At {
    fn blend(&self, later: &At, t: f32) -> At {
        At(self.0.lerp(later.0, t))
    }
}

#[derive(Component)]
struct Hittable;

/// A world whose entity 1 (hittable) moves one unit in x a tick and entity 2 (not hittable)
/// too; ticks labelled from 1 (the state after the run of tick 0).
fn world(max_ticks: u32) -> (World, Schedule) {
    let mut world = World::new();
    world.insert_resource(SimClock { tick: Tick(0), dt: 1.0 / 60.0 });
    world.insert_resource(RewindSettings { max_ticks });
    let mut schedule = Schedule::default();
    schedule.configure_sets((TickSet::Input, TickSet::Simulate, TickSet::Replicate).chain());
    schedule.add_systems(
        (|mut q: Query<'_, '_, &mut At>| q.iter_mut().for_each(|mut a| a.0.x += 1.0))
            .in_set(TickSet::Simulate),
    );
    schedule.add_systems(advance_clock.in_set(TickSet::Replicate));
    track::<At, With<Hittable>>(&mut world, &mut schedule);
    world.spawn((NetId(1), At(Vec2::ZERO), Hittable));
    world.spawn((NetId(2), At(Vec2::ZERO)));
    (world, schedule)
}

#[test]
fn the_history_keeps_the_cap_plus_one_ticks_of_the_tracked_entities_labelled_as_snapshots() {
    let (mut world, mut schedule) = world(4);
    for _ in 0..10 {
        schedule.run(&mut world);
    }
    let history = world.resource::<RewindHistory<At>>();
    assert_eq!(history.ticks().collect::<Vec<_>>(), (6..=10).map(Tick).collect::<Vec<_>>());
    // The state after the run of tick 9 is tick 10's (its snapshot's label): x = 10.
    assert_eq!(history.at(NetId(1), Tick(10)), Some(&At(Vec2::new(10.0, 0.0))));
    assert_eq!(history.at(NetId(1), Tick(6)), Some(&At(Vec2::new(6.0, 0.0))));
    assert_eq!(history.at(NetId(1), Tick(5)), None, "older than kept");
    assert_eq!(history.at(NetId(1), Tick(11)), None, "not yet");
    assert_eq!(history.at(NetId(2), Tick(10)), None, "not tracked");
}

#[test]
fn rewound_blends_between_ticks_and_falls_back_to_the_nearest_later_value() {
    let (mut world, mut schedule) = world(4);
    for _ in 0..10 {
        schedule.run(&mut world);
    }
    let history = world.resource::<RewindHistory<At>>();
    // Now is tick 11 (the value being simulated: x = 11).
    let current = At(Vec2::new(11.0, 0.0));
    let at = |lag: f32| history.rewound(NetId(1), &current, Tick(11), lag).0.x;
    assert_eq!(at(0.0), 11.0);
    assert_eq!(at(-3.0), 11.0, "a negative lag is none");
    assert_eq!(at(f32::NAN), 11.0);
    assert_eq!(at(1.0), 10.0);
    assert_eq!(at(0.25), 10.75, "between the newest record and now");
    assert_eq!(at(2.5), 8.5);
    assert_eq!(at(5.0), 6.0, "the oldest kept");
    assert_eq!(at(9.0), 6.0, "beyond the history: the oldest it has");
    // An entity the history never saw stays where it is.
    assert_eq!(history.rewound(NetId(9), &current, Tick(11), 3.0), current);
}

#[test]
fn the_lag_of_a_view_is_capped_and_never_negative() {
    let settings = RewindSettings::from_ms(400, 60);
    assert_eq!(settings.max_ticks, 24);
    assert_eq!(RewindSettings::from_ms(250, 60).max_ticks, 15);
    assert_eq!(RewindSettings::from_ms(10, 30).max_ticks, 1, "rounded up");
    assert_eq!(RewindSettings::from_ms(0, 60).max_ticks, 0);
    let now = Tick(1_000);
    assert_eq!(settings.lag(None, now), 0.0);
    assert_eq!(settings.lag(Some(ViewTime::new(Tick(990), 0.5)), now), 9.5);
    assert_eq!(settings.lag(Some(ViewTime::new(Tick(1_005), 0.0)), now), 0.0, "the future");
    assert_eq!(settings.lag(Some(ViewTime::new(Tick(3), 0.0)), now), 24.0, "too far back");
    // Across the wrap of tick numbers.
    let now = Tick(5);
    assert_eq!(settings.lag(Some(ViewTime::new(Tick(u32::MAX - 4), 0.0)), now), 10.0);
}

#[test]
fn a_gap_in_the_ticks_restarts_the_history() {
    let (mut world, mut schedule) = world(4);
    for _ in 0..3 {
        schedule.run(&mut world);
    }
    world.resource_mut::<SimClock>().tick = Tick(100);
    schedule.run(&mut world);
    let history = world.resource::<RewindHistory<At>>();
    assert_eq!(history.ticks().collect::<Vec<_>>(), vec![Tick(101)]);
}
