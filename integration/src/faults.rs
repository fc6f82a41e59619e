//! A misbehaving HTTP/1.1 server for fault-injection tests: it serves a good answer (a JWKS, a
//! signed model file) or, switched at run time with [`FaultServer::set_fault`], one of the
//! ways an identity provider or model registry can fail on the wire ([`Fault`]): refused
//! connections, resets (RST) at every stage, bodies cut short or too large, broken or
//! oversized headers, a slow drip past the caller's timeout, error statuses and garbage.
//!
//! Raw sockets and one thread per connection (a fault may hold its connection for seconds);
//! every answer carries `connection: close` and the connection is closed after it, so each
//! request Envoy makes meets the fault that is current when it connects. Loopback only.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::model_server::etag;
use crate::serve::Reply;

/// What the server does with the next connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The good answer (200, the configured body).
    Good,
    /// Nothing listens on the port, so the kernel refuses connections: the listening socket
    /// is closed, and the same port is bound again when the fault changes.
    Refused,
    /// RST (`SO_LINGER` 0) right after the connection is accepted, before reading anything.
    ResetOnAccept,
    /// The good answer's status line and headers, then RST.
    ResetAfterHeaders,
    /// The good answer's headers and half of its body, then RST.
    ResetMidBody,
    /// `200` with `Content-Length: 5000`, 100 bytes of body, then an orderly close (FIN).
    CutShort,
    /// `200` with a body of this many bytes (the good body, padded with spaces).
    Oversized(usize),
    /// This status with a short JSON error body; `302` (and other 3xx) carry a `Location`.
    Status(u16),
    /// `200` with this body instead of the good one.
    Body(Vec<u8>),
    /// The good answer with `ETag: "\xff\xfe"` (not UTF-8) instead of its own.
    NonUtf8Header,
    /// The good answer plus an `x-padding` header of this many bytes.
    HugeHeader(usize),
    /// Read the request and answer nothing (until the client gives up).
    Stall,
    /// The good answer's headers, then its body one byte at a time, a byte per period.
    Drip(Duration),
    /// A status line that is not HTTP (`HTTP/1.1 2x0 Fine`).
    GarbageStatusLine,
}

impl Fault {
    /// Every way a polled list (a threat feed, the containment list) can fail: a body its
    /// parser refuses (`garbage`), one over its `max_bytes` (`oversized`), an error status, cut
    /// short, reset mid-body, stalled past the timeout, refused. Each with the reason obguard
    /// counts it under (`….fetch_failed.<reason>`).
    pub fn list_failures(garbage: &[u8], oversized: usize) -> Vec<(Self, &'static str)> {
        vec![
            (Self::Body(garbage.to_vec()), "invalid"),
            (Self::Oversized(oversized), "too_large"),
            (Self::Status(500), "status"),
            (Self::CutShort, "status"),
            (Self::ResetMidBody, "status"),
            (Self::Stall, "status"),
            (Self::Refused, "status"),
        ]
    }
}

struct State {
    fault: Fault,
    good: Reply,
    /// Connections accepted since the fault was last set.
    delivered: usize,
    /// Connections still being served (a stalled or dripping one until the client gives up).
    open: usize,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A running fault server on `127.0.0.1:<free port>`, path-agnostic. Stops on drop (the
/// threads still holding a connection notice within a poll period and close it).
pub struct FaultServer {
    port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// Serves `jwks` (`application/json`) as the good answer.
    pub fn jwks(jwks: &Value) -> FaultServer {
        Self::json(jwks)
    }

    /// Serves `body` (`application/json`) as the good answer (a JWKS, a consent).
    pub fn json(body: &Value) -> FaultServer {
        Self::start(Reply::json(200, body))
    }

    /// Serves `body` as a list (`content_type`, with an `ETag`; `If-None-Match` with it is
    /// answered `304`): a threat feed, a containment list.
    pub fn list(body: Vec<u8>, content_type: &str) -> FaultServer {
        Self::start(list_reply(body, content_type))
    }

    /// Replaces the list served (a new `ETag`).
    pub fn set_list(&self, body: Vec<u8>, content_type: &str) {
        self.shared.lock().good = list_reply(body, content_type);
    }

    /// Serves `file` (`application/octet-stream`, with an `ETag`) as the good answer.
    pub fn model(file: Vec<u8>) -> FaultServer {
        Self::start(model_reply(file))
    }

    fn start(good: Reply) -> FaultServer {
        let listener = bind(0).unwrap_or_else(|e| panic!("start fault server: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fault server address: {e}"))
            .port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                fault: Fault::Good,
                good,
                delivered: 0,
                open: 0,
            }),
            stop: AtomicBool::new(false),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("faults-{port}"))
            .spawn(move || accept_loop(Some(listener), port, &worker))
            .unwrap_or_else(|e| panic!("start fault server thread: {e}"));
        FaultServer {
            port,
            shared,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Misbehave this way from the next connection on (and count deliveries from 0).
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.shared.lock();
        state.fault = fault;
        state.delivered = 0;
    }

