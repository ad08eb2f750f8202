//! Location settings: what each directive set, merged from outer blocks and
//! resolved to the values a request is checked with. Pure Rust, no nginx.

use std::fmt;
use std::sync::Arc;

use crate::values::{CookieSpec, SameSite};

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

/// Key material from `paranoid_session_secret_file`; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Arc<[u8]>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
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
            pub fn resolve(&self) -> Result<Settings, String> {
                let settings = Settings {
                    $($field: self.$field.clone().unwrap_or_else(|| $default),)*
                };
                settings.validate()?;
                Ok(settings)
            }
        }
    };
}

pub const SECOND: u64 = 1000;
pub const MINUTE: u64 = 60 * SECOND;
pub const HOUR: u64 = 60 * MINUTE;

settings! {
    enabled: bool = false,
    store_timeout_ms: u64 = 100,
    store_failure: StoreFailure = StoreFailure::Deny,
    key_prefix: String = "ps:".to_owned(),
    secret: Option<Secret> = None,
    ip_prefix: (u8, u8) = (32, 128),
    nonce_timeout_ms: Option<u64> = Some(SECOND),
    nonce_window: u32 = 1,
    nonce_window_timeout_ms: Option<u64> = Some(SECOND),
    key_timeout_ms: Option<u64> = None,
    idle_timeout_ms: u64 = 30 * MINUTE,
    absolute_timeout_ms: u64 = 12 * HOUR,
    cookie: CookieSpec = CookieSpec::default(),
    nonce_cookie: String = "sessionnonce".to_owned(),
    secure_cookie: Option<String> = Some("sessionid_https".to_owned()),
    cookie_secure: CookieSecure = CookieSecure::Auto,
    secure_cookie_upgrade: bool = false,
    on_violation: OnViolation = OnViolation::Clear,
    rotate: bool = false,
    destroy: bool = false,
    harden_cookies: bool = false,
}

impl Settings {
    /// Rules that involve more than one directive.
    fn validate(&self) -> Result<(), String> {
        if self.cookie_secure == CookieSecure::Off {
            if self.cookie.samesite == SameSite::None {
                return Err("paranoid_cookie samesite=none needs the Secure flag \
                            (browsers reject it otherwise), but paranoid_cookie_secure is off"
                    .to_owned());
            }
            if let Some(prefix) = self.cookie.prefix {
                return Err(format!(
                    "paranoid_cookie prefix={} needs the Secure flag, \
                     but paranoid_cookie_secure is off",
                    prefix.as_str()
                ));
            }
        }
        if self.rotate && self.destroy {
            return Err(
                "paranoid_session_rotate and paranoid_session_destroy cannot both be on \
                 in one location"
                    .to_owned(),
            );
        }
        self.check_cookie_names_differ()
    }

    fn check_cookie_names_differ(&self) -> Result<(), String> {
        let token = self.cookie_name(&self.cookie.name);
        let nonce = self.cookie_name(&self.nonce_cookie);
        if token == nonce {
            return Err(format!(
                "paranoid_cookie and paranoid_nonce_cookie both name the cookie \"{token}\""
            ));
        }
        if let Some(secure) = &self.secure_cookie {
            let secure = self.cookie_name(secure);
            if secure == token || secure == nonce {
                return Err(format!(
                    "paranoid_secure_cookie \"{secure}\" is already used by \
                     paranoid_cookie or paranoid_nonce_cookie"
                ));
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

    /// Whether the nonce machinery runs at all.
    pub fn nonces_enabled(&self) -> bool {
        self.nonce_timeout_ms.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::CookiePrefix;

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
        assert_eq!(s.secure_cookie.as_deref(), Some("sessionid_https"));
        assert_eq!(s.cookie_secure, CookieSecure::Auto);
        assert_eq!(s.on_violation, OnViolation::Clear);
        assert!(!s.rotate && !s.destroy && !s.harden_cookies);
        assert!(s.nonces_enabled());
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
        let mut inner = raw();
        inner.inherit(&outer);
        let s = inner.resolve().unwrap();
        assert_eq!(s.secure_cookie, None);
        assert!(!s.nonces_enabled());
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
        let err = r.resolve().unwrap_err();
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
            let err = r.resolve().unwrap_err();
            assert!(err.contains(prefix.as_str()), "{err}");
        }
    }

    #[test]
    fn rotate_and_destroy_exclude_each_other() {
        let mut r = raw();
        r.rotate = Some(true);
        assert!(r.resolve().is_ok());
        r.destroy = Some(true);
        assert!(r.resolve().unwrap_err().contains("cannot both be on"));
    }

    #[test]
    fn cookie_names_must_differ() {
        let mut r = raw();
        r.nonce_cookie = Some("sessionid".to_owned());
        assert!(r.resolve().unwrap_err().contains("both name"));

        let mut r = raw();
        r.secure_cookie = Some(Some("sessionnonce".to_owned()));
        assert!(r.resolve().unwrap_err().contains("already used"));

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

    #[test]
    fn secret_debug_hides_bytes() {
        let s = Secret(Arc::from(&b"0123456789abcdef0123456789abcdef"[..]));
        assert_eq!(format!("{s:?}"), "Secret(32 bytes)");
    }
}
