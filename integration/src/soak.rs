//! The traffic of `make soak` (`obguard-soak`): rotating clients, the identity provider's
//! signing-key epochs, a request mix in which every request carries the status it must get,
//! and an open-loop load generator over keep-alive connections that measures latency from the
//! intended send time.
//!
//! Request `i` of the run is due at `start + i / rps`. Each load thread takes the next due
//! request from a shared counter, sleeps until it is due, sends it on the next of its
//! keep-alive connections and waits for the answer, so a slow answer delays the requests
//! behind it and that delay is part of their latency (no coordinated omission as long as the
//! threads are not all busy, which `lag` shows).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use obguard_testkit as kit;
use serde_json::{Value, json};

use crate::http::{Response, response_complete};

/// Token lifetime: under the test issuer's `max_lifetime_s` (3600), and longer than any epoch
/// is used (see [`Epoch::mint`]).
pub const TOKEN_LIFETIME_S: u64 = 3500;

/// Clients the configuration pins with `static_assessments`, so that verdict refusals are
/// deterministic while the model runs in shadow mode: (client id, verdict).
pub const PINNED: [(&str, &str); 3] = [
    ("tpp-soak-blocked", "block"),
    ("tpp-soak-stepup", "step_up"),
    ("tpp-soak-throttled", "throttle"),
];

/// Accounts the demo bank knows (`integration/fixtures/demo-bank/accounts.json`).
const ACCOUNTS: [&str; 3] = ["22289", "31820", "40517"];
const COUNTRIES: [&str; 7] = ["GB", "GB", "GB", "IE", "FR", "DE", "NL"];
const PAYMENT: &str = r#"{"Data":{"ConsentId":"soak-consent","Initiation":{"InstructionIdentification":"soak","EndToEndIdentification":"soak","InstructedAmount":{"Amount":"10.00","Currency":"GBP"},"CreditorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"08080021325698","Name":"Soak Ltd"}}}}"#;

/// The rotating client population: `tpp-soak-00000` … Every tenth client lacks the
/// `transactions:read` and `payments` scopes. A quarter of the requests come from the first
/// [`HOT_CLIENTS`] (busy aggregators: the token cache hits), the rest cycle through all of
/// them (a cycle longer than the token cache and the baseline slots: those bounds must hold).
#[derive(Clone, Copy, Debug)]
pub struct Clients {
    pub count: usize,
}

/// Clients that send a quarter of the requests.
pub const HOT_CLIENTS: usize = 256;

impl Clients {
    /// The client of request `i`.
    fn of_request(self, i: u64) -> usize {
        let n = self.count as u64;
        let client = if i % 4 == 3 {
            (i / 4) % (HOT_CLIENTS as u64).min(n)
        } else {
            (i - i / 4) % n
        };
        client as usize
    }

    pub fn id(self, i: usize) -> String {
        format!("tpp-soak-{i:05}")
    }

    pub fn fully_scoped(self, i: usize) -> bool {
        i % 10 != 7
    }

    fn scope(self, i: usize) -> &'static str {
        if self.fully_scoped(i) {
            "accounts transactions:read payments"
        } else {
            "accounts"
        }
    }
}

/// A P-256 signing key of the identity provider, generated for this run.
pub struct SigningKey {
    pub kid: String,
    pem: String,
    pub jwk: Value,
}

impl SigningKey {
    pub fn generate(kid: impl Into<String>) -> SigningKey {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let kid = kid.into();
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encode a P-256 key")
            .to_string();
        let jwk = kit::jwk_from_pem(&pem, &kid).expect("JWK of a P-256 key");
        SigningKey { kid, pem, jwk }
    }

    /// An ES256 `at+jwt` signed by this key, with `kid` in the header.
    fn sign(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        kit::sign_with_pem("ES256", &self.pem, &header, claims).expect("ES256 signature")
    }
}

/// `{"keys": [...]}` of these keys.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

/// A signing key and every token the load needs from it.
pub struct Epoch {
    pub n: u32,
    pub key: SigningKey,
    /// One valid token per client.
    valid: Vec<String>,
    /// Valid tokens of the [`PINNED`] clients.
    pinned: Vec<String>,
    /// Expired an hour ago.
    expired: Vec<String>,
    /// This key's `kid`, signed by another key.
    bad_signature: Vec<String>,
}

