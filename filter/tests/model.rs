//! The behavioural model stage natively, with the shipped model: normal traffic allowed, an
//! off-hours burst from a new country refused with reasons, shadow mode, bad model files
//! refused at load, bounded baseline memory.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use base64::Engine as _;
use obguard::assess::Verdict;
use obguard::assess::baselines::{BaselineStore, Conflict, MemoryStore, Slot};
use obguard::config::FilterConfig;
use obguard::pipeline::{Action, Decision, RequestView, Worker, decide};
use obguard::telemetry::Outcome;
use obguard_testkit::pipeline::{load, load_err, view};
use obguard_testkit::{self as kit, Key, SHIPPED_MODEL as SHIPPED};
use serde_json::{Value, json};

/// The shipped model (signed with the demo key, envoy/demo/keys/README.md) in `mode`.
fn model_config(mode: &str) -> Value {
    let mut config = kit::config::with("model", kit::config::shipped_model(mode));
    // Requests are replayed over a simulated day: tokens span it.
    config["issuers"][0]["max_lifetime_s"] = json!(null);
    config["model"]["max_clients"] = json!(64);
    config
}

struct Client {
    token: String,
    headers: Vec<(String, String)>,
}

/// The shipped model's configuration in `mode`, loaded, and a worker for it.
fn model_stage(mode: &str) -> (FilterConfig, Worker) {
    let config = load(&model_config(mode));
    let worker = Worker::new(&config);
    (config, worker)
}

fn client(id: &str, country: &str, asn: &str, ip: &str, ua: &str) -> Client {
    let day = kit::now() - kit::now() % 86_400;
    let mut claims = kit::claims(id, "accounts transactions:read");
    claims["iat"] = json!(day);
    claims["nbf"] = json!(day);
    claims["exp"] = json!(day + 2 * 86_400);
    Client {
        token: kit::token("ES256", Key::P256, &claims),
        headers: vec![
            ("x-client-geo-country".into(), country.into()),
            ("x-client-asn".into(), asn.into()),
            ("x-forwarded-for".into(), ip.into()),
            ("user-agent".into(), ua.into()),
            ("x-fapi-customer-ip-address".into(), "198.51.100.7".into()),
        ],
    }
}

fn call<'c>(
    config: &'c FilterConfig,
    worker: &mut Worker,
    c: &Client,
    path: &str,
    now_ms: u64,
) -> Decision<'c> {
    let bearer = format!("Bearer {}", c.token);
    let auth = [bearer.as_str()];
    let view = RequestView {
        headers: &c.headers,
        now_ms,
        ..view("GET", path, &auth)
    };
    decide(config, worker, &view, now_ms / 1000)
}

/// `n` requests of `c`, the `i`th to `path(i)`, one every 10 minutes from `start_ms`.
fn every_ten_minutes<'c>(
    config: &'c FilterConfig,
    worker: &mut Worker,
    c: &Client,
    start_ms: u64,
    n: u64,
    path: impl Fn(u64) -> String,
) -> Vec<Decision<'c>> {
    (0..n)
        .map(|i| call(config, worker, c, &path(i), start_ms + i * 600_000))
        .collect()
}

/// The `i`th of many freshly minted client ids, all from the same place.
fn minted(i: u64) -> Client {
    client(
        &format!("minted-{i}"),
        "GB",
        "AS2856",
        "203.0.113.10",
        "x/1",
    )
}

/// Client `id` as it usually calls: from GB, its ASN and network, its own software.
fn at_home(id: &str) -> Client {
    client(id, "GB", "AS2856", "203.0.113.10", "AcmeAggregator/2.3")
}

/// Client `id` from a new country, ASN and network, driven by `ua`, no customer present.
fn abroad(id: &str, ua: &str) -> Client {
    let mut c = client(id, "RU", "AS65100", "192.0.2.66", ua);
    c.headers.retain(|(n, _)| n != "x-fapi-customer-ip-address");
    c
}

/// 14:00 UTC on a weekday near now, so tokens stay valid.
fn business_hours_ms() -> u64 {
    let now = kit::now();
    let day = now - now % 86_400;
    (day + 14 * 3600) * 1000
}

#[test]
fn normal_traffic_is_allowed_and_an_off_hours_new_country_burst_is_not() {
    let (config, mut worker) = model_stage("enforce");
    let normal = at_home("tpp-agg");
    let start = business_hours_ms();
    // Every ~10 minutes through the afternoon.
    let decisions = every_ten_minutes(&config, &mut worker, &normal, start, 40, |i| {
        format!("/accounts/acc-{}/balances", i % 3)
    });
    let mut allowed = 0;
    for d in &decisions {
        if d.outcome == Outcome::Allowed {
            allowed += 1;
        }
        assert!(d.trace.model.is_some(), "scored");
    }
    assert!(allowed >= 38, "normal traffic allowed: {allowed}/40");

    // 03:10 from a new country, ASN and network, no customer present, enumerating accounts.
    let burst = abroad("tpp-agg", "python-requests/2.31");
    let night = start - 11 * 3600 * 1000 + 600_000;
    let d = call(
        &config,
        &mut worker,
        &burst,
        "/accounts/acc-900/transactions",
        night,
    );
    let scored = d.trace.model.clone().unwrap();
    assert_ne!(scored.verdict, Verdict::Allow, "score {}", scored.score);
    assert!(
        matches!(
            d.outcome,
            Outcome::Challenged | Outcome::Blocked | Outcome::Throttled
        ),
        "{:?}",
        d.outcome
    );
    assert!(
        scored.reasons.iter().any(|r| r.contains("new_country(RU)")),
        "{:?}",
        scored.reasons
    );
    match &d.action {
        Action::Reply(reply) => assert!(matches!(reply.status, 401 | 403 | 429)),
        Action::Continue { .. } | Action::FetchConsent { .. } => panic!("not refused"),
    }
}

