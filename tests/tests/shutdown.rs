//! SIGTERM: the `tickwire serve` process closes every session with 1001 and a reason, and exits
//! 0 within a couple of seconds.

use std::process::Command;
use std::time::{Duration, Instant};

use tickwire_shared::protocol::ServerMessage;
use tickwire_tests::net;

#[tokio::test]
async fn sigterm_closes_every_session_with_1001_and_exits_0() {
    let mut server =
        net::ServerProcess::start(env!("CARGO_BIN_EXE_tickwire-test-server"), &[]).await;
    let addr = server.addr;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut ws = net::connect(addr, &format!("&name=p{i}")).await;
        // Wait until the session is live (Welcome received).
        assert!(matches!(net::recv(&mut ws).await, net::Received::Message(_)));
        clients.push(ws);
    }

    let status =
        Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let signalled = Instant::now();

    for ws in &mut clients {
        let (code, reason) = net::expect_close(ws).await;
        assert_eq!(code, 1001, "{reason}");
        assert!(reason.contains("shutting down"), "{reason}");
    }
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(signalled.elapsed() < Duration::from_secs(5), "still running 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(4), "took {:?}", signalled.elapsed());
}

/// `tickwire serve --dev` (issue 18, item 5): a restart keeps the match. The player resumes in
/// the restarted process as the same entity, in the same room, with the tick going on from
/// where it stopped; it may come back with another token (a page fetches a new guest token
/// when its old server is gone). A save that no longer restores is set aside, not fatal.
#[tokio::test]
async fn a_dev_restart_brings_the_match_back_and_its_players_resume() {
    let bin = env!("CARGO_BIN_EXE_tickwire-test-server");
    let dir = std::env::temp_dir().join(format!("tickwire-dev-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_string_lossy().into_owned();
    let args = ["--dev", "--dev-state", &dir_arg, "--npcs", "3", "--quic-bind", "off"];

    let mut first = net::ServerProcess::start(bin, &args).await;
    let (mut ws, welcome) = net::join_as(first.addr, "alice", "&room=devroom&name=alice").await;
    let mut last_tick = welcome.tick;
    // A second of play, so the room is well past its first tick.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let net::Received::Message(ServerMessage::Snapshot(s)) = net::recv(&mut ws).await {
            last_tick = s.tick;
        }
    }
    let status = Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status();
    assert!(status.unwrap().success());
    let (code, _) = net::expect_close(&mut ws).await;
    assert_eq!(code, 1001);
    assert!(first.child.wait().unwrap().success());
    let saved = dir.join("rooms").join("devroom.named.room");
    assert!(saved.exists(), "the room was kept in {}", dir.display());
    // A save from an older build of the rules: set aside, the server starts anyway.
    std::fs::write(dir.join("rooms").join("old.room"), b"not a save").unwrap();

    let second = net::ServerProcess::start(bin, &args).await;
    let query = format!("&room=devroom&name=alice&resume={}", welcome.resume_token);
    let (_ws, again) = net::join_as(second.addr, "someone-else", &query).await;
    assert_eq!(again.resume_token, welcome.resume_token, "resumed, not a new player");
    assert_eq!(again.entity, welcome.entity, "the same entity");
    assert_eq!(again.room, "devroom");
    let ahead = again.tick.diff(last_tick);
    assert!((0..600).contains(&ahead), "the tick went on from {last_tick:?}: {:?}", again.tick);
    assert!(!saved.exists(), "restored once, then removed");
    assert!(dir.join("rooms").join("old.failed").exists(), "the bad save is set aside");
    let _ = std::fs::remove_dir_all(&dir);
}
