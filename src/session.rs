//! One request's session lookup: read the token cookie, find its record in
//! the store, or create a new session. The facts come from the request; the
//! rest is store I/O around the pure core.

use nginx_sys::{ngx_http_request_t, ngx_log_t};
use paranoid_core::cookie::{self, Attributes};
use paranoid_core::record::{Record, Session};
use paranoid_core::secret::{self, Hasher, Token};
use paranoid_core::settings::{CookieSecure, Settings};
use paranoid_core::wire::{Reply, Request};

use crate::request_state::Status;
use crate::store::{self, StoreError};

/// What the access handler knows about a request before any I/O.
pub struct Facts {
    pub token: Option<Token>,
    pub https: bool,
    pub now_ms: u64,
}

/// How the lookup ended.
pub enum Outcome {
    Session {
        status: Status,
        uid: String,
        cookies: Vec<String>,
    },
    StoreFailed(StoreError),
}

/// Reads the token cookie and the transport of `r`.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn facts(r: *mut ngx_http_request_t, settings: &Settings) -> Facts {
    let name = settings.cookie_name(&settings.cookie.name);
    // SAFETY: forwarded from the caller.
    let token = unsafe { cookie_headers(r) }
        .find_map(|header| cookie::find(header, name.as_bytes()))
        .and_then(secret::parse_token);
    // SAFETY: r's connection is live.
    let https = unsafe { !(*(*r).connection).ssl.is_null() };
    Facts {
        token,
        https,
        now_ms: now_ms(),
    }
}

/// The values of every `Cookie` request header.
///
/// # Safety
/// `r` must be a live request; the slices live as long as it does.
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

fn now_ms() -> u64 {
    let tp = nginx_sys::ngx_timeofday();
    (tp.sec as u64)
        .saturating_mul(1000)
        .saturating_add(tp.msec as u64)
}

/// memcached TTL of a record: until the session would expire.
fn ttl_secs(settings: &Settings) -> u32 {
    let ms = settings.idle_timeout_ms.min(settings.absolute_timeout_ms);
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX).max(1)
}

/// Finds the request's session, or creates one.
pub async fn run(settings: &Settings, facts: &Facts, log: *mut ngx_log_t) -> Outcome {
    let hasher = Hasher::new(settings.secret.as_ref().map(|s| &*s.0));
    let timeout = settings.store_timeout_ms;
    if let Some(token) = &facts.token {
        let key = hasher.store_key(&settings.key_prefix, token);
        let get = Request::Get {
            key: key.as_bytes(),
            touch: Some(ttl_secs(settings)),
        };
        match store::exchange(&get, timeout, log).await {
            Ok(Reply::Value { value, .. }) => {
                if let Ok(Record::Session(session)) = Record::decode(&value) {
                    return Outcome::Session {
                        status: Status::Valid,
                        uid: hex(&session.uid),
                        cookies: Vec::new(),
                    };
                }
                // A record that does not decode is treated as absent.
            }
            Ok(_) => {}
            Err(err) => return Outcome::StoreFailed(err),
        }
    }
    create(settings, facts, &hasher, log).await
}

/// A new session: fresh token and uid, stored with `add` so two racing
/// creations never overwrite each other.
async fn create(
    settings: &Settings,
    facts: &Facts,
    hasher: &Hasher<'_>,
    log: *mut ngx_log_t,
) -> Outcome {
    let Ok(uid) = secret::new_uid() else {
        return Outcome::StoreFailed(StoreError::Random);
    };
    let session = Record::Session(Session {
        uid,
        created_ms: facts.now_ms,
        key_issued_ms: facts.now_ms,
        fingerprint: None,
        secure_key: None,
        nonce: None,
        previous: Vec::new(),
    });
    let value = session.encode();
    // A token collision is astronomically unlikely; try a few anyway.
    for _ in 0..3 {
        let Ok(token) = secret::new_token() else {
            return Outcome::StoreFailed(StoreError::Random);
        };
        let key = hasher.store_key(&settings.key_prefix, &token);
        let add = Request::Add {
            key: key.as_bytes(),
            value: &value,
            ttl: ttl_secs(settings),
        };
        match store::exchange(&add, settings.store_timeout_ms, log).await {
            Ok(Reply::Stored) => {
                return Outcome::Session {
                    status: Status::New,
                    uid: hex(&uid),
                    cookies: vec![token_cookie(settings, facts, &token)],
                };
            }
            Ok(_) => continue,
            Err(err) => return Outcome::StoreFailed(err),
        }
    }
    Outcome::StoreFailed(StoreError::Random)
}

fn token_cookie(settings: &Settings, facts: &Facts, token: &Token) -> String {
    let attrs = attributes(settings, facts);
    let name = settings.cookie_name(&settings.cookie.name);
    cookie::set_cookie(&name, &secret::token_text(token), &attrs, false)
}

fn attributes<'a>(settings: &'a Settings, facts: &Facts) -> Attributes<'a> {
    let secure = settings.cookie.prefix.is_some()
        || match settings.cookie_secure {
            CookieSecure::On => true,
            CookieSecure::Off => false,
            CookieSecure::Auto => facts.https,
        };
    Attributes {
        path: &settings.cookie.path,
        domain: settings.cookie.domain.as_deref(),
        samesite: settings.cookie.samesite,
        secure,
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    secret::push_hex(&mut out, bytes);
    out
}
