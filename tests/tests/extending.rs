//! `docs/EXTENDING.md` cannot rot: its game (`docs/extending/tag.rs`) and browser view
//! (`docs/extending/tag_view.rs`) are compiled here and played through the in-memory harness,
//! and every Rust block of the tutorial must be, word for word, a part of those files.

#[path = "../../docs/extending/tag.rs"]
mod tag;
#[path = "../../docs/extending/tag_view.rs"]
mod tag_view;

use glam::Vec2;
use tickwire_client_web::games::{Controls, GameView};
use tickwire_shared::client::ClientEvent;
use tickwire_shared::game::{BotPolicy, Game};
use tickwire_shared::room::{RoomCore, RoomSettings};
use tickwire_tests::harness::{Conditioner, GameHarness, room_config};

use tag::{It, Position, TagBot, TagEvent, TagGame, TagInput};

fn settings(npcs: usize) -> RoomSettings {
    RoomSettings { id: "tag".into(), ..room_config(npcs) }
}

#[test]
fn two_players_play_tag_through_the_harness_and_predict_without_a_miss() {
    let mut h = GameHarness::<TagGame>::new(settings(0), 5);
    let (a, ja) = h.join("ann", None, Conditioner::default()).unwrap();
    let (b, jb) = h.join("bob", None, "latency=50ms".parse().unwrap()).unwrap();
    h.run(10);
    // The first runner is "it"; both start at the centre, so she tags bob at once… unless
    // they are already apart: walk bob away, then ann after him.
    let it_of = |h: &GameHarness<TagGame>, idx: usize, id| {
        let c = &h.clients[idx].client;
        let (_, state) = c.latest()?;
        c.registry().get::<It>(state.get(id)?).map(|it| it.0)
    };
    assert!(it_of(&h, b, ja.entity).is_some(), "bob sees ann");
    let mut predictor = tickwire_shared::client::Predictor::<TagGame>::new(60);
    for _ in 0..60 {
        h.input(b, TagInput { run: [127, 0] });
        h.input(a, TagInput { run: [127, 0] });
        h.step();
    }
    // Both keep sending a frame a tick, as clients do (each sequence number is a tick).
    let idle = TagInput { run: [0, 0] };
    let mut tagged = false;
    for _ in 0..600 {
        tagged = h.clients[a]
            .events
            .iter()
            .chain(&h.clients[b].events)
            .any(|e| matches!(e, ClientEvent::Game(TagEvent::Tagged { .. })));
        if tagged {
            break;
        }
        h.input(a, idle);
        h.input(b, idle);
        h.step();
    }
    assert!(tagged, "somebody was tagged");
    // Prediction with the shared step function matches the server exactly.
    for _ in 0..10 {
        h.input(a, idle);
        h.input(b, idle);
        h.step();
    }
    predictor.reconcile(&h.clients[a].client);
    for _ in 0..30 {
        let frame = TagInput { run: [0, 127] };
        h.input(a, frame);
        predictor.apply_input(&frame);
        h.step();
        predictor.reconcile(&h.clients[a].client);
    }
    assert_eq!(predictor.stats().corrections, 0, "{:?}", predictor.stats());
    let seen = h.seen_position(b, jb.entity);
    assert!(seen.is_some_and(|p| p.x > 0.0), "bob ran right: {seen:?}");
}

#[test]
fn a_match_is_deterministic_and_the_bot_policy_plays() {
    let hash = |seed| {
        let mut core = RoomCore::<TagGame>::new(RoomSettings { seed, ..settings(3) });
        for _ in 0..120 {
            core.step();
        }
        (core.state_hash(), core.standings())
    };
    assert_eq!(hash(1), hash(1));
    let (_, standings) = hash(1);
    assert_eq!(standings.columns, ["it"]);
    assert_eq!(standings.rows.iter().filter(|r| r.values == [1]).count(), 1, "one runner is it");

    // A bot that is "it" runs at the other runner.
    let mut h = GameHarness::<TagGame>::new(settings(0), 9);
    let (a, _) = h.join("it", None, Conditioner::default()).unwrap();
    let (b, jb) = h.join("runner", None, Conditioner::default()).unwrap();
    h.run(4);
    for _ in 0..30 {
        h.input(b, TagInput { run: [127, 127] });
        h.step();
    }
    let mut bot = TagBot::new("play", 1).expect("a behaviour");
    assert!(TagBot::new("dance", 1).is_none());
    let input = bot.think(&h.clients[a].client, 60);
    let target = h.seen_position(a, jb.entity).expect("sees the runner");
    let dir = Vec2::new(f32::from(input.run[0]), f32::from(input.run[1]));
    assert!(dir.dot(target) > 0.0, "runs at {target} with {input:?}");
}

/// The tutorial's `persist`: a tag match saved and restored (what a rolling restart does)
/// goes on exactly as the original.
#[test]
fn a_tag_match_survives_a_restart() {
    let mut a = RoomCore::<TagGame>::new(settings(3));
    for _ in 0..90 {
        a.step();
    }
    let mut b = RoomCore::<TagGame>::restore(&a.save().expect("every component is persisted"))
        .expect("restores");
    for _ in 0..120 {
        a.step();
        b.step();
        assert_eq!(a.state_hash(), b.state_hash(), "at {:?}", a.tick());
    }
    assert_eq!(a.standings(), b.standings());
}

#[test]
fn the_view_maps_keys_and_names_the_game() {
    let mut c = Controls::default();
    c.keys.insert("ArrowRight".into());
    assert_eq!(tag_view::TagView::new(60).input(&c, None), TagInput { run: [127, 0] });
    assert!(tag_view::TagView::is_game_key("KeyW") && !tag_view::TagView::is_game_key("KeyQ"));
    assert_eq!(<TagGame as Game>::NAME, "tag");
    let _ = Position(Vec2::ZERO);
}

/// The Rust blocks of `docs/EXTENDING.md`, each with its text.
fn doc_blocks() -> Vec<String> {
    let doc = include_str!("../../docs/EXTENDING.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```rust") => current = Some(String::new()),
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn every_rust_block_of_the_tutorial_is_compiled_code() {
    let sources = [
        include_str!("../../docs/extending/tag.rs"),
        include_str!("../../docs/extending/tag_view.rs"),
    ];
    let blocks = doc_blocks();
    assert!(blocks.len() >= 7, "the tutorial lost its code: {} blocks", blocks.len());
    for block in blocks {
        assert!(
            sources.iter().any(|s| s.contains(block.as_str())),
            "this block of docs/EXTENDING.md is not in docs/extending/*.rs, so nothing compiles \
             it:\n{block}"
        );
    }
}
