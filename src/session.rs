//! One request's session: gather what the request presented, read the
//! record, let the pure core decide, and perform the decided writes. A
//! compare-and-swap that loses a race re-reads and decides again.

use nginx_sys::{ngx_http_request_t, ngx_log_t};
use paranoid_core::cookie;
use paranoid_core::engine::{self, CookieOut, OsFresh, Plan, Presented};
use paranoid_core::secret::{self, Hasher, Token};
use paranoid_core::settings::{CookieSecure, Settings};

use crate::conf::{Fingerprint, LocConf};
use crate::grace::GraceWork;
use crate::store::{Store, StoreError};

pub mod commands;
pub mod records;

use records::Records;

/// What the access handler read from the request before any I/O.
pub struct Facts {
    pub token: Option<Token>,
    pub presented: Presented,
}

/// How the lookup ended.
// Made once per request and matched at once: boxing would cost an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The plan, its `Set-Cookie` values, and the grace to keep while the
    /// response is pending.
    Decided(Decision),
    StoreFailed(StoreError),
}

/// A decided and performed plan.
pub struct Decision {
    pub plan: Plan,
    /// Its `Set-Cookie` values.
    pub cookies: Vec<String>,
    /// The grace to keep while the response is pending.
    pub grace: Option<GraceWork>,
    /// Where the session lives now (None: it ended, or none was made).
    pub key: Option<String>,
}

/// Decisions made when compare-and-swap races are lost; the last one is
/// performed without comparing (`engine::last_resort`), so contention
/// alone never fails a request.
const ATTEMPTS: usize = 8;

/// Reads the module's cookies, the transport and the fingerprint of `r`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn facts(r: *mut ngx_http_request_t, conf: &LocConf, settings: &Settings) -> Facts {
    let names = &conf.names;
    let (mut token, mut nonce, mut secure_key) = (None, None, None);
    // SAFETY: forwarded from the caller.
    for header in unsafe { cookie_headers(r) } {
        token = token.or_else(|| cookie::find(header, names.token.as_bytes()));
        nonce = nonce.or_else(|| cookie::find(header, names.nonce.as_bytes()));
        if let Some(name) = &names.secure {
            secure_key = secure_key.or_else(|| cookie::find(header, name.as_bytes()));
        }
    }
    let token = token.and_then(secret::parse_token);
    let nonce = nonce.and_then(secret::parse_text);
    let secure_key = secure_key.and_then(secret::parse_text);
    // SAFETY: forwarded from the caller.
    let https = unsafe { crate::https::over_https(r) };
    let hasher = Hasher::new(settings.secret.as_deref());
    // SAFETY: forwarded from the caller.
    let fingerprint = unsafe { fingerprint(r, conf, settings, &hasher) };
    Facts {
        token,
        presented: Presented {
            nonce,
            secure_key,
            https,
            fingerprint,
            now_ms: now_ms(),
        },
    }
}

/// The values of every `Cookie` request header. Since 1.23 nginx links
/// them in `headers_in.cookie` as it parses them.
///
/// # Safety
/// `r` must be a live request; the slices live as long as it does.
#[cfg(nginx1_23_0)]
unsafe fn cookie_headers(r: *mut ngx_http_request_t) -> impl Iterator<Item = &'static [u8]> {
    // SAFETY: headers_in.cookie is null or the request's first Cookie
    // header, in the request pool.
    let first = unsafe { (*r).headers_in.cookie.as_ref() };
    core::iter::successors(first, |h| {
        // SAFETY: `next` is null or the request's next Cookie header.
        unsafe { h.next.as_ref() }
    })
    .map(|h| h.value.as_bytes())
}

/// The values of every `Cookie` request header. Before 1.23 nginx has no
/// such list (`headers_in.cookies` is an array of pointers): this scans the
/// header list, which every version has.
///
/// # Safety
/// `r` must be a live request; the slices live as long as it does.
#[cfg(not(nginx1_23_0))]
unsafe fn cookie_headers(r: *mut ngx_http_request_t) -> impl Iterator<Item = &'static [u8]> {
    // SAFETY: headers_in.headers is the request's header list.
    let headers = unsafe { ngx::http::list_iterator(&(*r).headers_in.headers) };
    headers.filter_map(|(key, value)| {
        key.as_bytes()
            .eq_ignore_ascii_case(b"cookie")
            .then(|| value.as_bytes())
            // SAFETY: header values live in the request pool.
            .map(|v| unsafe { core::slice::from_raw_parts(v.as_ptr(), v.len()) })
    })
}

/// Evaluates the `paranoid_fingerprint` values and hashes them.
///
/// # Safety
/// `r` must be a live request.
unsafe fn fingerprint(
    r: *mut ngx_http_request_t,
    conf: &LocConf,
    settings: &Settings,
    hasher: &Hasher<'_>,
) -> Option<paranoid_core::record::Hash> {
    let Some(Fingerprint::Values(values)) = conf.fingerprint.as_ref() else {
        return None;
    };
    // SAFETY: r is a live request (the caller's contract).
    let req = unsafe { ngx::http::Request::from_ngx_http_request(r) };
    let texts: Vec<&[u8]> = values
        .iter()
        .map(|cv| cv.evaluate(req).unwrap_or_default())
        .collect();
    let (v4, v6) = settings.ip_prefix;
    Some(paranoid_core::fingerprint::fingerprint(
        hasher, &texts, v4, v6,
    ))
}

