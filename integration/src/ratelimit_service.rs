//! A rate-limit service speaking Envoy's real gRPC API
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, HTTP/2, messages generated
//! by prost from the pinned protos in `rls-proto/`), for tests, demos and benchmarks.
//!
//! It counts with Kuadrant's Limitador engine (the `limitador` crate that limitador-server is
//! built on): on Redis ([`Counters::Redis`]; what the tests use, each service on a Redis of its
//! own from [`RateLimitService::start`], or replicas sharing one through
//! [`RateLimitService::start_shared`]), or in memory ([`Counters::InMemory`], for the demo).
//! A [`Limit`] matches a descriptor whose entries have the same keys in the same order and,
//! where the limit names a value, that value; each distinct descriptor gets its own counter,
//! which grows by the request's `hits_addend` (0 counts as 1) and refuses a request that would
//! take it above `requests_per_unit`. [`Limit::to_limitador`] states the mapping and
//! docs/ratelimit.md how Limitador's windows differ from the fixed windows this service used
//! to count with. It records every request it receives and can be told to misbehave
//! ([`Behaviour`]): from the test through [`RateLimitService::set_behaviour`], or per request
//! with a descriptor entry `obguard-test-fault` = `delay:<ms>` | `unavailable` | `garbage` |
//! `unknown_code`; [`Behaviour::Reset`] resets the HTTP/2 stream instead of answering.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use limitador::limit::{Context, Expression, Namespace, Predicate};
use limitador::storage::redis::AsyncRedisStorage;
use limitador::{AsyncRateLimiter, CheckResult, RateLimiter};
use obguard_rls_proto::envoy::config::core::v3::HeaderValue;
use obguard_rls_proto::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit, rate_limit::Unit,
};
use obguard_rls_proto::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use prost::Message;
use prost::bytes::BufMut;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::redis::Redis;

/// The descriptor entry key that injects a fault for one request.
pub const FAULT_KEY: &str = "obguard-test-fault";

/// How the service answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Count and answer OK / OVER_LIMIT (the default).
    Limit,
    /// Like `Limit`, after sleeping this long.
    Delay(Duration),
    /// gRPC status UNAVAILABLE.
    Unavailable,
    /// gRPC OK with a body that is not a `RateLimitResponse`.
    Garbage,
    /// A `RateLimitResponse` whose `overall_code` is UNKNOWN.
    UnknownCode,
    /// Reset the stream (HTTP/2 `RST_STREAM`, INTERNAL_ERROR) before any answer: no headers,
    /// no gRPC status. Only through [`RateLimitService::set_behaviour`] (it acts before the
    /// request is read, so the request is not in [`RateLimitService::received`]; see
    /// [`RateLimitService::resets`]).
    Reset,
}

/// One limit: `entries` are `(key, Some(value))` to match a value or `(key, None)` for a
/// counter per value.
#[derive(Clone, Debug)]
pub struct Limit {
    pub name: String,
    pub entries: Vec<(String, Option<String>)>,
    pub requests_per_unit: u32,
    pub unit: Unit,
}

/// The CEL binding holding the descriptor's keys, in order, as a JSON array (a CEL map has no
/// order, and [`Limit`] matches keys in order).
const KEYS_BINDING: &str = "keys";
/// The CEL binding holding the descriptor, as limitador-server binds a request's
/// descriptors: `descriptors[0]` is the map of its entries. Each descriptor is checked on its
/// own, so there is only ever index 0.
const DESCRIPTORS_BINDING: &str = "descriptors";

impl Limit {
    /// `name`: `requests_per_unit` per `unit` for descriptors with exactly these entries.
    pub fn new(
        name: &str,
        entries: &[(&str, Option<&str>)],
        requests_per_unit: u32,
        unit: Unit,
    ) -> Self {
        Self {
            name: name.to_owned(),
            entries: entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
                .collect(),
            requests_per_unit,
            unit,
        }
    }

