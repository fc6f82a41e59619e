//! The rules stage natively: the `rules` config section (good and bad, errors naming the
//! field), the decision (a hit combined with the model's verdict, shadow mode, pinned
//! clients, log-only rules), and the state store (shared data through the in-memory host:
//! CAS conflicts, slots taken, store failures, TTL reclaim). Through real Envoy:
//! integration/tests/rules.rs.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::rc::Rc;
use std::time::Duration;

use obguard::assess::baselines::{BaselineStore, Conflict, MemoryStore, Slot};
use obguard::assess::model::BaselineWrite;
use obguard::assess::{Assessment, RiskBand, Verdict};
use obguard::config::FilterConfig;
use obguard::host::{Host, HostError};
use obguard::pipeline::{Decision, RequestView, Worker, decide};
use obguard::rules::{RuleCheck, RuleRequest, RulesConfig, combine};
use obguard::runtime::shared_baselines::SharedDataStore;
use obguard::runtime::{Flow, Plugin};
use obguard::telemetry::Outcome;
use obguard_testkit::host::{HostOp, MemoryHost};
use obguard_testkit::pipeline::{load, load_err, status, view};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

const HOUR_MS: u64 = 3_600_000;

fn with_rules(rules: Value) -> Value {
    kit::config::with("rules", rules)
}

// ---------------------------------------------------------------------------------------
// Configuration

#[test]
fn an_empty_rules_section_turns_both_rules_on_with_their_defaults() {
    let config = load(&with_rules(json!({})));
    let rules = config.rules.as_ref().unwrap();
    let psd2 = rules.rules.psd2.as_ref().unwrap();
    assert_eq!(psd2.unattended_accesses_per_day, 4);
    assert_eq!(psd2.access_gap_s, 300);
    assert_eq!(psd2.verdict, obguard_models::Verdict::Throttle);
    let pay = rules.rules.payments.as_ref().unwrap();
    assert_eq!((pay.max_per_hour, pay.max_per_day), (15, 40));
    assert_eq!(pay.verdict, obguard_models::Verdict::Throttle);
    assert_eq!(rules.psd2_routes, None);
    assert_eq!(rules.payment_routes, None);
    assert_eq!(rules.account_param, "AccountId");
    assert_eq!(
        (rules.max_accounts, rules.max_customers),
        (100_000, 100_000)
    );
    assert_eq!(rules.state_ttl_s, 90_000);
    assert!(
        load(&kit::plugin_config()).rules.is_none(),
        "absent: no rules"
    );
}

#[test]
fn rules_can_be_tuned_routed_and_turned_off() {
    let config = load(&with_rules(json!({
        "psd2_unattended_access": {"per_day": 2, "access_gap_s": 60, "verdict": "block",
                                   "routes": ["account", "balances", "transactions"]},
        "payment_velocity": {"enabled": false},
        "max_accounts": 10, "max_customers": 20, "state_ttl_s": 86400
    })));
    let rules = config.rules.as_ref().unwrap();
    let psd2 = rules.rules.psd2.as_ref().unwrap();
    assert_eq!(psd2.unattended_accesses_per_day, 2);
    assert_eq!(psd2.verdict, obguard_models::Verdict::Block);
    assert_eq!(rules.psd2_routes.as_ref().unwrap().len(), 3);
    assert!(rules.rules.payments.is_none());
    // A rule that is off is not validated further.
    let config = load(&with_rules(json!({
        "psd2_unattended_access": {"enabled": false, "per_day": 0, "routes": ["nope"]},
        "payment_velocity": {"routes": ["payments"], "verdict": "step_up"}
    })));
    let rules = config.rules.as_ref().unwrap();
    assert!(rules.rules.psd2.is_none());
    assert_eq!(
        rules.rules.payments.as_ref().unwrap().verdict,
        obguard_models::Verdict::StepUp
    );
}

