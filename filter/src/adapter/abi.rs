//! The proxy-wasm ABI 0.2.1 calls obguard makes, declared here and nowhere else, behind
//! [`Host`]. Every status becomes a [`HostError`], every buffer the host hands over is taken
//! back into Rust ownership exactly once, and nothing here panics or unwraps: the SDK's own
//! wrappers `panic!` on unexpected statuses and `unwrap()` UTF-8, which trapped the VM when a
//! callout failed (docs/adr/0006-own-host-layer.md).
//!
//! Callouts belong to the plugin's root context in Envoy (proxy-wasm's host starts every
//! HTTP and gRPC call on the root context, whichever context asked), so their answers arrive
//! with the root context's id. The owner of each call is recorded here when it starts, and
//! [`super::exports`] makes that context effective again before handing it the answer.
//!
//! Buffers returned by the host were allocated by it through [`super::exports`]'
//! `proxy_on_memory_allocate` as boxed byte slices of the exact size it then reports, so they
//! are released here as such.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr::{null, null_mut};
use std::time::Duration;

use crate::host::wire;
use crate::host::{Buffer, HeaderMap, Headers, Host, HostError, HostResult, LogLevel, MetricKind};

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_grpc_call(
        upstream_data: *const u8,
        upstream_size: usize,
        service_data: *const u8,
        service_size: usize,
        method_data: *const u8,
        method_size: usize,
        metadata_data: *const u8,
        metadata_size: usize,
        message_data: *const u8,
        message_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_call_foreign_function(
        name_data: *const u8,
        name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
}

thread_local! {
    /// The context whose callback is running (0 outside callbacks).
    static ACTIVE_CONTEXT: Cell<u32> = const { Cell::new(0) };
    /// Callout token → the context that started it.
    static CALLOUT_OWNERS: RefCell<HashMap<u32, u32>> = RefCell::new(HashMap::new());
}

/// Records which context the host is calling into, so callouts started now are routed back.
pub fn enter(context_id: u32) {
    ACTIVE_CONTEXT.with(|active| active.set(context_id));
}

fn own_callout(token: u32) {
    let owner = ACTIVE_CONTEXT.with(Cell::get);
    CALLOUT_OWNERS.with(|owners| {
        if let Ok(mut owners) = owners.try_borrow_mut() {
            owners.insert(token, owner);
        }
    });
}

/// The context that started callout `token` (forgotten once asked).
pub fn callout_owner(token: u32) -> Option<u32> {
    CALLOUT_OWNERS.with(|owners| owners.try_borrow_mut().ok()?.remove(&token))
}

/// Forgets the callouts of a deleted context (the host cancels them; nothing will answer).
pub fn forget_callouts_of(context_id: u32) {
    CALLOUT_OWNERS.with(|owners| {
        if let Ok(mut owners) = owners.try_borrow_mut() {
            owners.retain(|_, owner| *owner != context_id);
        }
    });
}

/// Makes `context_id` the context later host calls act on (a stream's headers, replies and
/// properties while it handles a callout answer delivered to the root context).
pub fn set_effective_context(context_id: u32) -> HostResult<()> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_effective_context(context_id) })
}

/// `proxy_continue_stream`'s stream type for the HTTP request.
const STREAM_HTTP_REQUEST: u32 = 0;

fn check(status: u32) -> HostResult<()> {
    match HostError::from_status(status) {
        None => Ok(()),
        Some(err) => Err(err),
    }
}

/// Takes ownership of a buffer the host allocated through `proxy_on_memory_allocate`.
///
/// # Safety
/// `data` must be null, or a pointer that `proxy_on_memory_allocate(size)` returned and that
/// nothing else owns; the host hands each such buffer to exactly one call's out-parameters.
unsafe fn take_buffer(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    let slice = std::ptr::slice_from_raw_parts_mut(data, size);
    // SAFETY: per the contract above, `data` is a `Box<[u8]>` of exactly `size` bytes leaked
    // by the allocator export; rebuilding the box returns it to the allocator exactly once.
    Some(unsafe { Box::from_raw(slice) }.into_vec())
}

/// Runs a host call that returns one buffer; `NotFound` is `Ok(None)`.
fn returned_buffer(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> u32,
) -> HostResult<Option<Vec<u8>>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let status = call(&mut data, &mut size);
    // SAFETY: `data`/`size` were written by the host call (or left null), see `take_buffer`.
    let buffer = unsafe { take_buffer(data, size) };
    match HostError::from_status(status) {
        None => Ok(buffer),
        Some(HostError::NotFound) => Ok(None),
        Some(err) => Err(err),
    }
}

