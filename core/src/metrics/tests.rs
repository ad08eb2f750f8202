use super::render::{json, prometheus, Format};
use super::*;
use crate::record::{Pointer, Session};

fn session() -> Session {
    Session {
        uid: [7; 16],
        created_ms: 0,
        key_issued_ms: 0,
        fingerprint: None,
        secure_key: None,
        nonce: None,
        previous: Vec::new(),
        user: None,
    }
}

fn add() -> Write {
    Write::Add {
        token_hash: [1; 32],
        session: session(),
    }
}

fn retire(pointer: bool) -> Write {
    Write::Retire {
        pointer: pointer.then_some(Pointer {
            target: [1; 32],
            created_ms: 0,
        }),
        cas: 9,
    }
}

fn plan(status: Status, writes: Vec<Write>) -> Plan {
    Plan {
        status,
        violation: None,
        uid: None,
        writes,
        cookies: Vec::new(),
        deny: false,
        offender: None,
        user: None,
        grace: None,
        expiry: None,
        created_ms: None,
    }
}

fn events(p: &Plan) -> Vec<SessionEvent> {
    session_events(p).collect()
}

#[test]
fn session_events_of_each_kind_of_plan() {
    use SessionEvent::*;
    assert_eq!(events(&plan(Status::New, vec![add()])), [Created]);
    assert_eq!(events(&plan(Status::Valid, vec![])), []);
    assert_eq!(
        events(&plan(
            Status::Valid,
            vec![Write::Update {
                session: session(),
                cas: 1
            }]
        )),
        [],
        "a renewal is not a new session"
    );
    assert_eq!(
        events(&plan(Status::Valid, vec![add(), retire(true)])),
        [Cycled]
    );
    assert_eq!(
        events(&plan(Status::Rotated, vec![add(), retire(false)])),
        [Rotated]
    );
    let destroy = plan(Status::Destroyed, vec![Write::Delete { cas: Some(1) }]);
    assert_eq!(events(&destroy), [Destroyed]);
    assert_eq!(
        events(&plan(Status::Destroyed, vec![])),
        [],
        "nothing to destroy"
    );
    let mut expired = plan(Status::Expired, vec![Write::Delete { cas: Some(1) }, add()]);
    expired.expiry = Some(Expiry::Idle);
    assert_eq!(events(&expired), [Created, ExpiredIdle]);
    expired.expiry = Some(Expiry::Absolute);
    assert_eq!(events(&expired), [Created, ExpiredAbsolute]);
    // A violation under `clear` ends the session and gives a new one: not
    // a destruction on purpose.
    let mut cleared = plan(
        Status::Violation,
        vec![Write::Delete { cas: Some(1) }, add()],
    );
    cleared.violation = Some(Violation::Nonce);
    assert_eq!(events(&cleared), [Created]);
}

#[test]
fn decided_counts_status_violation_and_sessions() {
    let c = Counters::default();
    c.decided(&plan(Status::New, vec![add()]), OnViolation::Clear);
    c.decided(&plan(Status::Valid, vec![]), OnViolation::Clear);
    c.decided(&plan(Status::Valid, vec![]), OnViolation::Clear);
    let mut v = plan(Status::Violation, vec![Write::Delete { cas: Some(1) }]);
    v.violation = Some(Violation::SecureKey);
    c.decided(&v, OnViolation::Deny);
    v.violation = Some(Violation::Fingerprint);
    c.decided(&v, OnViolation::Log);
    c.request(Status::Bypass);
    let s = c.snapshot();
    //                  new valid rot exp viol destr bypass error
    assert_eq!(s.requests, [1, 2, 0, 0, 2, 0, 1, 0]);
    // rows: fingerprint, nonce, secure_key; columns: clear, deny, log
    assert_eq!(s.violations, [vec![0, 0, 1], vec![0, 0, 0], vec![0, 1, 0]]);
    assert_eq!(s.sessions, [1, 0, 0, 0, 0, 0]);
}

#[test]
fn exchanges_fill_the_right_buckets() {
    let c = Counters::default();
    c.exchange(StoreCommand::Get, 0, None);
    c.exchange(StoreCommand::Get, 50, None);
    c.exchange(StoreCommand::Set, 51, Some(StoreErrorKind::Timeout));
    c.exchange(StoreCommand::Delete, 1_000_000, None);
    c.exchange(
        StoreCommand::Touch,
        1_000_001,
        Some(StoreErrorKind::Connect),
    );
    let s = c.snapshot();
    assert_eq!(s.store_commands, [2, 0, 1, 1, 1]);
    assert_eq!(s.store_errors, [1, 1, 0, 0, 0]);
    assert_eq!(s.latency[0], 2);
    assert_eq!(s.latency[1], 1);
    assert_eq!(s.latency[LATENCY_BOUNDS_US.len() - 1], 1);
    assert_eq!(s.latency[LATENCY_BOUNDS_US.len()], 1, "+Inf");
    assert_eq!(s.latency_count, 5);
    assert_eq!(s.latency_sum_us, 2_000_102);
}