#[test]
fn bad_rules_are_refused_naming_the_field() {
    let cases = [
        (json!({"psd2": {}}), "rules.psd2: unknown field `psd2`"),
        (
            json!({"psd2_unattended_access": {"per_day": 0}}),
            "rules.psd2_unattended_access.per_day: must be 1 to 10",
        ),
        (
            json!({"psd2_unattended_access": {"per_day": 11}}),
            "rules.psd2_unattended_access.per_day: must be 1 to 10",
        ),
        (
            json!({"psd2_unattended_access": {"per_day": 300}}),
            "rules.psd2_unattended_access.per_day: must be 1 to 10",
        ),
        (
            json!({"psd2_unattended_access": {"access_gap_s": 0}}),
            "rules.psd2_unattended_access.access_gap_s: must be 1 to 3600",
        ),
        (
            json!({"psd2_unattended_access": {"verdict": "deny"}}),
            "rules.psd2_unattended_access.verdict: unknown variant `deny`",
        ),
        (
            json!({"psd2_unattended_access": {"routes": ["account", "nope"]}}),
            "rules.psd2_unattended_access.routes[1]: no route by this name",
        ),
        (
            json!({"psd2_unattended_access": {"routes": ["accounts"]}}),
            "rules.psd2_unattended_access.routes[0]: the route's path has no parameter named by account_param",
        ),
        (
            json!({"psd2_unattended_access": {"routes": ["account"], "account_param": "Id"}}),
            "rules.psd2_unattended_access.routes[0]: the route's path has no parameter named by account_param",
        ),
        (
            json!({"psd2_unattended_access": {"routes": []}}),
            "rules.psd2_unattended_access.routes: must name at least one route",
        ),
        (
            json!({"psd2_unattended_access": {"account_param": ""}}),
            "rules.psd2_unattended_access.account_param: must not be empty",
        ),
        (
            json!({"psd2_unattended_access": {"enabled": "yes"}}),
            "rules.psd2_unattended_access.enabled: invalid type",
        ),
        (
            json!({"payment_velocity": {"max_per_hour": 0}}),
            "rules.payment_velocity.max_per_hour: must be 1 to 250",
        ),
        (
            json!({"payment_velocity": {"max_per_hour": 251, "max_per_day": 400}}),
            "rules.payment_velocity.max_per_hour: must be 1 to 250",
        ),
        (
            json!({"payment_velocity": {"max_per_hour": 20, "max_per_day": 10}}),
            "rules.payment_velocity.max_per_day: must be at least max_per_hour",
        ),
        (
            json!({"payment_velocity": {"routes": ["paymentz"]}}),
            "rules.payment_velocity.routes[0]: no route by this name",
        ),
        (
            json!({"payment_velocity": {"limit": 3}}),
            "rules.payment_velocity.limit: unknown field `limit`",
        ),
        (
            json!({"max_accounts": 0}),
            "rules.max_accounts: must be 1 to",
        ),
        (
            json!({"max_customers": 10_000_001}),
            "rules.max_customers: must be 1 to",
        ),
        (
            json!({"state_ttl_s": 3600}),
            "rules.state_ttl_s: must be 86400 to 604800",
        ),
        (json!("on"), "rules: invalid type"),
        (json!([]), "rules: invalid type"),
        (
            json!({"payment_velocity": null}),
            "rules.payment_velocity: invalid type",
        ),
        (
            json!({"payment_velocity": {"routes": "payments"}}),
            "rules.payment_velocity.routes: invalid type",
        ),
        (
            json!({"payment_velocity": {"max_per_hour": -1}}),
            "rules.payment_velocity.max_per_hour: invalid type",
        ),
    ];
    let mut wrong = Vec::new();
    for (rules, expected) in cases {
        let err = load_err(&with_rules(rules.clone()));
        if !err.starts_with(expected) {
            wrong.push(format!("{rules}: {err}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// ---------------------------------------------------------------------------------------
// Decisions

struct Caller {
    token: String,
}

fn caller(client: &str, sub: &str) -> Caller {
    let mut claims = kit::claims(client, "accounts transactions:read payments");
    claims["sub"] = json!(sub);
    Caller {
        token: kit::token("ES256", Key::P256, &claims),
    }
}

fn send<'c>(
    config: &'c FilterConfig,
    worker: &mut Worker,
    who: &Caller,
    method: &str,
    path: &str,
    customer_ip: Option<&str>,
    now_ms: u64,
) -> Decision<'c> {
    let bearer = format!("Bearer {}", who.token);
    let auth = [bearer.as_str()];
    let mut headers = vec![("user-agent".to_owned(), "AcmeAggregator/2.3".to_owned())];
    if let Some(ip) = customer_ip {
        headers.push(("x-fapi-customer-ip-address".to_owned(), ip.to_owned()));
    }
    let view = RequestView {
        headers: &headers,
        now_ms,
        ..view(method, path, &auth)
    };
    // Tokens are checked against the real clock; the rules see `now_ms`.
    decide(config, worker, &view, kit::now())
}

/// One unattended refresh of `account`: the account, its balances, two transaction pages.
fn refresh<'c>(
    config: &'c FilterConfig,
    worker: &mut Worker,
    who: &Caller,
    account: &str,
    at_ms: u64,
) -> Vec<Decision<'c>> {
    [
        format!("/accounts/{account}"),
        format!("/accounts/{account}/balances"),
        format!("/accounts/{account}/transactions"),
        format!("/accounts/{account}/transactions?page=2"),
    ]
    .iter()
    .enumerate()
    .map(|(i, path)| {
        send(
            config,
            worker,
            who,
            "GET",
            path,
            None,
            at_ms + i as u64 * 1_500,
        )
    })
    .collect()
}

const T0: u64 = 1_796_083_200_000;

fn psd2_scenario(config: &FilterConfig) {
    let mut worker = Worker::new(config);
    let tpp = caller("tpp-1", "psu-1");
    for access in 0..4 {
        for d in refresh(config, &mut worker, &tpp, "acc-1", T0 + access * HOUR_MS) {
            assert_eq!(status(&d), 200, "access {access}: {:?}", d.reason);
            assert_eq!(d.trace.rules.as_ref().unwrap().hit, None);
        }
    }
    let fifth = refresh(config, &mut worker, &tpp, "acc-1", T0 + 4 * HOUR_MS);
    for d in &fifth {
        assert_eq!(d.outcome, Outcome::Throttled);
        assert_eq!(status(d), 429);
        assert_eq!(d.reason, Some("psd2_unattended_limit"));
        let hit = d.trace.rules.as_ref().unwrap().hit.as_ref().unwrap();
        assert_eq!(
            hit.reason,
            "psd2_unattended_limit(5th unattended access in 24h)"
        );
    }
    let at = T0 + 4 * HOUR_MS + 10_000;
    let present = send(
        config,
        &mut worker,
        &tpp,
        "GET",
        "/accounts/acc-1/balances",
        Some("198.51.100.7"),
        at,
    );
    assert_eq!(status(&present), 200, "customer present");
    assert_eq!(present.trace.rules, Some(RuleCheck::NONE));
    let other = send(
        config,
        &mut worker,
        &tpp,
        "GET",
        "/accounts/acc-2/balances",
        None,
        at,
    );
    assert_eq!(status(&other), 200, "another account");
    let other_client = caller("tpp-2", "psu-1");
    let d = send(
        config,
        &mut worker,
        &other_client,
        "GET",
        "/accounts/acc-1",
        None,
        at,
    );
    assert_eq!(status(&d), 200, "another client");
    let list = send(config, &mut worker, &tpp, "GET", "/accounts", None, at);
    assert_eq!(
        list.trace.rules,
        Some(RuleCheck::NONE),
        "the account list reads no account"
    );
    let later = send(
        config,
        &mut worker,
        &tpp,
        "GET",
        "/accounts/acc-1",
        None,
        T0 + 24 * HOUR_MS,
    );
    assert_eq!(status(&later), 200, "a day after the first access");
}

#[test]
fn the_fifth_unattended_access_is_throttled_by_path_classification() {
    psd2_scenario(&load(&with_rules(json!({}))));
}

#[test]
fn the_fifth_unattended_access_is_throttled_by_configured_routes() {
    psd2_scenario(&load(&with_rules(json!({
        "psd2_unattended_access": {"routes": ["account", "balances", "transactions"]}
    }))));
}

fn pay<'c>(config: &'c FilterConfig, worker: &mut Worker, who: &Caller, at: u64) -> Decision<'c> {
    send(config, worker, who, "POST", "/domestic-payments", None, at)
}

