//! A cluster on a real redis-server (issue 17): `tickwire serve --redis` processes register
//! themselves and their rooms, any of them answers `GET /api/rooms` for all, an instance that
//! dies leaves the directory within the presence TTL (one that stops, at once), and rooms keep
//! running while Redis is away.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tickwire_tests::net::{self, ServerProcess};
use tickwire_tests::redis::RedisServer;

const CLI: &str = env!("CARGO_BIN_EXE_tickwire-test-server");

/// How long a condition may take to come true.
const DEADLINE: Duration = Duration::from_secs(15);

/// A `tickwire serve --redis …` process with a presence TTL of `ttl` seconds.
async fn instance(redis: &RedisServer, ttl: &str) -> (ServerProcess, String) {
    let url = redis.url();
    let server = ServerProcess::start(
        CLI,
        &["--redis", &url, "--presence-ttl", ttl, "--npcs", "0", "--quic-bind", "off"],
    )
    .await;
    let id = server
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("Cluster instance ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no instance id in {:?}", server.banner))
        .to_owned();
    (server, id)
}

async fn rooms(addr: SocketAddr) -> Value {
    let (status, body) = net::http(addr, "GET", "/api/rooms").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Polls `addr`'s `/api/rooms` until `ok` holds; panics with the last answer at the deadline.
async fn rooms_until(addr: SocketAddr, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let answer = rooms(addr).await;
        if ok(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what}: still {answer:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn instance_ids(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn room<'a>(answer: &'a Value, id: &str) -> Option<&'a Value> {
    answer["rooms"].as_array()?.iter().find(|r| r["id"] == id)
}

async fn metric_until(addr: SocketAddr, name: &str, want: f64) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, text) = net::http(addr, "GET", "/metrics").await;
        let value = net::metric(&text, &format!("{name} "));
        if (value - want).abs() < 1e-9 {
            return;
        }
        assert!(Instant::now() < deadline, "{name} is {value}, not {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_instance_answers_for_the_whole_cluster_with_each_rooms_url() {
    let redis = RedisServer::start();
    let (a, a_id) = instance(&redis, "2").await;
    let (b, b_id) = instance(&redis, "2").await;
    let (_alice, _) = net::join_as(a.addr, "alice", "&room=alpha").await;
    let (_bob, _) = net::join_as(b.addr, "bob", "&room=beta").await;

    for (addr, label) in [(a.addr, "a"), (b.addr, "b")] {
        let answer =
            rooms_until(addr, &format!("{label} lists both rooms with their players"), |v| {
                room(v, "alpha").is_some_and(|r| r["players"] == 1)
                    && room(v, "beta").is_some_and(|r| r["players"] == 1)
            })
            .await;
        let alpha = room(&answer, "alpha").unwrap();
        assert_eq!(alpha["instance"], a_id.as_str(), "{answer:#}");
        assert_eq!(alpha["url"], format!("ws://{}/ws", a.addr), "{answer:#}");
        assert_eq!(alpha["game"], "arena");
        let beta = room(&answer, "beta").unwrap();
        assert_eq!(beta["instance"], b_id.as_str(), "{answer:#}");
        assert_eq!(beta["url"], format!("ws://{}/ws", b.addr), "{answer:#}");
        assert_eq!(answer["cluster"]["available"], true);
        let mut both = vec![a_id.clone(), b_id.clone()];
        both.sort();
        assert_eq!(instance_ids(&answer), both);
    }
    metric_until(a.addr, "tickwire_cluster_instances", 2.0).await;
    metric_until(a.addr, "tickwire_redis_up", 1.0).await;
}

#[tokio::test]
async fn a_dead_instance_leaves_the_directory_within_the_ttl_and_a_stopped_one_at_once() {
    let redis = RedisServer::start();
    let ttl = Duration::from_secs(2);
    let (a, a_id) = instance(&redis, "2").await;
    let (mut b, b_id) = instance(&redis, "2").await;
    let (c, c_id) = instance(&redis, "2").await;
    rooms_until(a.addr, "a sees all three", |v| instance_ids(v).len() == 3).await;

    // A crash: no goodbye; its record expires.
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let killed = Instant::now();
    rooms_until(a.addr, "b gone", |v| !instance_ids(v).contains(&b_id)).await;
    let gone_after = killed.elapsed();
    println!("a killed instance left the directory after {gone_after:?} (TTL {ttl:?})");
    assert!(gone_after <= ttl + Duration::from_millis(500), "{gone_after:?}");
    assert_eq!(redis.command(&["EXISTS", &format!("tickwire:instance:{b_id}")]).unwrap(), ":0");

    // A shutdown: it takes itself out before closing.
    let status = Command::new("kill").args(["-TERM", &c.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let stopped = Instant::now();
    let answer = rooms_until(a.addr, "c gone", |v| !instance_ids(v).contains(&c_id)).await;
    let left_after = stopped.elapsed();
    println!("a stopped instance left the directory after {left_after:?}");
    assert!(left_after < ttl / 2, "{left_after:?}: it waited for its TTL");
    assert_eq!(instance_ids(&answer), vec![a_id]);
}

#[tokio::test]
async fn rooms_keep_running_while_redis_is_away_and_the_instance_comes_back() {
    let mut redis = RedisServer::start();
    let (a, a_id) = instance(&redis, "1").await;
    let (mut alice, _) = net::join_as(a.addr, "alice", "&room=gamma").await;
    metric_until(a.addr, "tickwire_redis_up", 1.0).await;
    let key = format!("tickwire:instance:{a_id}");
    assert_eq!(redis.command(&["EXISTS", &key]).unwrap(), ":1");

    redis.kill();
    metric_until(a.addr, "tickwire_redis_up", 0.0).await;
    // The room still ticks and answers the player's inputs with snapshots.
    for seq in 0..30 {
        net::send(&mut alice, &net::input(seq)).await;
        match net::recv(&mut alice).await {
            net::Received::Message(_) => {}
            other => panic!("the session ended while Redis was away: {other:?}"),
        }
    }
    // The directory answers at once with this instance's rooms, and says Redis is away.
    let asked = Instant::now();
    let answer = rooms(a.addr).await;
    assert!(asked.elapsed() < Duration::from_secs(3), "took {:?}", asked.elapsed());
    assert_eq!(answer["cluster"]["available"], false, "{answer:#}");
    assert!(answer["cluster"]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(room(&answer, "gamma").expect("its own room")["players"], 1);
    let (_, text) = net::http(a.addr, "GET", "/metrics").await;
    assert!(net::metric(&text, "tickwire_redis_errors_total ") >= 1.0, "{text}");

    // Redis comes back empty; the heartbeat puts the instance back.
    redis.restart();
    metric_until(a.addr, "tickwire_redis_up", 1.0).await;
    let deadline = Instant::now() + DEADLINE;
    while redis.command(&["EXISTS", &key]).unwrap() != ":1" {
        assert!(Instant::now() < deadline, "the instance did not register again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rooms_until(a.addr, "the cluster is available again", |v| v["cluster"]["available"] == true)
        .await;
}

#[test]
fn cluster_options_are_checked_before_the_server_starts() {
    let run = |args: &[&str]| {
        let out = Command::new(CLI).arg("serve").args(args).output().expect("runs");
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&["--redis", "not a url", "--quic-bind", "off"]);
    assert!(err.contains("not a Redis URL"), "{err}");
    let err = run(&["--public-url", "http://x:1", "--quic-bind", "off"]);
    assert!(err.contains("need --redis"), "{err}");
    let err = run(&["--redis", "redis://127.0.0.1:1", "--presence-ttl", "0", "--quic-bind", "off"]);
    assert!(err.contains("--presence-ttl 0"), "{err}");
    let err =
        run(&["--redis", "redis://127.0.0.1:1", "--public-url", "ws://x/ws", "--quic-bind", "off"]);
    assert!(err.contains("http:// or https://"), "{err}");
    let err = run(&["--redis", "redis://127.0.0.1:1", "--bind", "0.0.0.0:0", "--quic-bind", "off"]);
    assert!(err.contains("needs --public-url"), "{err}");
}
