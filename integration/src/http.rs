//! A tiny HTTP/1.1 client that sends exactly the bytes a test asks for.
//!
//! The request target is sent verbatim (no normalisation, no percent-encoding), headers go out in
//! the given order with duplicates kept, and the connection is closed after one exchange.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Read/write/connect timeout for [`send`] and [`send_raw`].
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 request as it goes on the wire.
///
/// Unless [`RawRequest::no_auto_headers`] is used, [`send`] adds `host: 127.0.0.1:<port>` and
/// `connection: close` when the test did not set them, and `content-length` when there is a body
/// (or the method is POST/PUT/PATCH) and neither `content-length` nor `transfer-encoding` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRequest {
    /// Method token, e.g. `GET`.
    pub method: String,
    /// Request target, sent as is: `"/accounts/../admin"`, `"/a%2Fb"`, `"*"`, …
    pub target: String,
    /// Header lines in order; duplicates allowed.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Whether [`send`] adds `host`, `connection` and `content-length` (default true).
    pub auto_headers: bool,
}

impl RawRequest {
    /// A request with any method and target, no headers and no body.
    pub fn new(method: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
            auto_headers: true,
        }
    }

    /// `GET target`.
    pub fn get(target: impl Into<String>) -> Self {
        Self::new("GET", target)
    }

    /// `POST target`.
    pub fn post(target: impl Into<String>) -> Self {
        Self::new("POST", target)
    }

    /// `PUT target`.
    pub fn put(target: impl Into<String>) -> Self {
        Self::new("PUT", target)
    }

    /// `DELETE target`.
    pub fn delete(target: impl Into<String>) -> Self {
        Self::new("DELETE", target)
    }

    /// Appends a header line (duplicates are kept and sent in order).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Appends `authorization: Bearer <token>`.
    pub fn bearer(self, token: impl AsRef<str>) -> Self {
        self.header("authorization", format!("Bearer {}", token.as_ref()))
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// Turns off the automatic `host`/`connection`/`content-length` headers: exactly the given
    /// header lines are sent.
    pub fn no_auto_headers(mut self) -> Self {
        self.auto_headers = false;
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The bytes [`send`] writes to a server listening on `port`.
    pub fn to_bytes(&self, port: u16) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        let mut headers = self.headers.clone();
        if self.auto_headers {
            if !self.has_header("host") {
                headers.insert(0, ("host".into(), format!("127.0.0.1:{port}")));
            }
            if !self.has_header("connection") {
                headers.push(("connection".into(), "close".into()));
            }
            let needs_length =
                !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
            if needs_length
                && !self.has_header("content-length")
                && !self.has_header("transfer-encoding")
            {
                headers.push(("content-length".into(), self.body.len().to_string()));
            }
        }
        for (name, value) in &headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A parsed HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body (chunked transfer-encoding already decoded).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name` (case-insensitive), in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the status and body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }

    /// Parses a complete response (as read up to EOF). Interim 1xx responses are skipped.
    pub fn parse(raw: &[u8]) -> Result<Response, String> {
        Self::parse_with(raw, false)
    }

    fn parse_with(mut raw: &[u8], head_request: bool) -> Result<Response, String> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut parsed = httparse::Response::new(&mut headers);
            let head_len = match parsed.parse(raw) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => {
                    return Err(format!(
                        "incomplete response head: {:?}",
                        String::from_utf8_lossy(raw)
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "bad response ({e}): {:?}",
                        String::from_utf8_lossy(raw)
                    ));
                }
            };
            let status = parsed.code.ok_or("response without status")?;
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let rest = &raw[head_len..];
            if (100..200).contains(&status) && status != 101 {
                raw = rest;
                continue;
            }
            let mut resp = Response {
                status,
                headers,
                body: Vec::new(),
            };
            let chunked = resp
                .header("transfer-encoding")
                .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
            resp.body = if head_request || status == 204 || status == 304 {
                Vec::new()
            } else if chunked {
                decode_chunked(rest)?
            } else if let Some(len) = resp
                .header("content-length")
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                if rest.len() < len {
                    return Err(format!(
                        "body shorter than content-length {len}: got {} bytes",
                        rest.len()
                    ));
                }
                rest[..len].to_vec()
            } else {
                rest.to_vec()
            };
            return Ok(resp);
        }
    }
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size line")?;
        let size_line = String::from_utf8_lossy(&data[..line_end]);
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| format!("bad chunk size {size_hex:?}: {e}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Writes `bytes` to `127.0.0.1:port` and reads the answer: until one complete response has
/// arrived (by `content-length`, chunked framing, or a status without body), the server closes
/// the connection, or a read times out after 10 s. Returns the bytes read.
///
/// Stopping at the end of the response matters: after a local reply (e.g. a 403 from a filter)
/// Envoy waits up to its `delayed_close_timeout` (1 s) for the client to close first.
pub fn try_send_raw(port: u16, bytes: &[u8]) -> Result<Vec<u8>, String> {
    Connection::open(port)?.exchange(bytes, false)
}

/// An open connection to `127.0.0.1:port` that has not sent anything yet: open several first
/// to have them all accepted (e.g. spread over Envoy's workers), then [`Connection::send`] on
/// each.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    port: u16,
}

impl Connection {
    /// Connects (10 s timeout) with read/write timeouts of 10 s.
    pub fn open(port: u16) -> Result<Connection, String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
        stream.set_write_timeout(Some(IO_TIMEOUT)).ok();
        stream.set_nodelay(true).ok();
        Ok(Connection { stream, port })
    }

    /// Sends `req` (as [`try_send`] does) and parses the answer; the connection is used up.
    pub fn send(self, req: &RawRequest) -> Result<Response, String> {
        let head = req.method.eq_ignore_ascii_case("HEAD");
        let bytes = req.to_bytes(self.port);
        let raw = self.exchange(&bytes, head)?;
        Response::parse_with(&raw, head).map_err(|e| format!("{} {}: {e}", req.method, req.target))
    }

    fn exchange(mut self, bytes: &[u8], head_request: bool) -> Result<Vec<u8>, String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let stream = &mut self.stream;
        stream
            .write_all(bytes)
            .map_err(|e| format!("write request to {addr}: {e}"))?;
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if response_complete(&out, head_request) {
                        break;
                    }
                }
                // A reset after a response (e.g. the server closed with unread request bytes)
                // still leaves a usable response.
                Err(_) if !out.is_empty() => break,
                Err(e) => return Err(format!("read response from {addr}: {e}")),
            }
        }
        Ok(out)
    }
}

/// Whether `raw` holds one complete final response (interim 1xx responses skipped).
pub(crate) fn response_complete(mut raw: &[u8], head_request: bool) -> bool {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut parsed = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head_len)) = parsed.parse(raw) else {
            return false;
        };
        let status = parsed.code.unwrap_or(0);
        let rest = &raw[head_len..];
        if (100..200).contains(&status) && status != 101 {
            raw = rest;
            continue;
        }
        if head_request || status == 204 || status == 304 || status == 101 {
            return true;
        }
        let header = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
        };
        if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            return decode_chunked(rest).is_ok();
        }
        return match header("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
            Some(len) => rest.len() >= len,
            None => false, // body runs to EOF
        };
    }
}

/// Like [`try_send_raw`] but panics on errors. For malformed requests that [`RawRequest`]
/// cannot express; returns the raw response bytes (parse them with [`Response::parse`]).
pub fn send_raw(port: u16, bytes: &[u8]) -> Vec<u8> {
    try_send_raw(port, bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `req` to `127.0.0.1:port` over a fresh HTTP/1.1 connection and parses the response.
pub fn try_send(port: u16, req: &RawRequest) -> Result<Response, String> {
    Connection::open(port)?.send(req)
}

/// Sends `req` to `127.0.0.1:port` over a fresh HTTP/1.1 connection (`connection: close`
/// unless the request sets its own) and returns the parsed response. Panics on I/O or parse
/// errors (with the raw bytes).
pub fn send(port: u16, req: &RawRequest) -> Response {
    try_send(port, req).unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_request_bytes_in_order() {
        let req = RawRequest::get("/a/../b")
            .header("x-a", "1")
            .header("X-A", "2");
        let text = String::from_utf8(req.to_bytes(8080)).unwrap();
        assert_eq!(
            text,
            "GET /a/../b HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nx-a: 1\r\nX-A: 2\r\nconnection: close\r\n\r\n"
        );
        let post = RawRequest::post("/p").body("abc");
        assert!(
            String::from_utf8(post.to_bytes(1))
                .unwrap()
                .ends_with("content-length: 3\r\n\r\nabc")
        );
        let bare = RawRequest::get("/").no_auto_headers();
        assert_eq!(bare.to_bytes(1), b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn parses_chunked_and_lengths() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Y: a\r\nx-y: b\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n";
        let resp = Response::parse(raw).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"abcde");
        assert_eq!(resp.headers_all("x-y"), vec!["a", "b"]);
        let raw = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\n{}";
        let resp = Response::parse(raw).unwrap();
        assert_eq!(resp.status, 403);
        assert_eq!(resp.json(), serde_json::json!({}));
    }
}
