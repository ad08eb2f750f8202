//! The session decision: what a request presented + the stored record + now
//! → a verdict, the record writes and the cookies to set. No I/O: the
//! caller reads the record, runs `decide`, performs the writes (re-reading
//! and deciding again when a compare-and-swap loses a race) and sets the
//! cookies.

use crate::control::UserId;
use crate::lifetime;
use crate::record::{Hash, Nonce, Pointer, Session, MAX_PREVIOUS_NONCES, UID_LEN};
use crate::secret::{self, Hasher, RandomError, Token};
use crate::settings::{OnViolation, Settings};

/// Bytes of a nonce and of a secure key.
pub const KEY_LEN: usize = 16;
/// A nonce or secure key as the client holds it.
pub type Key = [u8; KEY_LEN];

/// `$paranoid_session_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    New,
    Valid,
    Rotated,
    Expired,
    Violation,
    Destroyed,
    Bypass,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Valid => "valid",
            Status::Rotated => "rotated",
            Status::Expired => "expired",
            Status::Violation => "violation",
            Status::Destroyed => "destroyed",
            Status::Bypass => "bypass",
            Status::Error => "error",
        }
    }
}

/// `$paranoid_session_violation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Fingerprint,
    Nonce,
    SecureKey,
}

impl Violation {
    pub fn as_str(self) -> &'static str {
        match self {
            Violation::Fingerprint => "fingerprint",
            Violation::Nonce => "nonce",
            Violation::SecureKey => "secure_key",
        }
    }
}

/// What the request presented, already parsed (malformed values are None).
#[derive(Debug, Clone, Default)]
pub struct Presented {
    pub nonce: Option<Key>,
    pub secure_key: Option<Key>,
    pub https: bool,
    /// Hash of the fingerprint values; None when fingerprinting is off.
    pub fingerprint: Option<Hash>,
    pub now_ms: u64,
}

/// The record the request's token led to.
// Made once per request and moved into `decide`: boxing would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Found {
    /// No token, an unknown one, or a record that did not decode.
    Nothing,
    Session(Stored),
}

/// A session record as the store returned it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub session: Session,
    /// For compare-and-swap writes.
    pub cas: u64,
    /// Reached through a pointer left by timed cycling: the request carries
    /// an older token of the session.
    pub via_pointer: bool,
    /// Seconds memcached had left on the record before this read refreshed
    /// it (-1: no expiry); see [`lifetime::idle_expired`].
    pub ttl_left: Option<i64>,
}

/// Fresh secrets, drawn only when a decision needs them.
pub trait Fresh {
    fn token(&mut self) -> Result<Token, RandomError>;
    fn key(&mut self) -> Result<Key, RandomError>;
    fn uid(&mut self) -> Result<[u8; UID_LEN], RandomError>;
}

/// The OS CSPRNG.
pub struct OsFresh;

impl Fresh for OsFresh {
    fn token(&mut self) -> Result<Token, RandomError> {
        secret::random()
    }
    fn key(&mut self) -> Result<Key, RandomError> {
        secret::random()
    }
    fn uid(&mut self) -> Result<[u8; UID_LEN], RandomError> {
        secret::random()
    }
}

/// A store write, in the order the caller must perform them. A write that
/// loses a race (compare-and-swap mismatch, record gone, key taken) makes
/// the caller undo the `Add` it made, read again and decide again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Store a new session under the key of `token_hash`, only if absent.
    Add { token_hash: Hash, session: Session },
    /// Replace the found record, compare-and-swap on `cas`.
    Update { session: Session, cas: u64 },
    /// The session moved to the token added just before: replace the found
    /// record by `pointer` (timed cycling: requests in flight with the old
    /// token keep working for the window), or remove it when `pointer` is
    /// None (rotation for a privilege change: the old token ends at once).
    /// Compare-and-swap on `cas`; a record that is gone loses too, so a
    /// session destroyed meanwhile is not carried over.
    Retire { pointer: Option<Pointer>, cas: u64 },
    /// Remove the found record, compare-and-swap on `cas` when Some (a
    /// session that changed meanwhile is read and judged again, so that
    /// whatever raced, what is destroyed stays destroyed). Already gone is
    /// fine.
    Delete { cas: Option<u64> },
    /// Remove the pointers the request followed to the found record.
    DeletePath,
}

/// A cookie to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieOut {
    Token(Token),
    Nonce(Key),
    SecureKey(Key),
    /// Expire every cookie of the module.
    ExpireAll,
}

