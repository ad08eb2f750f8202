use super::*;
use crate::settings::{CookieSecure, RawSettings};

/// Deterministic secrets: 1, 2, 3, ... in every byte.
struct Counter(u8);

impl Fresh for Counter {
    fn token(&mut self) -> Result<Token, RandomError> {
        self.0 += 1;
        Ok([self.0; 32])
    }
    fn key(&mut self) -> Result<Key, RandomError> {
        self.0 += 1;
        Ok([self.0; 16])
    }
    fn uid(&mut self) -> Result<[u8; UID_LEN], RandomError> {
        self.0 += 1;
        Ok([self.0; 16])
    }
}

struct Broken;

impl Fresh for Broken {
    fn token(&mut self) -> Result<Token, RandomError> {
        Err(RandomError::UNEXPLAINED)
    }
    fn key(&mut self) -> Result<Key, RandomError> {
        Err(RandomError::UNEXPLAINED)
    }
    fn uid(&mut self) -> Result<[u8; UID_LEN], RandomError> {
        Err(RandomError::UNEXPLAINED)
    }
}

pub(super) const NOW: u64 = 1_000_000_000;
pub(super) const H: Hasher<'static> = Hasher::new_const();

pub(super) fn settings(f: impl FnOnce(&mut RawSettings)) -> Settings {
    let mut raw = RawSettings::default();
    f(&mut raw);
    raw.resolve().unwrap()
}

pub(super) fn defaults() -> Settings {
    settings(|_| {})
}

fn fp(x: u8) -> Option<Hash> {
    Some([x; 32])
}

fn nonce_hash(n: Key) -> Hash {
    H.hash("nonce", &[&n])
}

fn sk_hash(k: Key) -> Hash {
    H.hash("secure_key", &[&k])
}

/// A session created 10 s ago with nonce [9; 16] issued 100 ms ago.
pub(super) fn session() -> Session {
    Session {
        uid: [7; 16],
        created_ms: NOW - 10_000,
        key_issued_ms: NOW - 10_000,
        fingerprint: fp(1),
        secure_key: None,
        nonce: Some(Nonce {
            hash: nonce_hash([9; 16]),
            at_ms: NOW - 100,
        }),
        previous: Vec::new(),
        user: None,
    }
}

pub(super) fn found(s: Session) -> Found {
    Found::Session(Stored {
        session: s,
        cas: 42,
        via_pointer: false,
        ttl_left: Some(3599),
    })
}

/// A session record reached through the pointer under an older token.
pub(super) fn via_pointer(s: Session) -> Found {
    Found::Session(Stored {
        via_pointer: true,
        ..stored(s)
    })
}

pub(super) fn stored(s: Session) -> Stored {
    let Found::Session(stored) = found(s) else {
        unreachable!()
    };
    stored
}

pub(super) const DELETE: Write = Write::Delete { cas: Some(42) };

pub(super) fn presented() -> Presented {
    Presented {
        nonce: Some([9; 16]),
        secure_key: None,
        https: false,
        fingerprint: fp(1),
        now_ms: NOW,
    }
}

pub(super) fn run(s: &Settings, req: &Presented, f: Found) -> Plan {
    decide(s, &H, req, f, &mut Counter(100)).unwrap()
}

#[test]
fn no_record_starts_a_new_session() {
    let plan = run(&defaults(), &presented(), Found::Nothing);
    assert_eq!(plan.status, Status::New);
    assert_eq!(plan.violation, None);
    assert!(!plan.deny);
    // token 101, uid 102, nonce 103
    assert_eq!(
        plan.cookies,
        vec![CookieOut::Token([101; 32]), CookieOut::Nonce([103; 16])]
    );
    assert_eq!(plan.uid, Some([102; 16]));
    assert_eq!(plan.created_ms, Some(NOW), "$paranoid_session_created");
    let [Write::Add {
        token_hash,
        session,
    }] = plan.writes.as_slice()
    else {
        panic!("{:?}", plan.writes)
    };
    assert_eq!(*token_hash, H.token_hash(&[101; 32]));
    assert_eq!(session.created_ms, NOW);
    assert_eq!(session.key_issued_ms, NOW);
    assert_eq!(session.fingerprint, fp(1));
    assert_eq!(session.nonce.as_ref().unwrap().hash, nonce_hash([103; 16]));
    assert_eq!(session.secure_key, None);
}

