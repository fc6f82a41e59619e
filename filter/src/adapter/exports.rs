//! The functions a proxy-wasm 0.2.1 host calls, each translated into one call on
//! [`crate::runtime`]. Contexts live in one table keyed by the host's context id; a callback
//! for an id the table does not hold (deleted, never created, or a plugin whose
//! configuration failed) is answered with the safe default instead of a panic, which is
//! what the SDK's dispatcher did (`panic!("invalid context_id")`, `expect("invalid
//! token_id")`).
//!
//! Callout answers arrive at the root context (the host owns every callout there); they are
//! routed to the context that started the call, made effective first, by the owner
//! [`abi`](super::abi) recorded. The runtime ignores tokens it does not own.

use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::rc::Rc;

use super::abi::{self, AbiHost};
use crate::host::{Host, LogLevel};
use crate::runtime::{Flow, Plugin, Stream, host_crypto};

enum Context {
    Plugin(Box<Plugin>),
    Stream(Box<Stream>),
}

thread_local! {
    static CONTEXTS: RefCell<HashMap<u32, Context>> = RefCell::new(HashMap::new());
}

/// Runs `f` on context `id`, taken out of the table for the duration so that `f` may create
/// or look up other contexts; `default` when there is no such context.
fn with_context<R>(id: u32, default: R, f: impl FnOnce(&mut Context) -> R) -> R {
    let taken = CONTEXTS.with(|table| table.try_borrow_mut().ok()?.remove(&id));
    let Some(mut context) = taken else {
        return default;
    };
    abi::enter(id);
    let result = f(&mut context);
    abi::enter(0);
    CONTEXTS.with(|table| {
        if let Ok(mut table) = table.try_borrow_mut() {
            table.insert(id, context);
        }
    });
    result
}

fn with_plugin<R>(id: u32, default: R, f: impl FnOnce(&mut Plugin) -> R) -> R {
    with_context(id, None, |context| match context {
        Context::Plugin(plugin) => Some(f(plugin)),
        Context::Stream(_) => None,
    })
    .unwrap_or(default)
}

fn with_stream(id: u32, f: impl FnOnce(&mut Stream) -> Flow) -> u32 {
    action(with_context(id, Flow::Continue, |context| match context {
        Context::Stream(stream) => f(stream),
        Context::Plugin(_) => Flow::Continue,
    }))
}

/// ABI `Action`: 0 continue, 1 pause.
fn action(flow: Flow) -> u32 {
    match flow {
        Flow::Continue => 0,
        Flow::Pause => 1,
    }
}

/// The context that started callout `token`, made effective; `delivered_to` (the root
/// context the host called) when the call was the root's own or its owner is gone.
fn callout_context(token: u32, delivered_to: u32) -> u32 {
    match abi::callout_owner(token) {
        Some(owner) if owner != delivered_to => {
            if abi::set_effective_context(owner).is_ok() {
                owner
            } else {
                // The owner's stream is gone: nobody to answer.
                0
            }
        }
        _ => delivered_to,
    }
}

fn host() -> Rc<dyn Host> {
    Rc::new(AbiHost)
}

/// [`crate::identify::host_crypto::HostVerifyFn`] bound to this host.
fn verify_signature(hash: &str, spki_der: &[u8], signature: &[u8], text: &[u8]) -> Option<bool> {
    host_crypto::verify_signature(&AbiHost, hash, spki_der, signature, text)
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host allocates every buffer it hands to obguard here; `abi::take_buffer` frees it.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    Box::into_raw(Box::<[u8]>::new_uninit_slice(size))
        .cast::<MaybeUninit<u8>>()
        .cast::<u8>()
}

unsafe extern "C" {
    /// wasi-libc's constructors; a reactor module runs them from `_initialize`.
    fn __wasm_call_ctors();
}

#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    // SAFETY: called once by the host before any other export, as WASI reactors require.
    unsafe { __wasm_call_ctors() };
    // Nothing in obguard panics by design; should something still do so, say what before the
    // VM traps.
    std::panic::set_hook(Box::new(|info| {
        AbiHost.log(LogLevel::Critical, &format!("obguard: panicked: {info}"));
    }));
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_context_id: u32) {
    let context = if parent_context_id == 0 {
        Context::Plugin(Box::new(Plugin::new(host(), Some(verify_signature))))
    } else {
        let stream = with_plugin(parent_context_id, None, |plugin| Some(plugin.stream()))
            // A stream of an unknown plugin has no configuration: it refuses every request.
            .unwrap_or_else(|| Stream::new(host(), None));
        Context::Stream(Box::new(stream))
    };
    CONTEXTS.with(|table| {
        if let Ok(mut table) = table.try_borrow_mut() {
            table.insert(context_id, context);
        }
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_context_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(context_id: u32, _plugin_configuration_size: usize) -> u32 {
    u32::from(with_plugin(context_id, false, Plugin::configure))
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_tick(context_id: u32) {
    with_plugin(context_id, (), Plugin::on_tick);
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_http_call_response(
    context_id: u32,
    token: u32,
    _num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    // The plugin's callouts (JWKS, model polls) and a stream's (consent service).
    let owner = callout_context(token, context_id);
    with_context(owner, (), |context| match context {
        Context::Plugin(plugin) => plugin.on_http_call_response(token, body_size),
        Context::Stream(stream) => stream.on_http_call_response(token, body_size),
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_grpc_receive(context_id: u32, token: u32, response_size: usize) {
    with_stream(callout_context(token, context_id), |stream| {
        stream.on_grpc_call_response(token, 0, response_size);
        Flow::Continue
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_grpc_close(context_id: u32, token: u32, status_code: u32) {
    with_stream(callout_context(token, context_id), |stream| {
        stream.on_grpc_call_response(token, status_code, 0);
        Flow::Continue
    });
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    _num_headers: usize,
    _end_of_stream: u32,
) -> u32 {
    with_stream(context_id, Stream::on_request_headers)
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_body(
    context_id: u32,
    _body_size: usize,
    _end_of_stream: u32,
) -> u32 {
    with_stream(context_id, Stream::on_request_body)
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, _num_trailers: usize) -> u32 {
    with_stream(context_id, Stream::on_request_trailers)
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_headers(
    context_id: u32,
    _num_headers: usize,
    _end_of_stream: u32,
) -> u32 {
    with_stream(context_id, Stream::on_response_headers)
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_done(_context_id: u32) -> u32 {
    1
}

#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    abi::forget_callouts_of(context_id);
    CONTEXTS.with(|table| {
        if let Ok(mut table) = table.try_borrow_mut() {
            table.remove(&context_id);
        }
    });
}