#[test]
fn the_sixteenth_payment_in_an_hour_is_refused() {
    for rules in [
        json!({"payment_velocity": {"verdict": "block"}}),
        json!({"payment_velocity": {"verdict": "block", "routes": ["payments"]}}),
    ] {
        let config = load(&with_rules(rules));
        let mut worker = Worker::new(&config);
        let payroll = caller("tpp-1", "psu-payroll");
        for i in 0..15 {
            let d = pay(&config, &mut worker, &payroll, T0 + i * 3_000);
            assert_eq!(status(&d), 200, "payment {i}");
        }
        let d = pay(&config, &mut worker, &payroll, T0 + 60_000);
        assert_eq!(d.outcome, Outcome::Blocked);
        assert_eq!(status(&d), 403);
        assert_eq!(d.reason, Some("payment_velocity"));
        assert_eq!(
            d.trace.rules.as_ref().unwrap().hit.as_ref().unwrap().reason,
            "payment_velocity(16th payment in 1h)"
        );
        assert_eq!(d.assessment.unwrap().verdict, Verdict::Block);
        let someone_else = caller("tpp-1", "psu-other");
        assert_eq!(
            status(&pay(&config, &mut worker, &someone_else, T0 + 61_000)),
            200
        );
        assert_eq!(
            status(&pay(&config, &mut worker, &payroll, T0 + 75 * 60_000)),
            200
        );
    }
}

