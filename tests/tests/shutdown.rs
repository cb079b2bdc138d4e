//! SIGTERM: the `tickwire serve` process closes every session with 1001 and a reason, and exits
//! 0 within a couple of seconds.

use std::process::Command;
use std::time::{Duration, Instant};

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
