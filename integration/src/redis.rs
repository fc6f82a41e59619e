//! A throwaway Redis server for tests: Debian's `redis-server` (or `REDIS_SERVER`) on
//! `127.0.0.1:<free port>`, without persistence (`--save '' --appendonly no`) and with its
//! working directory in a temp dir, so nothing outlives the test. It dies on drop and with the
//! test process ([`crate::spawn`]).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::spawn::spawn_tied;

/// How long a fresh server may take to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The `redis-server` binary: `REDIS_SERVER`, else `redis-server` on `PATH` (`make test-tools`
/// installs it).
pub fn redis_server_bin() -> PathBuf {
    std::env::var_os("REDIS_SERVER").map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
}

/// A running Redis server; killed on drop.
pub struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts a server on a free loopback port. Panics if it cannot (with its log).
    pub fn start() -> Redis {
        Self::try_start().unwrap_or_else(|e| panic!("start redis-server: {e}"))
    }

    pub fn try_start() -> Result<Redis, String> {
        // redis-server cannot be handed a listening socket, so the port is chosen by binding
        // port 0 and released just before the server binds it; another process may take it in
        // between, hence a few attempts.
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_once() {
                Ok(redis) => return Ok(redis),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once() -> Result<Redis, String> {
        let port = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("pick a port: {e}"))?
            .port();
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let log = dir.path().join("redis.log");
        let mut cmd = Command::new(redis_server_bin());
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_tied(cmd).map_err(|e| {
            format!(
                "{}: {e} (install it: make test-tools)",
                redis_server_bin().display()
            )
        })?;
        let mut redis = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if redis.ping() {
                return Ok(redis);
            }
            if let Ok(Some(status)) = redis.child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("redis-server exited ({status}): {log}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "redis-server on port {port} did not answer PING within {READY_WITHIN:?}"
        ))
    }

    /// `PING` in Redis's inline protocol answers `+PONG`.
    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`, for limitador's Redis storage.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