#[test]
fn a_log_only_rule_counts_its_hit_and_allows() {
    let config = load(&with_rules(json!({
        "psd2_unattended_access": {"per_day": 1, "verdict": "allow"}
    })));
    let mut worker = Worker::new(&config);
    let tpp = caller("tpp-1", "psu-1");
    let mut get_a1 = |at_ms| {
        send(
            &config,
            &mut worker,
            &tpp,
            "GET",
            "/accounts/a1",
            None,
            at_ms,
        )
    };
    assert_eq!(status(&get_a1(T0)), 200);
    let d = get_a1(T0 + HOUR_MS);
    assert_eq!(status(&d), 200);
    assert_eq!(d.outcome, Outcome::Allowed);
    assert_eq!(
        d.reason, None,
        "a rule that does not decide does not name the reason"
    );
    assert!(d.trace.rules.as_ref().unwrap().hit.is_some());
}

#[test]
fn the_stricter_verdict_wins() {
    let hit = |verdict| obguard_models::rules::RuleHit {
        rule: "payment_velocity",
        reason: "payment_velocity(16th payment in 1h)".to_owned(),
        verdict,
    };
    let model = |verdict| Assessment {
        verdict,
        risk_band: RiskBand::Medium,
    };
    use obguard_models::Verdict as M;
    let cases = [
        (Verdict::Allow, None, Verdict::Allow, None),
        (
            Verdict::Allow,
            Some(M::Throttle),
            Verdict::Throttle,
            Some("payment_velocity"),
        ),
        (
            Verdict::StepUp,
            Some(M::Throttle),
            Verdict::Throttle,
            Some("payment_velocity"),
        ),
        (
            Verdict::Throttle,
            Some(M::Throttle),
            Verdict::Throttle,
            Some("payment_velocity"),
        ),
        (Verdict::Block, Some(M::Throttle), Verdict::Block, None),
        (Verdict::Throttle, Some(M::StepUp), Verdict::Throttle, None),
        (
            Verdict::Allow,
            Some(M::StepUp),
            Verdict::StepUp,
            Some("payment_velocity"),
        ),
        (Verdict::StepUp, Some(M::Allow), Verdict::StepUp, None),
        (Verdict::Allow, Some(M::Allow), Verdict::Allow, None),
    ];
    for (before, rule, after, reason) in cases {
        let h = rule.map(hit);
        let (combined, why) = combine(model(before), h.as_ref());
        assert_eq!(
            (combined.verdict, why),
            (after, reason),
            "{before:?} + {rule:?}"
        );
        assert_eq!(combined.risk_band, RiskBand::Medium);
    }
}

#[test]
fn a_pinned_block_stays_a_block_and_names_risk() {
    let mut config = with_rules(json!({"payment_velocity": {"max_per_hour": 1, "max_per_day": 1}}));
    config["static_assessments"] = json!({"tpp-bad": {"verdict": "block", "risk_band": "high"}});
    let config = load(&config);
    let mut worker = Worker::new(&config);
    let bad = caller("tpp-bad", "psu-1");
    let d = pay(&config, &mut worker, &bad, T0);
    assert_eq!((d.outcome, d.reason), (Outcome::Blocked, Some("risk")));
    // The pinned block decided; the rule still ran (the first payment was counted).
    assert_eq!(
        d.trace.rules.as_ref().unwrap().state,
        Some(BaselineWrite::Stored)
    );
}