fn millis_u32(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

/// The host obguard runs in: Envoy (or any proxy-wasm 0.2.1 host), through the ABI above.
/// Zero-sized: the host's state is on the other side of the ABI.
#[derive(Debug, Default, Clone, Copy)]
pub struct AbiHost;

impl Host for AbiHost {
    fn log(&self, level: LogLevel, message: &str) {
        // SAFETY: pointer and length of a live `&str`. Nowhere left to report a failure.
        let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
    }

    fn now_nanos(&self) -> HostResult<u64> {
        let mut nanos = 0u64;
        // SAFETY: `nanos` outlives the call.
        check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
        Ok(nanos)
    }

    fn buffer(&self, buffer: Buffer, start: usize, max: usize) -> HostResult<Vec<u8>> {
        returned_buffer(|data, size| {
            // SAFETY: out-parameters live across the call.
            unsafe { proxy_get_buffer_bytes(buffer as u32, start, max, data, size) }
        })
        .map(Option::unwrap_or_default)
    }

    fn header_pairs(&self, map: HeaderMap) -> HostResult<Headers> {
        let bytes = returned_buffer(|data, size| {
            // SAFETY: out-parameters live across the call.
            unsafe { proxy_get_header_map_pairs(map as u32, data, size) }
        })?
        .unwrap_or_default();
        wire::decode_map_lossy(&bytes).ok_or(HostError::Malformed)
    }

    fn header(&self, map: HeaderMap, name: &str) -> HostResult<Option<Vec<u8>>> {
        returned_buffer(|data, size| {
            // SAFETY: `name` is live; out-parameters live across the call.
            unsafe { proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), data, size) }
        })
    }

    fn set_header(&self, map: HeaderMap, name: &str, value: &str) -> HostResult<()> {
        // SAFETY: pointers and lengths of live strings.
        check(unsafe {
            proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                value.as_ptr(),
                value.len(),
            )
        })
    }

    fn remove_header(&self, map: HeaderMap, name: &str) -> HostResult<()> {
        // SAFETY: pointer and length of a live string.
        check(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
    }

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        let path = wire::encode_path(path);
        returned_buffer(|data, size| {
            // SAFETY: `path` is live; out-parameters live across the call.
            unsafe { proxy_get_property(path.as_ptr(), path.len(), data, size) }
        })
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> HostResult<()> {
        let path = wire::encode_path(path);
        // SAFETY: pointers and lengths of live buffers.
        check(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
    }

    fn shared_data(&self, key: &str) -> HostResult<(Option<Vec<u8>>, Option<u32>)> {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        let mut cas: u32 = 0;
        // SAFETY: `key` is live; out-parameters live across the call.
        let status = unsafe {
            proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas)
        };
        // SAFETY: written by the host call (or left null).
        let value = unsafe { take_buffer(data, size) };
        match HostError::from_status(status) {
            None => Ok((value, (cas != 0).then_some(cas))),
            Some(HostError::NotFound) => Ok((None, None)),
            Some(err) => Err(err),
        }
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()> {
        // SAFETY: pointers and lengths of live buffers.
        check(unsafe {
            proxy_set_shared_data(
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
                cas.unwrap_or(0),
            )
        })
    }

    fn send_reply(&self, status: u16, headers: &[(String, String)], body: &[u8]) -> HostResult<()> {
        let headers = wire::encode_map(headers);
        // SAFETY: pointers and lengths of live buffers; no details string.
        check(unsafe {
            proxy_send_local_response(
                u32::from(status),
                null(),
                0,
                body.as_ptr(),
                body.len(),
                headers.as_ptr(),
                headers.len(),
                -1,
            )
        })
    }

    fn resume_request(&self) -> HostResult<()> {
        // SAFETY: no pointers.
        check(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
    }

    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32> {
        let headers = wire::encode_map(headers);
        let trailers = wire::encode_map::<&str, &str>(&[]);
        let body = body.unwrap_or_default();
        let mut token = 0u32;
        // SAFETY: pointers and lengths of live buffers; `token` outlives the call.
        check(unsafe {
            proxy_http_call(
                cluster.as_ptr(),
                cluster.len(),
                headers.as_ptr(),
                headers.len(),
                body.as_ptr(),
                body.len(),
                trailers.as_ptr(),
                trailers.len(),
                millis_u32(timeout),
                &mut token,
            )
        })?;
        own_callout(token);
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
        let metadata = wire::encode_map::<&str, &str>(&[]);
        let mut token = 0u32;
        // SAFETY: pointers and lengths of live buffers; `token` outlives the call.
        check(unsafe {
            proxy_grpc_call(
                upstream.as_ptr(),
                upstream.len(),
                service.as_ptr(),
                service.len(),
                method.as_ptr(),
                method.len(),
                metadata.as_ptr(),
                metadata.len(),
                message.as_ptr(),
                message.len(),
                millis_u32(timeout),
                &mut token,
            )
        })?;
        own_callout(token);
        Ok(token)
    }

    fn set_tick_period(&self, period: Duration) -> HostResult<()> {
        // SAFETY: no pointers.
        check(unsafe { proxy_set_tick_period_milliseconds(millis_u32(period)) })
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<u32> {
        let mut id = 0u32;
        // SAFETY: `name` is live; `id` outlives the call.
        check(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
        Ok(id)
    }

    fn increment_metric(&self, id: u32, delta: i64) -> HostResult<()> {
        // SAFETY: no pointers.
        check(unsafe { proxy_increment_metric(id, delta) })
    }

    fn record_metric(&self, id: u32, value: u64) -> HostResult<()> {
        // SAFETY: no pointers.
        check(unsafe { proxy_record_metric(id, value) })
    }

    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> HostResult<Option<Vec<u8>>> {
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: pointers and lengths of live buffers; out-parameters live across the call.
        let status = unsafe {
            proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                arguments.as_ptr(),
                arguments.len(),
                &mut data,
                &mut size,
            )
        };
        // SAFETY: written by the host call (or left null).
        let value = unsafe { take_buffer(data, size) };
        // Unlike the other calls, `NotFound` here means "no such function", which the caller
        // must be able to tell apart from an empty answer.
        check(status).map(|()| value)
    }
}