/// The outcome of one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub status: Status,
    pub violation: Option<Violation>,
    pub uid: Option<[u8; UID_LEN]>,
    pub writes: Vec<Write>,
    pub cookies: Vec<CookieOut>,
    /// Answer 403 instead of continuing.
    pub deny: bool,
    /// The uid of the session a violation was caught on (for the log).
    pub offender: Option<[u8; UID_LEN]>,
    /// `$paranoid_session_user`: the user the session is bound to.
    pub user: Option<UserId>,
    /// Values this request superseded, whose grace must last until its
    /// response could have reached the client.
    pub grace: Option<Grace>,
    /// Why the found session had expired (status `expired`).
    pub expiry: Option<Expiry>,
    /// When the request's session began (Unix ms), with `uid`.
    pub created_ms: Option<u64>,
}

/// Which timeout ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `paranoid_session_idle_timeout`: no request for that long.
    Idle,
    /// `paranoid_session_absolute_timeout`: that long since it began.
    Absolute,
}

/// What a renewal or a timed cycle superseded, for the caller to keep
/// acceptable while the response is slow (see [`lifetime`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grace {
    /// The superseded nonce, now in the session's `previous` list.
    pub nonce: Option<Hash>,
    /// The session moved to this token hash (timed cycling; a pointer was
    /// left under the found record's key). None: it stays where found.
    pub moved_to: Option<Hash>,
}

impl Plan {
    fn new(status: Status) -> Plan {
        Plan {
            status,
            violation: None,
            uid: None,
            writes: Vec::new(),
            cookies: Vec::new(),
            deny: false,
            offender: None,
            user: None,
            grace: None,
            expiry: None,
            created_ms: None,
        }
    }
}

/// Decides one request.
///
/// Order: destroy, expiry (absolute, then idle), the checks (fingerprint,
/// secure key, nonce), the bindings the location requires and the session
/// lacks, then renewals and cycling. Under `log` a violating request goes
/// on exactly as a valid one and is only marked.
pub fn decide(
    settings: &Settings,
    hasher: &Hasher<'_>,
    req: &Presented,
    found: Found,
    fresh: &mut impl Fresh,
) -> Result<Plan, RandomError> {
    let Found::Session(stored) = found else {
        if settings.destroy {
            return Ok(destroyed(None));
        }
        return new_session(settings, hasher, req, fresh, Plan::new(Status::New));
    };
    if settings.destroy {
        return Ok(destroyed(Some(&stored)));
    }
    if let Some(expiry) = expired(settings, &stored, req.now_ms) {
        let mut plan = Plan::new(Status::Expired);
        plan.expiry = Some(expiry);
        plan.writes = end(&stored);
        return new_session(settings, hasher, req, fresh, plan);
    }
    let checked = check(settings, hasher, req, &stored.session);
    if let Some(violation) = checked.violation {
        match settings.on_violation {
            OnViolation::Deny => return Ok(denied(&stored, violation)),
            OnViolation::Clear => {
                let mut plan = violation_plan(&stored, violation);
                plan.writes = end(&stored);
                return new_session(settings, hasher, req, fresh, plan);
            }
            OnViolation::Log => {}
        }
    }
    let uid = stored.session.uid;
    let mut plan = if lacks_binding(settings, req, &stored.session) {
        // Cookies alone never buy a binding the session was born without:
        // whoever presents them first would otherwise own the session.
        let mut plan = Plan::new(Status::New);
        plan.writes = end(&stored);
        new_session(settings, hasher, req, fresh, plan)?
    } else {
        // Under `log`, a client that lost its nonce renews as if it had
        // presented the current one, so it logs once, not forever.
        let nonce_is_current =
            checked.nonce_is_current || checked.violation == Some(Violation::Nonce);
        refresh(settings, hasher, req, fresh, stored, nonce_is_current)?
    };
    if let Some(violation) = checked.violation {
        plan.status = Status::Violation;
        plan.violation = Some(violation);
        plan.offender = Some(uid);
    }
    Ok(plan)
}

/// When the decided writes keep losing compare-and-swap races: the plan to
/// perform without them, so that contention alone never fails a request.
/// Ending a session (destroy, expiry, violation, replacement, rotation for a
/// privilege change) no longer compares; a renewal or a timed cycle is left
/// for a later request and this one goes on as valid.
pub fn last_resort(mut plan: Plan) -> Plan {
    let renews = plan.writes.iter().any(|w| {
        matches!(
            w,
            Write::Update { .. }
                | Write::Retire {
                    pointer: Some(_),
                    ..
                }
        )
    });
    if renews {
        if plan.status == Status::Rotated {
            plan.status = Status::Valid;
        }
        plan.writes.clear();
        plan.cookies.clear();
        plan.grace = None;
        return plan;
    }
    for write in &mut plan.writes {
        match write {
            Write::Delete { cas } => *cas = None,
            Write::Retire { pointer: None, .. } => *write = Write::Delete { cas: None },
            _ => {}
        }
    }
    plan
}

