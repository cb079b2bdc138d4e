//! A cluster on a real redis-server (issue 17): `tickwire serve --redis` processes register
//! themselves and their rooms, any of them answers `GET /api/rooms` for all, an instance that
//! dies leaves the directory within the presence TTL (one that stops, at once), and rooms keep
//! running while Redis is away.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tickwire_shared::codec;
use tickwire_shared::games::arena::{ArenaGame, Kind, Score};
use tickwire_shared::protocol::{DisconnectReason, ServerMessage};
use tickwire_tests::net::{self, ServerProcess};
use tickwire_tests::redis::RedisServer;

const CLI: &str = env!("CARGO_BIN_EXE_tickwire-test-server");

/// How long a condition may take to come true.
const DEADLINE: Duration = Duration::from_secs(15);

/// A `tickwire serve --redis …` process with a presence TTL of `ttl` seconds.
async fn instance(redis: &RedisServer, ttl: &str) -> (ServerProcess, String) {
    instance_with(redis, ttl, &[]).await
}

/// [`instance`] with more flags.
async fn instance_with(redis: &RedisServer, ttl: &str, more: &[&str]) -> (ServerProcess, String) {
    let url = redis.url();
    let mut args =
        vec!["--redis", &url, "--presence-ttl", ttl, "--npcs", "0", "--quic-bind", "off"];
    args.extend_from_slice(more);
    let server = ServerProcess::start(CLI, &args).await;
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

    // A page served by b may play on a (the matchmaker sends players across instances);
    // another origin may not.
    let query = format!("v={}&token={}", tickwire_shared::protocol::PROTOCOL_VERSION, net::token());
    let from_b = format!("http://{}", b.addr);
    net::connect_with(a.addr, &query, &[("Origin", &from_b)]).await.expect("b's page is welcome");
    let refused =
        net::connect_with(a.addr, &query, &[("Origin", "http://elsewhere.example")]).await;
    assert_eq!(refused.expect_err("another origin").0, 403);
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

    metric_until(a.addr, "tickwire_cluster_subscribed", 1.0).await;
    redis.kill();
    metric_until(a.addr, "tickwire_redis_up", 0.0).await;
    metric_until(a.addr, "tickwire_cluster_subscribed", 0.0).await;
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
    metric_until(a.addr, "tickwire_cluster_subscribed", 1.0).await;
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
    let err = run(&["--redis", "redis://127.0.0.1:1", "--quic-bind", "off"]);
    assert!(err.contains("needs --jwt-secret"), "{err}");
    let secret = "a-test-secret-of-at-least-32-bytes!!";
    let err = run(&[
        "--redis",
        "redis://127.0.0.1:1",
        "--jwt-secret",
        secret,
        "--bind",
        "0.0.0.0:0",
        "--quic-bind",
        "off",
    ]);
    assert!(err.contains("needs --public-url"), "{err}");
}

/// What `GET /api/matchmake` answered, and how long it took.
async fn matchmake(addr: SocketAddr, query: &str) -> (Value, Duration) {
    let asked = Instant::now();
    let (status, body) = net::http(addr, "GET", &format!("/api/matchmake?{query}")).await;
    let took = asked.elapsed();
    assert_eq!(status, 200, "{body}");
    (serde_json::from_str(&body).expect("JSON"), took)
}

