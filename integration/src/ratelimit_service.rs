//! A rate-limit service speaking Envoy's real gRPC API
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, HTTP/2, messages generated
//! by prost from the pinned protos in `rls-proto/`), for tests, demos and benchmarks.
//!
//! It limits with fixed windows per descriptor, like envoyproxy/ratelimit: a [`Limit`] matches
//! a descriptor whose entries have the same keys in the same order and, where the limit names a
//! value, that value; each distinct descriptor gets its own counter, which grows by the
//! request's `hits_addend` (0 counts as 1) and is over the limit once above
//! `requests_per_unit`. It records every request it receives and can be told to misbehave
//! ([`Behaviour`]): from the test through [`RateLimitService::set_behaviour`], or per request
//! with a descriptor entry `obguard-test-fault` = `delay:<ms>` | `unavailable` | `garbage` |
//! `unknown_code`; [`Behaviour::Reset`] resets the HTTP/2 stream instead of answering.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    fn matches(&self, descriptor: &RateLimitDescriptor) -> bool {
        descriptor.entries.len() == self.entries.len()
            && descriptor
                .entries
                .iter()
                .zip(&self.entries)
                .all(|(e, (key, value))| {
                    e.key == *key && value.as_ref().is_none_or(|v| *v == e.value)
                })
    }
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

#[derive(Default)]
struct State {
    behaviour: Option<Behaviour>,
    limits: Vec<Limit>,
    received: Vec<RateLimitRequest>,
    /// (domain, descriptor, window index) → hits.
    counters: HashMap<String, u64>,
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

impl State {
    fn answer(&mut self, request: &RateLimitRequest, now: SystemTime) -> RateLimitResponse {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let hits = u64::from(request.hits_addend.max(1));
        let mut overall = Code::Ok;
        let mut statuses = Vec::new();
        for descriptor in &request.descriptors {
            let Some(limit) = self.limits.iter().find(|l| l.matches(descriptor)).cloned() else {
                statuses.push(DescriptorStatus {
                    code: Code::Ok as i32,
                    ..Default::default()
                });
                continue;
            };
            let window = unit_seconds(limit.unit);
            let index = now.as_secs() / window;
            let key = format!(
                "{}|{}|{index}",
                request.domain,
                descriptor
                    .entries
                    .iter()
                    .map(|e| format!("{}={}", e.key, e.value))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let count = self.counters.entry(key).or_insert(0);
            *count += hits;
            let over = *count > u64::from(limit.requests_per_unit);
            if over {
                overall = Code::OverLimit;
            }
            let reset = Duration::from_secs((index + 1) * window).saturating_sub(now);
            statuses.push(DescriptorStatus {
                code: if over { Code::OverLimit } else { Code::Ok } as i32,
                current_limit: Some(RateLimit {
                    name: limit.name.clone(),
                    requests_per_unit: limit.requests_per_unit,
                    unit: limit.unit as i32,
                }),
                limit_remaining: u32::try_from(
                    u64::from(limit.requests_per_unit).saturating_sub(*count),
                )
                .unwrap_or(0),
                duration_until_reset: Some(prost_types::Duration {
                    seconds: i64::try_from(reset.as_secs()).unwrap_or(0),
                    nanos: i32::try_from(reset.subsec_nanos()).unwrap_or(0),
                }),
                ..Default::default()
            });
        }
        RateLimitResponse {
            overall_code: overall as i32,
            statuses,
            request_headers_to_add: header_values(&self.request_headers),
            response_headers_to_add: header_values(&self.response_headers),
            ..Default::default()
        }
    }
}

/// A running service on `127.0.0.1:<free port>`; stops on drop.
pub struct RateLimitService {
    port: u16,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RateLimitService {
    /// Starts the service with `limits` on a free loopback port. Panics if it cannot.
    pub fn start(limits: Vec<Limit>) -> RateLimitService {
        Self::start_on(0, limits).unwrap_or_else(|e| panic!("start rate-limit service: {e}"))
    }

    /// Starts the service on `127.0.0.1:port` (0 = any free port).
    pub fn start_on(port: u16, limits: Vec<Limit>) -> std::io::Result<RateLimitService> {
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            limits,
            ..Default::default()
        }));
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let service = Rls {
            state: Arc::clone(&state),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
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
            Ok(grpc.unary(Handler { state }, req).await)
        })
    }
}

struct Handler {
    state: Arc<Mutex<State>>,
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
            let answer = state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .answer(&request, SystemTime::now());
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
