//! One request's session: gather what the request presented, read the
//! record, let the pure core decide, and perform the decided writes. A
//! compare-and-swap that loses a race re-reads and decides again.

use nginx_sys::{ngx_http_request_t, ngx_log_t};
use paranoid_core::cookie;
use paranoid_core::engine::{self, CookieOut, Found, OsFresh, Plan, Presented, Write};
use paranoid_core::record::{Pointer, Record, Session};
use paranoid_core::secret::{self, Hasher, Token};
use paranoid_core::settings::{CookieSecure, Settings};
use paranoid_core::wire::{Reply, Request, MAX_TTL};

use crate::conf::{Fingerprint, LocConf};
use crate::store::{self, StoreError};

/// What the access handler read from the request before any I/O.
pub struct Facts {
    pub token: Option<Token>,
    pub presented: Presented,
}

/// How the lookup ended.
pub enum Outcome {
    Decided(Plan, Vec<String>),
    StoreFailed(StoreError),
}

/// Decisions retried after lost compare-and-swap races before giving up.
const ATTEMPTS: usize = 4;

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
    // SAFETY: r's connection is live.
    let https = unsafe { !(*(*r).connection).ssl.is_null() };
    let hasher = Hasher::new(settings.secret.as_ref().map(|s| &*s.0));
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
    let texts: Vec<&[u8]> = values
        .iter()
        // SAFETY: r is a live request (the caller's contract).
        .map(|cv| unsafe { cv.evaluate(r) }.unwrap_or_default())
        .collect();
    let (v4, v6) = settings.ip_prefix;
    Some(paranoid_core::fingerprint::fingerprint(
        hasher, &texts, v4, v6,
    ))
}

fn now_ms() -> u64 {
    let tp = nginx_sys::ngx_timeofday();
    (tp.sec as u64)
        .saturating_mul(1000)
        .saturating_add(tp.msec as u64)
}

/// Finds, checks and updates the request's session.
pub async fn run(
    conf: &LocConf,
    settings: &Settings,
    facts: &Facts,
    log: *mut ngx_log_t,
) -> Outcome {
    let hasher = Hasher::new(settings.secret.as_ref().map(|s| &*s.0));
    let io = Io {
        settings,
        hasher: &hasher,
        now_ms: facts.presented.now_ms,
        log,
    };
    for _ in 0..ATTEMPTS {
        let (found, key) = match io.lookup(facts.token.as_ref()).await {
            Ok(found) => found,
            Err(err) => return Outcome::StoreFailed(err),
        };
        let Ok(plan) = engine::decide(settings, &hasher, &facts.presented, found, &mut OsFresh)
        else {
            return Outcome::StoreFailed(StoreError::Random);
        };
        match io.apply(&plan.writes, key.as_deref()).await {
            Ok(true) => {
                let cookies = set_cookies(conf, settings, &facts.presented, &plan.cookies);
                return Outcome::Decided(plan, cookies);
            }
            Ok(false) => continue, // lost a race: read again, decide again
            Err(err) => return Outcome::StoreFailed(err),
        }
    }
    Outcome::StoreFailed(StoreError::Contention)
}

/// Store I/O of one request.
struct Io<'a> {
    settings: &'a Settings,
    hasher: &'a Hasher<'a>,
    now_ms: u64,
    log: *mut ngx_log_t,
}