impl Epoch {
    /// Mints the tokens of epoch `n` (ES256 with testkit; about 2 s for 20 000 clients).
    /// `forger` signs the bad-signature tokens.
    pub fn mint(n: u32, key: SigningKey, clients: Clients, forger: &SigningKey) -> Epoch {
        let now = kit::now();
        let claims = |client: &str, scope: &str| {
            let mut c = kit::claims(client, scope);
            c["exp"] = json!(now + TOKEN_LIFETIME_S);
            c["jti"] = json!(format!("{client}-{n}"));
            c
        };
        let valid = (0..clients.count)
            .map(|i| key.sign(&key.kid, &claims(&clients.id(i), clients.scope(i))))
            .collect();
        let pinned = PINNED
            .iter()
            .map(|(client, _)| key.sign(&key.kid, &claims(client, "accounts")))
            .collect();
        let expired = (0..16)
            .map(|i| {
                let mut c = claims(&format!("tpp-soak-expired-{i}"), "accounts");
                c["iat"] = json!(now - 4000);
                c["nbf"] = json!(now - 4000);
                c["exp"] = json!(now - 600);
                key.sign(&key.kid, &c)
            })
            .collect();
        let bad_signature = (0..16)
            .map(|i| {
                forger.sign(
                    &key.kid,
                    &claims(&format!("tpp-soak-forged-{i}"), "accounts"),
                )
            })
            .collect();
        Epoch {
            n,
            key,
            valid,
            pinned,
            expired,
            bad_signature,
        }
    }
}

/// Which epochs' tokens the load uses right now.
#[derive(Clone)]
pub struct KeyPhase {
    /// Signs every client's token.
    pub current: Arc<Epoch>,
    /// The previous key during its grace period: still published, a quarter of the clients
    /// still present tokens it signed (200 expected).
    pub lingering: Option<Arc<Epoch>>,
    /// A key removed from the JWKS (and known to be gone from Envoy): its tokens are probes
    /// that must be refused (401).
    pub retired: Option<Arc<Epoch>>,
}

/// What a request must get back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    /// Short name of the request kind, and of the refusal cause for non-2xx ones.
    pub cause: &'static str,
    pub status: u16,
    /// Text the `www-authenticate` header must contain.
    pub challenge: Option<&'static str>,
}

const fn expect(cause: &'static str, status: u16, challenge: Option<&'static str>) -> Expect {
    Expect {
        cause,
        status,
        challenge,
    }
}

const INVALID_TOKEN: Option<&str> = Some("error=\"invalid_token\"");

#[derive(Clone, Copy, Debug)]
enum Kind {
    Accounts,
    Account,
    Balances,
    Transactions,
    Payment,
    UnknownAccount,
    Health,
    NoToken,
    BadSignature,
    Expired,
    UnknownRoute,
    Pinned(usize),
    RetiredKey,
}

/// The request mix, per mille.
const MIX: [(u32, Kind); 15] = [
    (310, Kind::Accounts),
    (150, Kind::Account),
    (150, Kind::Balances),
    (150, Kind::Transactions),
    (80, Kind::Payment),
    (20, Kind::UnknownAccount),
    (30, Kind::Health),
    (20, Kind::NoToken),
    (20, Kind::BadSignature),
    (20, Kind::Expired),
    (10, Kind::UnknownRoute),
    (10, Kind::Pinned(0)),
    (10, Kind::Pinned(1)),
    (10, Kind::Pinned(2)),
    (10, Kind::RetiredKey),
];

/// Builds request `i` of the run: which client, which route, which token.
pub struct Plan {
    clients: Clients,
    keys: RwLock<KeyPhase>,
}

/// A request ready to send.
pub struct Planned {
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

impl Plan {
    pub fn new(clients: Clients, first: Arc<Epoch>) -> Plan {
        Plan {
            clients,
            keys: RwLock::new(KeyPhase {
                current: first,
                lingering: None,
                retired: None,
            }),
        }
    }

