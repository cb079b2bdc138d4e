//! SIGTERM: the `tickwire serve` process closes every session with 1001 and a reason, and exits
//! 0 within a couple of seconds.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tickwire_tests::net;

#[tokio::test]
async fn sigterm_closes_every_session_with_1001_and_exits_0() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickwire-test-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--jwt-secret", net::TEST_SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    // The first stdout line names the address.
    let stdout = child.stdout.take().expect("piped");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line =
        tokio::time::timeout(net::DEADLINE, line).await.expect("prints its URL").unwrap().unwrap();
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));

    let mut clients = Vec::new();
    for i in 0..3 {
        let mut ws = net::connect(addr, &format!("&name=p{i}")).await;
        // Wait until the session is live (Welcome received).
        assert!(matches!(net::recv(&mut ws).await, net::Received::Message(_)));
        clients.push(ws);
    }

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let signalled = Instant::now();

    for ws in &mut clients {
        let (code, reason) = net::expect_close(ws).await;
        assert_eq!(code, 1001, "{reason}");
        assert!(reason.contains("shutting down"), "{reason}");
    }
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(signalled.elapsed() < Duration::from_secs(5), "still running 5 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(4), "took {:?}", signalled.elapsed());
}