    /// This limit as a Limitador limit of `namespace` (the request's domain), with the id
    /// `<index>@<namespace>` (`index` finds this limit again from a counter; Limitador keys
    /// the counters of a limit with an id by the id alone, so it must name the namespace):
    ///
    /// - conditions: `keys == '["k1","k2"]'` (exactly these keys, in this order) and
    ///   `descriptors[0]['k'] == 'v'` for each entry with a value;
    /// - variables: `descriptors[0]['k']` for each entry without a value (a counter per value;
    ///   the fixed values need none, they are the same for every descriptor that matches);
    /// - `max_value`: `requests_per_unit`; `seconds`: the unit's length.
    pub fn to_limitador(
        &self,
        namespace: &str,
        index: usize,
    ) -> Result<limitador::limit::Limit, String> {
        let keys: Vec<&str> = self.entries.iter().map(|(k, _)| k.as_str()).collect();
        let keys = serde_json::to_string(&keys).map_err(|e| e.to_string())?;
        let entry = |key: &str| format!("{DESCRIPTORS_BINDING}[0][{}]", cel_string(key));
        let mut conditions = vec![format!("{KEYS_BINDING} == {}", cel_string(&keys))];
        let mut variables = Vec::new();
        for (key, value) in &self.entries {
            match value {
                Some(value) => conditions.push(format!("{} == {}", entry(key), cel_string(value))),
                None => variables.push(entry(key)),
            }
        }
        let conditions = conditions
            .iter()
            .map(Predicate::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("limit {}: {e}", self.name))?;
        let variables = variables
            .iter()
            .map(Expression::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("limit {}: {e}", self.name))?;
        let mut limit = limitador::limit::Limit::with_id(
            format!("{index}@{namespace}"),
            namespace,
            u64::from(self.requests_per_unit),
            unit_seconds(self.unit),
            conditions,
            variables,
        );
        limit.set_name(self.name.clone());
        Ok(limit)
    }
}

/// A CEL string literal of `s`: single-quoted, with `\`, `'` and control characters escaped.
fn cel_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// What Limitador sees of one descriptor (see [`Limit::to_limitador`]).
fn context_of(descriptor: &RateLimitDescriptor) -> Result<Context<'static>, String> {
    let keys: Vec<&str> = descriptor.entries.iter().map(|e| e.key.as_str()).collect();
    let keys = serde_json::to_string(&keys).map_err(|e| e.to_string())?;
    let mut ctx = Context::from(HashMap::from([(KEYS_BINDING.to_owned(), keys)]));
    let entries = descriptor
        .entries
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect();
    ctx.list_binding(DESCRIPTORS_BINDING.to_owned(), vec![entries]);
    Ok(ctx)
}

fn unit_seconds(unit: Unit) -> u64 {
    match unit {
        Unit::Second | Unit::Unknown => 1,
        Unit::Minute => 60,
        Unit::Hour => 3_600,
        Unit::Day => 86_400,
        Unit::Week => 604_800,
        Unit::Month => 2_592_000,
        Unit::Year => 31_536_000,
    }
}

/// Where the counters live.
#[derive(Clone, Debug)]
pub enum Counters {
    /// Limitador's in-memory storage: this process only.
    InMemory,
    /// Limitador's Redis storage (`AsyncRedisStorage`, what limitador-server runs with
    /// `redis <URL>`) at this URL: shared by every service on the same Redis.
    Redis(String),
}

/// The limits and Limitador's engine over them.
struct Engine {
    limits: Vec<Limit>,
    limiter: Limiter,
    /// Namespaces (domains) whose limits are registered. Limits are per namespace and the
    /// domain comes with each request, so they are registered on a domain's first request.
    namespaces: Mutex<HashSet<String>>,
}

enum Limiter {
    /// Limitador's in-memory storage is blocking only.
    Blocking(RateLimiter),
    Async(AsyncRateLimiter),
}

/// In-memory storage: the most counters it keeps (tests and demos stay far below).
const IN_MEMORY_COUNTERS: u64 = 10_000;
/// How long the service may take to connect to its Redis at start.
const REDIS_CONNECT_WITHIN: Duration = Duration::from_secs(10);