/// The writes that end a found session: its record (unless it changed
/// meanwhile) and the pointers that led to it.
fn end(stored: &Stored) -> Vec<Write> {
    let mut writes = vec![Write::Delete {
        cas: Some(stored.cas),
    }];
    if stored.via_pointer {
        writes.push(Write::DeletePath);
    }
    writes
}

fn destroyed(stored: Option<&Stored>) -> Plan {
    let mut plan = Plan::new(Status::Destroyed);
    if let Some(stored) = stored {
        plan.writes = end(stored);
    }
    plan.cookies.push(CookieOut::ExpireAll);
    plan
}

fn violation_plan(stored: &Stored, violation: Violation) -> Plan {
    let mut plan = Plan::new(Status::Violation);
    plan.violation = Some(violation);
    plan.offender = Some(stored.session.uid);
    plan
}

/// `deny`: the session ends and the request is refused. The variables do
/// not carry the session's uid: nginx may still let the request through
/// (`satisfy any`, `error_page 403` to a proxied location).
fn denied(stored: &Stored, violation: Violation) -> Plan {
    let mut plan = violation_plan(stored, violation);
    plan.writes = end(stored);
    plan.cookies.push(CookieOut::ExpireAll);
    plan.deny = true;
    plan
}

/// Absolute age first, then idle time (what memcached's TTL says).
fn expired(settings: &Settings, stored: &Stored, now_ms: u64) -> Option<Expiry> {
    if now_ms.saturating_sub(stored.session.created_ms) >= settings.absolute_timeout_ms {
        Some(Expiry::Absolute)
    } else if lifetime::idle_expired(settings, stored.ttl_left) {
        Some(Expiry::Idle)
    } else {
        None
    }
}

/// A binding this request's location checks that the session was created
/// without: a secure key over HTTPS (unless `paranoid_secure_cookie_upgrade`
/// issues one, as django-paranoid-sessions does), a fingerprint, a nonce.
fn lacks_binding(settings: &Settings, req: &Presented, session: &Session) -> bool {
    let secure_key = req.https
        && settings.secure_cookie.is_some()
        && session.secure_key.is_none()
        && !settings.secure_cookie_upgrade;
    let fingerprint = req.fingerprint.is_some() && session.fingerprint.is_none();
    let nonce = settings.nonces_enabled() && session.nonce.is_none();
    secure_key || fingerprint || nonce
}

/// What the comparison of a request with its session found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checked {
    /// The first mismatch, in the order fingerprint, secure key, nonce.
    violation: Option<Violation>,
    /// The presented nonce is the current one.
    nonce_is_current: bool,
}

/// Compares what the request presented with the record, in constant time.
fn check(settings: &Settings, hasher: &Hasher<'_>, req: &Presented, session: &Session) -> Checked {
    let fingerprint_ok = match (&req.fingerprint, &session.fingerprint) {
        (Some(now), Some(then)) => secret::same(now, then),
        _ => true,
    };
    let secure_key_ok = match (
        &session.secure_key,
        req.https && settings.secure_cookie.is_some(),
    ) {
        (Some(stored), true) => {
            let presented = req.secure_key.map(|k| hasher.hash("secure_key", &[&k]));
            presented.is_some_and(|p| secret::same(&p, stored))
        }
        _ => true,
    };
    let (nonce_ok, nonce_is_current) = check_nonce(settings, hasher, req, session);
    let violation = if !fingerprint_ok {
        Some(Violation::Fingerprint)
    } else if !secure_key_ok {
        Some(Violation::SecureKey)
    } else if !nonce_ok {
        Some(Violation::Nonce)
    } else {
        None
    };
    Checked {
        violation,
        nonce_is_current,
    }
}

/// (accepted, current): the current nonce, or one of the `window` newest
/// previous nonces still within its grace.
fn check_nonce(
    settings: &Settings,
    hasher: &Hasher<'_>,
    req: &Presented,
    session: &Session,
) -> (bool, bool) {
    if !settings.nonces_enabled() {
        return (true, false);
    }
    let Some(current) = &session.nonce else {
        return (true, false);
    };
    let Some(presented) = req.nonce.map(|n| hasher.hash("nonce", &[&n])) else {
        return (false, false);
    };
    if secret::same(&presented, &current.hash) {
        return (true, true);
    }
    let window = settings.nonce_window as usize;
    let accepted = session
        .previous
        .iter()
        .take(window)
        .filter(|old| lifetime::within_grace(settings, old.at_ms, req.now_ms))
        .fold(false, |hit, old| hit | secret::same(&presented, &old.hash));
    (accepted, false)
}