#[test]
fn store_command_of_each_request() {
    let k = b"k".as_slice();
    let v = b"v".as_slice();
    let cases = [
        (
            Request::Get {
                key: k,
                touch: None,
            },
            StoreCommand::Get,
        ),
        (
            Request::Add {
                key: k,
                value: v,
                ttl: 1,
            },
            StoreCommand::Add,
        ),
        (
            Request::Set {
                key: k,
                value: v,
                ttl: 1,
                cas: None,
            },
            StoreCommand::Set,
        ),
        (
            Request::Delete {
                key: k,
                cas: Some(1),
            },
            StoreCommand::Delete,
        ),
        (Request::Touch { key: k, ttl: 1 }, StoreCommand::Touch),
    ];
    for (req, want) in cases {
        assert_eq!(StoreCommand::of(&req), want);
    }
}

#[test]
fn connections_never_render_negative() {
    let c = Counters::default();
    c.connections(1);
    c.connections(1);
    c.connections(-1);
    assert_eq!(c.snapshot().open_connections(), 1);
    c.connections(-5);
    assert_eq!(c.snapshot().open_connections(), 0);
}

#[test]
fn marking_and_a_zeroed_zone() {
    let s = Shards::default();
    assert!(!s.is_marked(), "a fresh zone is all zeros: unmarked");
    s.mark();
    assert!(s.is_marked());
    assert_eq!(
        s.snapshot(),
        Shards::default().snapshot(),
        "the mark is no count"
    );
}

