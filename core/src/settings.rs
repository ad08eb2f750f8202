//! Location settings: what each directive set, merged from outer blocks and
//! resolved to the values a request is checked with. Pure Rust, no nginx.

use std::sync::Arc;

use crate::control;
use crate::secret::SecretKey;
use crate::time::{HOUR, MINUTE, SECOND};
use crate::values::{split_cookie_prefix, CookiePrefix, CookieSpec, SameSite};

/// What a request gets when memcached cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFailure {
    Deny,
    Allow,
}

/// What happens to a request that looks hijacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnViolation {
    Clear,
    Deny,
    Log,
}

impl OnViolation {
    pub fn as_str(self) -> &'static str {
        match self {
            OnViolation::Clear => "clear",
            OnViolation::Deny => "deny",
            OnViolation::Log => "log",
        }
    }
}

/// When the module's cookies carry the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    Auto,
    On,
    Off,
}

/// Declares the settings once: the raw (per block, `None` = not set here)
/// struct, its merge, and the resolved struct with defaults.
macro_rules! settings {
    ($($field:ident: $ty:ty = $default:expr,)*) => {
        /// Values as written in one configuration block.
        #[derive(Debug, Clone, Default)]
        pub struct RawSettings {
            $(pub $field: Option<$ty>,)*
        }

        /// Values a location runs with, after merging and defaults.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $(pub $field: $ty,)*
        }

        impl RawSettings {
            /// Fills what this block left unset from the enclosing block.
            pub fn inherit(&mut self, outer: &RawSettings) {
                $(if self.$field.is_none() {
                    self.$field = outer.$field.clone();
                })*
            }

            /// Applies defaults and checks the settings against each other.
            pub fn resolve(&self) -> Result<Settings, SettingsError> {
                let settings = Settings {
                    $($field: self.$field.clone().unwrap_or_else(|| $default),)*
                };
                settings.validate()?;
                Ok(settings)
            }
        }
    };
}

/// Directives of one location that contradict each other. The text is what
/// nginx prints (with the file and line of the block).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `samesite=none` without the Secure flag.
    #[error(
        "paranoid_cookie samesite=none needs the Secure flag (browsers reject it otherwise), \
         but paranoid_cookie_secure is off"
    )]
    SameSiteNoneNeedsSecure,
    /// A `__Host-`/`__Secure-` prefix without the Secure flag.
    #[error(
        "paranoid_cookie prefix={} needs the Secure flag, but paranoid_cookie_secure is off",
        .0.as_str()
    )]
    PrefixNeedsSecure(CookiePrefix),
    /// A `__Host-` secure cookie with a path or domain it cannot have.
    #[error(
        "paranoid_secure_cookie \"{0}\" needs paranoid_cookie path=/ and no domain: \
         __Host- cookies must have both"
    )]
    HostCookieScope(String),
    /// Both ends of a session asked of one location.
    #[error(
        "paranoid_session_rotate and paranoid_session_destroy cannot both be on in one location"
    )]
    RotateAndDestroy,
    /// The token and nonce cookies would have the same name.
    #[error("paranoid_cookie and paranoid_nonce_cookie both name the cookie \"{0}\"")]
    SameCookieName(String),
    /// The secure key's cookie would share a name with another.
    #[error(
        "paranoid_secure_cookie \"{0}\" is already used by paranoid_cookie or \
         paranoid_nonce_cookie"
    )]
    SecureCookieTaken(String),
}

/// `paranoid_secure_cookie` when not set.
pub const DEFAULT_SECURE_COOKIE: &str = "__Secure-sessionid_https";

settings! {
    enabled: bool = false,
    store_timeout_ms: u64 = 100,
    store_failure: StoreFailure = StoreFailure::Deny,
    key_prefix: String = "ps:".to_owned(),
    // Shared, not copied, by every block that inherits it; wiped when the
    // last configuration holding it goes.
    secret: Option<Arc<SecretKey>> = None,
    ip_prefix: (u8, u8) = (32, 128),
    nonce_timeout_ms: Option<u64> = Some(SECOND),
    nonce_window: u32 = 1,
    nonce_window_timeout_ms: Option<u64> = Some(SECOND),
    key_timeout_ms: Option<u64> = None,
    idle_timeout_ms: u64 = 30 * MINUTE,
    absolute_timeout_ms: u64 = 12 * HOUR,
    cookie: CookieSpec = CookieSpec::default(),
    nonce_cookie: String = "sessionnonce".to_owned(),
    // `__Secure-`: browsers refuse it from plain HTTP, so an attacker there
    // cannot plant a second key of their own (cookie tossing).
    secure_cookie: Option<String> = Some(DEFAULT_SECURE_COOKIE.to_owned()),
    cookie_secure: CookieSecure = CookieSecure::Auto,
    secure_cookie_upgrade: bool = false,
    on_violation: OnViolation = OnViolation::Clear,
    rotate: bool = false,
    destroy: bool = false,
    harden_cookies: bool = false,
    // The application's upstream response header (`login`, `logout`, ...),
    // `None` when off; compared ignoring case.
    control_header: Option<String> = Some(control::DEFAULT_HEADER.to_owned()),
    // Concurrent sessions per bound user, `None` when off (the user index
    // still holds at most `user_index::MAX_USER_SESSIONS`).
    user_max_sessions: Option<u32> = None,
}

