//! Settings merging and the checks between directives
//! (`RawSettings::inherit` and `RawSettings::resolve`).

use paranoid_core::settings::{CookieSecure, OnViolation, RawSettings, StoreFailure};
use paranoid_core::values::{CookiePrefix, CookieSpec, SameSite};
use proptest::prelude::*;
use proptest::sample::select;

use crate::config;

/// Few names, so that clashes between the three cookies are common.
fn name() -> impl Strategy<Value = String> {
    select(vec![
        "sessionid",
        "sessionnonce",
        "sessionid_https",
        "a",
        "b",
    ])
    .prop_map(String::from)
}

/// Names `paranoid_secure_cookie` takes: the plain ones and the same with
/// a prefix of their own, so that clashes after prefixing are common.
fn secure_name() -> impl Strategy<Value = String> {
    (name(), select(vec!["", "__Secure-", "__Host-"]))
        .prop_map(|(name, prefix)| format!("{prefix}{name}"))
}

/// A token cookie as `parse_cookie_spec` can give it: `__Host-` only with
/// path=/ and no domain.
fn spec() -> impl Strategy<Value = CookieSpec> {
    (
        name(),
        select(vec![SameSite::Strict, SameSite::Lax, SameSite::None]),
        proptest::option::of(select(vec![CookiePrefix::Host, CookiePrefix::Secure])),
        select(vec!["/", "/app"]),
        proptest::option::of(select(vec!["example.com"])),
    )
        .prop_map(|(name, samesite, prefix, path, domain)| {
            let host = prefix == Some(CookiePrefix::Host);
            CookieSpec {
                name,
                samesite,
                prefix,
                path: if host { "/" } else { path }.to_owned(),
                domain: domain.filter(|_| !host).map(str::to_owned),
            }
        })
}

/// One block's settings: each directive set or not.
fn raw() -> impl Strategy<Value = RawSettings> {
    use proptest::option::of;
    (
        (
            of(any::<bool>()),
            of(any::<u64>()),
            of(select(vec![StoreFailure::Deny, StoreFailure::Allow])),
            of("[a-z:]{0,5}"),
            of((any::<u8>(), any::<u8>())),
            of(of(any::<u64>())),
            of(any::<u32>()),
            of(of(any::<u64>())),
            of(of(any::<u64>())),
            of(any::<u64>()),
        ),
        (
            of(any::<u64>()),
            of(spec()),
            of(name()),
            of(of(secure_name())),
            of(select(vec![
                CookieSecure::Auto,
                CookieSecure::On,
                CookieSecure::Off,
            ])),
            of(select(vec![
                OnViolation::Clear,
                OnViolation::Deny,
                OnViolation::Log,
            ])),
            of(any::<bool>()),
            of(any::<bool>()),
            of(any::<bool>()),
            of(any::<bool>()),
        ),
        (
            of(of(
                select(vec!["X-Paranoid-Session", "X-App", "x-app"]).prop_map(String::from)
            )),
            of(of(1u32..=64)),
        ),
    )
        .prop_map(|(a, b, c)| RawSettings {
            enabled: a.0,
            store_timeout_ms: a.1,
            store_failure: a.2,
            key_prefix: a.3,
            secret: None,
            ip_prefix: a.4,
            nonce_timeout_ms: a.5,
            nonce_window: a.6,
            nonce_window_timeout_ms: a.7,
            key_timeout_ms: a.8,
            idle_timeout_ms: a.9,
            absolute_timeout_ms: b.0,
            cookie: b.1,
            nonce_cookie: b.2,
            secure_cookie: b.3,
            cookie_secure: b.4,
            on_violation: b.5,
            rotate: b.6,
            destroy: b.7,
            harden_cookies: b.8,
            secure_cookie_upgrade: b.9,
            control_header: c.0,
            user_max_sessions: c.1,
        })
}

