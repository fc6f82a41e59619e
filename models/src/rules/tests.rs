use super::*;
use alloc::vec::Vec;

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
/// 2026-12-01T00:00:00Z.
const T0: u64 = 1_796_083_200_000;

fn psd2() -> Psd2Rule {
    Psd2Rule::default()
}

/// One refresh: account, balances, three pages of transactions, a second apart.
fn refresh(state: &mut AccountAccesses, at: u64) -> Vec<Option<RuleHit>> {
    (0..5)
        .map(|i| check_account_read(&psd2(), state, at + i * 1_000, false))
        .collect()
}

#[test]
fn paging_within_one_access_is_one_access() {
    let mut state = AccountAccesses::new();
    for access in 0..4 {
        assert!(
            refresh(&mut state, T0 + access * HOUR)
                .iter()
                .all(Option::is_none)
        );
    }
    assert_eq!(state.accesses_in_window(), 4);
    // Reads 4 minutes apart keep extending the same access.
    let mut state = AccountAccesses::new();
    for i in 0..30 {
        assert!(check_account_read(&psd2(), &mut state, T0 + i * 4 * MIN, false).is_none());
    }
    assert_eq!(state.accesses_in_window(), 1);
}

#[test]
fn four_accesses_are_fine_the_fifth_hits() {
    let mut state = AccountAccesses::new();
    for access in 0..4 {
        assert!(
            refresh(&mut state, T0 + access * HOUR)
                .iter()
                .all(Option::is_none)
        );
    }
    let hits = refresh(&mut state, T0 + 4 * HOUR);
    // Refused reads are not recorded: every page of the refused access is a hit.
    assert!(hits.iter().all(Option::is_some));
    let hit = hits.into_iter().flatten().next().unwrap();
    assert_eq!(hit.rule, PSD2_UNATTENDED_LIMIT);
    assert_eq!(
        hit.reason,
        "psd2_unattended_limit(5th unattended access in 24h)"
    );
    assert_eq!(hit.verdict, Verdict::Throttle);
    assert_eq!(state.accesses_in_window(), 4);
}

#[test]
fn a_day_after_the_first_access_there_is_room_again() {
    // The window is 24 h less an hour of scheduler jitter (PSD2_WINDOW_S).
    let window = DAY - HOUR;
    let mut state = AccountAccesses::new();
    for access in 0..4 {
        refresh(&mut state, T0 + access * HOUR);
    }
    assert!(check_account_read(&psd2(), &mut state, T0 + window - MIN, false).is_some());
    assert!(check_account_read(&psd2(), &mut state, T0 + window, false).is_none());
    assert!(check_account_read(&psd2(), &mut state, T0 + window + 10 * MIN, false).is_some());
    assert!(check_account_read(&psd2(), &mut state, T0 + window + HOUR, false).is_none());
}

#[test]
fn six_hourly_refreshes_with_jitter_stay_within_the_limit() {
    let mut state = AccountAccesses::new();
    let starts = [
        22 * MIN,
        6 * HOUR + 20 * MIN,
        12 * HOUR + 14 * MIN,
        18 * HOUR + 18 * MIN,
    ];
    for day in 0..3 {
        for start in starts {
            let t = T0 + day * DAY + start - (day % 2) * 20 * MIN;
            assert!(
                check_account_read(&psd2(), &mut state, t, false).is_none(),
                "{day} {start}"
            );
        }
    }
}

#[test]
fn customer_present_reads_are_not_counted() {
    let mut state = AccountAccesses::new();
    for i in 0..20 {
        assert!(check_account_read(&psd2(), &mut state, T0 + i * HOUR, true).is_none());
    }
    assert_eq!(state, AccountAccesses::new(), "state untouched");
    for access in 0..4 {
        refresh(&mut state, T0 + access * HOUR);
    }
    assert!(check_account_read(&psd2(), &mut state, T0 + 5 * HOUR, true).is_none());
    assert!(check_account_read(&psd2(), &mut state, T0 + 5 * HOUR, false).is_some());
}