impl Settings {
    /// Rules that involve more than one directive.
    fn validate(&self) -> Result<(), SettingsError> {
        if self.cookie_secure == CookieSecure::Off {
            if self.cookie.samesite == SameSite::None {
                return Err(SettingsError::SameSiteNoneNeedsSecure);
            }
            if let Some(prefix) = self.cookie.prefix {
                return Err(SettingsError::PrefixNeedsSecure(prefix));
            }
        }
        if let Some(name) = &self.secure_cookie {
            let host = split_cookie_prefix(name).0 == Some(CookiePrefix::Host);
            if host && (self.cookie.path != "/" || self.cookie.domain.is_some()) {
                return Err(SettingsError::HostCookieScope(name.clone()));
            }
        }
        if self.rotate && self.destroy {
            return Err(SettingsError::RotateAndDestroy);
        }
        self.check_cookie_names_differ()
    }

    fn check_cookie_names_differ(&self) -> Result<(), SettingsError> {
        let token = self.cookie_name(&self.cookie.name);
        let nonce = self.cookie_name(&self.nonce_cookie);
        if token == nonce {
            return Err(SettingsError::SameCookieName(token));
        }
        if let Some(secure) = self.secure_cookie_name() {
            if secure == token || secure == nonce {
                return Err(SettingsError::SecureCookieTaken(secure));
            }
        }
        Ok(())
    }

    /// The name a cookie is sent under: `paranoid_cookie prefix=` applies to
    /// every cookie of the module, since they travel together.
    pub fn cookie_name(&self, base: &str) -> String {
        match self.cookie.prefix {
            Some(prefix) => format!("{}{}", prefix.as_str(), base),
            None => base.to_owned(),
        }
    }

    /// The name the secure key's cookie is sent under, `None` when off. The
    /// name may carry `__Secure-` or `__Host-` itself; `paranoid_cookie
    /// prefix=` applies to it as to every cookie, and of two prefixes the
    /// stronger one, `__Host-`, is kept: never both, and never weaker than
    /// either. The cookie is always Secure, so both are allowed whatever
    /// `paranoid_cookie_secure` says.
    pub fn secure_cookie_name(&self) -> Option<String> {
        let (own, base) = split_cookie_prefix(self.secure_cookie.as_deref()?);
        let prefix = match (own, self.cookie.prefix) {
            (Some(CookiePrefix::Host), _) | (_, Some(CookiePrefix::Host)) => {
                Some(CookiePrefix::Host)
            }
            (Some(CookiePrefix::Secure), _) | (_, Some(CookiePrefix::Secure)) => {
                Some(CookiePrefix::Secure)
            }
            (None, None) => None,
        };
        Some(match prefix {
            Some(p) => format!("{}{base}", p.as_str()),
            None => base.to_owned(),
        })
    }

    /// Whether the nonce machinery runs at all.
    pub fn nonces_enabled(&self) -> bool {
        self.nonce_timeout_ms.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings::default()
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = raw().resolve().unwrap();
        assert!(!s.enabled);
        assert_eq!(s.store_timeout_ms, 100);
        assert_eq!(s.store_failure, StoreFailure::Deny);
        assert_eq!(s.key_prefix, "ps:");
        assert!(s.secret.is_none());
        assert_eq!(s.ip_prefix, (32, 128));
        assert_eq!(s.nonce_timeout_ms, Some(1000));
        assert_eq!(s.nonce_window, 1);
        assert_eq!(s.nonce_window_timeout_ms, Some(1000));
        assert_eq!(s.key_timeout_ms, None);
        assert_eq!(s.idle_timeout_ms, 30 * 60 * 1000);
        assert_eq!(s.absolute_timeout_ms, 12 * 3600 * 1000);
        assert_eq!(s.cookie.name, "sessionid");
        assert_eq!(s.cookie.path, "/");
        assert_eq!(s.cookie.samesite, SameSite::Lax);
        assert_eq!(s.nonce_cookie, "sessionnonce");
        assert_eq!(s.secure_cookie.as_deref(), Some("__Secure-sessionid_https"));
        assert_eq!(
            s.secure_cookie_name().as_deref(),
            Some("__Secure-sessionid_https")
        );
        assert_eq!(s.cookie_secure, CookieSecure::Auto);
        assert_eq!(s.on_violation, OnViolation::Clear);
        assert!(!s.rotate && !s.destroy && !s.harden_cookies);
        assert!(s.nonces_enabled());
        assert_eq!(s.control_header.as_deref(), Some("X-Paranoid-Session"));
        assert_eq!(s.user_max_sessions, None);
    }