#[test]
fn new_session_over_https_gets_a_secure_key() {
    let req = Presented {
        https: true,
        ..presented()
    };
    let plan = run(&defaults(), &req, Found::Nothing);
    assert_eq!(plan.cookies.last(), Some(&CookieOut::SecureKey([104; 16])));
    let Write::Add { session, .. } = &plan.writes[0] else {
        panic!()
    };
    assert_eq!(session.secure_key, Some(sk_hash([104; 16])));
}

#[test]
fn new_session_without_nonces_or_secure_cookie() {
    let s = settings(|r| {
        r.nonce_timeout_ms = Some(None);
        r.secure_cookie = Some(None);
    });
    let req = Presented {
        https: true,
        ..presented()
    };
    let plan = run(&s, &req, Found::Nothing);
    assert_eq!(plan.cookies, vec![CookieOut::Token([101; 32])]);
}

#[test]
fn random_failure_is_an_error() {
    let r = decide(&defaults(), &H, &presented(), Found::Nothing, &mut Broken);
    assert_eq!(r, Err(RandomError::UNEXPLAINED));
}

#[test]
fn destroy_deletes_and_expires() {
    let s = settings(|r| r.destroy = Some(true));
    let plan = run(&s, &presented(), found(session()));
    assert_eq!(plan.status, Status::Destroyed);
    assert_eq!(plan.writes, vec![DELETE]);
    assert_eq!(plan.cookies, vec![CookieOut::ExpireAll]);
    assert_eq!(plan.uid, None);

    let plan = run(&s, &presented(), Found::Nothing);
    assert_eq!(plan.status, Status::Destroyed);
    assert!(plan.writes.is_empty());
    assert_eq!(plan.cookies, vec![CookieOut::ExpireAll]);
}

#[test]
fn valid_session_needs_no_write() {
    let plan = run(&defaults(), &presented(), found(session()));
    assert_eq!(plan.status, Status::Valid);
    assert_eq!(plan.uid, Some([7; 16]));
    assert_eq!(
        plan.created_ms,
        Some(NOW - 10_000),
        "when it began, not now"
    );
    assert!(plan.writes.is_empty(), "{:?}", plan.writes);
    assert!(plan.cookies.is_empty());
}

#[test]
fn absolute_timeout_expires_and_replaces() {
    let s = settings(|r| r.absolute_timeout_ms = Some(10_000));
    let plan = run(&s, &presented(), found(session()));
    assert_eq!(plan.status, Status::Expired);
    assert_eq!(plan.expiry, Some(Expiry::Absolute));
    assert_eq!(plan.writes[0], DELETE);
    assert!(matches!(plan.writes[1], Write::Add { .. }));
    assert_eq!(plan.cookies[0], CookieOut::Token([101; 32]));
    assert_ne!(plan.uid, Some([7; 16]), "never revived");

    let s = settings(|r| r.absolute_timeout_ms = Some(10_001));
    assert_eq!(
        run(&s, &presented(), found(session())).status,
        Status::Valid
    );
}

#[test]
fn fingerprint_mismatch_per_policy() {
    let req = Presented {
        fingerprint: fp(2),
        ..presented()
    };
    // clear: delete, fresh session, continue
    let plan = run(&defaults(), &req, found(session()));
    assert_eq!(plan.status, Status::Violation);
    assert_eq!(plan.violation, Some(Violation::Fingerprint));
    assert_eq!(plan.writes[0], DELETE);
    assert!(matches!(&plan.writes[1], Write::Add { session, .. } if session.fingerprint == fp(2)));
    assert_eq!(plan.cookies[0], CookieOut::Token([101; 32]));
    assert!(!plan.deny);
    assert_ne!(plan.uid, Some([7; 16]));

    // deny: delete, expire cookies, 403
    let s = settings(|r| r.on_violation = Some(OnViolation::Deny));
    let plan = run(&s, &req, found(session()));
    assert_eq!(plan.violation, Some(Violation::Fingerprint));
    assert_eq!(plan.writes, vec![DELETE]);
    assert_eq!(plan.cookies, vec![CookieOut::ExpireAll]);
    assert!(plan.deny);
    assert_eq!(plan.offender, Some([7; 16]));
    assert_eq!(plan.uid, None, "never the offended session's uid");
    assert_eq!(plan.created_ms, None, "nor when it began");

    // log: marked, otherwise a valid request (nothing due here)
    let s = settings(|r| r.on_violation = Some(OnViolation::Log));
    let plan = run(&s, &req, found(session()));
    assert_eq!(plan.status, Status::Violation);
    assert_eq!(plan.violation, Some(Violation::Fingerprint));
    assert!(plan.writes.is_empty() && plan.cookies.is_empty() && !plan.deny);
    assert_eq!(plan.uid, Some([7; 16]));
    assert_eq!(plan.offender, Some([7; 16]));
}

