use super::*;
use crate::games::arena::{ArenaGame, ArenaInput, Buttons, Health};
use crate::ids::ClientId;
use crate::protocol::{InputBatch, ViewTime};
use crate::rng::Rng;

fn settings() -> RoomSettings {
    RoomSettings {
        id: "recorded".into(),
        tick_rate: 30,
        ticks_per_snapshot: 2,
        capacity: 8,
        interest_radius: 400.0,
        resume_grace_ticks: 90,
        idle_close_ticks: 60_000,
        npcs: 5,
        seed: 9,
        max_rewind_ms: 200,
        client_kbps: 0,
    }
}

fn input(rng: &mut Rng) -> ArenaInput {
    let r = rng.next_u64();
    let axis = |shift: u32| ((r >> shift) % 3) as i8 - 1;
    let mut buttons = Buttons::default();
    if r.is_multiple_of(4) {
        buttons = buttons.with(Buttons::FIRE);
    }
    if r % 30 == 1 {
        buttons = buttons.with(Buttons::DASH);
    }
    // Players often hold an input for a while, as people do.
    ArenaInput {
        movement: [axis(8) * 127, axis(16) * 127],
        aim: (r >> 40) as u16 & 0xff00,
        buttons,
    }
}

/// A busy recorded match: NPCs, players joining, playing, dropping and resuming, one leaving,
/// one whose grace runs out; checkpoints every 100 ticks. Returns the file and the live
/// room's hash after every tick.
fn record_a_match(ticks: u32) -> (Vec<u8>, Vec<u64>) {
    let mut room = RoomCore::<ArenaGame>::new(settings());
    let mut rng = Rng::from_state(7);
    let mut file = Vec::new();
    // Recording starts with the room already running, as `serve --record` may.
    for _ in 0..20 {
        room.step();
    }
    room.start_recording(100, 1_700_000_000_000).unwrap();
    let mut clients: Vec<(ClientId, String)> = Vec::new();
    let mut hashes = Vec::new();
    let mut held = [ArenaInput::default(); 16];
    for t in 0..ticks {
        match t {
            5 | 30 | 60 | 61 => {
                let id = ClientId(t + 1);
                let token = format!("t{t}");
                room.join(id, "p", &format!("s{t}"), None, || token.clone()).unwrap();
                clients.push((id, token));
            }
            200 => {
                // Drops, and comes back on a new connection.
                let (id, _) = clients.remove(0);
                room.disconnect(id, false);
            }
            240 => {
                let token = "t5".to_owned();
                room.join(ClientId(500), "p", "s5", Some(&token), || unreachable!()).unwrap();
                clients.push((ClientId(500), token));
            }
            300 => {
                let (id, _) = clients.remove(0);
                room.disconnect(id, true);
            }
            350 => {
                // Drops for good: its grace runs out inside a step.
                let (id, _) = clients.remove(0);
                room.disconnect(id, false);
            }
            _ => {}
        }
        let now = room.tick();
        for (i, (client, _)) in clients.iter().enumerate() {
            if rng.next_u64().is_multiple_of(5) {
                held[i] = input(&mut rng);
            }
            let batch = InputBatch {
                ack: None,
                first_seq: t,
                frames: crate::codec::encode_inputs(&[held[i]]).unwrap(),
                view: Some(ViewTime { tick: Tick(now.0.saturating_sub(4)), frac: 100 }),
            };
            room.input(*client, &batch, 0);
        }
        room.step();
        while room.poll_output().is_some() {}
        hashes.push(room.state_hash());
        if t % 50 == 0 {
            file.extend(room.take_recording());
        }
    }
    file.extend(room.stop_recording("the test ended"));
    (file, hashes)
}

#[test]
fn a_recorded_match_replays_to_the_same_hash_every_tick() {
    let (file, hashes) = record_a_match(600);
    let recording = Recording::parse(&file).unwrap();
    assert!(recording.complete);
    assert_eq!(recording.ticks(), (Tick(20), 600));
    struct Hashes(Vec<u64>, ReplicationRegistry);
    impl ReplayObserver for Hashes {
        fn after_step(&mut self, _: Tick, registry: &ReplicationRegistry, state: &ReplicatedState) {
            self.0.push(game::hash_state(registry, state));
            self.1 = registry.clone();
        }
    }
    let mut seen = Hashes(Vec::new(), ReplicationRegistry::new());
    let report = replay::<ArenaGame>(&recording, &mut seen).unwrap();
    assert!(report.equal, "{:?}", report.divergence);
    assert_eq!(seen.0, hashes, "the replay's hash is the live room's, tick by tick");
    assert_eq!(report.ticks, 600);
    assert_eq!(report.checkpoints, 6, "one every 100 ticks");
    assert_eq!(report.players.len(), 4);
    assert!(report.inputs > 50, "{}", report.inputs);
    assert_eq!(report.intervals.len(), 20, "one a second");
    let last = report.last.unwrap();
    assert_eq!((last.tick, &last.recorded), (620, &format!("{:016x}", hashes[599])));
    // Compact: a few hundred bytes a second with five NPCs and three players, checkpoints in.
    let per_sec = file.len() as f64 / 20.0;
    eprintln!("RECORDING {} bytes, {per_sec} bytes a second", file.len());
    assert!(per_sec < 4_000.0, "{per_sec} bytes a second");
}