    #[test]
    fn inner_block_keeps_its_own_values_and_inherits_the_rest() {
        let mut outer = raw();
        outer.nonce_window = Some(3);
        outer.enabled = Some(true);
        let mut inner = raw();
        inner.nonce_window = Some(0);
        inner.inherit(&outer);
        let s = inner.resolve().unwrap();
        assert_eq!(s.nonce_window, 0);
        assert!(s.enabled);
    }

    #[test]
    fn off_values_are_inherited_as_off() {
        let mut outer = raw();
        outer.secure_cookie = Some(None);
        outer.nonce_timeout_ms = Some(None);
        outer.control_header = Some(None);
        let mut inner = raw();
        inner.inherit(&outer);
        let s = inner.resolve().unwrap();
        assert_eq!(s.secure_cookie, None);
        assert!(!s.nonces_enabled());
        assert_eq!(s.control_header, None);
    }

    #[test]
    fn application_settings_are_inherited() {
        let mut outer = raw();
        outer.control_header = Some(Some("X-App".to_owned()));
        outer.user_max_sessions = Some(Some(3));
        let mut inner = raw();
        inner.inherit(&outer);
        let s = inner.resolve().unwrap();
        assert_eq!(s.control_header.as_deref(), Some("X-App"));
        assert_eq!(s.user_max_sessions, Some(3));
        let mut inner = raw();
        inner.user_max_sessions = Some(None);
        inner.inherit(&outer);
        assert_eq!(inner.resolve().unwrap().user_max_sessions, None);
    }

    #[test]
    fn samesite_none_needs_secure() {
        let mut r = raw();
        r.cookie = Some(CookieSpec {
            samesite: SameSite::None,
            ..CookieSpec::default()
        });
        assert!(r.resolve().is_ok(), "auto may set Secure");
        r.cookie_secure = Some(CookieSecure::Off);
        let err = r.resolve().unwrap_err().to_string();
        assert!(err.contains("samesite=none"), "{err}");
        r.cookie_secure = Some(CookieSecure::On);
        assert!(r.resolve().is_ok());
    }

    #[test]
    fn prefixes_need_secure() {
        for prefix in [CookiePrefix::Host, CookiePrefix::Secure] {
            let mut r = raw();
            r.cookie = Some(CookieSpec {
                prefix: Some(prefix),
                ..CookieSpec::default()
            });
            r.cookie_secure = Some(CookieSecure::Off);
            let err = r.resolve().unwrap_err().to_string();
            assert!(err.contains(prefix.as_str()), "{err}");
        }
    }