impl Engine {
    async fn new(limits: Vec<Limit>, counters: &Counters) -> Result<Engine, String> {
        let limiter = match counters {
            Counters::InMemory => Limiter::Blocking(RateLimiter::new(IN_MEMORY_COUNTERS)),
            Counters::Redis(url) => {
                // redis's connection manager retries a refused connection without end.
                let storage =
                    tokio::time::timeout(REDIS_CONNECT_WITHIN, AsyncRedisStorage::new(url))
                        .await
                        .map_err(|_| {
                            format!("redis at {url}: no connection within {REDIS_CONNECT_WITHIN:?}")
                        })?
                        .map_err(|e| format!("redis at {url}: {e}"))?;
                Limiter::Async(AsyncRateLimiter::new_with_storage(Box::new(storage)))
            }
        };
        // Fail at start, not on the first request, on a limit Limitador cannot parse.
        for (i, limit) in limits.iter().enumerate() {
            limit.to_limitador("", i)?;
        }
        Ok(Engine {
            limits,
            limiter,
            namespaces: Mutex::new(HashSet::new()),
        })
    }

    fn register(&self, namespace: &str) -> Result<(), String> {
        let mut namespaces = self.namespaces.lock().unwrap_or_else(|e| e.into_inner());
        if namespaces.insert(namespace.to_owned()) {
            for (i, limit) in self.limits.iter().enumerate() {
                let limit = limit.to_limitador(namespace, i)?;
                match &self.limiter {
                    Limiter::Blocking(l) => l.add_limit(limit),
                    Limiter::Async(l) => l.add_limit(limit),
                };
            }
        }
        Ok(())
    }

    /// Checks one descriptor and counts `hits` when within every limit that applies
    /// (Limitador's `check_rate_limited_and_update`, the call limitador-server makes).
    async fn check(
        &self,
        namespace: &str,
        descriptor: &RateLimitDescriptor,
        hits: u64,
    ) -> Result<CheckResult, String> {
        self.register(namespace)?;
        let ctx = context_of(descriptor)?;
        let namespace = Namespace::from(namespace);
        match &self.limiter {
            Limiter::Blocking(l) => l.check_rate_limited_and_update(&namespace, &ctx, hits),
            Limiter::Async(l) => {
                l.check_rate_limited_and_update(&namespace, &ctx, hits)
                    .await
            }
        }
        .map_err(|e| e.to_string())
    }

    /// The answer to `request`: each descriptor is checked on its own and gets its status;
    /// OVER_LIMIT if any is over.
    async fn answer(&self, request: &RateLimitRequest) -> Result<RateLimitResponse, String> {
        let hits = u64::from(request.hits_addend.max(1));
        let mut overall = Code::Ok;
        let mut statuses = Vec::new();
        for descriptor in &request.descriptors {
            let status = match self.status(&request.domain, descriptor, hits).await? {
                Some(status) => status,
                None => DescriptorStatus {
                    code: Code::Ok as i32,
                    ..Default::default()
                },
            };
            if status.code == Code::OverLimit as i32 {
                overall = Code::OverLimit;
            }
            statuses.push(status);
        }
        Ok(RateLimitResponse {
            overall_code: overall as i32,
            statuses,
            ..Default::default()
        })
    }

    /// One descriptor's status, counted; `None` when no limit applies.
    async fn status(
        &self,
        domain: &str,
        descriptor: &RateLimitDescriptor,
        hits: u64,
    ) -> Result<Option<DescriptorStatus>, String> {
        if self.limits.is_empty() {
            // Nothing can apply: spare the benchmarks' limitless service the CEL context.
            return Ok(None);
        }
        let result = self.check(domain, descriptor, hits).await?;
        // The tightest counter speaks for the descriptor (one, unless limits overlap).
        let Some(counter) = result
            .counters
            .iter()
            .min_by_key(|c| c.remaining().unwrap_or(c.max_value()))
        else {
            return Ok(None);
        };
        let Some(limit) = counter
            .limit()
            .id()
            .and_then(|id| id.split_once('@')?.0.parse::<usize>().ok())
            .and_then(|i| self.limits.get(i))
        else {
            return Err(format!(
                "a counter of an unknown limit: {:?}",
                counter.limit()
            ));
        };
        let reset = counter.expires_in().unwrap_or(counter.window());
        Ok(Some(DescriptorStatus {
            code: if result.limited {
                Code::OverLimit
            } else {
                Code::Ok
            } as i32,
            current_limit: Some(RateLimit {
                name: limit.name.clone(),
                requests_per_unit: limit.requests_per_unit,
                unit: limit.unit as i32,
            }),
            // Limitador leaves a refused request uncounted, so a counter can be short of its
            // limit and still refuse a heavier request; Envoy's services say 0 then.
            limit_remaining: if result.limited {
                0
            } else {
                u32::try_from(counter.remaining().unwrap_or(0)).unwrap_or(u32::MAX)
            },
            duration_until_reset: Some(prost_types::Duration {
                seconds: i64::try_from(reset.as_secs()).unwrap_or(0),
                nanos: i32::try_from(reset.subsec_nanos()).unwrap_or(0),
            }),
            ..Default::default()
        }))
    }
}