#[test]
fn the_limit_and_gap_are_configurable() {
    let rule = Psd2Rule {
        unattended_accesses_per_day: 1,
        access_gap_s: 10,
        verdict: Verdict::Block,
    };
    let mut state = AccountAccesses::new();
    assert!(check_account_read(&rule, &mut state, T0, false).is_none());
    assert!(check_account_read(&rule, &mut state, T0 + 9_000, false).is_none());
    let hit = check_account_read(&rule, &mut state, T0 + 20_000, false).unwrap();
    assert_eq!(hit.verdict, Verdict::Block);
    assert_eq!(
        hit.reason,
        "psd2_unattended_limit(2nd unattended access in 24h)"
    );
    assert!(rule.validate().is_ok());
    for bad in [0u8, 11] {
        let rule = Psd2Rule {
            unattended_accesses_per_day: bad,
            ..Psd2Rule::default()
        };
        assert!(rule.validate().is_err());
    }
}

#[test]
fn time_going_backwards_never_panics_and_counts_as_the_same_access() {
    let mut state = AccountAccesses::new();
    assert!(check_account_read(&psd2(), &mut state, T0, false).is_none());
    assert!(check_account_read(&psd2(), &mut state, 0, false).is_none());
    assert!(check_account_read(&psd2(), &mut state, T0 - DAY, false).is_none());
    assert_eq!(state.accesses_in_window(), 1);
    assert!(check_account_read(&psd2(), &mut state, u64::MAX, false).is_none());
    assert!(check_account_read(&psd2(), &mut state, 0, false).is_none());
    let _ = AccountAccesses::decode(&state.encode()).unwrap();

    let rule = PaymentVelocityRule::default();
    let mut payments = CustomerPayments::new();
    assert!(check_payment(&rule, &mut payments, T0).is_none());
    assert!(check_payment(&rule, &mut payments, 0).is_none());
    assert!(check_payment(&rule, &mut payments, u64::MAX).is_none());
    assert!(check_payment(&rule, &mut payments, 5).is_none());
    // The jump to the end of time left the windows behind; the two payments since count.
    assert_eq!(payments.counts(), (2, 2));
}

#[test]
fn a_payroll_burst_of_fourteen_is_fine_sixteen_hits() {
    let rule = PaymentVelocityRule::default();
    let mut state = CustomerPayments::new();
    for i in 0..14 {
        assert!(check_payment(&rule, &mut state, T0 + i * 2_000).is_none());
    }
    let mut state = CustomerPayments::new();
    for i in 0..15 {
        assert!(
            check_payment(&rule, &mut state, T0 + i * 2_000).is_none(),
            "payment {i}"
        );
    }
    let hit = check_payment(&rule, &mut state, T0 + 40_000).unwrap();
    assert_eq!(hit.rule, PAYMENT_VELOCITY);
    assert_eq!(hit.reason, "payment_velocity(16th payment in 1h)");
    assert_eq!(hit.verdict, Verdict::Throttle);
    // Refused payments are not counted; 70 minutes on the burst has left the hour window.
    assert_eq!(state.counts(), (15, 15));
    assert!(check_payment(&rule, &mut state, T0 + 59 * MIN).is_some());
    assert!(check_payment(&rule, &mut state, T0 + 70 * MIN).is_none());
}

#[test]
fn the_day_limit_counts_across_hours() {
    let rule = PaymentVelocityRule::default();
    let mut state = CustomerPayments::new();
    // Ten payments every two hours: 40 in 8 hours, the hour limit never reached.
    for burst in 0..4 {
        for i in 0..10 {
            let at = T0 + burst * 2 * HOUR + i * MIN;
            assert!(check_payment(&rule, &mut state, at).is_none());
        }
    }
    let hit = check_payment(&rule, &mut state, T0 + 9 * HOUR).unwrap();
    assert_eq!(hit.reason, "payment_velocity(41st payment in 24h)");
    // 25 hours after the first burst it has left the day window.
    assert!(check_payment(&rule, &mut state, T0 + 24 * HOUR).is_some());
    assert!(check_payment(&rule, &mut state, T0 + 25 * HOUR).is_none());
    let rule = PaymentVelocityRule {
        max_per_hour: 20,
        max_per_day: 10,
        verdict: Verdict::Block,
    };
    assert!(rule.validate().is_err());
}