    /// nginx -t prints these texts; t/paranoid_config.t matches parts.
    #[test]
    fn error_texts() {
        let cases = [
            (
                SettingsError::SameSiteNoneNeedsSecure,
                "paranoid_cookie samesite=none needs the Secure flag (browsers reject it \
                 otherwise), but paranoid_cookie_secure is off",
            ),
            (
                SettingsError::PrefixNeedsSecure(CookiePrefix::Host),
                "paranoid_cookie prefix=__Host- needs the Secure flag, but \
                 paranoid_cookie_secure is off",
            ),
            (
                SettingsError::HostCookieScope("__Host-k".to_owned()),
                "paranoid_secure_cookie \"__Host-k\" needs paranoid_cookie path=/ and no \
                 domain: __Host- cookies must have both",
            ),
            (
                SettingsError::RotateAndDestroy,
                "paranoid_session_rotate and paranoid_session_destroy cannot both be on in \
                 one location",
            ),
            (
                SettingsError::SameCookieName("s".to_owned()),
                "paranoid_cookie and paranoid_nonce_cookie both name the cookie \"s\"",
            ),
            (
                SettingsError::SecureCookieTaken("s".to_owned()),
                "paranoid_secure_cookie \"s\" is already used by paranoid_cookie or \
                 paranoid_nonce_cookie",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn rotate_and_destroy_exclude_each_other() {
        let mut r = raw();
        r.rotate = Some(true);
        assert!(r.resolve().is_ok());
        r.destroy = Some(true);
        assert!(r
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("cannot both be on"));
    }

    #[test]
    fn cookie_names_must_differ() {
        let mut r = raw();
        r.nonce_cookie = Some("sessionid".to_owned());
        assert!(r.resolve().unwrap_err().to_string().contains("both name"));

        let mut r = raw();
        r.secure_cookie = Some(Some("sessionnonce".to_owned()));
        assert!(r
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("already used"));

        let mut r = raw();
        r.secure_cookie = Some(None);
        r.nonce_cookie = Some("sessionid_https".to_owned());
        assert!(r.resolve().is_ok(), "no secure cookie, no clash");
    }

    #[test]
    fn prefix_applies_to_every_cookie_name() {
        let mut r = raw();
        r.cookie = Some(CookieSpec {
            prefix: Some(CookiePrefix::Host),
            ..CookieSpec::default()
        });
        let s = r.resolve().unwrap();
        assert_eq!(s.cookie_name(&s.cookie.name), "__Host-sessionid");
        assert_eq!(s.cookie_name(&s.nonce_cookie), "__Host-sessionnonce");
    }

    fn secure_name(token_prefix: Option<CookiePrefix>, name: &str) -> String {
        let mut r = raw();
        r.cookie = Some(CookieSpec {
            prefix: token_prefix,
            ..CookieSpec::default()
        });
        r.secure_cookie = Some(Some(name.to_owned()));
        let s = r.resolve().unwrap();
        s.secure_cookie_name().unwrap()
    }

    #[test]
    fn secure_cookie_keeps_the_stronger_prefix_once() {
        use CookiePrefix::{Host, Secure};
        let cases = [
            (None, "__Secure-k", "__Secure-k"),
            (None, "__Host-k", "__Host-k"),
            (None, "k", "k"),
            (Some(Secure), "__Secure-k", "__Secure-k"),
            (Some(Secure), "__Host-k", "__Host-k"),
            (Some(Secure), "k", "__Secure-k"),
            (Some(Host), "__Secure-k", "__Host-k"),
            (Some(Host), "__Host-k", "__Host-k"),
            (Some(Host), "k", "__Host-k"),
            (Some(Host), DEFAULT_SECURE_COOKIE, "__Host-sessionid_https"),
        ];
        for (token, name, sent) in cases {
            assert_eq!(secure_name(token, name), sent, "{token:?} {name}");
        }
        let mut r = raw();
        r.secure_cookie = Some(None);
        assert_eq!(r.resolve().unwrap().secure_cookie_name(), None);
    }

    #[test]
    fn host_secure_cookie_needs_root_path_and_no_domain() {
        let mut r = raw();
        r.secure_cookie = Some(Some("__Host-k".to_owned()));
        assert!(r.resolve().is_ok());
        r.cookie = Some(CookieSpec {
            path: "/app".to_owned(),
            ..CookieSpec::default()
        });
        let err = r.resolve().unwrap_err().to_string();
        assert!(err.contains("__Host-k") && err.contains("path=/"), "{err}");
        r.cookie = Some(CookieSpec {
            domain: Some("example.com".to_owned()),
            ..CookieSpec::default()
        });
        assert!(r.resolve().unwrap_err().to_string().contains("no domain"));
        // __Secure- allows both, and needs no paranoid_cookie_secure: the
        // secure key's cookie is always Secure.
        r.secure_cookie = Some(Some("__Secure-k".to_owned()));
        r.cookie_secure = Some(CookieSecure::Off);
        assert!(r.resolve().is_ok());
        r.secure_cookie = None;
        assert!(r.resolve().is_ok(), "the default too");
    }

    #[test]
    fn secure_cookie_clash_is_found_after_prefixing() {
        let mut r = raw();
        r.cookie = Some(CookieSpec {
            name: "k".to_owned(),
            prefix: Some(CookiePrefix::Secure),
            ..CookieSpec::default()
        });
        r.secure_cookie = Some(Some("__Secure-k".to_owned()));
        assert!(r
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("\"__Secure-k\""));
        r.secure_cookie = Some(Some("k".to_owned()));
        assert!(r
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("already used"));
        // The bare default name is no longer the secure key's.
        let mut r = raw();
        r.nonce_cookie = Some("sessionid_https".to_owned());
        assert!(r.resolve().is_ok());
    }
}