#[derive(Default)]
struct State {
    behaviour: Option<Behaviour>,
    received: Vec<RateLimitRequest>,
    request_headers: Vec<(String, String)>,
    response_headers: Vec<(String, String)>,
    resets: usize,
}

/// What the service sends back: a real message, or raw bytes in the gRPC frame.
enum Reply {
    Message(RateLimitResponse),
    Raw(Vec<u8>),
}

fn header_values(headers: &[(String, String)]) -> Vec<HeaderValue> {
    headers
        .iter()
        .map(|(k, v)| HeaderValue {
            key: k.clone(),
            value: v.clone(),
            ..Default::default()
        })
        .collect()
}

/// A running service on `127.0.0.1:<free port>`; stops on drop (and so does its own Redis).
pub struct RateLimitService {
    port: u16,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The Redis of [`RateLimitService::start`], dropped after the service has stopped.
    _redis: Option<Redis>,
}

impl RateLimitService {
    /// Starts the service with `limits` on a free loopback port, counting on a Redis server
    /// of its own (so tests never share counters). Panics if it cannot.
    pub fn start(limits: Vec<Limit>) -> RateLimitService {
        let redis = Redis::start();
        let mut service = Self::start_on(0, limits, Counters::Redis(redis.url()))
            .unwrap_or_else(|e| panic!("start rate-limit service: {e}"));
        service._redis = Some(redis);
        service
    }

    /// Starts the service counting in this process's memory (Limitador's in-memory storage):
    /// for services that count nothing (no limits, as the benchmarks') or need no Redis.
    /// Panics if it cannot.
    pub fn start_in_memory(limits: Vec<Limit>) -> RateLimitService {
        Self::start_on(0, limits, Counters::InMemory)
            .unwrap_or_else(|e| panic!("start rate-limit service: {e}"))
    }

    /// Starts a replica counting on `redis`, which every replica started on it shares (as
    /// several limitador-server instances on one Redis do). Panics if it cannot.
    pub fn start_shared(redis: &Redis, limits: Vec<Limit>) -> RateLimitService {
        Self::start_on(0, limits, Counters::Redis(redis.url()))
            .unwrap_or_else(|e| panic!("start rate-limit service: {e}"))
    }

