//! The bandwidth governor (issue 18, item 2) over real sockets: `--client-kbps` at a third of
//! what a client of a soccer room receives unconstrained holds its snapshots to about that
//! rate, a real client decodes every one of them and holds every entity, and `/metrics` shows
//! the per-client and per-component series (gone with the client).
//!
//! Soccer, not the arena: the arena's NPCs shoot all the time, and at a third of its rate the
//! projectiles to spawn alone need more than the budget to keep the staleness bound (the
//! bound wins there: `room::MAX_STALE_SNAPSHOTS`).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tickwire_server::config::ServerConfig;
use tickwire_shared::client::{Client, ClientConfig};
use tickwire_shared::codec;
use tickwire_shared::games::soccer::{SoccerGame, SoccerInput};
use tickwire_shared::protocol::{PROTOCOL_VERSION, ServerMessage};
use tickwire_shared::room::MAX_STALE_SNAPSHOTS;
use tickwire_tests::net;
use tokio_tungstenite::tungstenite::Message;

/// NPCs in the room: enough moving players that the snapshots are worth governing.
const NPCS: usize = 40;

/// How long each run is measured, after a second to settle.
const MEASURE: Duration = Duration::from_secs(3);

fn config(client_kbps: u32) -> ServerConfig {
    ServerConfig {
        npc_count: NPCS,
        client_kbps,
        inspect: true,
        game: "soccer".into(),
        ..net::test_config()
    }
}

/// What one client saw of a run.
struct Seen {
    /// Snapshot bytes a second over the measured window.
    snapshot_bytes_per_sec: f64,
    /// Its client id.
    client: u32,
    /// Snapshots decoded, and the entities in the newest.
    snapshots: u64,
    entities: usize,
    /// The socket, still open.
    ws: net::Ws,
}

/// Plays as a real client (the shared `Client`, acknowledging each snapshot in an input) in
/// room `room` of the server at `addr`, and measures the snapshot bytes it receives.
async fn play(addr: SocketAddr, room: &str) -> Seen {
    let query = format!("v={PROTOCOL_VERSION}&token={}&room={room}&name=ann", net::token());
    let mut ws = net::connect_with(addr, &query, &[]).await.expect("handshake accepted");
    let mut client = Client::<SoccerGame>::new(ClientConfig::default());
    let start = tokio::time::Instant::now();
    let (from, until) = (start + Duration::from_secs(1), start + Duration::from_secs(1) + MEASURE);
    let mut bytes = 0usize;
    let mut now_us = 0u64;
    while tokio::time::Instant::now() < until {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the session goes on")
            .expect("a frame");
        let Message::Binary(b) = frame else { continue };
        now_us += 1;
        let snapshot = matches!(codec::decode_server(&b), Ok(ServerMessage::Snapshot(_)));
        client.handle_bytes(now_us, &b).expect("every message decodes on the client");
        if !snapshot {
            continue;
        }
        if tokio::time::Instant::now() >= from {
            bytes += b.len();
        }
        client.push_input(SoccerInput::default());
        while let Some(out) = client.poll_transmit() {
            ws.send(Message::Binary(out.into())).await.expect("sent");
        }
    }
    let client_id = client.welcome().expect("welcomed").client_id.0;
    Seen {
        snapshot_bytes_per_sec: bytes as f64 / MEASURE.as_secs_f64(),
        client: client_id,
        snapshots: client.stats().snapshots,
        entities: client.latest().map_or(0, |(_, s)| s.len()),
        ws,
    }
}

/// Polls `/metrics` until `ok` holds (15 s at most); returns the text.
async fn metrics_until(addr: SocketAddr, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, text) = net::http(addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        if ok(&text) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_third_of_the_unconstrained_rate_holds_and_the_metrics_show_it() {
    // Unconstrained: what a client of this room receives.
    let server = net::start(config(0)).await;
    let free = play(server.local_addr(), "free").await;
    drop(free.ws);
    drop(server);
    let kbps = (free.snapshot_bytes_per_sec * 8.0 / 1000.0 / 3.0) as u32;
    assert!(kbps >= 8, "too little traffic to govern: {} B/s", free.snapshot_bytes_per_sec);

    // Governed at a third of it.
    let server = net::start(config(kbps)).await;
    let addr = server.local_addr();
    let seen = play(addr, "gov").await;
    let budget = f64::from(kbps) * 125.0;
    eprintln!(
        "unconstrained {:.0} B/s ({} snapshots, {} entities); --client-kbps {kbps} ({budget} \
         B/s): {:.0} B/s ({} snapshots, {} entities)",
        free.snapshot_bytes_per_sec,
        free.snapshots,
        free.entities,
        seen.snapshot_bytes_per_sec,
        seen.snapshots,
        seen.entities,
    );
    // About the budget or less (the bucket carries half a snapshot's budget at most), and far
    // below the unconstrained rate; every snapshot still came (none skipped for want of
    // budget), with the whole room in it over time.
    assert!(seen.snapshot_bytes_per_sec <= budget * 1.1, "over budget");
    assert!(seen.snapshot_bytes_per_sec < free.snapshot_bytes_per_sec / 2.5);
    assert!(seen.snapshots * 10 >= free.snapshots * 9, "{} of {}", seen.snapshots, free.snapshots);
    assert!(seen.entities * 10 >= free.entities * 9, "{} of {}", seen.entities, free.entities);

    // The metrics: this client's bytes and staleness, the components' bytes, the governor.
    let client = format!("{{room=\"gov\",client=\"{}\"}}", seen.client);
    let bytes_series = format!("tickwire_client_bytes_sent_total{client}");
    let stale_series = format!("tickwire_client_max_stale_ticks{client}");
    let text = metrics_until(addr, "the client's series", |t| {
        net::metric(t, &bytes_series) > 0.0 && t.contains(&stale_series)
    })
    .await;
    let stale = net::metric(&text, &stale_series);
    eprintln!(
        "oldest value held: {stale} ticks; updates left out {}, forced {}",
        net::metric(&text, "tickwire_governor_left_out_total"),
        net::metric(&text, "tickwire_governor_forced_total"),
    );
    let bound = f64::from(MAX_STALE_SNAPSHOTS * 2);
    assert!((1.0..=bound).contains(&stale), "{stale} ticks, bound {bound}");
    assert!(net::metric(&text, "tickwire_governor_left_out_total") > 0.0);
    assert!(net::metric(&text, "tickwire_governor_max_stale_ticks") <= bound);
    let position = "tickwire_snapshot_component_bytes_total{component=\"Position\"}";
    assert!(net::metric(&text, position) > 0.0, "{text}");
    let sent = net::metric(&text, &bytes_series);
    assert!(sent >= budget, "{sent} bytes sent in over {MEASURE:?}");

    // The inspector's record of the client says the same.
    let (status, body) = net::http(addr, "GET", "/api/inspect").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let governor = &v["rooms"][0]["clients"][0]["governor"];
    assert_eq!(governor["budget_bytes"], u64::from(kbps) * 125 * 2 / 60, "{v:#}");
    assert!(governor["left_out"].as_u64().unwrap() > 0, "{v:#}");

    // The client leaves: its series go.
    drop(seen.ws);
    metrics_until(addr, "the client's series gone", |t| !t.contains(&client)).await;
}