#[test]
fn rules_are_enforced_when_the_model_only_shadows() {
    let mut config = with_rules(json!({"payment_velocity": {"max_per_hour": 2, "max_per_day": 2}}));
    config["model"] = kit::config::shipped_model("shadow");
    let config = load(&config);
    let mut worker = Worker::new(&config);
    let tpp = caller("tpp-1", "psu-1");
    let now = kit::now() * 1000;
    assert_eq!(status(&pay(&config, &mut worker, &tpp, now)), 200);
    assert_eq!(status(&pay(&config, &mut worker, &tpp, now + 1_000)), 200);
    let d = pay(&config, &mut worker, &tpp, now + 2_000);
    assert!(d.trace.model.is_some(), "scored in shadow");
    assert_eq!((status(&d), d.reason), (429, Some("payment_velocity")));
}

// ---------------------------------------------------------------------------------------
// State store

fn rules_of(config: &FilterConfig) -> &RulesConfig {
    config.rules.as_ref().unwrap()
}

fn read<'a>(account: &'a str, now_ms: u64) -> RuleRequest<'a> {
    RuleRequest {
        client_id: "tpp-1@idp.obguard.test",
        subject: Some("psu-1"),
        method: "GET",
        path: "",
        route: Some("balances"),
        params: &[],
        customer_present: false,
        now_ms,
    }
    .with_account(account)
}

trait WithAccount<'a> {
    fn with_account(self, account: &'a str) -> RuleRequest<'a>;
}

impl<'a> WithAccount<'a> for RuleRequest<'a> {
    fn with_account(self, account: &'a str) -> RuleRequest<'a> {
        let path: &'a str = Box::leak(format!("/accounts/{account}/balances").into_boxed_str());
        RuleRequest { path, ..self }
    }
}

/// A store whose writes conflict `conflicts` times before they go through.
struct Contended {
    inner: MemoryStore,
    conflicts: usize,
}

impl BaselineStore for Contended {
    fn load(&self, key: &str) -> Slot {
        self.inner.load(key)
    }
    fn store(&mut self, key: &str, bytes: &[u8], cas: Option<u32>) -> Result<(), Conflict> {
        if self.conflicts > 0 {
            self.conflicts -= 1;
            return Err(Conflict);
        }
        self.inner.store(key, bytes, cas)
    }
}

#[test]
fn state_lives_in_shared_data_and_survives_a_new_worker_store() {
    let config = load(&with_rules(json!({})));
    let rules = rules_of(&config);
    let host = Rc::new(MemoryHost::new(kit::now()));
    for access in 0..4 {
        let mut store = SharedDataStore::new(host.clone());
        let check = rules.check(&mut store, &read("acc-1", T0 + access * HOUR_MS));
        assert_eq!(check.state, Some(BaselineWrite::Stored));
        assert_eq!(check.hit, None);
    }
    let keys = host.shared_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("obguard.rules.account."), "{keys:?}");
    assert!(host.shared_value(&keys[0]).unwrap().len() <= 8 + 42);
    assert_eq!(host.shared_value(&keys[0]).unwrap().len(), 8 + 19);
    // Another worker (another store over the same shared data) sees the four accesses.
    let mut store = SharedDataStore::new(host.clone());
    let check = rules.check(&mut store, &read("acc-1", T0 + 4 * HOUR_MS));
    assert!(check.hit.is_some());
    assert_eq!(check.state, None, "a hit writes nothing");
    // Paging within the access: no change, no write.
    let check = rules.check(&mut store, &read("acc-1", T0 + 3 * HOUR_MS + 2_000));
    assert_eq!(
        check,
        RuleCheck {
            hit: None,
            state: Some(BaselineWrite::Stored)
        }
    );
}

#[test]
fn a_cas_conflict_is_retried_and_a_lost_write_is_counted_not_fatal() {
    let config = load(&with_rules(json!({})));
    let rules = rules_of(&config);
    let mut store = Contended {
        inner: MemoryStore::default(),
        conflicts: 2,
    };
    let check = rules.check(&mut store, &read("acc-1", T0));
    assert_eq!(check.state, Some(BaselineWrite::Stored), "third attempt");
    store.conflicts = usize::MAX;
    let check = rules.check(&mut store, &read("acc-1", T0 + HOUR_MS));
    assert_eq!(
        check,
        RuleCheck {
            hit: None,
            state: Some(BaselineWrite::Lost)
        }
    );

    // Shared data refusing writes: lost, the request still decided.
    let host = Rc::new(MemoryHost::new(kit::now()));
    host.fail(HostOp::SetSharedData, HostError::InternalFailure);
    let mut store = SharedDataStore::new(host.clone() as Rc<dyn Host>);
    let check = rules.check(&mut store, &read("acc-1", T0));
    assert_eq!(check.state, Some(BaselineWrite::Lost));
    // Unreadable shared data: decided from a fresh state.
    host.heal(HostOp::SetSharedData);
    host.fail(HostOp::SharedData, HostError::InternalFailure);
    let check = rules.check(&mut store, &read("acc-1", T0));
    assert_eq!(check.hit, None);
}