/// The address in a placement's `ws://ADDR/ws`.
fn ws_addr(place: &Value) -> SocketAddr {
    let url = place["url"].as_str().expect("url");
    url.strip_prefix("ws://")
        .and_then(|r| r.strip_suffix("/ws"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not a ws:// URL: {place}"))
}

/// Joins where a placement says, with its seat.
async fn join_placed(place: &Value, name: &str) -> Result<net::Ws, (u16, String)> {
    let query = format!(
        "v={}&token={}&name={name}&room={}&seat={}",
        tickwire_shared::protocol::PROTOCOL_VERSION,
        net::token_for(name),
        place["room"].as_str().expect("room"),
        place["seat"].as_str().expect("seat"),
    );
    let mut ws = net::connect_with(ws_addr(place), &query, &[]).await?;
    match net::recv(&mut ws).await {
        net::Received::Message(tickwire_shared::protocol::ServerMessage::Welcome(_)) => Ok(ws),
        net::Received::Close(code, reason) => Err((code, reason)),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::test]
async fn two_hundred_players_matchmaking_at_once_through_two_instances_never_overfill_a_room() {
    const PLAYERS: usize = 200;
    const CAPACITY: usize = 8;
    let redis = RedisServer::start();
    let (a, _) =
        instance_with(&redis, "2", &["--room-capacity", "8", "--max-connections-per-ip", "512"])
            .await;
    let (b, _) =
        instance_with(&redis, "2", &["--room-capacity", "8", "--max-connections-per-ip", "512"])
            .await;
    rooms_until(a.addr, "a sees b", |v| instance_ids(v).len() == 2).await;

    // All at once, as many as the server lets one address have waiting at a time (64
    // connections before their response or upgrade, its guard against slowloris).
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(48));
    let joins: Vec<_> = (0..PLAYERS)
        .map(|i| {
            let via = if i % 2 == 0 { a.addr } else { b.addr };
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                let permit = in_flight.acquire_owned().await.unwrap();
                let (place, took) = matchmake(via, "game=arena").await;
                let ws = join_placed(&place, &format!("p{i}"))
                    .await
                    .unwrap_or_else(|e| panic!("p{i} could not take its seat {place}: {e:?}"));
                drop(permit);
                (ws, took, place["instance"].as_str().unwrap().to_owned())
            })
        })
        .collect();
    let mut sessions = Vec::new();
    let mut latencies = Vec::new();
    let mut on = std::collections::BTreeMap::<String, usize>::new();
    for join in joins {
        let (ws, took, instance) = join.await.expect("a player's task");
        sessions.push(ws);
        latencies.push(took);
        *on.entry(instance).or_default() += 1;
    }
    latencies.sort();
    println!(
        "{PLAYERS} matchmakes at once through two instances: p50 {:?}, p99 {:?}, max {:?}; players per instance {on:?}",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies[PLAYERS - 1],
    );

    let answer = rooms_until(a.addr, "every player counted", |v| {
        v["rooms"].as_array().unwrap().iter().map(|r| r["players"].as_u64().unwrap()).sum::<u64>()
            == PLAYERS as u64
    })
    .await;
    let rooms = answer["rooms"].as_array().unwrap();
    for room in rooms {
        assert!(room["players"].as_u64().unwrap() <= CAPACITY as u64, "overfilled: {room}");
    }
    // Seats go to the fullest room with space: the rooms are (all but perhaps one or two) full.
    println!("{} rooms for {PLAYERS} players in rooms of {CAPACITY}", rooms.len());
    assert!(rooms.len() <= PLAYERS / CAPACITY + 2, "{} rooms: {answer:#}", rooms.len());
    assert!(on.len() == 2, "new rooms went to one instance only: {on:?}");

    // One at a time, the matchmaker's own latency.
    let mut one_by_one = Vec::new();
    for _ in 0..100 {
        one_by_one.push(matchmake(b.addr, "game=arena").await.1);
    }
    one_by_one.sort();
    println!(
        "100 matchmakes one after another: p50 {:?}, p99 {:?}",
        quantile(&one_by_one, 0.5),
        quantile(&one_by_one, 0.99)
    );
    // The server counts them too: b placed half of the 200 and the 100.
    let (_, text) = net::http(b.addr, "GET", "/metrics").await;
    let placed = net::metric(&text, "tickwire_matchmake_duration_seconds_count ");
    assert_eq!(placed, (PLAYERS / 2 + 100) as f64, "{text}");
    drop(sessions);
}