impl Io<'_> {
    async fn exchange(&self, req: &Request<'_>) -> Result<Reply, StoreError> {
        store::exchange(req, self.settings.store_timeout_ms, self.log).await
    }

    /// The record a token leads to, and the key it lives under. A pointer
    /// left by token cycling is followed once.
    async fn lookup(&self, token: Option<&Token>) -> Result<(Found, Option<String>), StoreError> {
        let Some(token) = token else {
            return Ok((Found::Nothing, None));
        };
        let key = self.hasher.store_key(&self.settings.key_prefix, token);
        match self.read(&key).await? {
            Some((Record::Session(session), cas)) => {
                self.cap_ttl(&key, &session).await?;
                Ok((Found::Session { session, cas }, Some(key)))
            }
            Some((Record::Pointer(pointer), _)) => self.follow(&key, &pointer).await,
            None => Ok((Found::Nothing, None)),
        }
    }

    async fn follow(
        &self,
        key: &str,
        pointer: &Pointer,
    ) -> Result<(Found, Option<String>), StoreError> {
        // Reading refreshed the pointer's TTL: give it back its own.
        let left = self
            .pointer_ttl_ms()
            .saturating_sub(self.now_ms.saturating_sub(pointer.created_ms));
        if left == 0 {
            return Ok((Found::Nothing, None));
        }
        self.touch(key, secs(left)).await?;
        let target = secret::key_for_hash(&self.settings.key_prefix, &pointer.target);
        match self.read(&target).await? {
            Some((Record::Session(session), cas)) => {
                self.cap_ttl(&target, &session).await?;
                Ok((Found::Session { session, cas }, Some(target)))
            }
            _ => Ok((Found::Nothing, None)),
        }
    }

    /// Reads and decodes a record, refreshing its TTL to the idle timeout.
    async fn read(&self, key: &str) -> Result<Option<(Record, u64)>, StoreError> {
        let get = Request::Get {
            key: key.as_bytes(),
            touch: Some(secs(self.settings.idle_timeout_ms)),
        };
        match self.exchange(&get).await? {
            // A record that does not decode is treated as absent.
            Reply::Value { value, cas, .. } => Ok(Record::decode(&value).ok().map(|r| (r, cas))),
            _ => Ok(None),
        }
    }

    /// Near the absolute timeout the idle TTL set by the read is too long:
    /// shorten it so memcached drops the record when the session ends.
    async fn cap_ttl(&self, key: &str, session: &Session) -> Result<(), StoreError> {
        let ttl = self.ttl(session);
        if ttl < secs(self.settings.idle_timeout_ms) {
            self.touch(key, ttl).await?;
        }
        Ok(())
    }

    async fn touch(&self, key: &str, ttl: u32) -> Result<(), StoreError> {
        self.exchange(&Request::Touch {
            key: key.as_bytes(),
            ttl,
        })
        .await
        .map(drop)
    }

    /// `min(idle timeout, time left before the absolute timeout)`.
    fn ttl(&self, session: &Session) -> u32 {
        let age = self.now_ms.saturating_sub(session.created_ms);
        let left = self.settings.absolute_timeout_ms.saturating_sub(age);
        secs(self.settings.idle_timeout_ms.min(left))
    }

    fn pointer_ttl_ms(&self) -> u64 {
        self.settings.nonce_window_timeout_ms.unwrap_or(0)
    }

    /// Performs the decided writes. Ok(false): a compare-and-swap lost a
    /// race (or a new token collided), so the request must be decided again.
    async fn apply(&self, writes: &[Write], key: Option<&str>) -> Result<bool, StoreError> {
        let prefix = &self.settings.key_prefix;
        for write in writes {
            let reply = match write {
                Write::Add {
                    token_hash,
                    session,
                } => {
                    let new_key = secret::key_for_hash(prefix, token_hash);
                    let value = session.encode();
                    self.exchange(&Request::Add {
                        key: new_key.as_bytes(),
                        value: &value,
                        ttl: self.ttl(session),
                    })
                    .await?
                }
                Write::Update { session, cas } => {
                    let Some(key) = key else { continue };
                    let value = session.encode();
                    self.exchange(&Request::Set {
                        key: key.as_bytes(),
                        value: &value,
                        ttl: self.ttl(session),
                        cas: Some(*cas),
                    })
                    .await?
                }
                Write::Pointer { target, cas } => {
                    let Some(key) = key else { continue };
                    let value = Record::Pointer(Pointer {
                        target: *target,
                        created_ms: self.now_ms,
                    })
                    .encode();
                    self.exchange(&Request::Set {
                        key: key.as_bytes(),
                        value: &value,
                        ttl: secs(self.pointer_ttl_ms()),
                        cas: Some(*cas),
                    })
                    .await?
                }
                Write::Delete => {
                    let Some(key) = key else { continue };
                    self.exchange(&Request::Delete {
                        key: key.as_bytes(),
                    })
                    .await?;
                    continue;
                }
            };
            if reply != Reply::Stored {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A duration as a memcached TTL: whole seconds rounded up, at least 1,
/// at most what memcached takes as relative (30 days).
fn secs(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(1000))
        .unwrap_or(MAX_TTL)
        .clamp(1, MAX_TTL)
}

/// The `Set-Cookie` values for the decided cookies.
fn set_cookies(
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