#[test]
fn classify_reads_payments_and_the_rest() {
    let read = |path| classify("GET", path, Some("psu"), false);
    assert_eq!(
        read("/open-banking/v3.1/aisp/accounts/acc-0042/transactions?page=2"),
        RuleSubject::AccountRead {
            account_id: "acc-0042",
            customer_present: false
        }
    );
    assert_eq!(
        classify("GET", "/accounts/22289", None, true),
        RuleSubject::AccountRead {
            account_id: "22289",
            customer_present: true
        }
    );
    assert_eq!(read("/open-banking/v3.1/aisp/accounts"), RuleSubject::Other);
    assert_eq!(read("/open-banking/v3.1/aisp/balances"), RuleSubject::Other);
    let post = |path, sub| classify("POST", path, sub, false);
    assert_eq!(
        post("/open-banking/v3.1/pisp/domestic-payments", Some("psu-1")),
        RuleSubject::Payment { customer: "psu-1" }
    );
    assert_eq!(
        post("/pisp/domestic-standing-orders", Some("psu-1")),
        RuleSubject::Payment { customer: "psu-1" }
    );
    for other in [
        "/open-banking/v3.1/pisp/domestic-payment-consents",
        "/open-banking/v3.1/pisp/international-payment-consents",
        "/open-banking/v3.1/pisp/domestic-standing-order-consents",
        "/open-banking/v3.1/aisp/account-access-consents",
    ] {
        assert_eq!(post(other, Some("psu-1")), RuleSubject::Other, "{other}");
    }
    assert_eq!(post("/pisp/domestic-payments", None), RuleSubject::Other);
    assert_eq!(
        post("/pisp/domestic-payments", Some("")),
        RuleSubject::Other
    );
    assert_eq!(
        classify("GET", "/pisp/domestic-payments", Some("p"), false),
        RuleSubject::Other
    );
}

#[test]
fn ordinals() {
    let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
        .into_iter()
        .map(ordinal)
        .collect();
    assert_eq!(
        got,
        [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"
        ]
    );
}

fn full_accounts() -> AccountAccesses {
    let rule = Psd2Rule {
        unattended_accesses_per_day: 10,
        access_gap_s: 1,
        verdict: Verdict::Throttle,
    };
    let mut state = AccountAccesses::new();
    for i in 0..10 {
        assert!(check_account_read(&rule, &mut state, T0 + i * HOUR, false).is_none());
    }
    state
}

fn busy_payments() -> CustomerPayments {
    let rule = PaymentVelocityRule {
        max_per_hour: 250,
        max_per_day: 5000,
        verdict: Verdict::Throttle,
    };
    let mut state = CustomerPayments::new();
    for i in 0..2_000 {
        let _ = check_payment(&rule, &mut state, T0 + i * 40_000);
    }
    state
}

#[test]
fn encode_decode_round_trips_within_the_documented_size() {
    let mut samples = alloc::vec![AccountAccesses::new(), full_accounts()];
    let mut four = AccountAccesses::new();
    for access in 0..4 {
        refresh(&mut four, T0 + access * HOUR);
    }
    samples.push(four.clone());
    for state in &samples {
        let bytes = state.encode();
        assert!(bytes.len() <= MAX_ACCOUNT_STATE_LEN, "{}", bytes.len());
        assert_eq!(&AccountAccesses::decode(&bytes).unwrap(), state);
    }
    assert_eq!(four.encode().len(), 19);
    assert!(full_accounts().encode().len() <= 37);
    // The widest clock there is.
    let mut widest = full_accounts();
    check_account_read(&psd2(), &mut widest, u64::MAX, false);
    assert!(widest.encode().len() <= MAX_ACCOUNT_STATE_LEN);

    for state in [CustomerPayments::new(), busy_payments()] {
        let bytes = state.encode();
        assert!(bytes.len() <= MAX_PAYMENT_STATE_LEN, "{}", bytes.len());
        assert_eq!(CustomerPayments::decode(&bytes).unwrap(), state);
    }
    assert_eq!(busy_payments().encode().len(), 38);
    let mut widest = CustomerPayments::new();
    check_payment(&PaymentVelocityRule::default(), &mut widest, u64::MAX);
    assert!(widest.encode().len() <= MAX_PAYMENT_STATE_LEN);
    // A state decoded continues exactly like the original.
    let mut a = four.clone();
    let mut b = AccountAccesses::decode(&four.encode()).unwrap();
    assert_eq!(
        check_account_read(&psd2(), &mut a, T0 + 5 * HOUR, false),
        check_account_read(&psd2(), &mut b, T0 + 5 * HOUR, false)
    );
}

