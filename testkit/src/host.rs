//! An in-memory [`Host`]: what Envoy would hold for one plugin and its current stream,
//! inspectable and breakable from a test.
//!
//! It behaves like Envoy where that matters to obguard's error handling: a header map that
//! is not attached (the callout answer of a failed or timed-out call) answers `BadArgument`;
//! shared data has CAS tokens that move on every write; callout tokens are unique; and any
//! operation can be made to fail with a chosen status ([`MemoryHost::fail`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use obguard::host::{
    Buffer, HeaderMap, Headers, Host, HostError, HostResult, LogLevel, MetricKind, wire,
};

/// The host calls, for [`MemoryHost::fail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostOp {
    Now,
    Buffer,
    HeaderPairs,
    Header,
    SetHeader,
    RemoveHeader,
    Property,
    SetProperty,
    SharedData,
    SetSharedData,
    SendReply,
    Resume,
    HttpCall,
    GrpcCall,
    TickPeriod,
    DefineMetric,
    IncrementMetric,
    RecordMetric,
    ForeignFunction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl HttpCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    pub token: u32,
    pub upstream: Vec<u8>,
    pub service: String,
    pub method: String,
    pub message: Vec<u8>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct Metric {
    name: String,
    value: i64,
}

type ForeignFn = Box<dyn Fn(&[u8]) -> HostResult<Option<Vec<u8>>>>;

#[derive(Default)]
struct State {
    now_ns: u64,
    maps: HashMap<HeaderMap, Vec<(String, Vec<u8>)>>,
    buffers: HashMap<Buffer, Vec<u8>>,
    properties: HashMap<Vec<u8>, Vec<u8>>,
    shared: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    next_token: u32,
    http_calls: Vec<HttpCall>,
    /// Host calls made so far, by kind ([`MemoryHost::calls`]).
    calls: HashMap<HostOp, usize>,
    grpc_calls: Vec<GrpcCall>,
    replies: Vec<Reply>,
    resumed: usize,
    logs: Vec<(LogLevel, String)>,
    metrics: Vec<Metric>,
    tick_period: Option<Duration>,
    foreign: HashMap<String, ForeignFn>,
    faults: HashMap<HostOp, HostError>,
}

/// See the module documentation. Single-threaded, like a wasm VM.
#[derive(Default)]
pub struct MemoryHost {
    state: RefCell<State>,
}

impl MemoryHost {
    /// A host whose clock reads `now_secs`, with empty request and response header maps
    /// attached.
    pub fn new(now_secs: u64) -> Self {
        let host = Self::default();
        {
            let mut state = host.state.borrow_mut();
            state.now_ns = now_secs * 1_000_000_000;
            state.maps.insert(HeaderMap::RequestHeaders, Vec::new());
            state.maps.insert(HeaderMap::ResponseHeaders, Vec::new());
        }
        host
    }

    pub fn set_plugin_configuration(&self, json: &serde_json::Value) {
        self.set_buffer(Buffer::PluginConfiguration, json.to_string().into_bytes());
    }

    pub fn set_buffer(&self, buffer: Buffer, bytes: Vec<u8>) {
        self.state.borrow_mut().buffers.insert(buffer, bytes);
    }