#[test]
fn an_injected_change_is_found_at_its_tick_component_and_entity() {
    let (file, _) = record_a_match(400);
    let recording = Recording::parse(&file).unwrap();
    // Something in the replaying build does what the recorded one did not: at tick 150 an
    // NPC's health drops by one.
    struct Tamper(Option<NetId>);
    impl ReplayObserver for Tamper {
        fn before_step(&mut self, tick: Tick, world: &mut World) {
            if tick == Tick(150) {
                let mut q =
                    world.query::<(&NetId, &mut Health, Option<&crate::game::Controlled>)>();
                for (id, mut health, controlled) in q.iter_mut(world) {
                    if controlled.is_none() && health.0 > 10.0 {
                        health.0 -= 7.0;
                        self.0 = Some(*id);
                        return;
                    }
                }
            }
        }
    }
    let mut tamper = Tamper(None);
    let report = replay::<ArenaGame>(&recording, &mut tamper).unwrap();
    let changed = tamper.0.expect("an NPC to change");
    assert!(!report.equal);
    let d = report.divergence.unwrap();
    assert_eq!(d.tick, 150, "{d:?}");
    assert_eq!(d.components.len(), 1, "{d:?}");
    assert_eq!(d.components[0].component, "Health");
    assert_eq!(d.components[0].entity, Some(changed.0), "{d:?}");
    let (at, differences) = d.checkpoint.expect("the next checkpoint compared");
    assert_eq!(at, 220);
    assert!(
        differences.iter().any(|x| x.component == "Health" && x.entity == Some(changed.0)),
        "{differences:?}"
    );
    assert!(report.ticks < 400, "it stops at the checkpoint after");
}

#[test]
fn a_server_only_difference_is_found_at_the_next_checkpoint() {
    let (file, _) = record_a_match(250);
    let recording = Recording::parse(&file).unwrap();
    struct Tamper;
    impl ReplayObserver for Tamper {
        fn before_step(&mut self, tick: Tick, world: &mut World) {
            if tick == Tick(130) {
                // The random numbers move on: nothing replicated changes at once.
                world.resource_mut::<crate::game::GameRng>().next_u64();
            }
        }
    }
    let report = replay::<ArenaGame>(&recording, &mut Tamper).unwrap();
    let d = report.divergence.expect("found");
    let (at, differences) = d.checkpoint.clone().expect("compared");
    if d.components.is_empty() {
        assert_eq!((d.tick, at), (220, 220), "{d:?}");
    } else {
        assert!(d.tick > 130 && d.tick <= 220, "{d:?}");
    }
    assert!(differences.iter().any(|x| x.component == "GameRng"), "{differences:?}");
}

#[test]
fn a_recording_cut_short_replays_up_to_its_last_whole_frame() {
    let (file, _) = record_a_match(300);
    let cut = &file[..file.len() - 40];
    let recording = Recording::parse(cut).unwrap();
    assert!(!recording.complete);
    let report = replay::<ArenaGame>(&recording, &mut ()).unwrap();
    assert!(report.equal);
    assert!(report.ticks > 200 && report.ticks < 300, "{}", report.ticks);
    assert!(matches!(Recording::parse(b"nonsense"), Err(ReplayError::NotARecording)));
    let mut damaged = file.clone();
    let at = MAGIC.len() + 4 + 10;
    damaged[at] ^= 0xff;
    assert!(
        Recording::parse(&damaged).is_err()
            || replay::<ArenaGame>(&Recording::parse(&damaged).unwrap(), &mut ()).is_err()
    );
    let other =
        replay::<crate::games::soccer::SoccerGame>(&Recording::parse(&file).unwrap(), &mut ());
    assert!(matches!(other, Err(ReplayError::Game { .. })));
}

#[test]
fn one_entity_is_recovered_from_two_sketches_and_several_are_told_apart() {
    let registry = crate::game::registry::<ArenaGame>();
    let mut room = RoomCore::<ArenaGame>::new(settings());
    for _ in 0..3 {
        room.step();
    }
    let state = registry.capture(room.world_mut());
    let (_, before) = fingerprint(&registry, &state);
    let health = registry.index_of::<Health>().unwrap();
    let ids: Vec<NetId> =
        state.iter().filter(|e| e.mask & (1 << health.0) != 0).map(|e| e.id).collect();
    assert!(ids.len() >= 5, "{ids:?}");
    let offset = registry.offset(health);
    let rebuild = |change: &[NetId]| {
        let mut s = ReplicatedState::new(registry.stride());
        for e in state.iter() {
            let mut fields = e.fields.to_vec();
            if change.contains(&e.id) {
                fields[offset] += 3;
            }
            s.push(e.id, e.mask, &fields).unwrap();
        }
        fingerprint(&registry, &s).1
    };
    for id in &ids {
        let after = rebuild(&[*id]);
        let i = usize::from(health.0);
        assert_eq!(after[i].single_difference(before[i]), Some(*id));
        assert_eq!(before[i].single_difference(after[i]), Some(*id));
    }
    let after = rebuild(&ids[..2]);
    let i = usize::from(health.0);
    assert_eq!(after[i].single_difference(before[i]), None, "two entities changed");
    assert_eq!(before[i].single_difference(before[i]), None);
}