    pub fn keys(&self) -> KeyPhase {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_keys(&self, phase: KeyPhase) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    fn kind(i: u64) -> Kind {
        // A multiplicative hash, so the kind does not follow the client index.
        let slot = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 1000;
        let mut acc = 0u64;
        for (weight, kind) in MIX {
            acc += u64::from(weight);
            if slot < acc {
                return kind;
            }
        }
        Kind::Accounts
    }

    pub fn request(&self, i: u64) -> Planned {
        let client = self.clients.of_request(i);
        let phase = self.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        let epoch = match &phase.lingering {
            Some(old) if client.is_multiple_of(4) => old,
            _ => &phase.current,
        };
        let token = &epoch.valid[client];
        let account = ACCOUNTS[client % ACCOUNTS.len()];
        let scoped = self.clients.fully_scoped(client);
        let pick = |list: &[String]| list[(i as usize / 7) % list.len()].clone();
        let ok = expect("ok", 200, None);
        let scope_denied = expect(
            "insufficient_scope",
            403,
            Some("error=\"insufficient_scope\""),
        );
        let (method, path, token, expect): (&str, String, Option<String>, Expect) =
            match Self::kind(i) {
                Kind::Accounts => ("GET", "/accounts".into(), Some(token.clone()), ok),
                Kind::Account => (
                    "GET",
                    format!("/accounts/{account}"),
                    Some(token.clone()),
                    ok,
                ),
                Kind::Balances => (
                    "GET",
                    format!("/accounts/{account}/balances"),
                    Some(token.clone()),
                    ok,
                ),
                Kind::Transactions => (
                    "GET",
                    format!("/accounts/{account}/transactions"),
                    Some(token.clone()),
                    if scoped { ok } else { scope_denied },
                ),
                Kind::Payment => (
                    "POST",
                    "/domestic-payments".into(),
                    Some(token.clone()),
                    if scoped {
                        expect("ok", 201, None)
                    } else {
                        scope_denied
                    },
                ),
                Kind::UnknownAccount => (
                    "GET",
                    "/accounts/99999".into(),
                    Some(token.clone()),
                    expect("upstream_404", 404, None),
                ),
                Kind::Health => ("GET", "/health".into(), None, ok),
                Kind::NoToken => (
                    "GET",
                    "/accounts".into(),
                    None,
                    expect("missing_token", 401, Some("Bearer realm=")),
                ),
                Kind::BadSignature => (
                    "GET",
                    "/accounts".into(),
                    Some(pick(&phase.current.bad_signature)),
                    expect("bad_signature", 401, INVALID_TOKEN),
                ),
                Kind::Expired => (
                    "GET",
                    "/accounts".into(),
                    Some(pick(&phase.current.expired)),
                    expect("expired", 401, INVALID_TOKEN),
                ),
                Kind::UnknownRoute => (
                    "GET",
                    "/admin/users".into(),
                    Some(token.clone()),
                    expect("route_denied", 403, None),
                ),
                Kind::Pinned(p) => (
                    "GET",
                    "/accounts".into(),
                    Some(phase.current.pinned[p].clone()),
                    match PINNED[p].1 {
                        "block" => expect("pinned_block", 403, None),
                        "step_up" => expect(
                            "pinned_step_up",
                            401,
                            Some("insufficient_user_authentication"),
                        ),
                        _ => expect("pinned_throttle", 429, None),
                    },
                ),
                Kind::RetiredKey => match &phase.retired {
                    Some(retired) => (
                        "GET",
                        "/accounts".into(),
                        Some(retired.valid[client].clone()),
                        expect("retired_key", 401, INVALID_TOKEN),
                    ),
                    None => ("GET", "/accounts".into(), Some(token.clone()), ok),
                },
            };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: bank.test\r\nuser-agent: okhttp/4.12.0 tpp-soak/{}\r\nx-client-geo-country: {}\r\nx-client-asn: AS{}\r\nx-forwarded-for: 198.51.100.{}\r\n",
            client % 5 + 1,
            COUNTRIES[client % COUNTRIES.len()],
            64500 + client % 50,
            client % 250 + 1,
        );
        if let Some(token) = token {
            head.push_str("authorization: Bearer ");
            head.push_str(&token);
            head.push_str("\r\n");
        }
        let body = if method == "POST" { PAYMENT } else { "" };
        if method == "POST" {
            head.push_str("content-type: application/json\r\n");
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        head.push_str(body);
        Planned {
            bytes: head.into_bytes(),
            expect,
        }
    }
}

/// What happened to the requests of one sampling window (or of the whole run).
pub struct Window {
    /// Latency from the intended send time to the end of the answer, µs.
    pub latency: Histogram<u64>,
    /// How late requests were sent after their intended time, µs (the generator's lag).
    pub lag: Histogram<u64>,
    pub answered: u64,
    /// Answers with the expected status, by `"<status> <cause>"` for non-2xx ones.
    pub refusals: BTreeMap<String, u64>,
    /// Answers with another status (or challenge) than expected, by
    /// `"<cause>: expected <s>, got <s>"`.
    pub unexpected: BTreeMap<String, u64>,
    /// Connection or protocol failures (no answer).
    pub transport_errors: u64,
    /// Keep-alive connections found closed and reopened before a retry.
    pub reconnects: u64,
    /// The first few unexpected answers and errors, verbatim.
    pub samples: Vec<String>,
}

impl Window {
    pub fn new() -> Window {
        let hist = || Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds");
        Window {
            latency: hist(),
            lag: hist(),
            answered: 0,
            refusals: BTreeMap::new(),
            unexpected: BTreeMap::new(),
            transport_errors: 0,
            reconnects: 0,
            samples: Vec::new(),
        }
    }

