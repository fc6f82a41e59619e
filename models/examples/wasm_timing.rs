//! Time scoring and the whole per-request path inside a wasm VM (V8 through Node's WASI, the
//! same engine family Envoy uses):
//!
//! ```sh
//! cargo build -p obguard-models --no-default-features --release --target wasm32-wasip1 --example wasm_timing
//! node models/examples/run-wasi.mjs target/wasm32-wasip1/release/examples/wasm_timing.wasm
//! ```
//! Also runs natively (`cargo run --release --example wasm_timing`) for comparison.

use std::hint::black_box;
use std::time::Instant;

use obguard_models::{
    ClientBaseline, ExtractConfig, Model, PublicKey, RequestEvent, SignaturePolicy, extract, load,
    observe_response,
};

const SHIPPED: &[u8] = include_bytes!("../shipped/obguard-default.model");
/// The shipped model is signed with the DEMO-ONLY key.
const DEMO_PUB: &str = include_str!("../../envoy/demo/keys/DEMO-ONLY-model-signing.pub");
const LOADS: u32 = 50;
const ITERS: u32 = 200_000;

fn event(k: u64, path: &str) -> RequestEvent<'_> {
    let mut ev = RequestEvent::for_path(1_767_571_200_000 + k * 45_000, "tpp-agg001", "GET", path);
    ev.ip = "203.0.113.7".parse().ok();
    ev.country = Some("GB");
    ev.asn = Some(64500);
    ev.user_agent = Some("agg001-connector/2.3");
    ev
}

fn main() {
    let trusted = match PublicKey::from_base64(DEMO_PUB) {
        Ok(k) => [k],
        Err(e) => {
            eprintln!("demo key: {e}");
            return;
        }
    };
    let model = match Model::load_verified(SHIPPED, SignaturePolicy::Required(&trusted)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("model: {e}");
            return;
        }
    };
    // Configure-time cost: load (no signature check) vs load_verified (digest + Ed25519).
    for _ in 0..LOADS {
        let policy = SignaturePolicy::Required(&trusted);
        let _ = black_box((load(SHIPPED), Model::load_verified(SHIPPED, policy)));
    }
    let t = Instant::now();
    for _ in 0..LOADS {
        let _ = black_box(load(black_box(SHIPPED)));
    }
    let load_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(LOADS);
    let t = Instant::now();
    for _ in 0..LOADS {
        let policy = SignaturePolicy::Required(&trusted);
        let _ = black_box(Model::load_verified(black_box(SHIPPED), policy));
    }
    let verified_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(LOADS);
    let cfg = ExtractConfig::default();
    let mut b = ClientBaseline::new();
    let path = "/open-banking/v3.1/aisp/accounts/acc-00000003/transactions";
    for k in 0..500 {
        extract(&cfg, &mut b, model.population(), &event(k, path));
        observe_response(&mut b, 200, 900, 1_767_571_200_000 + k * 45_000 + 40);
    }
    let mut probe = b.clone();
    let fv = extract(&cfg, &mut probe, model.population(), &event(501, path));

    let t = Instant::now();
    let mut acc = 0.0f32;
    for _ in 0..ITERS {
        acc += model.score(black_box(&fv));
    }
    let score_ns = t.elapsed().as_nanos() as f64 / f64::from(ITERS);

    let bytes = b.encode().unwrap_or_default();
    let t = Instant::now();
    for _ in 0..ITERS {
        let mut base = ClientBaseline::decode(black_box(&bytes)).unwrap_or_default();
        let fv = extract(
            &cfg,
            &mut base,
            model.population(),
            &event(501, black_box(path)),
        );
        let s = model.score(&fv);
        acc += s;
        let _ = black_box((Model::verdict(s, model.thresholds()), base.encode()));
    }
    let path_ns = t.elapsed().as_nanos() as f64 / f64::from(ITERS);
    println!(
        "model load ({} bytes): {load_us:.0} µs; load_verified (signed, 1 trusted key): \
         {verified_us:.0} µs",
        SHIPPED.len()
    );
    println!("baseline after 500 requests: {} bytes encoded", bytes.len());
    println!("score: {score_ns:.0} ns/request");
    println!("decode + event + extract + score + verdict + encode: {path_ns:.0} ns/request");
    black_box(acc);
}