/// Every truncation and every single-bit flip decodes or errors, never panics; a decoded
/// value re-encodes within the limit.
#[test]
fn truncations_and_bit_flips_decode_or_error() {
    fn mutate(bytes: &[u8], mut check: impl FnMut(&[u8])) {
        for len in 0..bytes.len() {
            check(bytes.get(..len).unwrap());
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.to_vec();
                flipped[i] ^= 1 << bit;
                check(&flipped);
            }
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        check(&longer);
        check(&[0xff; 64]);
    }
    let mut decoded = 0;
    mutate(&full_accounts().encode(), |b| {
        if let Ok(state) = AccountAccesses::decode(b) {
            decoded += 1;
            assert!(state.encode().len() <= MAX_ACCOUNT_STATE_LEN);
            let mut state = state;
            let _ = check_account_read(&psd2(), &mut state, T0 + DAY, false);
        }
    });
    assert!(AccountAccesses::decode(&full_accounts().encode()[..5]).is_err());
    mutate(&busy_payments().encode(), |b| {
        if let Ok(state) = CustomerPayments::decode(b) {
            decoded += 1;
            assert!(state.encode().len() <= MAX_PAYMENT_STATE_LEN);
            let mut state = state;
            let _ = check_payment(&PaymentVelocityRule::default(), &mut state, T0 + DAY);
        }
    });
    assert!(decoded > 0, "some flips are valid states");
    let mut other_version = busy_payments().encode();
    other_version[0] = 2;
    assert_eq!(
        CustomerPayments::decode(&other_version),
        Err(RuleStateError::Version(2))
    );
}

#[cfg(feature = "train")]
#[test]
fn replay_keys_state_by_client_and_account_or_customer() {
    let cfg = RuleConfig::default();
    let mut replay = RuleReplay::new();
    let read = |r: &mut RuleReplay, client, account: &str, at| {
        let path = alloc::format!("/open-banking/v3.1/aisp/accounts/{account}/balances");
        r.check(&cfg, client, "GET", &path, Some("psu"), false, at)
    };
    for access in 0..4 {
        assert!(read(&mut replay, "tpp-a", "acc-1", T0 + access * HOUR).is_none());
    }
    assert!(read(&mut replay, "tpp-a", "acc-1", T0 + 4 * HOUR).is_some());
    assert!(
        read(&mut replay, "tpp-b", "acc-1", T0 + 4 * HOUR).is_none(),
        "other client"
    );
    assert!(
        read(&mut replay, "tpp-a", "acc-2", T0 + 4 * HOUR).is_none(),
        "other account"
    );
    let present = replay.check(
        &cfg,
        "tpp-a",
        "GET",
        "/open-banking/v3.1/aisp/accounts/acc-1/balances",
        None,
        true,
        T0 + 5 * HOUR,
    );
    assert!(present.is_none());
    let pay = |r: &mut RuleReplay, sub, at| {
        r.check(
            &cfg,
            "tpp-a",
            "POST",
            "/open-banking/v3.1/pisp/domestic-payments",
            Some(sub),
            false,
            at,
        )
    };
    for i in 0..15 {
        assert!(pay(&mut replay, "psu-1", T0 + i * 1_000).is_none());
    }
    assert_eq!(
        pay(&mut replay, "psu-1", T0 + 16_000).map(|h| h.rule),
        Some(PAYMENT_VELOCITY)
    );
    assert!(pay(&mut replay, "psu-2", T0 + 16_000).is_none());
    let off = RuleConfig {
        psd2: None,
        payments: None,
    };
    assert!(
        replay
            .check(
                &off,
                "tpp-a",
                "POST",
                "/pisp/domestic-payments",
                Some("psu-1"),
                false,
                T0 + 17_000
            )
            .is_none()
    );
    assert_eq!(replay.len(), (3, 2));
}