    /// Serve another good JWKS from now on.
    pub fn set_jwks(&self, jwks: &Value) {
        self.shared.lock().good = Reply::json(200, jwks);
    }

    /// Serve another good model file from now on.
    pub fn set_model(&self, file: Vec<u8>) {
        self.shared.lock().good = model_reply(file);
    }

    /// Connections accepted since the fault was last set (0 while [`Fault::Refused`]).
    pub fn delivered(&self) -> usize {
        self.shared.lock().delivered
    }

    /// Polls (up to `within`) until no connection is being served (every answer, however
    /// slow or broken, has been given up on or completed); returns whether it got there.
    pub fn wait_quiet(&self, within: Duration) -> bool {
        poll_until(within, || self.shared.lock().open == 0)
    }

    /// Polls (up to `within`) until the current fault has met at least `n` connections;
    /// returns whether it did.
    pub fn wait_delivered(&self, n: usize, within: Duration) -> bool {
        poll_until(within, || self.delivered() >= n)
    }
}

fn poll_until(within: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn list_reply(body: Vec<u8>, content_type: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            ("content-type".into(), content_type.into()),
            ("etag".into(), etag(&body)),
        ],
        body,
    }
}

fn model_reply(file: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/octet-stream".into()),
            ("etag".into(), etag(&file)),
        ],
        body: file,
    }
}

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(20);

fn bind(port: u16) -> std::io::Result<TcpListener> {
    // std sets SO_REUSEADDR, so the port can be bound again after `Refused` while earlier
    // connections linger in TIME_WAIT.
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn accept_loop(mut listener: Option<TcpListener>, port: u16, shared: &Arc<Shared>) {
    while !shared.stopping() {
        let refused = shared.lock().fault == Fault::Refused;
        if refused {
            // Closing the listening socket is what makes the kernel refuse (RST) new
            // connections.
            listener = None;
            std::thread::sleep(POLL);
            continue;
        }
        let Some(open) = &listener else {
            match bind(port) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!("fault server: cannot listen on port {port} again: {e}");
                    std::thread::sleep(POLL);
                }
            }
            continue;
        };
        match open.accept() {
            Ok((stream, _)) => {
                let (fault, good) = {
                    let mut state = shared.lock();
                    state.delivered += 1;
                    state.open += 1;
                    (state.fault.clone(), state.good.clone())
                };
                let conn = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name(format!("faults-{port}-conn"))
                    .spawn(move || {
                        serve(stream, &fault, &good, &conn);
                        conn.lock().open -= 1;
                    });
                if let Err(e) = spawned {
                    eprintln!("fault server: cannot start a connection thread: {e}");
                    shared.lock().open -= 1;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                eprintln!("fault server: accept: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Header lines as bytes (a fault may put non-UTF-8 bytes in a value).
type Headers = Vec<(String, Vec<u8>)>;

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// Status line and headers (with `content-length` and `connection: close`).
fn head(status: u16, headers: &Headers, content_length: usize) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {content_length}\r\n").as_bytes());
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

fn good_headers(good: &Reply) -> Headers {
    good.headers
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
        .collect()
}

/// Reads the request head (a GET: no body), up to 2 s; returns it.
fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    seen
}

/// Whether the request's `If-None-Match` names the good answer's `ETag`.
fn not_modified(request: &[u8], good: &Reply) -> bool {
    let Some((_, tag)) = good.headers.iter().find(|(n, _)| n == "etag") else {
        return false;
    };
    String::from_utf8_lossy(request).lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("if-none-match")
                && value.split(',').any(|t| t.trim() == tag)
        })
    })
}