    pub fn unexpected_total(&self) -> u64 {
        self.unexpected.values().sum()
    }

    /// Unexpected answers plus transport errors.
    pub fn errors(&self) -> u64 {
        self.unexpected_total() + self.transport_errors
    }

    pub fn non_2xx(&self) -> u64 {
        self.refusals.values().sum::<u64>() + self.unexpected_total()
    }

    fn note(&mut self, sample: &str) {
        if self.samples.len() < 20 {
            self.samples.push(sample.to_owned());
        }
    }
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

enum Outcome {
    Answer {
        status: u16,
        challenge: Option<String>,
        body: Vec<u8>,
        latency_us: u64,
    },
    Failed(String),
}

/// Collects outcomes into the current window and the run's total.
#[derive(Default)]
pub struct Recorder {
    window: Mutex<Window>,
    total: Mutex<Window>,
}

impl Recorder {
    /// Returns the current window and starts a new one.
    pub fn take_window(&self) -> Window {
        std::mem::take(&mut *self.window.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The whole run so far.
    pub fn total(&self) -> std::sync::MutexGuard<'_, Window> {
        self.total.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, expect: Expect, outcome: &Outcome, lag_us: u64, reconnected: bool) {
        for window in [&self.window, &self.total] {
            let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
            w.lag.saturating_record(lag_us.max(1));
            if reconnected {
                w.reconnects += 1;
            }
            match outcome {
                Outcome::Failed(err) => {
                    w.transport_errors += 1;
                    w.note(&format!("{}: {err}", expect.cause));
                }
                Outcome::Answer {
                    status,
                    challenge,
                    body,
                    latency_us,
                } => {
                    w.answered += 1;
                    w.latency.saturating_record((*latency_us).max(1));
                    let challenge_ok = expect.challenge.is_none_or(|needle| {
                        challenge.as_deref().is_some_and(|c| c.contains(needle))
                    });
                    if *status == expect.status && challenge_ok {
                        if !(200..300).contains(status) {
                            *w.refusals
                                .entry(format!("{status} {}", expect.cause))
                                .or_default() += 1;
                        }
                    } else {
                        let key =
                            format!("{}: expected {}, got {status}", expect.cause, expect.status);
                        *w.unexpected.entry(key.clone()).or_default() += 1;
                        let body = String::from_utf8_lossy(&body[..body.len().min(300)]);
                        w.note(&format!(
                            "{key} (www-authenticate: {challenge:?}) body: {body}"
                        ));
                    }
                }
            }
        }
    }
}

/// The load: `rps` requests per second for `duration`, on `threads` threads with
/// `connections` keep-alive connections each.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub port: u16,
    pub rps: u32,
    pub duration: Duration,
    pub threads: usize,
    pub connections: usize,
}

impl Load {
    /// Requests due in the run: `duration × rps`.
    pub fn scheduled(&self) -> u64 {
        let n = self.duration.as_nanos() * u128::from(self.rps.max(1)) / 1_000_000_000;
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Runs the load until `start + duration` (or until `stop` is set); returns the number of
    /// requests sent.
    pub fn run(&self, start: Instant, plan: &Plan, recorder: &Recorder, stop: &AtomicBool) -> u64 {
        let next = AtomicU64::new(0);
        let sent = AtomicU64::new(0);
        let end = start + self.duration;
        let rps = u128::from(self.rps.max(1));
        std::thread::scope(|s| {
            for t in 0..self.threads {
                let next = &next;
                let sent = &sent;
                std::thread::Builder::new()
                    .name(format!("soak-load-{t}"))
                    .spawn_scoped(s, move || {
                        let mut conns: Vec<Conn> = (0..self.connections.max(1))
                            .map(|_| Conn::new(self.port))
                            .collect();
                        let mut turn = 0;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let offset =
                                Duration::from_nanos((u128::from(i) * 1_000_000_000 / rps) as u64);
                            let due = start + offset;
                            // Behind by more than DRAIN at the end: the rest is not sent
                            // (counted as unsent by the caller).
                            if due >= end
                                || stop.load(Ordering::Relaxed)
                                || Instant::now() > end + DRAIN
                            {
                                break;
                            }
                            let planned = plan.request(i);
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                            let sent_at = Instant::now();
                            sent.fetch_add(1, Ordering::Relaxed);
                            let slot = turn % conns.len();
                            turn += 1;
                            let conn = &mut conns[slot];
                            let (result, reconnected) = conn.exchange(&planned.bytes);
                            let done = Instant::now();
                            let outcome = match result {
                                Ok(resp) => Outcome::Answer {
                                    status: resp.status,
                                    challenge: resp.header("www-authenticate").map(str::to_owned),
                                    body: resp.body,
                                    latency_us: micros(done.saturating_duration_since(due)),
                                },
                                Err(err) => Outcome::Failed(err),
                            };
                            let lag = micros(sent_at.saturating_duration_since(due));
                            recorder.record(planned.expect, &outcome, lag, reconnected);
                        }
                    })
                    .expect("start a load thread");
            }
        });
        sent.load(Ordering::Relaxed)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One keep-alive HTTP/1.1 connection to `127.0.0.1:port`, reopened when the server closed it.
struct Conn {
    port: u16,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after the end a load thread that fell behind keeps sending.
const DRAIN: Duration = Duration::from_secs(2);

impl Conn {
    fn new(port: u16) -> Conn {
        Conn {
            port,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends `bytes` and reads one response. A reused connection that turns out to be closed
    /// before any answer byte (the keep-alive race) is reopened once; the flag says so.
    fn exchange(&mut self, bytes: &[u8]) -> (Result<Response, String>, bool) {
        let reused = self.stream.is_some();
        match self.try_exchange(bytes) {
            Err((err, retryable)) if retryable && reused => {
                let _ = err;
                self.stream = None;
                (self.try_exchange(bytes).map_err(|(e, _)| e), true)
            }
            other => (other.map_err(|(e, _)| e), false),
        }
    }

    /// `Err((message, nothing_received))`.
    fn try_exchange(&mut self, bytes: &[u8]) -> Result<Response, (String, bool)> {
        if self.stream.is_none() {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
                .map_err(|e| (format!("connect: {e}"), false))?;
            stream.set_read_timeout(Some(IO_TIMEOUT)).ok();
            stream.set_write_timeout(Some(IO_TIMEOUT)).ok();
            stream.set_nodelay(true).ok();
            self.stream = Some(stream);
        }
        let result = self.round_trip(bytes);
        if !matches!(&result, Ok((_, true))) {
            self.stream = None;
        }
        result.map(|(resp, _)| resp)
    }

    /// The response and whether the connection stays open.
    fn round_trip(&mut self, bytes: &[u8]) -> Result<(Response, bool), (String, bool)> {
        let stream = self
            .stream
            .as_mut()
            .ok_or(("no connection".to_owned(), false))?;
        stream
            .write_all(bytes)
            .map_err(|e| (format!("write: {e}"), true))?;
        self.buf.clear();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => {
                    return Err((
                        format!("connection closed after {} bytes", self.buf.len()),
                        self.buf.is_empty(),
                    ));
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if response_complete(&self.buf, false) {
                        break;
                    }
                }
                Err(e) => {
                    let reset = e.kind() == std::io::ErrorKind::ConnectionReset;
                    return Err((format!("read: {e}"), reset && self.buf.is_empty()));
                }
            }
        }
        let resp = Response::parse(&self.buf).map_err(|e| (e, false))?;
        let keep = !resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        Ok((resp, keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_adds_up_to_a_thousand_and_every_kind_occurs() {
        assert_eq!(MIX.iter().map(|(w, _)| w).sum::<u32>(), 1000);
        let mut seen = BTreeMap::new();
        for i in 0..100_000 {
            *seen.entry(format!("{:?}", Plan::kind(i))).or_insert(0u32) += 1;
        }
        assert_eq!(seen.len(), MIX.len(), "{seen:?}");
        // Roughly the weights: /accounts is 31%.
        let accounts = seen["Accounts"];
        assert!((29_000..33_000).contains(&accounts), "{accounts}");
    }

    #[test]
    fn requests_carry_the_expected_status() {
        let clients = Clients { count: 20 };
        let forger = SigningKey::generate("forger");
        let epoch = Arc::new(Epoch::mint(0, SigningKey::generate("k0"), clients, &forger));
        let plan = Plan::new(clients, epoch);
        let mut kinds = BTreeMap::new();
        for i in 0..2000 {
            let r = plan.request(i);
            let text = String::from_utf8(r.bytes).unwrap();
            assert!(
                text.contains("HTTP/1.1\r\nhost: bank.test\r\nuser-agent: "),
                "{text}"
            );
            if text.starts_with("POST") {
                assert!(text.ends_with(PAYMENT), "{text}");
            }
            kinds.insert(r.expect.cause, r.expect.status);
        }
        assert_eq!(kinds["missing_token"], 401);
        assert_eq!(kinds["pinned_throttle"], 429);
        assert!(!kinds.contains_key("retired_key"), "no retired key yet");
    }
}
