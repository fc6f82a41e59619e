//! Model file loading: every refusal is an error with a reason, never a panic.
// Test helpers may unwrap and index like #[test] fns (clippy.toml): failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use obguard_models::model::forest::{Forest, LEAF, Node, Tree};
use obguard_models::model::{
    Envelope, FORMAT_VERSION, MAGIC, ModelBody, ModelKind, TrainingMetadata, doc_example_model,
};
use obguard_models::{
    ClientBaseline, ExtractConfig, Model, ModelError, PopulationBaseline, RequestEvent, Thresholds,
    Verdict, explain, extract, load,
};

fn envelope(bytes: &[u8]) -> Envelope {
    postcard::from_bytes(bytes).unwrap()
}

#[test]
fn round_trip_and_score() {
    let bytes = doc_example_model();
    let model = load(&bytes).unwrap();
    assert_eq!(model.encoded_len(), bytes.len());
    assert_eq!(model.to_bytes().unwrap(), bytes);
    let mut b = ClientBaseline::new();
    let ev = RequestEvent::for_path(1_767_225_600_000, "c", "GET", "/a/b/acc-1");
    let fv = extract(&ExtractConfig::default(), &mut b, model.population(), &ev);
    let s = model.score(&fv);
    assert!((0.0..=1.0).contains(&s));
}

#[test]
fn refusals_say_why() {
    let good = doc_example_model();
    assert!(matches!(load(b"nope"), Err(ModelError::BadMagic)));
    assert!(matches!(load(&[]), Err(ModelError::BadMagic)));

    let mut e = envelope(&good);
    e.format_version = FORMAT_VERSION + 1;
    let err = load(&postcard::to_allocvec(&e).unwrap()).unwrap_err();
    assert!(err.to_string().contains("format version 2"), "{err}");

    let mut e = envelope(&good);
    e.schema_hash[0] ^= 1;
    let err = load(&postcard::to_allocvec(&e).unwrap()).unwrap_err();
    assert!(matches!(err, ModelError::SchemaMismatch { .. }));
    assert!(err.to_string().contains("retrain"), "{err}");

    let mut e = envelope(&good);
    e.body.truncate(e.body.len() / 2);
    let err = load(&postcard::to_allocvec(&e).unwrap()).unwrap_err();
    assert!(err.to_string().contains("model body"), "{err}");

    // Every truncation and single-byte corruption is an error or a valid model, never a panic.
    for i in 0..good.len() {
        let _ = load(&good[..i]);
        let mut flipped = good.clone();
        flipped[i] ^= 0x5a;
        let _ = load(&flipped);
    }
    assert!(good.starts_with(&MAGIC));
}

#[test]
fn invalid_forests_and_thresholds_are_refused() {
    let body = |kind, thresholds| ModelBody {
        kind,
        thresholds,
        population: PopulationBaseline::default(),
        metadata: TrainingMetadata::default(),
    };
    let ok_t = Thresholds {
        step_up: 0.5,
        throttle: 0.7,
        block: 0.9,
    };
    // A cycle: node 0 points at itself.
    let cyclic = Forest {
        trees: vec![Tree {
            nodes: vec![Node {
                feature: 0,
                threshold: 1.0,
                left: 0,
                right: 0,
            }],
        }],
    };
    assert!(Model::new(body(ModelKind::Forest(cyclic), ok_t)).is_err());
    let leaf = Forest {
        trees: vec![Tree {
            nodes: vec![Node {
                feature: LEAF,
                threshold: 0.95,
                left: 0,
                right: 0,
            }],
        }],
    };
    let bad_t = Thresholds {
        step_up: 0.9,
        throttle: 0.5,
        block: 0.95,
    };
    assert!(Model::new(body(ModelKind::Forest(leaf.clone()), bad_t)).is_err());
    let m = Model::new(body(ModelKind::Forest(leaf), ok_t)).unwrap();
    let m = load(&m.to_bytes().unwrap()).unwrap();
    let fv = Default::default();
    assert_eq!(m.score(&fv), 0.95);
    assert_eq!(Model::verdict(m.score(&fv), m.thresholds()), Verdict::Block);
    assert_eq!(Model::verdict(0.6, m.thresholds()), Verdict::StepUp);
    assert_eq!(Model::verdict(0.8, m.thresholds()), Verdict::Throttle);
    assert_eq!(Model::verdict(0.1, m.thresholds()), Verdict::Allow);
}

#[test]
fn reasons_name_the_unusual() {
    let pop = PopulationBaseline::default();
    let cfg = ExtractConfig::default();
    let mut b = ClientBaseline::new();
    // A month of business-hours traffic from GB, AS64500, one network.
    let day = 86_400_000u64;
    let start = 1_767_571_200_000u64;
    for d in 0..30 {
        for k in 0..40 {
            let ts = start + d * day + 9 * 3_600_000 + k * 600_000;
            let mut ev = RequestEvent::for_path(ts, "tpp", "GET", "/aisp/accounts/acc-1/balances");
            ev.ip = "203.0.113.5".parse().ok();
            ev.country = Some("GB");
            ev.asn = Some(64500);
            ev.user_agent = Some("Acme-connector/1.2");
            extract(&cfg, &mut b, &pop, &ev);
        }
    }
    // 03:10 from RU on a new network.
    let ts = start + 31 * day + 3 * 3_600_000 + 10 * 60_000;
    let mut ev = RequestEvent::for_path(ts, "tpp", "GET", "/aisp/accounts/acc-1/balances");
    ev.ip = "198.51.100.9".parse().ok();
    ev.country = Some("RU");
    ev.asn = Some(65100);
    ev.user_agent = Some("Acme-connector/1.2");
    let fv = extract(&cfg, &mut b, &pop, &ev);
    let reasons: Vec<String> = explain(&fv, &b).iter().map(ToString::to_string).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("hour_rare(03:10, client p=")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"new_country(RU)".to_string()),
        "{reasons:?}"
    );
}
