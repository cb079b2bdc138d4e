//! Match recordings and replays (issue 18, item 3) over real sockets: a live match with bots
//! recorded by `--record` replays to the same hash at every tick; a change the replaying build
//! makes is found at its tick, component and entity; `tickwire replay` says so and fails; the
//! viewer's API serves the recordings behind the inspector's guard.

use std::process::Command;
use std::time::Duration;

use bevy_ecs::prelude::*;
use tickwire_server::bots::{self, BotsConfig, WsUrl};
use tickwire_server::recording;
use tickwire_shared::games::arena::Health;
use tickwire_shared::ids::NetId;
use tickwire_shared::replay::{self, Entry, Recording, ReplayObserver};
use tickwire_shared::tick::Tick;
use tickwire_tests::net;

const CLI: &str = env!("CARGO_BIN_EXE_tickwire-test-server");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tickwire-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Four fighting bots play a recorded room for a few seconds over WebSockets; the server is
/// stopped, which finishes the file.
async fn record_a_live_match(dir: &std::path::Path) -> std::path::PathBuf {
    let mut config = net::test_config();
    config.record = Some(dir.to_owned());
    config.npc_count = 3;
    let server = net::start(config).await;
    let run = BotsConfig {
        url: WsUrl::parse(&format!("ws://{}/ws", server.local_addr())).expect("valid"),
        count: 4,
        duration: Duration::from_secs(4),
        seed: 3,
        game: "arena".into(),
        behavior: "fight".into(),
        ramp_up: 20.0,
        token: Some(net::token()),
        room: Some("recorded".into()),
        matchmake: false,
        conditioner: None,
        transport: None,
        trust: None,
        hold: false,
        progress_bar: false,
    };
    let report = bots::run(&run).await.expect("the run starts");
    assert_eq!(report.bots.completed, 4);
    let (status, body) = net::http(server.local_addr(), "GET", "/api/replays").await;
    assert_eq!(status, 404, "the inspector is off with a JWT secret and no --inspect: {body}");
    server.shutdown().await;
    let files = recording::list(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].name.starts_with("recorded-"), "{files:?}");
    dir.join(&files[0].name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_live_match_replays_and_a_change_is_found_at_its_tick_and_component() {
    let dir = temp_dir("record");
    let path = record_a_live_match(&dir).await;
    let bytes = std::fs::read(&path).unwrap();
    let rec = Recording::parse(&bytes).unwrap();
    assert!(rec.complete, "the server's shutdown finished the file");

    // The same hashes, every tick.
    let (_, report) = recording::replay_bytes(&bytes, &mut ()).expect("replays");
    assert!(report.equal, "{:?}", report.divergence);
    let names: Vec<&str> = report.players.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("bot-")), "{names:?}");
    assert!(report.ticks >= 3 * u64::from(report.tick_rate), "{} ticks", report.ticks);
    assert!(report.inputs > 20, "the bots' inputs were recorded: {}", report.inputs);
    let last = report.last.clone().unwrap();
    assert_eq!(last.recorded, last.replayed);

    // The CLI agrees, and says it in JSON.
    let out = Command::new(CLI).args(["replay", "--json"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["equal"], true);
    assert_eq!(json["ticks"], report.ticks);
    assert_eq!(json["last"]["replayed"], last.replayed.as_str());

    // A build whose rules differ: a bot loses 5 health at a tick in the middle of the match.
    let middle = Tick(report.first_tick + (report.ticks / 2) as u32);
    struct Nondeterminism {
        at: Tick,
        hit: Option<NetId>,
    }
    impl ReplayObserver for Nondeterminism {
        fn before_step(&mut self, tick: Tick, world: &mut World) {
            if tick != self.at {
                return;
            }
            let mut q = world
                .query_filtered::<(&NetId, &mut Health), With<tickwire_shared::game::Controlled>>();
            if let Some((id, mut health)) = q.iter_mut(world).find(|(_, h)| h.0 > 10.0) {
                health.0 -= 5.0;
                self.hit = Some(*id);
            }
        }
    }
    let mut change = Nondeterminism { at: middle, hit: None };
    let (_, parted) = recording::replay_bytes(&bytes, &mut change).expect("replays");
    let hit = change.hit.expect("a bot with health to lose");
    eprintln!("{}\n{}", recording::to_text(&report), recording::to_text(&parted));
    let d = parted.divergence.expect("found");
    assert_eq!(d.tick, middle.0, "the first tick that differs: {d:?}");
    assert_eq!(d.components.len(), 1, "{d:?}");
    assert_eq!(d.components[0].component, "Health", "{d:?}");
    assert_eq!(d.components[0].entity, Some(hit.0), "{d:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `tickwire match --record FILE` writes a recording `tickwire replay` checks; a recording whose
/// hash was changed makes `tickwire replay` fail, naming the tick.
#[test]
fn the_cli_records_a_match_and_fails_on_a_divergence() {
    let dir = temp_dir("match-record");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("m.twrec");
    let out = Command::new(CLI)
        .args(["match", "--bots", "4", "--ticks", "900", "--seed", "5", "--json", "--record"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let matched: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let replayed = Command::new(CLI).arg("replay").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{text}");
    assert!(text.contains("the replay matches the recording at every tick"), "{text}");
    let hash = matched["final_state_hash"].as_str().unwrap();
    assert!(text.contains(&format!("recorded {hash} replayed {hash}")), "{text}");

    // The recorded hash of tick 400 says otherwise.
    let rec = Recording::parse(&std::fs::read(&file).unwrap()).unwrap();
    let mut steps = 0;
    let entries: Vec<Entry> = rec
        .entries
        .into_iter()
        .map(|mut e| {
            if let Entry::Step(s) = &mut e {
                steps += 1;
                if steps == 400 {
                    s.hash[0] ^= 1;
                }
            }
            e
        })
        .collect();
    let mut bytes = replay::MAGIC.to_vec();
    for frame in [
        tickwire_shared::persist::encode(&rec.header).unwrap(),
        tickwire_shared::persist::encode(&entries).unwrap(),
    ] {
        bytes.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&frame);
    }
    let bad = dir.join("bad.twrec");
    std::fs::write(&bad, bytes).unwrap();
    let replayed = Command::new(CLI).arg("replay").arg(&bad).output().unwrap();
    let text = String::from_utf8_lossy(&replayed.stdout);
    assert!(!replayed.status.success(), "{text}");
    assert!(text.contains("DIVERGED at tick 400"), "{text}");
    let stderr = String::from_utf8_lossy(&replayed.stderr);
    assert!(stderr.contains("parted from the recording at tick 400"), "{stderr}");

    // Not a recording: a clear error.
    std::fs::write(&bad, b"hello").unwrap();
    let replayed = Command::new(CLI).arg("replay").arg(&bad).output().unwrap();
    assert!(!replayed.status.success());
    assert!(String::from_utf8_lossy(&replayed.stderr).contains("not a Tickwire recording"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The viewer's API: the list, a recording replayed with its frames, one uploaded, names that
/// are not plain file names refused, and the inspector's admin token asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_api_replays_recordings_behind_the_inspector_guard() {
    let dir = temp_dir("viewer");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(CLI)
        .args(["match", "--bots", "3", "--ticks", "600", "--record"])
        .arg(dir.join("m.twrec"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let admin = "an-admin-token-of-at-least-32-bytes-long";
    let mut config = net::test_config();
    config.record = Some(dir.clone());
    config.inspect = true;
    config.admin_token = Some(admin.to_owned());
    let server = net::start(config).await;
    let addr = server.local_addr();
    let (status, _) = net::http(addr, "GET", "/api/replays").await;
    assert_eq!(status, 401, "the admin token is asked for");
    let q = format!("token={admin}");
    let (status, body) = net::http(addr, "GET", &format!("/api/replays?{q}")).await;
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["files"][0]["name"], "m.twrec", "{body}");
    let (status, body) = net::http(addr, "GET", &format!("/api/replay?file=m.twrec&{q}")).await;
    assert_eq!(status, 200, "{body}");
    let viewer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(viewer["report"]["equal"], true);
    assert_eq!(viewer["report"]["ticks"], 600);
    let frames = viewer["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 600, "a frame a tick");
    assert!(frames[10][1].as_array().unwrap().len() >= 3, "the NPCs are placed");
    assert!(!viewer["kinds"].as_array().unwrap().is_empty());
    for bad in ["../m.twrec", "m.txt", ".twrec", "%2Fetc%2Fpasswd"] {
        let (status, _) = net::http(addr, "GET", &format!("/api/replay?file={bad}&{q}")).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = net::http(addr, "GET", &format!("/api/replay?file=gone.twrec&{q}")).await;
    assert_eq!(status, 404);
    let (status, page) = net::http(addr, "GET", &format!("/replay?{q}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("replay.js"));
    // Uploaded: the same replay; bytes that are no recording get a 422 that says so.
    let bytes = std::fs::read(dir.join("m.twrec")).unwrap();
    let client = post(addr, &format!("/api/replay?{q}"), &bytes).await;
    assert_eq!(client.0, 200, "{}", client.1);
    assert!(client.1.contains("\"equal\":true"));
    let junk = post(addr, &format!("/api/replay?{q}"), b"junk").await;
    assert_eq!(junk.0, 422);
    assert!(junk.1.contains("not a Tickwire recording"), "{}", junk.1);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let (status, _, body) = net::http_with_body(addr, "POST", path, &[], body).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}