#[tokio::test]
async fn a_seat_is_only_good_for_its_room_on_its_instance() {
    let redis = RedisServer::start();
    let (a, a_id) = instance(&redis, "2").await;
    let (b, _) = instance(&redis, "2").await;
    // A seat on a: b refuses it, a forged one is refused, a takes the real one.
    let place = loop {
        let (place, _) = matchmake(a.addr, "game=soccer").await;
        if place["instance"] == a_id.as_str() {
            break place;
        }
    };
    assert_eq!(place["game"], "soccer");
    let mut elsewhere = place.clone();
    elsewhere["url"] = format!("ws://{}/ws", b.addr).into();
    let (status, why) = join_placed(&elsewhere, "x").await.expect_err("refused");
    assert_eq!(status, 400, "{why}");
    assert!(why.contains("not this one"), "{why}");

    let mut forged = place.clone();
    let seat = place["seat"].as_str().unwrap();
    forged["seat"] = format!("{}x", &seat[..seat.len() - 1]).into();
    let (status, why) = join_placed(&forged, "x").await.expect_err("refused");
    assert_eq!((status, why.contains("seat")), (400, true), "{why}");

    let mut other_room = place.clone();
    other_room["room"] = "somewhere-else".into();
    let (status, why) = join_placed(&other_room, "x").await.expect_err("refused");
    assert_eq!((status, why.contains("for room")), (400, true), "{why}");

    let _player = join_placed(&place, "y").await.expect("the seat's own room");
    let answer = rooms_until(a.addr, "the seat's room, playing soccer", |v| {
        room(v, place["room"].as_str().unwrap()).is_some_and(|r| r["players"] == 1)
    })
    .await;
    assert_eq!(room(&answer, place["room"].as_str().unwrap()).unwrap()["game"], "soccer");

    // A server on its own has no use for seats.
    let alone = ServerProcess::start(CLI, &["--quic-bind", "off"]).await;
    let (status, body) = net::http(alone.addr, "GET", "/api/matchmake?game=arena").await;
    assert_eq!(status, 200);
    let own: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((own["url"].as_str(), own["seat"].is_null()), (Some("/ws"), true), "{own}");
    let mut stray = place.clone();
    stray["url"] = format!("ws://{}/ws", alone.addr).into();
    let (status, why) = join_placed(&stray, "x").await.expect_err("refused");
    assert_eq!((status, why.contains("not in a cluster")), (400, true), "{why}");
    let (status, _) = net::http(alone.addr, "GET", "/api/matchmake?game=chess").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_named_room_is_found_on_the_instance_that_holds_it() {
    let redis = RedisServer::start();
    let (a, _) = instance(&redis, "2").await;
    let (b, _) = instance(&redis, "2").await;
    rooms_until(a.addr, "a sees b", |v| instance_ids(v).len() == 2).await;
    // Two players name a new room at once through both instances: one instance holds it.
    let (via_a, via_b) =
        tokio::join!(matchmake(a.addr, "room=lobby"), matchmake(b.addr, "room=lobby"));
    assert_eq!(via_a.0["url"], via_b.0["url"], "{} / {}", via_a.0, via_b.0);
    assert!(via_a.0["seat"].is_null());
    let holder = ws_addr(&via_a.0);
    let (_first, _) = net::join_as(holder, "ann", "&room=lobby").await;
    let (_second, _) = net::join_as(holder, "bob", "&room=lobby").await;
    rooms_until(a.addr, "lobby with both", |v| room(v, "lobby").is_some_and(|r| r["players"] == 2))
        .await;
    // Later, and after its first reservation of the name lapsed, it is still found there.
    let (again, _) = matchmake(if holder == a.addr { b.addr } else { a.addr }, "room=lobby").await;
    assert_eq!(ws_addr(&again), holder, "{again}");
}

#[tokio::test]
async fn bots_matchmake_across_the_cluster() {
    let redis = RedisServer::start();
    let (a, _) = instance_with(&redis, "2", &["--room-capacity", "4"]).await;
    let (b, _) = instance_with(&redis, "2", &["--room-capacity", "4"]).await;
    rooms_until(a.addr, "a sees b", |v| instance_ids(v).len() == 2).await;
    let report =
        std::env::temp_dir().join(format!("tickwire-cluster-bots-{}.json", std::process::id()));
    let out = Command::new(CLI)
        .args(["bots", "--url", &format!("ws://{}/ws", a.addr), "--count", "12", "--duration", "3"])
        .args(["--matchmake", "--ramp-up", "50", "--token", &net::token(), "--report"])
        .arg(&report)
        .output()
        .expect("bots run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    std::fs::remove_file(&report).ok();
    assert_eq!(json["bots"]["connected"], 12, "{json:#}");
    // Twelve bots in rooms of four: three rooms, spread over both instances.
    let (_, metrics_b) = net::http(b.addr, "GET", "/metrics").await;
    let (_, metrics_a) = net::http(a.addr, "GET", "/metrics").await;
    let rooms = |t: &str| net::metric(t, "tickwire_rooms ");
    println!("rooms on a: {}, on b: {}", rooms(&metrics_a), rooms(&metrics_b));
    assert!(rooms(&metrics_b) >= 1.0, "no bot went to b");
}

const ADMIN: &str = "an-admin-token-of-at-least-32-bytes!!";

/// The next chat line `ws` receives (snapshots and events skipped), or panics at the deadline.
async fn next_chat(ws: &mut net::Ws) -> (tickwire_shared::NetId, String, String) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "no chat line");
        match net::recv(ws).await {
            net::Received::Message(tickwire_shared::protocol::ServerMessage::Chat {
                from,
                name,
                text,
            }) => return (from, name, text),
            net::Received::Message(_) => {}
            other => panic!("the session ended: {other:?}"),
        }
    }
}