/// Closes with RST instead of FIN: `SO_LINGER` on with a zero timeout, then close.
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized `linger` value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        eprintln!(
            "fault server: SO_LINGER: {}",
            std::io::Error::last_os_error()
        );
    }
    drop(stream);
}

/// An orderly close: FIN, then wait (briefly) for the client to close its side.
fn finish(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    hold(&mut stream, Duration::from_secs(2), shared);
}

/// Waits until the client closes (or `limit` passes, or the server stops), discarding
/// anything it sends.
fn hold(stream: &mut TcpStream, limit: Duration, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(POLL));
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline && !shared.stopping() {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Gives the client a moment to read what was written before the connection is reset.
const BEFORE_RESET: Duration = Duration::from_millis(50);

fn serve(mut stream: TcpStream, fault: &Fault, good: &Reply, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    if *fault == Fault::ResetOnAccept {
        reset(stream);
        return;
    }
    let request = read_request(&mut stream);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let headers = good_headers(good);
    let whole = |stream: &mut TcpStream, status: u16, headers: &Headers, body: &[u8]| {
        let _ = stream.write_all(&head(status, headers, body.len()));
        let _ = stream.write_all(body);
    };
    match fault {
        // (A connection accepted just before `Refused` was set is answered well; one meeting
        // `ResetOnAccept` never gets here.)
        Fault::Good | Fault::Refused | Fault::ResetOnAccept if not_modified(&request, good) => {
            whole(&mut stream, 304, &headers, b"");
        }
        Fault::Good | Fault::Refused | Fault::ResetOnAccept => {
            whole(&mut stream, good.status, &headers, &good.body);
        }
        Fault::ResetAfterHeaders => {
            let _ = stream.write_all(&head(good.status, &headers, good.body.len()));
            std::thread::sleep(BEFORE_RESET);
            return reset(stream);
        }
        Fault::ResetMidBody => {
            let _ = stream.write_all(&head(good.status, &headers, good.body.len()));
            let _ = stream.write_all(&good.body[..good.body.len() / 2]);
            std::thread::sleep(BEFORE_RESET);
            return reset(stream);
        }
        Fault::CutShort => {
            let _ = stream.write_all(&head(200, &headers, 5000));
            let body: Vec<u8> = good
                .body
                .iter()
                .copied()
                .chain([b' '; 100])
                .take(100)
                .collect();
            let _ = stream.write_all(&body);
        }
        Fault::Oversized(size) => {
            let mut body = good.body.clone();
            body.resize((*size).max(body.len()), b' ');
            whole(&mut stream, 200, &headers, &body);
        }
        Fault::Status(code) => {
            let mut headers: Headers = vec![("content-type".into(), b"application/json".to_vec())];
            if (300..400).contains(code) {
                headers.push((
                    "location".into(),
                    b"http://127.0.0.1:9/somewhere-else".to_vec(),
                ));
            }
            whole(&mut stream, *code, &headers, br#"{"error":"fault"}"#);
        }
        Fault::Body(body) => whole(&mut stream, 200, &headers, body),
        Fault::NonUtf8Header => {
            let mut headers: Headers = headers
                .into_iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("etag"))
                .collect();
            headers.push(("etag".into(), b"\"\xff\xfe\"".to_vec()));
            whole(&mut stream, good.status, &headers, &good.body);
        }
        Fault::HugeHeader(size) => {
            let mut headers = headers;
            headers.push(("x-padding".into(), vec![b'a'; *size]));
            whole(&mut stream, good.status, &headers, &good.body);
        }
        Fault::Stall => {
            hold(&mut stream, Duration::from_secs(60), shared);
            return;
        }
        Fault::Drip(period) => {
            let _ = stream.write_all(&head(good.status, &headers, good.body.len()));
            for byte in &good.body {
                if shared.stopping() || stream.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(*period);
            }
        }
        Fault::GarbageStatusLine => {
            let _ = stream.write_all(b"HTTP/1.1 2x0 Fine\r\ncontent-length: 2\r\n\r\n{}");
        }
    }
    finish(stream, shared);
}