#[test]
fn fingerprint_off_or_absent_in_record() {
    let req = Presented {
        fingerprint: None,
        ..presented()
    };
    assert_eq!(
        run(&defaults(), &req, found(session())).status,
        Status::Valid
    );

    // A record without a fingerprint is not bound to the first one it
    // meets: it is replaced.
    let mut s = session();
    s.fingerprint = None;
    let plan = run(&defaults(), &presented(), found(s));
    assert_eq!(plan.status, Status::New);
    assert_ne!(plan.uid, Some([7; 16]));
    assert_eq!(plan.writes[0], DELETE);
    assert!(matches!(&plan.writes[1], Write::Add { session, .. } if session.fingerprint == fp(1)));
}

#[test]
fn secure_key_required_over_https_only() {
    let mut s = session();
    s.secure_key = Some(sk_hash([5; 16]));
    let https = |key| Presented {
        https: true,
        secure_key: key,
        ..presented()
    };
    let plan = run(&defaults(), &https(None), found(s.clone()));
    assert_eq!(plan.violation, Some(Violation::SecureKey));
    let plan = run(&defaults(), &https(Some([6; 16])), found(s.clone()));
    assert_eq!(plan.violation, Some(Violation::SecureKey));
    let plan = run(&defaults(), &https(Some([5; 16])), found(s.clone()));
    assert_eq!(plan.status, Status::Valid);
    // plain HTTP: never checked
    let plan = run(&defaults(), &presented(), found(s.clone()));
    assert_eq!(plan.status, Status::Valid);
    // secure cookie off: never checked
    let off = settings(|r| r.secure_cookie = Some(None));
    assert_eq!(run(&off, &https(None), found(s)).status, Status::Valid);
}

#[test]
fn secure_key_issued_on_first_https_request_only_when_upgrading() {
    let req = Presented {
        https: true,
        ..presented()
    };
    let upgrade = settings(|r| r.secure_cookie_upgrade = Some(true));
    let plan = run(&upgrade, &req, found(session()));
    assert_eq!(plan.status, Status::Valid);
    assert_eq!(plan.cookies, vec![CookieOut::SecureKey([101; 16])]);
    assert!(matches!(&plan.writes[..], [Write::Update { session, .. }]
        if session.secure_key == Some(sk_hash([101; 16]))));
    // over plain HTTP nothing is issued
    assert!(run(&upgrade, &presented(), found(session()))
        .cookies
        .is_empty());

    // by default an HTTP-born session is replaced over HTTPS
    let plan = run(&defaults(), &req, found(session()));
    assert_eq!(plan.status, Status::New);
    assert_ne!(plan.uid, Some([7; 16]));
    assert_eq!(plan.writes[0], DELETE);
    assert!(matches!(&plan.writes[1], Write::Add { session, .. } if session.secure_key.is_some()));
    assert!(plan
        .cookies
        .iter()
        .any(|c| matches!(c, CookieOut::SecureKey(_))));
}