#[test]
fn slots_are_bounded_taken_slots_are_not_stolen_idle_ones_are_reclaimed() {
    let config = load(&with_rules(
        json!({"max_accounts": 1, "state_ttl_s": 86400}),
    ));
    let rules = rules_of(&config);
    let mut store = MemoryStore::default();
    assert_eq!(
        rules.check(&mut store, &read("acc-1", T0)).state,
        Some(BaselineWrite::Stored)
    );
    let check = rules.check(&mut store, &read("acc-2", T0 + 1_000));
    assert_eq!(check.state, Some(BaselineWrite::SlotTaken));
    assert_eq!(store.len(), 1);
    // Idle for longer than the TTL: the slot goes to the newcomer.
    let later = T0 + 86_400_000 + 1_000;
    assert_eq!(
        rules.check(&mut store, &read("acc-2", later)).state,
        Some(BaselineWrite::Stored)
    );
    assert_eq!(store.len(), 1);
    // Corrupt slot bytes count as free.
    let key = obguard::assess::baselines::slot_of("x", 1)
        .0
        .replace("baseline", "rules.account");
    store.store(&key, b"\x00garbage", None).unwrap();
    assert_eq!(
        rules.check(&mut store, &read("acc-3", later)).state,
        Some(BaselineWrite::Stored)
    );
}

// ---------------------------------------------------------------------------------------
// Runtime: log fields and metrics

#[test]
fn a_hit_is_logged_first_in_the_reasons_and_counted() {
    let host = Rc::new(MemoryHost::new(kit::now()));
    host.set_plugin_configuration(&with_rules(json!({})));
    let mut plugin = Plugin::new(host.clone(), None);
    assert!(plugin.configure(), "{:?}", host.logs());
    let mut claims = kit::claims("tpp-1", "accounts");
    claims["exp"] = json!(kit::now() + 3500);
    let auth = format!("Bearer {}", kit::token("ES256", Key::P256, &claims));
    for access in 0..5 {
        let mut stream = plugin.stream();
        host.start_request([
            (":method", "GET"),
            (":path", "/accounts/acc-9/balances"),
            (":authority", "bank.test"),
            ("authorization", auth.as_str()),
        ]);
        let flow = stream.on_request_headers();
        if access < 4 {
            assert_eq!(flow, Flow::Continue, "access {access}");
        } else {
            assert_eq!(flow, Flow::Pause);
        }
        host.advance(Duration::from_secs(600));
    }
    assert_eq!(host.replies().last().unwrap().status, 429);
    assert_eq!(
        host.property_str(&["obguard.reason"]).as_deref(),
        Some("psd2_unattended_limit")
    );
    assert_eq!(
        host.property_str(&["obguard.reasons"]).as_deref(),
        Some("psd2_unattended_limit(5th unattended access in 24h)")
    );
    assert_eq!(host.metric("obguard.rules.hit.psd2_unattended_limit"), 1);
    assert_eq!(host.metric("obguard.rules.hit.payment_velocity"), 0);
    assert_eq!(host.metric("obguard.rules.state.stored"), 4);
    assert_eq!(host.metric("obguard.requests.throttled"), 1);
    assert!(host.metric_defined("obguard.rules.state.lost"));
}

#[test]
fn rule_counter_names_follow_the_rule_and_fate_names() {
    use obguard::telemetry::metric;
    for (name, rule) in metric::RULES_HIT.iter().zip(obguard::rules::RULE_NAMES) {
        assert_eq!(*name, format!("obguard.rules.hit.{rule}"));
    }
    let fates = [
        BaselineWrite::Stored,
        BaselineWrite::SlotTaken,
        BaselineWrite::Lost,
    ];
    for (name, fate) in metric::RULES_STATE.iter().zip(fates) {
        assert_eq!(*name, format!("obguard.rules.state.{}", fate.as_str()));
    }
}