    pub fn advance(&self, by: Duration) {
        let mut state = self.state.borrow_mut();
        state.now_ns = state
            .now_ns
            .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Attaches a header map (replacing what it held); values may be any bytes.
    pub fn attach_map<N: Into<String>, V: Into<Vec<u8>>>(
        &self,
        map: HeaderMap,
        pairs: impl IntoIterator<Item = (N, V)>,
    ) {
        let pairs = pairs
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        self.state.borrow_mut().maps.insert(map, pairs);
    }

    /// Detaches a map: reads then answer `BadArgument`, as Envoy does for the answer of a
    /// callout that failed.
    pub fn detach_map(&self, map: HeaderMap) {
        self.state.borrow_mut().maps.remove(&map);
    }

    /// A request with these headers (`:method`, `:path`, … included), and a fresh response.
    pub fn start_request<'a>(&self, headers: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.attach_map(
            HeaderMap::RequestHeaders,
            headers.into_iter().map(|(n, v)| (n, v.as_bytes().to_vec())),
        );
        self.attach_map::<String, Vec<u8>>(HeaderMap::ResponseHeaders, []);
    }

    /// The answer the next `on_http_call_response` reads: status, headers and body.
    pub fn answer_http_call<'a>(
        &self,
        status: u16,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        body: &[u8],
    ) {
        let mut pairs = vec![(":status".to_owned(), status.to_string().into_bytes())];
        pairs.extend(headers.into_iter().map(|(n, v)| (n.to_owned(), v.to_vec())));
        self.state
            .borrow_mut()
            .maps
            .insert(HeaderMap::HttpCallResponseHeaders, pairs);
        self.set_buffer(Buffer::HttpCallResponseBody, body.to_vec());
    }

    /// No answer: headers detached and body gone, as after a reset or a timeout.
    pub fn fail_http_call(&self) {
        let mut state = self.state.borrow_mut();
        state.maps.remove(&HeaderMap::HttpCallResponseHeaders);
        state.buffers.remove(&Buffer::HttpCallResponseBody);
    }

    /// Makes every later `op` answer `err` until [`MemoryHost::heal`].
    /// Host calls of each kind made since the last [`MemoryHost::reset_calls`] (what a
    /// request costs in host work: every call crosses the VM boundary in Envoy).
    pub fn calls(&self) -> HashMap<HostOp, usize> {
        self.state.borrow().calls.clone()
    }

    pub fn reset_calls(&self) {
        self.state.borrow_mut().calls.clear();
    }

    pub fn fail(&self, op: HostOp, err: HostError) {
        self.state.borrow_mut().faults.insert(op, err);
    }

    pub fn heal(&self, op: HostOp) {
        self.state.borrow_mut().faults.remove(&op);
    }

    pub fn offer_foreign_function(
        &self,
        name: &str,
        f: impl Fn(&[u8]) -> HostResult<Option<Vec<u8>>> + 'static,
    ) {
        self.state
            .borrow_mut()
            .foreign
            .insert(name.to_owned(), Box::new(f));
    }

    pub fn request_header(&self, name: &str) -> Option<String> {
        self.map_value(HeaderMap::RequestHeaders, name)
    }

    pub fn response_header(&self, name: &str) -> Option<String> {
        self.map_value(HeaderMap::ResponseHeaders, name)
    }

    fn map_value(&self, map: HeaderMap, name: &str) -> Option<String> {
        let state = self.state.borrow();
        state
            .maps
            .get(&map)?
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// A filter-state property obguard set (`wasm.<key>` in Envoy's access log).
    pub fn property_str(&self, path: &[&str]) -> Option<String> {
        let state = self.state.borrow();
        state
            .properties
            .get(&wire::encode_path(path))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn set_property_value(&self, path: &[&str], value: &[u8]) {
        self.state
            .borrow_mut()
            .properties
            .insert(wire::encode_path(path), value.to_vec());
    }

    pub fn shared_value(&self, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().shared.get(key).map(|(v, _)| v.clone())
    }

    pub fn shared_keys(&self) -> Vec<String> {
        self.state.borrow().shared.keys().cloned().collect()
    }

    pub fn http_calls(&self) -> Vec<HttpCall> {
        self.state.borrow().http_calls.clone()
    }

    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        self.state.borrow().grpc_calls.clone()
    }

    pub fn replies(&self) -> Vec<Reply> {
        self.state.borrow().replies.clone()
    }

    pub fn resumed(&self) -> usize {
        self.state.borrow().resumed
    }

    pub fn tick_period(&self) -> Option<Duration> {
        self.state.borrow().tick_period
    }

    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.state.borrow().logs.clone()
    }

    /// Whether any log line at `level` or above contains `needle`.
    pub fn logged(&self, level: LogLevel, needle: &str) -> bool {
        self.state
            .borrow()
            .logs
            .iter()
            .any(|(l, m)| *l >= level && m.contains(needle))
    }

    /// A metric's value (0 when it was never defined).
    pub fn metric(&self, name: &str) -> i64 {
        self.state
            .borrow()
            .metrics
            .iter()
            .find(|m| m.name == name)
            .map_or(0, |m| m.value)
    }

    pub fn metric_defined(&self, name: &str) -> bool {
        self.state.borrow().metrics.iter().any(|m| m.name == name)
    }

    fn fault(&self, op: HostOp) -> HostResult<()> {
        let mut state = self.state.borrow_mut();
        *state.calls.entry(op).or_insert(0) += 1;
        match state.faults.get(&op) {
            Some(err) => Err(*err),
            None => Ok(()),
        }
    }

    fn next_token(state: &mut State) -> u32 {
        state.next_token += 1;
        state.next_token
    }
}