async fn chat(ws: &mut net::Ws, text: &str) {
    net::send(ws, &tickwire_shared::protocol::ClientMessage::Chat { text: text.into() }).await;
}

/// `POST /api/admin/broadcast` with the token and the text; the status and body.
async fn broadcast(addr: SocketAddr, token: &str, text: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /api/admin/broadcast HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut response))
        .await
        .expect("an answer")
        .expect("read");
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_lobby_broadcasts_and_presence_span_the_cluster() {
    use tickwire_shared::protocol::SERVER_NET_ID;
    let redis = RedisServer::start();
    let (a, a_id) = instance_with(&redis, "2", &["--admin-token", ADMIN]).await;
    let (b, b_id) = instance_with(&redis, "2", &["--admin-token", ADMIN]).await;
    rooms_until(a.addr, "a sees b", |v| instance_ids(v).len() == 2).await;
    let (mut alice, _) = net::join_as(a.addr, "alice", "&room=alpha&name=alice").await;
    let (mut bob, _) = net::join_as(b.addr, "bob", "&room=beta&name=bob").await;
    // A line published before an instance subscribed would not reach it.
    metric_until(a.addr, "tickwire_cluster_subscribed", 1.0).await;
    metric_until(b.addr, "tickwire_cluster_subscribed", 1.0).await;

    // A lobby line from a's room reaches b's room (and its sender's), once each.
    chat(&mut alice, "/lobby hello everyone").await;
    let (from, name, text) = next_chat(&mut bob).await;
    assert_eq!(
        (from, name.as_str(), text.as_str()),
        (SERVER_NET_ID, "alice (lobby)", "hello everyone")
    );
    assert_eq!(next_chat(&mut alice).await.2, "hello everyone");
    // A room line stays in its room.
    chat(&mut alice, "just us").await;
    assert_eq!(next_chat(&mut alice).await.2, "just us");

    // An operator's broadcast, sent to b, reaches both.
    assert_eq!(broadcast(b.addr, "wrong-token-wrong-token-wrong-token", "x").await.0, 401);
    let (status, body) = broadcast(b.addr, ADMIN, "restart at 05:00").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"instances\":2"), "{body}");
    for ws in [&mut alice, &mut bob] {
        let (from, name, text) = next_chat(ws).await;
        assert_eq!(
            (from, name.as_str(), text.as_str()),
            (SERVER_NET_ID, "server", "restart at 05:00")
        );
    }
    assert_eq!(broadcast(b.addr, ADMIN, "").await.0, 400);

    // Presence: any instance says where a player is; gone once its session ended.
    let found = |addr: SocketAddr, id: &'static str| async move {
        let (status, body) = net::http(addr, "GET", &format!("/api/players/{id}")).await;
        (status, serde_json::from_str::<Value>(&body).unwrap_or(Value::Null))
    };
    let deadline = Instant::now() + DEADLINE;
    let bob_seen = loop {
        let (status, seen) = found(a.addr, "bob").await;
        if status == 200 {
            break seen;
        }
        assert!(Instant::now() < deadline, "a never saw bob: {status} {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(bob_seen["room"], "beta");
    assert_eq!(bob_seen["instance"], b_id.as_str());
    assert_eq!(bob_seen["url"], format!("ws://{}/ws", b.addr));
    let (status, alice_seen) = found(a.addr, "alice").await;
    assert_eq!((status, alice_seen["instance"].as_str()), (200, Some(a_id.as_str())));
    drop(bob);
    let deadline = Instant::now() + DEADLINE;
    while found(a.addr, "bob").await.0 != 404 {
        assert!(Instant::now() < deadline, "bob still present");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found(b.addr, "nobody").await.0, 404);
}

#[tokio::test]
async fn a_process_on_its_own_has_a_lobby_and_presence_across_its_rooms() {
    use tickwire_shared::protocol::SERVER_NET_ID;
    let server = ServerProcess::start(CLI, &["--quic-bind", "off", "--npcs", "0"]).await;
    let (mut ann, _) = net::join_as(server.addr, "ann", "&room=one&name=ann").await;
    let (mut ben, _) = net::join_as(server.addr, "ben", "&room=two&name=ben").await;
    chat(&mut ann, "/lobby anyone for soccer?").await;
    assert_eq!(
        next_chat(&mut ben).await,
        (SERVER_NET_ID, "ann (lobby)".into(), "anyone for soccer?".into())
    );
    let (status, body) = net::http(server.addr, "GET", "/api/players/ben").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"room\":\"two\""), "{body}");
    // No admin token: no admin API.
    assert_eq!(broadcast(server.addr, ADMIN, "hi").await.0, 404);
}