    /// Starts the service on `127.0.0.1:port` (0 = any free port), counting in `counters`.
    pub fn start_on(
        port: u16,
        limits: Vec<Limit>,
        counters: Counters,
    ) -> std::io::Result<RateLimitService> {
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State::default()));
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Connects to Redis now, so a service that starts can count.
        let engine = runtime
            .block_on(Engine::new(limits, &counters))
            .map_err(std::io::Error::other)?;
        let service = Rls {
            state: Arc::clone(&state),
            engine: Arc::new(engine),
        };
        let thread = std::thread::Builder::new()
            .name(format!("rls-{port}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("rate-limit service: {e}");
                            return;
                        }
                    };
                    let incoming = tonic::transport::server::TcpIncoming::from(listener);
                    let result = tonic::transport::Server::builder()
                        .serve_with_incoming_shutdown(service, incoming, async {
                            let _ = signal.await;
                        })
                        .await;
                    if let Err(e) = result {
                        eprintln!("rate-limit service: {e}");
                    }
                });
            })?;
        Ok(RateLimitService {
            port,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
            _redis: None,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes how the service answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state().behaviour = Some(behaviour);
    }

    /// `request_headers_to_add` / `response_headers_to_add` of every answer from now on.
    pub fn set_headers_to_add(&self, request: &[(&str, &str)], response: &[(&str, &str)]) {
        let own = |h: &[(&str, &str)]| {
            h.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let mut state = self.state();
        state.request_headers = own(request);
        state.response_headers = own(response);
    }

    /// Streams reset so far ([`Behaviour::Reset`]).
    pub fn resets(&self) -> usize {
        self.state().resets
    }

    /// How many requests were received so far (without copying them).
    pub fn received_count(&self) -> usize {
        self.state().received.len()
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<RateLimitRequest> {
        self.state().received.clone()
    }

    /// The descriptors of every request so far, as `[(key, value), ...]` lists.
    pub fn received_descriptors(&self) -> Vec<Vec<Vec<(String, String)>>> {
        self.received()
            .iter()
            .map(obguard_testkit::ratelimit::descriptor_entries)
            .collect()
    }

    /// Serves until the process ends (for the fixture binary).
    pub fn run_forever(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RateLimitService {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn fault_of(request: &RateLimitRequest) -> Option<Behaviour> {
    let value = request
        .descriptors
        .iter()
        .flat_map(|d| &d.entries)
        .find(|e| e.key == FAULT_KEY)?
        .value
        .as_str();
    match value {
        "unavailable" => Some(Behaviour::Unavailable),
        "garbage" => Some(Behaviour::Garbage),
        "unknown_code" => Some(Behaviour::UnknownCode),
        _ => value
            .strip_prefix("delay:")
            .and_then(|ms| ms.parse().ok())
            .map(|ms| Behaviour::Delay(Duration::from_millis(ms))),
    }
}

/// The tower service: routes `ShouldRateLimit` to [`Handler`], everything else is
/// UNIMPLEMENTED (what tonic's generated servers do too).
#[derive(Clone)]
struct Rls {
    state: Arc<Mutex<State>>,
    engine: Arc<Engine>,
}

impl NamedService for Rls {
    const NAME: &'static str = obguard_rls_proto::SERVICE;
}

impl<B> Service<http::Request<B>> for Rls
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = StdError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let state = Arc::clone(&self.state);
        let engine = Arc::clone(&self.engine);
        Box::pin(async move {
            let path = format!(
                "/{}/{}",
                obguard_rls_proto::SERVICE,
                obguard_rls_proto::METHOD
            );
            if req.uri().path() != path {
                return Ok(Status::unimplemented("").into_http());
            }
            {
                let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
                if guard.behaviour == Some(Behaviour::Reset) {
                    guard.resets += 1;
                    // Not a `Status`: tonic hands it to hyper, which resets the stream.
                    return Err(Box::new(ResetStream) as StdError);
                }
            }
            let mut grpc = tonic::server::Grpc::new(RlsCodec);
            Ok(grpc.unary(Handler { state, engine }, req).await)
        })
    }
}

struct Handler {
    state: Arc<Mutex<State>>,
    engine: Arc<Engine>,
}

/// The service error behind [`Behaviour::Reset`].
#[derive(Debug)]
struct ResetStream;

impl std::fmt::Display for ResetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("told to reset the stream")
    }
}

impl std::error::Error for ResetStream {}

impl UnaryService<RateLimitRequest> for Handler {
    type Response = Reply;
    type Future = BoxFuture<Response<Reply>, Status>;

    fn call(&mut self, request: Request<RateLimitRequest>) -> Self::Future {
        let state = Arc::clone(&self.state);
        let engine = Arc::clone(&self.engine);
        Box::pin(async move {
            let request = request.into_inner();
            let behaviour = {
                let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
                guard.received.push(request.clone());
                fault_of(&request)
                    .or_else(|| guard.behaviour.clone())
                    .unwrap_or(Behaviour::Limit)
            };
            match behaviour {
                Behaviour::Unavailable => {
                    return Err(Status::unavailable("told to be unavailable"));
                }
                Behaviour::Garbage => {
                    return Ok(Response::new(Reply::Raw(vec![
                        0xff, 0xff, 0xff, 0xff, 0xff,
                    ])));
                }
                Behaviour::UnknownCode => {
                    return Ok(Response::new(Reply::Message(RateLimitResponse::default())));
                }
                Behaviour::Delay(delay) => tokio::time::sleep(delay).await,
                Behaviour::Limit | Behaviour::Reset => {}
            }
            // Like limitador-server: a storage failure is UNAVAILABLE.
            let mut answer = engine.answer(&request).await.map_err(Status::unavailable)?;
            {
                let guard = state.lock().unwrap_or_else(|e| e.into_inner());
                answer.request_headers_to_add = header_values(&guard.request_headers);
                answer.response_headers_to_add = header_values(&guard.response_headers);
            }
            Ok(Response::new(Reply::Message(answer)))
        })
    }
}

/// prost for requests; replies are a message or raw bytes.
#[derive(Clone, Copy)]
struct RlsCodec;

struct ReplyEncoder;
struct RequestDecoder;

impl Codec for RlsCodec {
    type Encode = Reply;
    type Decode = RateLimitRequest;
    type Encoder = ReplyEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ReplyEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder
    }
}