pub fn now_ms() -> u64 {
    let tp = nginx_sys::ngx_timeofday();
    (tp.sec as u64)
        .saturating_mul(1000)
        .saturating_add(tp.msec as u64)
}

/// Finds, checks and updates the request's session.
pub async fn run(
    conf: &LocConf,
    settings: &Settings,
    store: &Store,
    facts: &Facts,
    log: *mut ngx_log_t,
) -> Outcome {
    let hasher = Hasher::new(settings.secret.as_deref());
    let records = Records {
        settings,
        store,
        now_ms: facts.presented.now_ms,
        log,
    };
    for attempt in 1..=ATTEMPTS {
        let key = facts
            .token
            .as_ref()
            .map(|t| hasher.store_key(&settings.key_prefix, t));
        let lookup = match records.lookup(key).await {
            Ok(lookup) => lookup,
            Err(err) => return Outcome::StoreFailed(err),
        };
        let found = lookup.found.clone();
        let Ok(mut plan) = engine::decide(settings, &hasher, &facts.presented, found, &mut OsFresh)
        else {
            return Outcome::StoreFailed(StoreError::Random);
        };
        if attempt == ATTEMPTS {
            plan = engine::last_resort(plan);
        }
        match records.apply(&plan.writes, &lookup).await {
            Ok(true) => {
                let cookies = set_cookies(conf, settings, &facts.presented, &plan.cookies);
                let grace = plan
                    .grace
                    .as_ref()
                    .and_then(|g| GraceWork::new(settings, g, &lookup, facts.presented.now_ms));
                let key = live_key(settings, &plan, lookup.key);
                if let Some(moved) = commands::moved_user_session(&plan) {
                    // A session bound to a user moved to a new token: its
                    // user's index must know, or "logout everywhere"
                    // would miss it once the pointer is gone.
                    let _ = records.index_replace_key(&hasher, moved).await;
                }
                return Outcome::Decided(Decision {
                    plan,
                    cookies,
                    grace,
                    key,
                });
            }
            Ok(false) => continue, // lost a race: read again, decide again
            Err(err) => return Outcome::StoreFailed(err),
        }
    }
    Outcome::StoreFailed(StoreError::Contention)
}

/// Where the session lives after `plan`'s writes: the token it added, or
/// where it was found; None when it ended.
fn live_key(settings: &Settings, plan: &Plan, found_key: Option<String>) -> Option<String> {
    if plan.deny || plan.status == engine::Status::Destroyed {
        return None;
    }
    let added = plan.writes.iter().find_map(|w| match w {
        engine::Write::Add { token_hash, .. } => Some(*token_hash),
        _ => None,
    });
    match added {
        Some(hash) => Some(secret::key_for_hash(&settings.key_prefix, &hash)),
        None => found_key,
    }
}

/// The `Set-Cookie` values for the decided cookies.
pub fn set_cookies(
    conf: &LocConf,
    settings: &Settings,
    req: &Presented,
    out: &[CookieOut],
) -> Vec<String> {
    let secure = settings.cookie.prefix.is_some()
        || match settings.cookie_secure {
            CookieSecure::On => true,
            CookieSecure::Off => false,
            CookieSecure::Auto => req.https,
        };
    let attrs = cookie::Attributes {
        path: &settings.cookie.path,
        domain: settings.cookie.domain.as_deref(),
        samesite: settings.cookie.samesite,
        secure,
    };
    let secure_attrs = cookie::Attributes {
        secure: true,
        ..attrs.clone()
    };
    let names = &conf.names;
    let mut cookies = Vec::with_capacity(out.len() + 2);
    for c in out {
        match c {
            CookieOut::Token(t) => cookies.push(cookie::set_cookie(
                &names.token,
                &secret::token_text(t),
                &attrs,
                false,
            )),
            CookieOut::Nonce(n) => cookies.push(cookie::set_cookie(
                &names.nonce,
                &secret::text_of(n),
                &attrs,
                false,
            )),
            CookieOut::SecureKey(k) => {
                if let Some(name) = &names.secure {
                    cookies.push(cookie::set_cookie(
                        name,
                        &secret::text_of(k),
                        &secure_attrs,
                        false,
                    ));
                }
            }
            CookieOut::ExpireAll => {
                cookies.push(cookie::set_cookie(&names.token, "", &attrs, true));
                if settings.nonces_enabled() {
                    cookies.push(cookie::set_cookie(&names.nonce, "", &attrs, true));
                }
                if let (true, Some(name)) = (req.https, &names.secure) {
                    cookies.push(cookie::set_cookie(name, "", &secure_attrs, true));
                }
            }
        }
    }
    cookies
}
