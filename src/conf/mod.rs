//! Configuration: the module's main (http) and location settings, and the
//! merge from outer to inner blocks. Directive handlers are in `commands`,
//! pure value parsing in `values`, merged settings in `settings`.

use core::cell::OnceCell;
use core::ffi::{c_char, c_void};
use core::ptr::NonNull;

use nginx_sys::{ngx_conf_t, ngx_shm_zone_t, NGX_LOG_EMERG};
use ngx::core::NGX_CONF_ERROR;
use ngx::http::HttpModuleMainConf;
use ngx::ngx_conf_log_error;

pub mod commands;
pub mod complex;

use crate::metrics::{self, Counters, Shards};
use crate::store::{Address, Store};
use crate::ParanoidSessionModule;
use complex::{ComplexError, ComplexValue};
use paranoid_core::settings::{RawSettings, Settings, SettingsError};

/// Idle memcached connections kept per server per worker when
/// `paranoid_session_store_keepalive` is not set.
pub const DEFAULT_KEEPALIVE: u32 = 16;

/// `http`-level settings: the memcached servers and their connection pool.
#[derive(Debug, Default)]
pub struct MainConf {
    pub servers: Vec<Address>,
    pub keepalive: Option<u32>,
    /// The counters' shared zone, added when a location first needs it.
    pub metrics: Option<NonNull<ngx_shm_zone_t>>,
    /// The worker's connections to `servers`, made on first use: each
    /// worker fills its own copy.
    store: OnceCell<Store>,
}

impl MainConf {
    pub fn keepalive(&self) -> u32 {
        self.keepalive.unwrap_or(DEFAULT_KEEPALIVE)
    }

    /// The worker's store.
    pub fn store(&'static self) -> &'static Store {
        self.store
            .get_or_init(|| Store::new(&self.servers, self.keepalive() as usize, self.counters()))
    }

    /// The configuration's counters, every worker's (None: no location
    /// uses the module).
    pub fn shards(&self) -> Option<&'static Shards> {
        // SAFETY: the zone was added to this configuration's cycle, which
        // outlives its MainConf.
        self.metrics
            .and_then(|zone| unsafe { metrics::zone::shards(zone) })
    }

    /// This worker's counters.
    pub fn counters(&self) -> Option<&'static Counters> {
        self.shards().map(|s| s.slot(metrics::worker_slot()))
    }
}

/// What `paranoid_fingerprint` binds a session to.
#[derive(Debug, Clone)]
pub enum Fingerprint {
    Off,
    Values(Vec<ComplexValue>),
}

/// Per block (http, server, location) settings.
#[derive(Debug, Default)]
pub struct LocConf {
    /// Values written in this block (after merge: inherited ones too).
    pub raw: RawSettings,
    pub fingerprint: Option<Fingerprint>,
    pub bypass: Option<Vec<ComplexValue>>,
    /// Resolved at merge time; `None` only for the http block's own copy,
    /// which no request uses.
    pub settings: Option<Settings>,
    /// `paranoid_session_metrics` is in this location: it never checks
    /// sessions.
    pub metrics: bool,
    /// Cookie names as sent (prefix applied), computed once at merge time.
    pub names: CookieNames,
}

/// The names the module's cookies are sent and read under.
#[derive(Debug, Default)]
pub struct CookieNames {
    pub token: String,
    pub nonce: String,
    pub secure: Option<String>,
}

impl CookieNames {
    fn of(settings: &Settings) -> CookieNames {
        CookieNames {
            token: settings.cookie_name(&settings.cookie.name),
            nonce: settings.cookie_name(&settings.nonce_cookie),
            secure: settings.secure_cookie_name(),
        }
    }
}

/// Why a block's settings cannot be merged; nginx prints the text with the
/// block's file and line.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The default fingerprint did not compile.
    #[error(transparent)]
    Fingerprint(#[from] ComplexError),
    /// Directives of the block contradict each other.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// `paranoid_session on` where the metrics are shown.
    #[error(
        "\"paranoid_session on\" cannot be used in a location with \"paranoid_session_metrics\": \
         scrapers keep no cookies, so every scrape would start a session"
    )]
    MetricsChecked,
    #[error(transparent)]
    Zone(#[from] metrics::zone::ZoneError),
    /// `paranoid_session on` without a store.
    #[error(
        "\"paranoid_session\" is on, but no \"paranoid_session_store\" is defined in the \
         http block"
    )]
    NoStore,
}

/// nginx `merge_loc_conf` hook: inherit, apply defaults, cross-check.
///
/// # Safety
/// Called by nginx with its configuration context and two `LocConf`s this
/// module created.
pub unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    prev: *mut c_void,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: nginx hands us the LocConf pointers create_loc_conf returned,
    // for two different blocks, and a valid cf.
    let (cf, prev, conf) = unsafe {
        (
            &mut *cf,
            &mut *prev.cast::<LocConf>(),
            &mut *conf.cast::<LocConf>(),
        )
    };
    match merge(cf, prev, conf) {
        Ok(()) => core::ptr::null_mut(),
        Err(err) => {
            ngx_conf_log_error!(NGX_LOG_EMERG, cf, "{}", err);
            NGX_CONF_ERROR
        }
    }
}

fn merge(cf: &mut ngx_conf_t, prev: &mut LocConf, conf: &mut LocConf) -> Result<(), MergeError> {
    if conf.metrics {
        if conf.raw.enabled == Some(true) {
            return Err(MergeError::MetricsChecked);
        }
        conf.raw.enabled = Some(false);
    }
    conf.raw.inherit(&prev.raw);
    if conf.bypass.is_none() {
        conf.bypass = prev.bypass.clone();
    }
    if conf.fingerprint.is_none() {
        if prev.fingerprint.is_none() {
            // Compiled once, in the outer block, and shared by its children.
            prev.fingerprint = Some(complex::default_fingerprint(cf)?);
        }
        conf.fingerprint = prev.fingerprint.clone();
    }
    let settings = conf.raw.resolve()?;
    if settings.enabled {
        let has_store = ParanoidSessionModule::main_conf(cf).is_some_and(|m| !m.servers.is_empty());
        if !has_store {
            return Err(MergeError::NoStore);
        }
        if let Some(main) = ParanoidSessionModule::main_conf_mut(cf) {
            metrics::zone::ensure(cf, main)?;
        }
    }
    conf.names = CookieNames::of(&settings);
    conf.settings = Some(settings);
    Ok(())
}
