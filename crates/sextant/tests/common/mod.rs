//! What the process tests share: the binary, a free port, a bare HTTP
//! client, one poll with a deadline and the wait for a started server to
//! answer.

#![allow(dead_code)] // each test file uses its own subset

pub mod server;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The `sextant` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sextant");

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request on a fresh connection; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Returns once the server on `port` answers `/health` (at most a minute).
pub fn wait_healthy(port: u16) {
    eventually(
        Duration::from_secs(60),
        "the server to become healthy",
        || (http(port, "GET", "/health", "").map(|r| r.0).ok() == Some(200)).then_some(()),
    );
}

/// What a probe of `eventually` answers: `Some`/`Ok` when the awaited state
/// is reached; `None`, or `Err` with what it saw instead, when not yet.
pub trait Probe<T> {
    fn settled(self) -> Result<T, String>;
}

impl<T> Probe<T> for Option<T> {
    fn settled(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".to_owned())
    }
}

impl<T, E: std::fmt::Display> Probe<T> for Result<T, E> {
    fn settled(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Polls `probe` until it settles, failing after `within` with `what` it was
/// waiting for and what the last probe saw. The pause between probes is a
/// poll interval, not a wait for the work: the deadline bounds the test.
pub fn eventually<T, P: Probe<T>>(within: Duration, what: &str, mut probe: impl FnMut() -> P) -> T {
    let deadline = Instant::now() + within;
    loop {
        let last = match probe().settled() {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}: {last}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