#[test]
fn shards_sum_every_worker() {
    let s = Shards::default();
    s.slot(0)
        .decided(&plan(Status::New, vec![add()]), OnViolation::Clear);
    s.slot(1)
        .decided(&plan(Status::New, vec![add()]), OnViolation::Clear);
    s.slot(SHARDS + 1).request(Status::Valid);
    s.slot(5)
        .exchange(StoreCommand::Get, 60, Some(StoreErrorKind::Busy));
    s.slot(5).connections(2);
    // a worker sharing slot 6 closed what its slot-mate opened
    s.slot(6).connections(1);
    s.slot(SHARDS + 6).connections(-1);
    s.slot(7).connections(-1);
    let total = s.snapshot();
    assert_eq!(total.requests, [2, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(total.sessions[0], 2);
    assert_eq!(total.store_commands[0], 1);
    assert_eq!(total.store_errors[4], 1);
    assert_eq!(total.latency[1], 1);
    assert_eq!(total.latency_count, 1);
    assert_eq!(total.open_connections(), 1);
    assert_eq!(
        core::ptr::from_ref(s.slot(3)) as usize % 64,
        0,
        "each worker's counters start a cache line"
    );
}

/// Samples of an exposition: `name{labels}` → value.
fn samples(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("name and value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn value(text: &str, series: &str) -> String {
    samples(text)
        .into_iter()
        .find(|(k, _)| k == series)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn prometheus_exposition_is_well_formed() {
    let c = Counters::default();
    c.decided(&plan(Status::New, vec![add()]), OnViolation::Clear);
    let mut v = plan(Status::Violation, vec![]);
    v.violation = Some(Violation::Fingerprint);
    c.decided(&v, OnViolation::Deny);
    c.exchange(StoreCommand::Get, 120, None);
    c.exchange(StoreCommand::Get, 3_000_000, Some(StoreErrorKind::Timeout));
    c.app_command(AppCommand::LogoutEverywhere);
    c.failure_policy(StoreFailure::Allow);
    c.cas_conflict();
    let text = prometheus(&c.snapshot());

    // Every sample belongs to a family declared just before, with HELP
    // and TYPE, and every family is declared once.
    let mut declared: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                !declared.iter().any(|(n, _)| n == name),
                "{name} declared twice"
            );
            assert!(["counter", "gauge", "histogram"].contains(&kind));
            declared.push((name.to_string(), kind.to_string()));
        } else if line.starts_with("# HELP ") {
            continue;
        } else {
            let (family, kind) = declared.last().expect("a sample before any TYPE");
            let name = line.split(['{', ' ']).next().unwrap();
            match kind.as_str() {
                "histogram" => assert!(
                    [
                        format!("{family}_bucket"),
                        format!("{family}_sum"),
                        format!("{family}_count")
                    ]
                    .contains(&name.to_string()),
                    "{line}"
                ),
                _ => assert_eq!(name, family, "{line}"),
            }
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            assert!(name.starts_with("paranoid_session_"), "{line}");
        }
    }
    assert_eq!(declared.len(), 14);

    assert_eq!(
        value(&text, "paranoid_session_requests_total{status=\"new\"}"),
        "1"
    );
    assert_eq!(
        value(
            &text,
            "paranoid_session_requests_total{status=\"violation\"}"
        ),
        "1"
    );
    assert_eq!(
        value(
            &text,
            "paranoid_session_violations_total{reason=\"fingerprint\",action=\"deny\"}"
        ),
        "1"
    );
    assert_eq!(
        value(
            &text,
            "paranoid_session_violations_total{reason=\"nonce\",action=\"log\"}"
        ),
        "0"
    );
    assert_eq!(value(&text, "paranoid_session_sessions_created_total"), "1");
    assert_eq!(
        value(
            &text,
            "paranoid_session_store_errors_total{kind=\"timeout\"}"
        ),
        "1"
    );
    assert_eq!(
        value(
            &text,
            "paranoid_session_application_commands_total{command=\"logout_everywhere\"}"
        ),
        "1"
    );
    assert_eq!(
        value(
            &text,
            "paranoid_session_store_failures_total{policy=\"allow\"}"
        ),
        "1"
    );
    assert_eq!(
        value(&text, "paranoid_session_store_cas_conflicts_total"),
        "1"
    );

    // The histogram: cumulative buckets ending in +Inf == _count.
    let h = "paranoid_session_store_latency_seconds";
    assert_eq!(value(&text, &format!("{h}_bucket{{le=\"0.0001\"}}")), "0");
    assert_eq!(value(&text, &format!("{h}_bucket{{le=\"0.00025\"}}")), "1");
    assert_eq!(value(&text, &format!("{h}_bucket{{le=\"1\"}}")), "1");
    assert_eq!(value(&text, &format!("{h}_bucket{{le=\"+Inf\"}}")), "2");
    assert_eq!(value(&text, &format!("{h}_count")), "2");
    assert_eq!(value(&text, &format!("{h}_sum")), "3.00012");
    let buckets: Vec<u64> = samples(&text)
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{h}_bucket")))
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), LATENCY_BOUNDS_US.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn json_has_the_same_values() {
    let c = Counters::default();
    c.decided(&plan(Status::New, vec![add()]), OnViolation::Clear);
    let mut v = plan(Status::Violation, vec![]);
    v.violation = Some(Violation::Nonce);
    c.decided(&v, OnViolation::Clear);
    c.exchange(StoreCommand::Add, 70, None);
    c.connections(2);
    c.failure_policy(StoreFailure::Deny);
    let text = json(&c.snapshot());
    let doc: serde_json::Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(doc["requests"]["new"], 1);
    assert_eq!(doc["requests"]["violation"], 1);
    assert_eq!(doc["requests"]["error"], 0);
    assert_eq!(doc["violations"]["nonce"]["clear"], 1);
    assert_eq!(doc["violations"]["secure_key"]["log"], 0);
    assert_eq!(doc["sessions"]["created"], 1);
    assert_eq!(doc["sessions"]["expired_absolute"], 0);
    assert_eq!(doc["application"]["login"], 0);
    assert_eq!(doc["store"]["commands"]["add"], 1);
    assert_eq!(doc["store"]["errors"]["protocol"], 0);
    assert_eq!(doc["store"]["connections"], 2);
    assert_eq!(doc["store"]["latency"]["count"], 1);
    assert_eq!(doc["store"]["latency"]["sum"], 0.00007);
    let buckets = doc["store"]["latency"]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), LATENCY_BOUNDS_US.len() + 1);
    assert_eq!(buckets[0]["le"], 0.00005);
    assert_eq!(buckets[1]["count"], 1);
    assert_eq!(buckets.last().unwrap()["le"], "+Inf");
    assert_eq!(doc["failure_policy"]["deny"], 1);
}

#[test]
fn seconds_are_written_exactly() {
    let c = Counters::default();
    c.exchange(StoreCommand::Get, 1_500_000, None);
    let text = prometheus(&c.snapshot());
    assert_eq!(
        value(&text, "paranoid_session_store_latency_seconds_sum"),
        "1.5"
    );
}

#[test]
fn format_argument() {
    assert_eq!(Format::of(None), Some(Format::Prometheus));
    assert_eq!(Format::of(Some(b"prometheus")), Some(Format::Prometheus));
    assert_eq!(Format::of(Some(b"json")), Some(Format::Json));
    assert_eq!(Format::of(Some(b"JSON")), None);
    assert_eq!(Format::of(Some(b"")), None);
}

#[test]
fn app_command_of_each_command() {
    use crate::control::Command;
    for (text, want) in [
        (&b"login"[..], AppCommand::Login),
        (b"login user=alice", AppCommand::Login),
        (b"logout", AppCommand::Logout),
        (b"logout-everywhere user=bob", AppCommand::LogoutEverywhere),
    ] {
        assert_eq!(AppCommand::of(&Command::parse(text).unwrap()), want);
    }
}