impl Host for MemoryHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.state
            .borrow_mut()
            .logs
            .push((level, message.to_owned()));
    }

    fn now_nanos(&self) -> HostResult<u64> {
        self.fault(HostOp::Now)?;
        Ok(self.state.borrow().now_ns)
    }

    fn buffer(&self, buffer: Buffer, start: usize, max: usize) -> HostResult<Vec<u8>> {
        self.fault(HostOp::Buffer)?;
        let state = self.state.borrow();
        let Some(bytes) = state.buffers.get(&buffer) else {
            return Ok(Vec::new());
        };
        Ok(bytes.iter().skip(start).take(max).copied().collect())
    }

    fn header_pairs(&self, map: HeaderMap) -> HostResult<Headers> {
        self.fault(HostOp::HeaderPairs)?;
        let state = self.state.borrow();
        let pairs = state.maps.get(&map).ok_or(HostError::BadArgument)?;
        // Through the wire format, as the ABI host does.
        let encoded = wire::encode_map(pairs);
        wire::decode_map_lossy(&encoded).ok_or(HostError::Malformed)
    }

    fn header(&self, map: HeaderMap, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.fault(HostOp::Header)?;
        let state = self.state.borrow();
        let pairs = state.maps.get(&map).ok_or(HostError::BadArgument)?;
        Ok(pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone()))
    }

    fn set_header(&self, map: HeaderMap, name: &str, value: &str) -> HostResult<()> {
        self.fault(HostOp::SetHeader)?;
        let mut state = self.state.borrow_mut();
        let pairs = state.maps.get_mut(&map).ok_or(HostError::BadArgument)?;
        pairs.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        pairs.push((name.to_owned(), value.as_bytes().to_vec()));
        Ok(())
    }

    fn remove_header(&self, map: HeaderMap, name: &str) -> HostResult<()> {
        self.fault(HostOp::RemoveHeader)?;
        let mut state = self.state.borrow_mut();
        let pairs = state.maps.get_mut(&map).ok_or(HostError::BadArgument)?;
        pairs.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        Ok(())
    }

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        self.fault(HostOp::Property)?;
        Ok(self
            .state
            .borrow()
            .properties
            .get(&wire::encode_path(path))
            .cloned())
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> HostResult<()> {
        self.fault(HostOp::SetProperty)?;
        self.set_property_value(path, value);
        Ok(())
    }

    fn shared_data(&self, key: &str) -> HostResult<(Option<Vec<u8>>, Option<u32>)> {
        self.fault(HostOp::SharedData)?;
        Ok(match self.state.borrow().shared.get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()> {
        self.fault(HostOp::SetSharedData)?;
        let mut state = self.state.borrow_mut();
        if let Some(expected) = cas.filter(|c| *c != 0)
            && state.shared.get(key).map(|(_, c)| *c) != Some(expected)
        {
            return Err(HostError::CasMismatch);
        }
        state.next_cas += 1;
        let next = state.next_cas;
        state.shared.insert(key.to_owned(), (value.to_vec(), next));
        Ok(())
    }

    fn send_reply(&self, status: u16, headers: &[(String, String)], body: &[u8]) -> HostResult<()> {
        self.fault(HostOp::SendReply)?;
        self.state.borrow_mut().replies.push(Reply {
            status,
            headers: headers.to_vec(),
            body: body.to_vec(),
        });
        Ok(())
    }

    fn resume_request(&self) -> HostResult<()> {
        self.fault(HostOp::Resume)?;
        self.state.borrow_mut().resumed += 1;
        Ok(())
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32> {
        self.fault(HostOp::HttpCall)?;
        let mut state = self.state.borrow_mut();
        let token = Self::next_token(&mut state);
        state.http_calls.push(HttpCall {
            token,
            cluster: cluster.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.map(<[u8]>::to_vec),
            timeout,
        });
        Ok(token)
    }

    fn grpc_call(
        &self,
        upstream: &[u8],
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> HostResult<u32> {
        self.fault(HostOp::GrpcCall)?;
        let mut state = self.state.borrow_mut();
        let token = Self::next_token(&mut state);
        state.grpc_calls.push(GrpcCall {
            token,
            upstream: upstream.to_vec(),
            service: service.to_owned(),
            method: method.to_owned(),
            message: message.to_vec(),
            timeout,
        });
        Ok(token)
    }

    fn set_tick_period(&self, period: Duration) -> HostResult<()> {
        self.fault(HostOp::TickPeriod)?;
        self.state.borrow_mut().tick_period = Some(period);
        Ok(())
    }

    fn define_metric(&self, _kind: MetricKind, name: &str) -> HostResult<u32> {
        self.fault(HostOp::DefineMetric)?;
        let mut state = self.state.borrow_mut();
        if let Some(index) = state.metrics.iter().position(|m| m.name == name) {
            return u32::try_from(index).map_err(|_| HostError::InternalFailure);
        }
        state.metrics.push(Metric {
            name: name.to_owned(),
            value: 0,
        });
        u32::try_from(state.metrics.len() - 1).map_err(|_| HostError::InternalFailure)
    }

    fn increment_metric(&self, id: u32, delta: i64) -> HostResult<()> {
        self.fault(HostOp::IncrementMetric)?;
        let mut state = self.state.borrow_mut();
        let metric = state
            .metrics
            .get_mut(id as usize)
            .ok_or(HostError::NotFound)?;
        metric.value += delta;
        Ok(())
    }

    fn record_metric(&self, id: u32, value: u64) -> HostResult<()> {
        self.fault(HostOp::RecordMetric)?;
        let mut state = self.state.borrow_mut();
        let metric = state
            .metrics
            .get_mut(id as usize)
            .ok_or(HostError::NotFound)?;
        metric.value = i64::try_from(value).unwrap_or(i64::MAX);
        Ok(())
    }

    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> HostResult<Option<Vec<u8>>> {
        self.fault(HostOp::ForeignFunction)?;
        let state = self.state.borrow();
        match state.foreign.get(name) {
            Some(f) => f(arguments),
            None => Err(HostError::NotFound),
        }
    }
}
