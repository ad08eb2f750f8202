//! The session decision: what a request presented + the stored record + now
//! → a verdict, the record writes and the cookies to set. No I/O: the
//! caller reads the record, runs `decide`, performs the writes (re-reading
//! and deciding again when a compare-and-swap loses a race) and sets the
//! cookies.

use crate::record::{Hash, Nonce, Session, MAX_PREVIOUS_NONCES, UID_LEN};
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
#[derive(Debug, Clone)]
pub enum Found {
    /// No token, an unknown one, or a record that did not decode.
    Nothing,
    Session {
        session: Session,
        cas: u64,
    },
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

/// A store write, in the order the caller must perform them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Store a new session under the key of `token_hash`, only if absent.
    Add { token_hash: Hash, session: Session },
    /// Replace the found record, compare-and-swap on `cas`.
    Update { session: Session, cas: u64 },
    /// Replace the found record by a pointer to `target` (token cycling),
    /// compare-and-swap on `cas`.
    Pointer { target: Hash, cas: u64 },
    /// Remove the found record.
    Delete,
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
        }
    }
}

/// Decides one request.
pub fn decide(
    settings: &Settings,
    hasher: &Hasher<'_>,
    req: &Presented,
    found: Found,
    fresh: &mut impl Fresh,
) -> Result<Plan, RandomError> {
    let Found::Session { session, cas } = found else {
        if settings.destroy {
            return Ok(destroyed(false));
        }
        return new_session(settings, hasher, req, fresh, Plan::new(Status::New));
    };
    if settings.destroy {
        return Ok(destroyed(true));
    }
    if expired(settings, &session, req.now_ms) {
        let mut plan = Plan::new(Status::Expired);
        plan.writes.push(Write::Delete);
        return new_session(settings, hasher, req, fresh, plan);
    }
    let check = check(settings, hasher, req, &session);
    if let Err(violation) = check {
        return on_violation(settings, hasher, req, fresh, session, violation);
    }
    let nonce_is_current = check.unwrap_or(false);
    refresh(settings, hasher, req, fresh, session, cas, nonce_is_current)
}

fn destroyed(had_record: bool) -> Plan {
    let mut plan = Plan::new(Status::Destroyed);
    if had_record {
        plan.writes.push(Write::Delete);
    }
    plan.cookies.push(CookieOut::ExpireAll);
    plan
}

/// Absolute age first; idle time is enforced by the record's TTL in the
/// store, refreshed atomically with every read.
fn expired(settings: &Settings, session: &Session, now_ms: u64) -> bool {
    now_ms.saturating_sub(session.created_ms) >= settings.absolute_timeout_ms
}

/// Compares what the request presented with the record, in constant time.
/// Ok(true) when the presented nonce is the current one.
fn check(
    settings: &Settings,
    hasher: &Hasher<'_>,
    req: &Presented,
    session: &Session,
) -> Result<bool, Violation> {
    if let (Some(now), Some(then)) = (&req.fingerprint, &session.fingerprint) {
        if !secret::same(now, then) {
            return Err(Violation::Fingerprint);
        }
    }
    if req.https && settings.secure_cookie.is_some() {
        if let Some(stored) = &session.secure_key {
            let presented = req.secure_key.map(|k| hasher.hash("secure_key", &[&k]));
            if !presented.is_some_and(|p| secret::same(&p, stored)) {
                return Err(Violation::SecureKey);
            }
        }
    }
    if !settings.nonces_enabled() {
        return Ok(false);
    }
    let Some(current) = &session.nonce else {
        return Ok(false);
    };
    let Some(presented) = req.nonce.map(|n| hasher.hash("nonce", &[&n])) else {
        return Err(Violation::Nonce);
    };
    if secret::same(&presented, &current.hash) {
        return Ok(true);
    }
    let window = settings.nonce_window as usize;
    let accepted = session
        .previous
        .iter()
        .take(window)
        .filter(|old| within_window(settings, old, req.now_ms))
        .fold(false, |hit, old| hit | secret::same(&presented, &old.hash));
    if accepted {
        Ok(false)
    } else {
        Err(Violation::Nonce)
    }
}

fn within_window(settings: &Settings, old: &Nonce, now_ms: u64) -> bool {
    settings
        .nonce_window_timeout_ms
        .is_none_or(|t| now_ms.saturating_sub(old.at_ms) < t)
}

fn on_violation(
    settings: &Settings,
    hasher: &Hasher<'_>,
    req: &Presented,
    fresh: &mut impl Fresh,
    session: Session,
    violation: Violation,
) -> Result<Plan, RandomError> {
    let mut plan = Plan::new(Status::Violation);
    plan.violation = Some(violation);
    plan.offender = Some(session.uid);
    match settings.on_violation {
        OnViolation::Log => {
            plan.uid = Some(session.uid);
            Ok(plan)
        }
        OnViolation::Deny => {
            plan.uid = Some(session.uid);
            plan.writes.push(Write::Delete);
            plan.cookies.push(CookieOut::ExpireAll);
            plan.deny = true;
            Ok(plan)
        }
        OnViolation::Clear => {
            plan.writes.push(Write::Delete);
            new_session(settings, hasher, req, fresh, plan)
        }
    }
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
    mut session: Session,
    cas: u64,
    nonce_is_current: bool,
) -> Result<Plan, RandomError> {
    let mut plan = Plan::new(Status::Valid);
    plan.uid = Some(session.uid);
    let mut changed = false;

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
                session.previous.insert(
                    0,
                    Nonce {
                        hash: old.hash,
                        at_ms: req.now_ms,
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
            .retain(|old| within_window(settings, old, req.now_ms));
        changed |= session.previous.len() != before;
    }
    if req.https && settings.secure_cookie.is_some() && session.secure_key.is_none() {
        let key = fresh.key()?;
        session.secure_key = Some(hasher.hash("secure_key", &[&key]));
        plan.cookies.push(CookieOut::SecureKey(key));
        changed = true;
    }
    if session.fingerprint.is_none() && req.fingerprint.is_some() {
        session.fingerprint = req.fingerprint;
        changed = true;
    }

    let cycle = settings.rotate
        || settings
            .key_timeout_ms
            .is_some_and(|t| req.now_ms.saturating_sub(session.key_issued_ms) >= t);
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
        // The old token stays usable for the nonce window, for requests
        // already in flight; without a window it goes at once.
        if settings.nonce_window_timeout_ms.is_some_and(|t| t > 0) {
            plan.writes.push(Write::Pointer { target, cas });
        } else {
            plan.writes.push(Write::Delete);
        }
    } else if changed {
        plan.writes.push(Write::Update { session, cas });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests;