/// The cross-directive rules, read from the documentation: what `resolve`
/// must refuse.
fn allowed(r: &RawSettings) -> bool {
    let cookie = r.cookie.clone().unwrap_or_default();
    let secure = r.cookie_secure.unwrap_or(CookieSecure::Auto);
    let prefix = cookie.prefix.map_or("", |p| p.as_str());
    let token = format!("{prefix}{}", cookie.name);
    let nonce = format!(
        "{prefix}{}",
        r.nonce_cookie.as_deref().unwrap_or("sessionnonce")
    );
    let configured = r
        .secure_cookie
        .clone()
        .unwrap_or(Some("__Secure-sessionid_https".to_owned()));
    // Its own prefix, if any, is stripped; then __Host- if either has it,
    // else __Secure- if either has it.
    let own_host = configured
        .as_deref()
        .is_some_and(|n| n.starts_with("__Host-"));
    let secure_name = configured.as_deref().map(|n| {
        let base = n
            .strip_prefix("__Host-")
            .or_else(|| n.strip_prefix("__Secure-"))
            .unwrap_or(n);
        let has = |p: &str| n.starts_with(p) || prefix == p;
        let p = if has("__Host-") {
            "__Host-"
        } else if has("__Secure-") {
            "__Secure-"
        } else {
            ""
        };
        format!("{p}{base}")
    });
    !(secure == CookieSecure::Off && (cookie.samesite == SameSite::None || cookie.prefix.is_some()))
        && !(own_host && (cookie.path != "/" || cookie.domain.is_some()))
        && !(r.rotate == Some(true) && r.destroy == Some(true))
        && token != nonce
        && secure_name.is_none_or(|s| s != token && s != nonce)
}

proptest! {
    #![proptest_config(config(256))]

    /// resolve refuses exactly what the rules forbid, with a printable
    /// one-line message, and keeps what was set.
    #[test]
    fn resolve_follows_the_rules(r in raw()) {
        let result = r.resolve();
        prop_assert_eq!(result.is_ok(), allowed(&r), "{:?}", result.as_ref().err());
        match result {
            Ok(s) => {
                // Never two prefixes on the secure key's cookie.
                if let Some(n) = s.secure_cookie_name() {
                    prop_assert!(!n.contains("-__"), "{}", n);
                }
                prop_assert_eq!(s.enabled, r.enabled.unwrap_or(false));
                prop_assert_eq!(s.nonce_window, r.nonce_window.unwrap_or(1));
                prop_assert_eq!(s.secure_cookie.clone(), r.secure_cookie.clone().unwrap_or(Some("__Secure-sessionid_https".to_owned())));
                prop_assert_eq!(&s.cookie, &r.cookie.clone().unwrap_or_default());
                prop_assert_eq!(s.nonces_enabled(), r.nonce_timeout_ms.unwrap_or(Some(1000)).is_some());
                prop_assert_eq!(s.control_header.clone(), r.control_header.clone().unwrap_or(Some("X-Paranoid-Session".to_owned())));
                prop_assert_eq!(s.user_max_sessions, r.user_max_sessions.unwrap_or(None));
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(!message.is_empty() && !message.chars().any(char::is_control));
            }
        }
    }

    /// A block keeps what it set and takes the rest from the enclosing
    /// one; inheriting twice changes nothing more.
    #[test]
    fn inherit_fills_only_the_gaps(mut inner in raw(), outer in raw()) {
        let own = inner.clone();
        inner.inherit(&outer);
        prop_assert_eq!(&inner.cookie, &own.cookie.clone().or(outer.cookie.clone()));
        prop_assert_eq!(inner.secure_cookie.clone(), own.secure_cookie.clone().or(outer.secure_cookie.clone()));
        prop_assert_eq!(inner.rotate, own.rotate.or(outer.rotate));
        prop_assert_eq!(inner.nonce_window, own.nonce_window.or(outer.nonce_window));
        prop_assert_eq!(inner.key_prefix.clone(), own.key_prefix.clone().or(outer.key_prefix.clone()));
        prop_assert_eq!(inner.control_header.clone(), own.control_header.clone().or(outer.control_header.clone()));
        prop_assert_eq!(inner.user_max_sessions, own.user_max_sessions.or(outer.user_max_sessions));
        let once = format!("{inner:?}");
        inner.inherit(&outer);
        prop_assert_eq!(format!("{inner:?}"), once);
    }
}