#[test]
fn the_old_name_challenge_is_accepted_for_step_up_but_not_both() {
    let mut old = model_config("enforce");
    old["routes"][3]["thresholds"] = json!({"challenge": 0.3, "throttle": 1.0, "block": 1.0});
    old["model"]["challenge"] = json!({"acr_values": "urn:example:acr", "max_age_s": 60});
    let config = load(&old);
    let stage = config.model.as_ref().unwrap();
    assert_eq!(stage.step_up_acr_values, "urn:example:acr");
    assert_eq!(stage.step_up_max_age_s, Some(60));
    let mut both = model_config("enforce");
    both["routes"][3]["thresholds"] =
        json!({"challenge": 0.3, "step_up": 0.3, "throttle": 1.0, "block": 1.0});
    let err = obguard::config::load(both.to_string().as_bytes())
        .err()
        .unwrap();
    assert!(err.to_string().contains("duplicate field"), "{err}");
    assert!(err.to_string().contains("routes[3].thresholds"), "{err}");
}

#[test]
fn step_up_is_an_rfc_9470_challenge() {
    // A route whose thresholds make any anomaly a step-up (never a block).
    let mut config = model_config("enforce");
    config["routes"][3]["thresholds"] = json!({"step_up": 0.3, "throttle": 1.0, "block": 1.0});
    config["model"]["step_up"] =
        json!({"acr_values": "urn:openbanking:psd2:sca", "max_age_s": 300});
    let config = load(&config);
    let mut worker = Worker::new(&config);
    let normal = at_home("tpp-pay");
    let start = business_hours_ms();
    // Past the client's warm-up (its first 32 requests are not judged by the model).
    every_ten_minutes(&config, &mut worker, &normal, start, 40, |_| {
        "/accounts/acc-1/transactions".into()
    });
    // 03:00 the next night: a new country, ASN and network, driven by curl.
    let odd = abroad("tpp-pay", "curl/8.0");
    let d = call(
        &config,
        &mut worker,
        &odd,
        "/accounts/acc-777/transactions",
        start + 13 * 3600 * 1000,
    );
    assert_eq!(d.outcome, Outcome::Challenged, "{:?}", d.trace.model);
    let Action::Reply(reply) = &d.action else {
        panic!("not refused")
    };
    assert_eq!(reply.status, 401);
    let challenge = reply
        .headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .unwrap();
    kit::assert::step_up_challenge(challenge);
}

#[test]
fn shadow_mode_scores_but_allows() {
    let (config, mut worker) = model_stage("shadow");
    // A client with a history from GB (past its warm-up)...
    let home = at_home("tpp-shadowed");
    let start = business_hours_ms();
    for d in every_ten_minutes(&config, &mut worker, &home, start, 40, |_| {
        "/accounts/acc-1/transactions".into()
    }) {
        assert_eq!(d.outcome, Outcome::Allowed);
    }
    // ...then at night from RU, driven by curl, walking accounts.
    let burst = abroad("tpp-shadowed", "curl/8.0");
    let night = start + 13 * 3600 * 1000;
    let mut non_allow = 0;
    for i in 0..20u64 {
        let d = call(
            &config,
            &mut worker,
            &burst,
            &format!("/accounts/acc-{i}/transactions"),
            night + i * 500,
        );
        assert_eq!(d.outcome, Outcome::Allowed, "shadow never refuses");
        if d.trace.model.as_ref().unwrap().verdict != Verdict::Allow {
            non_allow += 1;
        }
    }
    assert!(
        non_allow > 0,
        "the model still reports its verdicts in shadow mode"
    );
}

#[test]
fn bad_model_files_are_refused_at_load_with_the_reason() {
    let mut config = model_config("enforce");
    config["model"]["inline_base64"] = json!("not base64!");
    let err = load_err(&config);
    assert_eq!(err, "model.inline_base64: not base64");

    let mut corrupt = SHIPPED.to_vec();
    corrupt.truncate(corrupt.len() / 2);
    config["model"]["inline_base64"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&corrupt));
    let err = load_err(&config);
    assert!(
        err.starts_with("model.inline_base64: model refused ("),
        "{err}"
    );

    config["model"]["inline_base64"] =
        json!(base64::engine::general_purpose::STANDARD.encode(b"GIF89a not a model"));
    let err = load_err(&config);
    assert!(
        err.starts_with("model.inline_base64: model refused ("),
        "{err}"
    );

    let mut config = model_config("enforce");
    config["routes"][0]["thresholds"] = json!({"step_up": 0.9, "throttle": 0.5, "block": 0.95});
    let err = load_err(&config);
    assert!(err.starts_with("routes[0].thresholds: "), "{err}");
}