#[tokio::test]
async fn an_unused_seat_is_free_again_after_the_seat_ttl() {
    let redis = RedisServer::start();
    let flags = ["--room-capacity", "2", "--seat-ttl", "1"];
    let (a, _) = instance_with(&redis, "1", &flags).await;
    let (first, _) = matchmake(a.addr, "game=arena").await;
    let room = first["room"].as_str().unwrap().to_owned();
    let _player = join_placed(&first, "p1").await.expect("a seat");
    rooms_until(a.addr, "the player counted", |v| {
        self::room(v, &room).is_some_and(|r| r["players"] == 1)
    })
    .await;
    // The second seat is reserved and never used: the room is full until it lapses.
    let (unused, _) = matchmake(a.addr, "game=arena").await;
    assert_eq!(unused["room"], room.as_str());
    let (third, _) = matchmake(a.addr, "game=arena").await;
    assert_ne!(third["room"], room.as_str(), "the room was full with the reservation");
    // Wait until both reservations are past their second (by Redis's own scores: the
    // milliseconds since the epoch they expire at), then ask again: the first room, one
    // player and nothing reserved, is the fullest with space.
    let reserved_at = Instant::now();
    for r in [&room, third["room"].as_str().unwrap()] {
        let key = format!("tickwire:seats:{r}");
        let deadline = Instant::now() + DEADLINE;
        loop {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                .to_string();
            if redis.command(&["ZCOUNT", &key, &now_ms, "+inf"]).unwrap() == ":0" {
                break;
            }
            assert!(Instant::now() < deadline, "a reservation in {r} never lapsed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    println!("the unused seats lapsed after {:?}", reserved_at.elapsed());
    let (again, _) = matchmake(a.addr, "game=arena").await;
    assert_eq!(again["room"], room.as_str(), "{again}");
}

/// Every combatant's score in `client`'s newest snapshot: id → (kills, deaths).
fn scores(
    client: &tickwire_shared::client::Client<ArenaGame>,
) -> std::collections::BTreeMap<u32, (u16, u16)> {
    let mut out = std::collections::BTreeMap::new();
    let Some((_, state)) = client.latest() else { return out };
    let r = client.registry();
    for e in state.iter() {
        if let (Some(kind), Some(score)) = (r.get::<Kind>(e), r.get::<Score>(e))
            && kind.is_combatant()
        {
            out.insert(e.id.0, (score.kills, score.deaths));
        }
    }
    out
}

/// Reads `ws` into `client` until `done` says so; returns the `Disconnect` if one came first.
async fn read_until(
    ws: &mut net::Ws,
    client: &mut tickwire_shared::client::Client<ArenaGame>,
    what: &str,
    mut done: impl FnMut(&tickwire_shared::client::Client<ArenaGame>) -> bool,
) -> Option<(DisconnectReason, String)> {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let epoch = Instant::now();
    loop {
        if done(client) {
            return None;
        }
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{what}: not before the deadline"));
        match frame {
            Some(Ok(Message::Binary(b))) => {
                if let Ok(ServerMessage::Disconnect { reason, message }) = codec::decode_server(&b)
                {
                    return Some((reason, message));
                }
                let _ = client.handle_bytes(epoch.elapsed().as_micros() as u64, &b);
            }
            Some(Ok(_)) => {}
            other => panic!("{what}: the session ended without a Disconnect: {other:?}"),
        }
    }
}

/// Issue 17, item 4: a rolling restart. Instance A holds a match (NPCs fighting, bots, an
/// observing player); B joins the cluster; A is stopped (SIGTERM). The match goes on at B from
/// the tick it stopped at, every player the same entity, every score intact, and the bots
/// follow it by themselves.
#[tokio::test]
async fn a_rolling_restart_moves_the_match_with_its_players_entities_and_scores() {
    let redis = RedisServer::start();
    let url = redis.url();
    let args = [
        "--redis",
        &url,
        "--presence-ttl",
        "2",
        "--npcs",
        "6",
        "--interest-radius",
        "2000",
        "--quic-bind",
        "off",
    ];
    let mut a = ServerProcess::start(CLI, &args).await;
    let report =
        std::env::temp_dir().join(format!("tickwire-restart-bots-{}.json", std::process::id()));
    let bots = Command::new(CLI)
        .args(["bots", "--url", &format!("ws://{}/ws", a.addr), "--count", "4"])
        .args(["--duration", "20", "--room", "restart", "--behavior", "fight"])
        .args(["--token", &net::token(), "--report"])
        .arg(&report)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bots start");
    let (mut ws, welcome) = net::join_as(a.addr, "observer", "&room=restart&name=obs").await;
    let mut client = tickwire_shared::client::Client::<ArenaGame>::new(Default::default());
    let hello = codec::encode_server(&ServerMessage::Welcome(welcome.clone())).unwrap();
    client.handle_bytes(0, &hello).unwrap();

    let b = ServerProcess::start(CLI, &args).await;
    rooms_until(a.addr, "a sees b", |v| instance_ids(v).len() == 2).await;
    // The match is on: somebody has scored (or died).
    let moved = read_until(&mut ws, &mut client, "a score", |c| {
        scores(c).values().any(|&(k, d)| k + d > 0)
    })
    .await;
    assert_eq!(moved, None);
    let before = scores(&client);
    let (before_tick, _) = client.latest().unwrap();

    // A rolling restart: A is told to stop.
    let status = Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let stopped = Instant::now();
    let mut last_on_a = (before_tick, Instant::now());
    let told = read_until(&mut ws, &mut client, "the move", |c| {
        if let Some((t, _)) = c.latest()
            && t != last_on_a.0
        {
            last_on_a = (t, Instant::now());
        }
        false
    })
    .await;
    let (reason, to) = told.expect("a Disconnect");
    assert_eq!(reason, DisconnectReason::Moved, "{to}");
    assert_eq!(to, format!("ws://{}/ws", b.addr), "the room went to b");
    println!("told to move {:?} after the SIGTERM", stopped.elapsed());

    // Back at b with the resume token: the same entity, the tick where it was.
    let query = format!("&room=restart&name=obs&resume={}", welcome.resume_token);
    let (mut ws, again) = net::join_as(b.addr, "observer", &query).await;
    assert_eq!(again.entity, welcome.entity, "the same entity");
    assert_eq!(again.room, "restart");
    let ahead = again.tick.diff(last_on_a.0);
    assert!((0..60).contains(&ahead), "the tick went on from {:?}: {:?}", last_on_a.0, again.tick);
    let hello = codec::encode_server(&ServerMessage::Welcome(again)).unwrap();
    client.handle_bytes(0, &hello).unwrap();
    let first_tick = client.latest().map(|(t, _)| t);
    let gone = read_until(&mut ws, &mut client, "a snapshot at b", |c| {
        c.latest().map(|(t, _)| t) != first_tick
    })
    .await;
    assert_eq!(gone, None);
    let pause = last_on_a.1.elapsed();
    println!("the observer's pause: {pause:?} (last snapshot at a to the first at b)");
    let after = scores(&client);
    for (id, (kills, deaths)) in &before {
        let (k, d) = after.get(id).copied().unwrap_or_else(|| panic!("#{id} is gone: {after:?}"));
        assert!(
            k >= *kills && d >= *deaths,
            "#{id}: {:?} before, {:?} after",
            (kills, deaths),
            (k, d)
        );
    }
    assert!(pause < Duration::from_secs(3), "{pause:?}");
    // b holds the match now, with everyone: the observer and the four bots (which are still
    // playing).
    rooms_until(b.addr, "b holds the room with everyone", |v| {
        room(v, "restart").is_some_and(|r| r["players"] == 5)
    })
    .await;

    // The bots followed by themselves.
    let out = bots.wait_with_output().expect("bots end");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    std::fs::remove_file(&report).ok();
    println!("bots: {}", json["moves"]);
    assert_eq!(json["bots"]["completed"], 4, "{json:#}");
    assert_eq!(json["moves"]["bots_moved"], 4, "{:#}", json["moves"]);
    assert_eq!(json["moves"]["same_entity"], 4, "{:#}", json["per_bot"]);
    assert!(json["moves"]["pause_ms"]["max"].as_f64().unwrap() < 3000.0, "{:#}", json["moves"]);
    let status = a.child.wait().unwrap();
    assert!(status.success(), "a stopped cleanly: {status:?}");
}
