//! The rules added after the security review: bindings a session lacks,
//! pointers that never cycle, `deny` without the uid, `log` as valid, idle
//! expiry from the store's TTL, compare-and-swap deletes and the last
//! resort under contention.

use super::tests::{
    defaults, found, presented, run, session, settings, stored, via_pointer, DELETE, H, NOW,
};
use super::*;
use crate::settings::OnViolation;

fn https() -> Presented {
    Presented {
        https: true,
        ..presented()
    }
}

#[test]
fn a_pointer_never_cycles_nor_rotates() {
    for s in [
        settings(|r| r.key_timeout_ms = Some(Some(0))),
        settings(|r| r.rotate = Some(true)),
    ] {
        let plan = run(&s, &presented(), via_pointer(session()));
        assert_eq!(plan.status, Status::Valid);
        assert_eq!(plan.uid, Some([7; 16]));
        assert!(plan.cookies.is_empty(), "{:?}", plan.cookies);
        assert!(plan.writes.is_empty(), "{:?}", plan.writes);
    }
}

#[test]
fn ending_a_session_reached_through_a_pointer_removes_the_path() {
    let s = settings(|r| r.destroy = Some(true));
    let plan = run(&s, &presented(), via_pointer(session()));
    assert_eq!(plan.writes, vec![DELETE, Write::DeletePath]);
    let deny = settings(|r| r.on_violation = Some(OnViolation::Deny));
    let thief = Presented {
        fingerprint: Some([2; 32]),
        ..presented()
    };
    let plan = run(&deny, &thief, via_pointer(session()));
    assert_eq!(plan.writes, vec![DELETE, Write::DeletePath]);
}

#[test]
fn clear_shows_the_new_uid_and_deny_none() {
    let thief = Presented {
        fingerprint: Some([2; 32]),
        ..presented()
    };
    let plan = run(&defaults(), &thief, found(session()));
    assert_eq!(plan.status, Status::Violation);
    assert!(plan.uid.is_some_and(|u| u != [7; 16]));
    let deny = settings(|r| r.on_violation = Some(OnViolation::Deny));
    let plan = run(&deny, &thief, found(session()));
    assert_eq!(plan.uid, None);
    assert_eq!(plan.offender, Some([7; 16]));
}

#[test]
fn log_mode_renews_for_a_client_that_lost_its_nonce() {
    let s = settings(|r| {
        r.on_violation = Some(OnViolation::Log);
        r.nonce_timeout_ms = Some(Some(0));
    });
    let lost = Presented {
        nonce: Some([1; 16]),
        ..presented()
    };
    let plan = run(&s, &lost, found(session()));
    assert_eq!(plan.status, Status::Violation);
    assert_eq!(plan.violation, Some(Violation::Nonce));
    assert_eq!(plan.uid, Some([7; 16]));
    assert_eq!(plan.cookies, vec![CookieOut::Nonce([101; 16])]);
    assert!(matches!(plan.writes[..], [Write::Update { .. }]));
}

#[test]
fn log_mode_rotates_and_cycles_a_violating_request() {
    let thief = Presented {
        fingerprint: Some([2; 32]),
        ..presented()
    };
    for s in [
        settings(|r| {
            r.on_violation = Some(OnViolation::Log);
            r.rotate = Some(true);
        }),
        settings(|r| {
            r.on_violation = Some(OnViolation::Log);
            r.key_timeout_ms = Some(Some(0));
        }),
    ] {
        let plan = run(&s, &thief, found(session()));
        assert_eq!(plan.status, Status::Violation);
        assert_eq!(plan.violation, Some(Violation::Fingerprint));
        assert_eq!(plan.cookies[0], CookieOut::Token([101; 32]));
        assert!(matches!(
            plan.writes[..],
            [Write::Add { .. }, Write::Retire { .. }]
        ));
        assert!(!plan.deny);
    }
}

#[test]
fn bindings_a_session_lacks_are_never_adopted() {
    // secure key over HTTPS
    let plan = run(&defaults(), &https(), found(session()));
    assert_eq!(plan.status, Status::New);
    assert_eq!(plan.writes[0], DELETE);
    // unless upgrading, as django-paranoid-sessions does
    let upgrade = settings(|r| r.secure_cookie_upgrade = Some(true));
    assert_eq!(
        run(&upgrade, &https(), found(session())).status,
        Status::Valid
    );
    // with the secure cookie off nothing is missing
    let off = settings(|r| r.secure_cookie = Some(None));
    assert_eq!(run(&off, &https(), found(session())).status, Status::Valid);

    // a fingerprint
    let mut unbound = session();
    unbound.fingerprint = None;
    assert_eq!(
        run(&defaults(), &presented(), found(unbound.clone())).status,
        Status::New
    );
    let no_fp = Presented {
        fingerprint: None,
        ..presented()
    };
    assert_eq!(
        run(&defaults(), &no_fp, found(unbound)).status,
        Status::Valid
    );

    // a nonce
    let mut no_nonce = session();
    no_nonce.nonce = None;
    assert_eq!(
        run(&defaults(), &presented(), found(no_nonce.clone())).status,
        Status::New
    );
    let nonces_off = settings(|r| r.nonce_timeout_ms = Some(None));
    assert_eq!(
        run(&nonces_off, &presented(), found(no_nonce)).status,
        Status::Valid
    );
}

