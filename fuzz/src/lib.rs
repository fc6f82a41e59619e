//! Fuzz targets for obguard: every parser that sees bytes from a client, the identity
//! provider, the rate-limit service, shared data or the operator, and the per-request
//! decision. See `docs/fuzzing.md`.
//!
//! * [`targets`]  — one function per target, `fn(&[u8])`; `fuzz_targets/*.rs` wrap them for
//!   libFuzzer (`cargo fuzz`, feature `libfuzzer`), `tests/corpus.rs` replays the committed
//!   corpora and runs seeded mutations of them on the stable toolchain.
//! * [`input`]    — structure-aware inputs (`arbitrary`).
//! * [`check`]    — the invariants the targets assert.
//! * [`fixtures`] — the fixed clock, configurations, committed tokens and model keys.
//! * [`mutate`]   — the small deterministic mutator of the stable runs.
//!
//! Every target binary and test also runs under [`BoundedAlloc`]: an allocation larger than
//! [`MAX_ALLOCATION`] fails (and aborts, which libFuzzer records as a crash), so unbounded
//! memory use from a small input is a finding even without a sanitizer.

// Fuzz harness: assertions are the point, and a fixture that does not load must stop the run.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod check;
pub mod fixtures;
pub mod input;
pub mod mutate;
pub mod targets;

use std::alloc::{GlobalAlloc, Layout, System};

/// Largest single allocation a target may make. Inputs are at most a few hundred KiB; the
/// largest legitimate buffers are model files (4 MiB cap) and their decoded forms.
pub const MAX_ALLOCATION: usize = 64 << 20;

/// The system allocator, refusing allocations above [`MAX_ALLOCATION`].
pub struct BoundedAlloc;

// SAFETY: forwards to `System`, only refusing (null) some requests, which the contract allows.
unsafe impl GlobalAlloc for BoundedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: BoundedAlloc = BoundedAlloc;
