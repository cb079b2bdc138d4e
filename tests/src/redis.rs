//! A real `redis-server` for the cluster tests, on a free port of its own, with nothing saved
//! to disk; killed when dropped. `scripts/setup.sh` installs it (Debian's package).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a redis-server may take to answer its first PING.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    /// Where it listens (127.0.0.1 and a port that was free).
    pub addr: SocketAddr,
}

impl RedisServer {
    /// Starts a redis-server on a free port and waits until it answers PING.
    ///
    /// # Panics
    ///
    /// No `redis-server` on the PATH (run `scripts/setup.sh`), or it does not answer in time.
    #[must_use]
    pub fn start() -> RedisServer {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server =
            RedisServer { child: None, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)) };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Kills the server (SIGKILL: what a crash or a lost host looks like to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty, and waits until it answers PING.
    ///
    /// # Panics
    ///
    /// It cannot be started or does not answer in time.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.addr.port().to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (is it installed? scripts/setup.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if self.command(&["PING"]).is_ok_and(|r| r == "+PONG") {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server on {} did not answer PING", self.addr);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one command and returns the first line of the reply (`+PONG`, `:1`, `$5`…).
    ///
    /// # Errors
    ///
    /// The server cannot be reached or does not answer within a second.
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream.take(64 * 1024));
        let mut line = String::new();
        reader.read_line(&mut line)?;
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