/// A store the test can look into after the pipeline used it.
struct Observed(std::rc::Rc<std::cell::RefCell<MemoryStore>>);

impl BaselineStore for Observed {
    fn load(&self, key: &str) -> Slot {
        self.0.borrow().load(key)
    }
    fn store(&mut self, key: &str, bytes: &[u8], cas: Option<u32>) -> Result<(), Conflict> {
        self.0.borrow_mut().store(key, bytes, cas)
    }
}

#[test]
fn minting_client_ids_does_not_grow_baseline_memory() {
    let (config, mut worker) = model_stage("shadow");
    let slots = std::rc::Rc::new(std::cell::RefCell::new(MemoryStore::default()));
    worker.baselines = Box::new(Observed(slots.clone()));
    let now = business_hours_ms();
    for i in 0..400 {
        let c = minted(i);
        let d = call(&config, &mut worker, &c, "/accounts", now + i);
        assert!(d.trace.model.is_some());
    }
    // 64 slots configured: 400 client ids leave at most 64 baselines.
    let used = slots.borrow().len();
    assert!(used <= 64 && used > 40, "{used} slots");
}

/// A store whose writes always lose the compare-and-swap (another worker always wins).
struct AlwaysConflict;

impl BaselineStore for AlwaysConflict {
    fn load(&self, _key: &str) -> Slot {
        Slot {
            bytes: None,
            cas: Some(7),
        }
    }
    fn store(&mut self, _key: &str, _bytes: &[u8], _cas: Option<u32>) -> Result<(), Conflict> {
        Err(Conflict)
    }
}

#[test]
fn baseline_write_fates_are_reported() {
    use obguard::assess::model::BaselineWrite;
    let config = load(&model_config("shadow"));
    let now = business_hours_ms();
    let c = client("tpp-fate", "GB", "AS2856", "203.0.113.10", "x/1");

    let mut worker = Worker::new(&config);
    let d = call(&config, &mut worker, &c, "/accounts", now);
    assert_eq!(d.trace.model.unwrap().baseline, BaselineWrite::Stored);

    worker.baselines = Box::new(AlwaysConflict);
    let d = call(&config, &mut worker, &c, "/accounts", now + 1);
    let scored = d.trace.model.unwrap();
    assert_eq!(scored.baseline, BaselineWrite::Lost, "retries exhausted");
    assert_eq!(d.outcome, Outcome::Allowed, "the verdict stands");

    // 400 minted ids in 64 slots: most newcomers find their slot held by an active client.
    let mut worker = Worker::new(&config);
    let taken = (0..400)
        .filter(|i| {
            let c = minted(*i);
            call(&config, &mut worker, &c, "/accounts", now + i)
                .trace
                .model
                .unwrap()
                .baseline
                == BaselineWrite::SlotTaken
        })
        .count();
    assert!(taken >= 400 - 64, "{taken} slot_taken");
}

#[test]
fn responses_folded_with_the_next_request_leave_the_same_baseline_as_at_once() {
    use obguard::assess::baselines::slot_of;
    use obguard::assess::pending::ObservedResponse;
    let config = load(&model_config("enforce"));
    let stage = config.model.as_ref().unwrap();
    // Worker `now` folds each response at once; worker `later` defers it, as the adapter does.
    let mut now = Worker::new(&config);
    let mut later = Worker::new(&config);
    let c = client(
        "tpp-fold",
        "GB",
        "AS2856",
        "203.0.113.10",
        "AcmeAggregator/2.3",
    );
    let start = business_hours_ms();
    for i in 0..12u64 {
        let t = start + i * 45_000;
        let path = format!("/accounts/acc-{}/transactions", i % 4);
        let a = call(&config, &mut now, &c, &path, t).trace.model.unwrap();
        let b = call(&config, &mut later, &c, &path, t).trace.model.unwrap();
        assert_eq!(a.score, b.score, "request {i} scored alike");
        let response = ObservedResponse {
            status: if i % 3 == 0 { 404 } else { 200 },
            bytes: 2_000 + i * 100,
            at_ms: t + 20,
        };
        stage.observe(now.baselines.as_mut(), "tpp-fold", &[response], t + 20);
        assert!(later.pending_responses.defer("tpp-fold", response));
    }
    // What the timer does for a client that does not come back.
    for (client, responses) in later.pending_responses.due(u64::MAX) {
        stage.observe(
            later.baselines.as_mut(),
            &client,
            &responses,
            start + 600_000,
        );
    }
    let (key, _) = slot_of("tpp-fold", 64);
    let a = now.baselines.load(&key).bytes.unwrap();
    assert_eq!(Some(a), later.baselines.load(&key).bytes);
    assert!(later.pending_responses.is_empty());
}