#[test]
fn nonce_renewed_when_due() {
    let s = settings(|r| r.nonce_timeout_ms = Some(Some(100)));
    let plan = run(&s, &presented(), found(session()));
    assert_eq!(plan.status, Status::Valid);
    assert_eq!(plan.cookies, vec![CookieOut::Nonce([101; 16])]);
    let [Write::Update {
        session: updated,
        cas,
    }] = plan.writes.as_slice()
    else {
        panic!("{:?}", plan.writes)
    };
    assert_eq!(*cas, 42);
    assert_eq!(updated.nonce.as_ref().unwrap().hash, nonce_hash([101; 16]));
    assert_eq!(updated.nonce.as_ref().unwrap().at_ms, NOW);
    assert_eq!(
        updated.previous,
        vec![Nonce {
            hash: nonce_hash([9; 16]),
            at_ms: NOW + lifetime::DELIVERY_SLACK_MS
        }]
    );
    assert_eq!(
        plan.grace,
        Some(Grace {
            nonce: Some(nonce_hash([9; 16])),
            moved_to: None
        })
    );

    // timeout 0: every request
    let every = settings(|r| r.nonce_timeout_ms = Some(Some(0)));
    let mut fresh = session();
    fresh.nonce.as_mut().unwrap().at_ms = NOW;
    assert_eq!(run(&every, &presented(), found(fresh)).cookies.len(), 1);
    // not due yet
    let s = settings(|r| r.nonce_timeout_ms = Some(Some(101)));
    assert!(run(&s, &presented(), found(session())).writes.is_empty());
}

#[test]
fn previous_nonce_accepted_inside_the_window_only() {
    let mut s = session();
    s.nonce = Some(Nonce {
        hash: nonce_hash([10; 16]),
        at_ms: NOW - 10,
    });
    s.previous = vec![
        Nonce {
            hash: nonce_hash([9; 16]),
            at_ms: NOW - 500,
        },
        Nonce {
            hash: nonce_hash([8; 16]),
            at_ms: NOW - 600,
        },
    ];
    let with = |n: u8| Presented {
        nonce: Some([n; 16]),
        ..presented()
    };
    let window2 = settings(|r| r.nonce_window = Some(2));
    // the most recent previous nonce, inside window and timeout: accepted,
    // and a client behind gets no renewal
    let plan = run(&window2, &with(9), found(s.clone()));
    assert_eq!(plan.status, Status::Valid);
    assert!(plan.cookies.is_empty());
    assert_eq!(
        run(&window2, &with(8), found(s.clone())).status,
        Status::Valid
    );
    // outside the count
    let window1 = settings(|r| r.nonce_window = Some(1));
    assert_eq!(
        run(&window1, &with(8), found(s.clone())).violation,
        Some(Violation::Nonce)
    );
    let window0 = settings(|r| r.nonce_window = Some(0));
    assert_eq!(
        run(&window0, &with(9), found(s.clone())).violation,
        Some(Violation::Nonce)
    );
    // outside the timeout
    let short = settings(|r| {
        r.nonce_window = Some(2);
        r.nonce_window_timeout_ms = Some(Some(550));
    });
    assert_eq!(
        run(&short, &with(9), found(s.clone())).status,
        Status::Valid
    );
    assert_eq!(
        run(&short, &with(8), found(s.clone())).violation,
        Some(Violation::Nonce)
    );
    // no window timeout: only the count limits
    let unlimited = settings(|r| {
        r.nonce_window = Some(2);
        r.nonce_window_timeout_ms = Some(None);
    });
    assert_eq!(
        run(&unlimited, &with(8), found(s.clone())).status,
        Status::Valid
    );
    // unknown and absent
    assert_eq!(
        run(&window2, &with(1), found(s.clone())).violation,
        Some(Violation::Nonce)
    );
    let absent = Presented {
        nonce: None,
        ..presented()
    };
    assert_eq!(
        run(&window2, &absent, found(s)).violation,
        Some(Violation::Nonce)
    );
}

#[test]
fn stale_previous_nonces_are_pruned_on_write() {
    let mut s = session();
    s.previous = vec![Nonce {
        hash: nonce_hash([3; 16]),
        at_ms: NOW - 5_000,
    }];
    let plan = run(&defaults(), &presented(), found(s));
    assert!(
        matches!(&plan.writes[..], [Write::Update { session, .. }] if session.previous.is_empty())
    );
}

#[test]
fn nonces_off_never_checked_nor_issued() {
    let off = settings(|r| r.nonce_timeout_ms = Some(None));
    let req = Presented {
        nonce: None,
        ..presented()
    };
    let plan = run(&off, &req, found(session()));
    assert_eq!(plan.status, Status::Valid);
    assert!(plan.cookies.is_empty() && plan.writes.is_empty());
}