#[test]
fn a_thief_is_caught_before_a_missing_binding_replaces() {
    let deny = settings(|r| r.on_violation = Some(OnViolation::Deny));
    let thief = Presented {
        fingerprint: Some([2; 32]),
        ..https()
    };
    let plan = run(&deny, &thief, found(session()));
    assert_eq!(plan.violation, Some(Violation::Fingerprint));
    assert!(plan.deny);
}

#[test]
fn idle_expiry_comes_from_the_ttl_left() {
    let s = settings(|r| r.idle_timeout_ms = Some(60_000));
    let with_ttl = |ttl| {
        Found::Session(Stored {
            ttl_left: ttl,
            ..stored(session())
        })
    };
    // read_ttl = 60 s idle + 61 s tail: 62 s left is fresh, 61 s is idle
    assert_eq!(
        run(&s, &presented(), with_ttl(Some(62))).status,
        Status::Valid
    );
    let plan = run(&s, &presented(), with_ttl(Some(61)));
    assert_eq!(plan.status, Status::Expired);
    assert_eq!(plan.expiry, Some(Expiry::Idle));
    assert_eq!(plan.writes[0], DELETE);
    assert!(matches!(plan.writes[1], Write::Add { .. }));
    assert_ne!(plan.uid, Some([7; 16]), "never revived");
    assert_eq!(run(&s, &presented(), with_ttl(None)).status, Status::Valid);
}

#[test]
fn grace_is_kept_only_with_a_finite_window() {
    let renew = |window: Option<u64>| {
        settings(|r| {
            r.nonce_timeout_ms = Some(Some(0));
            r.nonce_window_timeout_ms = Some(window);
        })
    };
    let plan = run(&renew(Some(1000)), &presented(), found(session()));
    assert!(plan.grace.is_some());
    for window in [Some(0), None] {
        let plan = run(&renew(window), &presented(), found(session()));
        assert_eq!(plan.grace, None);
        let Write::Update { session, .. } = &plan.writes[0] else {
            panic!("{:?}", plan.writes)
        };
        assert!(session.previous.iter().all(|p| p.at_ms <= NOW));
    }
    // rotation for a privilege change: nothing to keep
    let rotate = settings(|r| {
        r.rotate = Some(true);
        r.nonce_timeout_ms = Some(Some(0));
    });
    assert_eq!(run(&rotate, &presented(), found(session())).grace, None);
    // timed cycling: where the session went
    let cycle = settings(|r| r.key_timeout_ms = Some(Some(0)));
    let plan = run(&cycle, &presented(), found(session()));
    assert_eq!(
        plan.grace,
        Some(Grace {
            nonce: None,
            moved_to: Some(H.token_hash(&[101; 32]))
        })
    );
}

#[test]
fn last_resort_never_fails_a_request() {
    // a renewal is left for later
    let renew = settings(|r| r.nonce_timeout_ms = Some(Some(0)));
    let plan = last_resort(run(&renew, &presented(), found(session())));
    assert_eq!(plan.status, Status::Valid);
    assert!(plan.writes.is_empty() && plan.cookies.is_empty());
    assert_eq!(plan.uid, Some([7; 16]));
    // a timed cycle too
    let cycle = settings(|r| r.key_timeout_ms = Some(Some(0)));
    let plan = last_resort(run(&cycle, &presented(), found(session())));
    assert_eq!(plan.status, Status::Valid);
    assert!(plan.writes.is_empty() && plan.cookies.is_empty());
    // what ends a session ends it without comparing
    let destroy = settings(|r| r.destroy = Some(true));
    let plan = last_resort(run(&destroy, &presented(), found(session())));
    assert_eq!(plan.writes, vec![Write::Delete { cas: None }]);
    let rotate = settings(|r| r.rotate = Some(true));
    let plan = last_resort(run(&rotate, &presented(), found(session())));
    assert_eq!(plan.status, Status::Rotated);
    assert!(matches!(
        plan.writes[..],
        [Write::Add { .. }, Write::Delete { cas: None }]
    ));
}