/// A fresh session added to `plan`.
fn new_session(
    settings: &Settings,
    hasher: &Hasher<'_>,
    req: &Presented,
    fresh: &mut impl Fresh,
    mut plan: Plan,
) -> Result<Plan, RandomError> {
    let token = fresh.token()?;
    let mut session = Session {
        uid: fresh.uid()?,
        created_ms: req.now_ms,
        key_issued_ms: req.now_ms,
        fingerprint: req.fingerprint,
        secure_key: None,
        nonce: None,
        previous: Vec::new(),
        user: None,
    };
    if settings.nonces_enabled() {
        let nonce = fresh.key()?;
        session.nonce = Some(Nonce {
            hash: hasher.hash("nonce", &[&nonce]),
            at_ms: req.now_ms,
        });
        plan.cookies.push(CookieOut::Nonce(nonce));
    }
    if req.https && settings.secure_cookie.is_some() {
        let key = fresh.key()?;
        session.secure_key = Some(hasher.hash("secure_key", &[&key]));
        plan.cookies.push(CookieOut::SecureKey(key));
    }
    plan.cookies.insert(0, CookieOut::Token(token));
    plan.uid = Some(session.uid);
    plan.created_ms = Some(session.created_ms);
    plan.writes.push(Write::Add {
        token_hash: hasher.token_hash(&token),
        session,
    });
    Ok(plan)
}

/// A valid request: renew what is due, cycle the token when due.
fn refresh(
    settings: &Settings,
    hasher: &Hasher<'_>,
    req: &Presented,
    fresh: &mut impl Fresh,
    stored: Stored,
    nonce_is_current: bool,
) -> Result<Plan, RandomError> {
    let Stored {
        mut session,
        cas,
        via_pointer,
        ..
    } = stored;
    let mut plan = Plan::new(Status::Valid);
    plan.uid = Some(session.uid);
    plan.created_ms = Some(session.created_ms);
    plan.user.clone_from(&session.user);
    let grace_at = lifetime::grace_start(settings, req.now_ms);
    let mut changed = false;
    let mut superseded = None;

    if settings.nonces_enabled() {
        let due = match &session.nonce {
            None => true,
            Some(current) => {
                nonce_is_current
                    && settings
                        .nonce_timeout_ms
                        .is_some_and(|t| req.now_ms.saturating_sub(current.at_ms) >= t)
            }
        };
        if due {
            let nonce = fresh.key()?;
            if let Some(old) = session.nonce.take() {
                superseded = Some(old.hash);
                session.previous.insert(
                    0,
                    Nonce {
                        hash: old.hash,
                        at_ms: grace_at,
                    },
                );
            }
            session.nonce = Some(Nonce {
                hash: hasher.hash("nonce", &[&nonce]),
                at_ms: req.now_ms,
            });
            plan.cookies.push(CookieOut::Nonce(nonce));
            changed = true;
        }
        let keep = (settings.nonce_window as usize).min(MAX_PREVIOUS_NONCES);
        let before = session.previous.len();
        session.previous.truncate(keep);
        session
            .previous
            .retain(|old| lifetime::within_grace(settings, old.at_ms, req.now_ms));
        changed |= session.previous.len() != before;
    }
    if req.https && settings.secure_cookie.is_some() && session.secure_key.is_none() {
        // Only with paranoid_secure_cookie_upgrade (see lacks_binding).
        let key = fresh.key()?;
        session.secure_key = Some(hasher.hash("secure_key", &[&key]));
        plan.cookies.push(CookieOut::SecureKey(key));
        changed = true;
    }

    // A request that came through a pointer carries an old token: it
    // neither cycles nor rotates, or the old token's holder would get a
    // fresh one.
    let cycle = !via_pointer
        && (settings.rotate
            || settings
                .key_timeout_ms
                .is_some_and(|t| req.now_ms.saturating_sub(session.key_issued_ms) >= t));
    let windowed = settings.nonce_window_timeout_ms.is_some_and(|t| t > 0);
    if cycle {
        let token = fresh.token()?;
        let target = hasher.token_hash(&token);
        session.key_issued_ms = req.now_ms;
        plan.status = Status::Rotated;
        plan.cookies.insert(0, CookieOut::Token(token));
        plan.writes.push(Write::Add {
            token_hash: target,
            session,
        });
        // A privilege change ends the old token at once. Timed cycling
        // leaves it usable for the window, for requests already in flight.
        let pointer = (!settings.rotate && windowed).then_some(Pointer {
            target,
            created_ms: grace_at,
        });
        if !settings.rotate && windowed {
            plan.grace = Some(Grace {
                nonce: superseded,
                moved_to: pointer.as_ref().map(|p| p.target),
            });
        }
        plan.writes.push(Write::Retire { pointer, cas });
    } else if changed {
        plan.writes.push(Write::Update { session, cas });
        if windowed {
            plan.grace = superseded.map(|nonce| Grace {
                nonce: Some(nonce),
                moved_to: None,
            });
        }
    }
    Ok(plan)
}

mod application;
#[cfg(test)]
mod hardening_tests;
pub use application::{login, logout};

#[cfg(test)]
mod tests;