#[test]
fn record_without_nonce_is_replaced() {
    let mut s = session();
    s.nonce = None;
    let req = Presented {
        nonce: None,
        ..presented()
    };
    let plan = run(&defaults(), &req, found(s));
    assert_eq!(plan.status, Status::New);
    assert_ne!(plan.uid, Some([7; 16]));
    assert_eq!(plan.writes[0], DELETE);
    assert!(matches!(&plan.writes[1], Write::Add { session, .. } if session.nonce.is_some()));
}

#[test]
fn key_cycling_when_due_or_rotating() {
    let due = settings(|r| r.key_timeout_ms = Some(Some(10_000)));
    let rotate = settings(|r| r.rotate = Some(true));
    let target = H.token_hash(&[101; 32]);
    for (s, pointer) in [
        (
            due,
            Some(Pointer {
                target,
                created_ms: NOW + lifetime::DELIVERY_SLACK_MS,
            }),
        ),
        // a privilege change leaves no pointer
        (rotate, None),
    ] {
        let plan = run(&s, &presented(), found(session()));
        assert_eq!(plan.status, Status::Rotated);
        assert_eq!(plan.uid, Some([7; 16]), "same session");
        assert_eq!(plan.cookies[0], CookieOut::Token([101; 32]));
        let [Write::Add {
            token_hash,
            session: added,
        }, Write::Retire {
            pointer: p,
            cas: 42,
        }] = plan.writes.as_slice()
        else {
            panic!("{:?}", plan.writes)
        };
        assert_eq!(*token_hash, target);
        assert_eq!(*p, pointer);
        assert_eq!(added.uid, [7; 16]);
        assert_eq!(added.created_ms, NOW - 10_000, "absolute age kept");
        assert_eq!(added.key_issued_ms, NOW);
        assert_eq!(plan.grace.is_some(), pointer.is_some());
    }
    let no_grace = settings(|r| {
        r.key_timeout_ms = Some(Some(0));
        r.nonce_window_timeout_ms = Some(None);
    });
    let plan = run(&no_grace, &presented(), found(session()));
    assert!(matches!(
        plan.writes[..],
        [Write::Add { .. }, Write::Retire { pointer: None, .. }]
    ));
    let not_due = settings(|r| r.key_timeout_ms = Some(Some(10_001)));
    assert_eq!(
        run(&not_due, &presented(), found(session())).status,
        Status::Valid
    );
}

#[test]
fn cycling_keeps_renewed_nonce() {
    let s = settings(|r| {
        r.rotate = Some(true);
        r.nonce_timeout_ms = Some(Some(0));
    });
    let plan = run(&s, &presented(), found(session()));
    // nonce 101 renewed first, then token 102
    assert_eq!(
        plan.cookies,
        vec![CookieOut::Token([102; 32]), CookieOut::Nonce([101; 16])]
    );
    assert!(matches!(&plan.writes[0], Write::Add { session, .. }
        if session.nonce.as_ref().unwrap().hash == nonce_hash([101; 16])));
}

#[test]
fn violation_checks_come_before_renewals() {
    let s = settings(|r| {
        r.rotate = Some(true);
        r.cookie_secure = Some(CookieSecure::On);
    });
    let req = Presented {
        nonce: Some([1; 16]),
        ..presented()
    };
    let plan = run(&s, &req, found(session()));
    assert_eq!(plan.status, Status::Violation);
    assert_eq!(plan.violation, Some(Violation::Nonce));
}

#[test]
fn names_of_statuses_and_violations() {
    let all = [
        (Status::New, "new"),
        (Status::Valid, "valid"),
        (Status::Rotated, "rotated"),
        (Status::Expired, "expired"),
        (Status::Violation, "violation"),
        (Status::Destroyed, "destroyed"),
        (Status::Bypass, "bypass"),
        (Status::Error, "error"),
    ];
    for (s, name) in all {
        assert_eq!(s.as_str(), name);
    }
    assert_eq!(Violation::Fingerprint.as_str(), "fingerprint");
    assert_eq!(Violation::Nonce.as_str(), "nonce");
    assert_eq!(Violation::SecureKey.as_str(), "secure_key");
}