impl Encoder for ReplyEncoder {
    type Item = Reply;
    type Error = Status;

    fn encode(&mut self, item: Reply, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        match item {
            Reply::Message(message) => message
                .encode(dst)
                .map_err(|e| Status::internal(e.to_string())),
            Reply::Raw(bytes) => {
                dst.put_slice(&bytes);
                Ok(())
            }
        }
    }
}

impl Decoder for RequestDecoder {
    type Item = RateLimitRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<RateLimitRequest>, Status> {
        RateLimitRequest::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obguard_rls_proto::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;

    fn request(hits: u32, descriptors: &[&[(&str, &str)]]) -> RateLimitRequest {
        RateLimitRequest {
            domain: "bank".to_owned(),
            hits_addend: hits,
            descriptors: descriptors
                .iter()
                .map(|entries| RateLimitDescriptor {
                    entries: entries
                        .iter()
                        .map(|(key, value)| Entry {
                            key: (*key).to_owned(),
                            value: (*value).to_owned(),
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    /// Each descriptor's code (`None`: no limit applied) for a sequence of requests.
    fn codes(limits: Vec<Limit>, requests: &[RateLimitRequest]) -> Vec<Vec<Option<Code>>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let engine = runtime
            .block_on(Engine::new(limits, &Counters::InMemory))
            .unwrap();
        requests
            .iter()
            .map(|r| {
                let answer = runtime.block_on(engine.answer(r)).unwrap();
                answer
                    .statuses
                    .iter()
                    .map(|s| s.current_limit.as_ref().map(|_| s.code()))
                    .collect()
            })
            .collect()
    }

    const OK: Option<Code> = Some(Code::Ok);
    const OVER: Option<Code> = Some(Code::OverLimit);

    #[test]
    fn a_limit_matches_its_keys_in_order_and_its_values_and_counts_per_value() {
        let limits = vec![
            Limit::new("per-client", &[("client", None)], 1, Unit::Minute),
            Limit::new(
                "payments",
                &[("client", None), ("route", Some("pay'ments"))],
                1,
                Unit::Minute,
            ),
        ];
        let r = request(
            1,
            &[
                &[("client", "a")],
                &[("client", "a"), ("route", "pay'ments")],
                // Other value, other order, other shape: no limit.
                &[("client", "a"), ("route", "accounts")],
                &[("route", "pay'ments"), ("client", "a")],
                &[("client", "a"), ("extra", "x")],
            ],
        );
        let other_client = request(1, &[&[("client", "b")]]);
        assert_eq!(
            codes(limits, &[r.clone(), r, other_client]),
            [
                vec![OK, OK, None, None, None],
                vec![OVER, OVER, None, None, None],
                vec![OK],
            ]
        );
    }

    #[test]
    fn a_refused_request_is_not_counted_so_a_lighter_one_may_follow() {
        let limits = vec![Limit::new(
            "per-client",
            &[("client", None)],
            10,
            Unit::Minute,
        )];
        let requests: Vec<_> = [4, 4, 4, 2, 1]
            .iter()
            .map(|hits| request(*hits, &[&[("client", "a")]]))
            .collect();
        // 4 + 4 = 8; 12 would exceed 10 (refused, not counted); 8 + 2 = 10; 11 refused.
        assert_eq!(
            codes(limits, &requests),
            [vec![OK], vec![OK], vec![OVER], vec![OK], vec![OVER]]
        );
    }

    #[test]
    fn cel_strings_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(cel_string(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(cel_string("a\nb"), r"'a\u000ab'");
        assert!(Predicate::parse(format!("x == {}", cel_string("it's \\ \n"))).is_ok());
    }
}
