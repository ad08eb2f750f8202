//! The directive table and its handlers: nginx hands each directive's
//! arguments to a setter that parses them with `values` into `MainConf` or
//! `LocConf`. A wrong value ends `nginx -t` with
//! `"<directive>" directive is invalid: <why>` (nginx adds file and line).

use core::ffi::{c_char, c_void};
use core::ptr;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use nginx_sys::{
    ngx_command_t, ngx_conf_full_name, ngx_conf_t, ngx_pnalloc, ngx_str_t, ngx_uint_t,
    NGX_CONF_1MORE, NGX_CONF_FLAG, NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE2,
    NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET,
    NGX_HTTP_SRV_CONF, NGX_OK,
};
use ngx::core::NGX_CONF_ERROR;
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};
use ngx::ngx_string;
use zeroize::Zeroizing;

use super::complex::{self, ComplexError, ComplexValue};
use super::{Fingerprint, LocConf, MainConf};
use crate::store::Address;
use crate::ParanoidSessionModule;
use paranoid_core::secret::SecretKey;
use paranoid_core::settings::{CookieSecure, OnViolation, StoreFailure};
use paranoid_core::time::{DAY, HOUR, SECOND, YEAR};
use paranoid_core::values::{self, ValueError};

/// Why a directive was refused. nginx prints `is duplicate` for
/// [`SetError::Duplicate`] and `is invalid: <this error>` for the others,
/// after the directive's name.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// Set twice in one block.
    #[error("set twice in one block")]
    Duplicate,
    /// Fewer arguments than the setter reads (nginx counts them first, so
    /// only a setter reading too far gets this).
    #[error("is missing an argument")]
    MissingArgument,
    /// Argument `n` (1-based) is not UTF-8.
    #[error("argument {0} is not valid UTF-8")]
    NotUtf8(usize),
    /// An empty complex value.
    #[error("empty value")]
    EmptyValue,
    /// A value that does not parse.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// A value with variables nginx could not compile.
    #[error(transparent)]
    Complex(#[from] ComplexError),
    /// A `paranoid_fingerprint` value without a variable.
    #[error("\"{0}\" holds no variable, so it cannot tell clients apart")]
    NoVariable(String),
    /// A `paranoid_session_store` address that does not parse (the core's
    /// address parser still speaks text).
    #[error("{0}")]
    Address(String),
    /// A `paranoid_session_store` address given twice.
    #[error("server \"{0}\" is listed twice")]
    ServerTwice(String),
    /// The http module's configuration is missing (cannot happen inside
    /// an http block).
    #[error("is not inside an http block")]
    NoHttpBlock,
    /// nginx refused the counters' shared zone.
    #[error("cannot add the \"paranoid_session_metrics\" shared memory zone")]
    Zone,
    /// `paranoid_session_secret_file` could not be read or holds no key.
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
}

/// Why `paranoid_session_secret_file` gives no key.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// nginx could not make the path absolute.
    #[error("cannot resolve the secret file path")]
    Resolve,
    /// The resolved path is not UTF-8.
    #[error("secret file path is not valid UTF-8")]
    PathNotUtf8,
    #[error("cannot open secret file \"{}\": {source}", .path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read secret file \"{}\": {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file's bytes are no key (too short or too long).
    #[error("secret file \"{}\": {source}", .path.display())]
    Key { path: PathBuf, source: ValueError },
}

type SetResult = Result<(), SetError>;

/// A directive being applied: its configuration context and arguments.
pub struct Directive<'a> {
    cf: &'a mut ngx_conf_t,
    args: &'a [ngx_str_t],
}

impl Directive<'_> {
    /// Argument `i` (1-based, as in nginx) as UTF-8 text.
    fn arg(&self, i: usize) -> Result<&str, SetError> {
        let raw = self.args.get(i).ok_or(SetError::MissingArgument)?;
        raw.to_str().map_err(|_| SetError::NotUtf8(i))
    }

    /// All arguments after the directive name.
    fn values(&self) -> Result<Vec<&str>, SetError> {
        (1..self.args.len()).map(|i| self.arg(i)).collect()
    }

    fn flag(&self) -> Result<bool, SetError> {
        Ok(values::parse_flag(self.arg(1)?)?)
    }

    /// Arguments compiled as complex values.
    fn complex_values(&mut self) -> Result<Vec<ComplexValue>, SetError> {
        let args = self.args;
        let mut out = Vec::with_capacity(args.len().saturating_sub(1));
        for value in args.iter().skip(1) {
            if value.is_empty() {
                return Err(SetError::EmptyValue);
            }
            out.push(complex::compile(self.cf, value)?);
        }
        Ok(out)
    }
}

/// Stores `value` unless the block already set this directive.
fn put<T>(slot: &mut Option<T>, value: T) -> SetResult {
    if slot.is_some() {
        return Err(SetError::Duplicate);
    }
    *slot = Some(value);
    Ok(())
}

/* location-level setters */

fn session(d: &mut Directive, c: &mut LocConf) -> SetResult {
    put(&mut c.raw.enabled, d.flag()?)
}

fn store_timeout(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let ms = values::parse_time_in(d.arg(1)?, 1, 60 * SECOND)?;
    put(&mut c.raw.store_timeout_ms, ms)
}

fn store_failure(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let policy = match values::parse_choice(d.arg(1)?, &["deny", "allow"])? {
        0 => StoreFailure::Deny,
        _ => StoreFailure::Allow,
    };
    put(&mut c.raw.store_failure, policy)
}

fn key_prefix(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let prefix = d.arg(1)?;
    values::validate_key_prefix(prefix)?;
    put(&mut c.raw.key_prefix, prefix.to_owned())
}

fn secret_file(d: &mut Directive, c: &mut LocConf) -> SetResult {
    if c.raw.secret.is_some() {
        return Err(SetError::Duplicate);
    }
    let path = full_path(d.cf, &d.args[1])?;
    let key = read_secret(path)?;
    put(&mut c.raw.secret, Some(Arc::new(key)))
}

fn fingerprint(d: &mut Directive, c: &mut LocConf) -> SetResult {
    if c.fingerprint.is_some() {
        return Err(SetError::Duplicate);
    }
    let fp = if d.values()? == ["off"] {
        Fingerprint::Off
    } else {
        let values = d.complex_values()?;
        if let Some(i) = values.iter().position(|v| !v.has_variables()) {
            return Err(SetError::NoVariable(d.arg(i + 1)?.to_owned()));
        }
        Fingerprint::Values(values)
    };
    put(&mut c.fingerprint, fp)
}

fn fingerprint_ip_prefix(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let prefix = values::parse_ip_prefix(d.arg(1)?, d.arg(2)?)?;
    put(&mut c.raw.ip_prefix, prefix)
}

fn nonce_timeout(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let t = values::parse_time_or_off(d.arg(1)?, 0, DAY)?;
    put(&mut c.raw.nonce_timeout_ms, t)
}

fn nonce_window(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let n = values::parse_uint_in(d.arg(1)?, 0, 16)?;
    put(&mut c.raw.nonce_window, n as u32)
}

fn nonce_window_timeout(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let t = values::parse_time_or_off(d.arg(1)?, 0, HOUR)?;
    put(&mut c.raw.nonce_window_timeout_ms, t)
}

fn key_timeout(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let t = values::parse_time_or_off(d.arg(1)?, SECOND, YEAR)?;
    put(&mut c.raw.key_timeout_ms, t)
}

fn idle_timeout(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let t = values::parse_time_in(d.arg(1)?, SECOND, YEAR)?;
    put(&mut c.raw.idle_timeout_ms, t)
}

fn absolute_timeout(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let t = values::parse_time_in(d.arg(1)?, SECOND, YEAR)?;
    put(&mut c.raw.absolute_timeout_ms, t)
}

fn cookie(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let spec = values::parse_cookie_spec(&d.values()?)?;
    put(&mut c.raw.cookie, spec)
}

fn nonce_cookie(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let name = d.arg(1)?;
    values::validate_cookie_name(name)?;
    put(&mut c.raw.nonce_cookie, name.to_owned())
}

fn secure_cookie(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let name = match d.arg(1)? {
        "off" => None,
        name => {
            values::validate_secure_cookie_name(name)?;
            Some(name.to_owned())
        }
    };
    put(&mut c.raw.secure_cookie, name)
}

fn cookie_secure(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let mode = match values::parse_choice(d.arg(1)?, &["auto", "on", "off"])? {
        0 => CookieSecure::Auto,
        1 => CookieSecure::On,
        _ => CookieSecure::Off,
    };
    put(&mut c.raw.cookie_secure, mode)
}

fn secure_cookie_upgrade(d: &mut Directive, c: &mut LocConf) -> SetResult {
    put(&mut c.raw.secure_cookie_upgrade, d.flag()?)
}

fn on_violation(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let action = match values::parse_choice(d.arg(1)?, &["clear", "deny", "log"])? {
        0 => OnViolation::Clear,
        1 => OnViolation::Deny,
        _ => OnViolation::Log,
    };
    put(&mut c.raw.on_violation, action)
}

/// Like `proxy_cache_bypass`, repeated directives add up.
fn bypass(d: &mut Directive, c: &mut LocConf) -> SetResult {
    let mut more = d.complex_values()?;
    c.bypass.get_or_insert_with(Vec::new).append(&mut more);
    Ok(())
}

fn rotate(d: &mut Directive, c: &mut LocConf) -> SetResult {
    put(&mut c.raw.rotate, d.flag()?)
}

fn destroy(d: &mut Directive, c: &mut LocConf) -> SetResult {
    put(&mut c.raw.destroy, d.flag()?)
}

fn control_header(d: &mut Directive, c: &mut LocConf) -> SetResult {
    put(
        &mut c.raw.control_header,
        values::parse_control_header(d.arg(1)?)?,
    )
}

/// `paranoid_session_metrics`: this location answers with the counters.
fn metrics(d: &mut Directive, c: &mut LocConf) -> SetResult {
    if c.metrics {
        return Err(SetError::Duplicate);
    }
    let main = ParanoidSessionModule::main_conf_mut(&*d.cf).ok_or(SetError::NoHttpBlock)?;
    crate::metrics::zone::ensure(d.cf, main).map_err(|_| SetError::Zone)?;
    let core = NgxHttpCoreModule::location_conf_mut(&*d.cf).ok_or(SetError::NoHttpBlock)?;
    core.handler = Some(crate::metrics::handler::handler);
    c.metrics = true;
    Ok(())
}

fn user_max_sessions(d: &mut Directive, c: &mut LocConf) -> SetResult {
    put(
        &mut c.raw.user_max_sessions,
        values::parse_user_max_sessions(d.arg(1)?)?,
    )
}

fn harden_cookies(d: &mut Directive, c: &mut LocConf) -> SetResult {
    put(&mut c.raw.harden_cookies, d.flag()?)
}

/* http-level setters */

fn store(d: &mut Directive, c: &mut MainConf) -> SetResult {
    if !c.servers.is_empty() {
        return Err(SetError::Duplicate);
    }
    let mut servers: Vec<Address> = Vec::new();
    for arg in d.args.iter().skip(1) {
        let server = Address::parse(d.cf, arg).map_err(SetError::Address)?;
        if servers.iter().any(|s| s.same_socket(&server)) {
            return Err(SetError::ServerTwice(server.name.clone()));
        }
        servers.push(server);
    }
    c.servers = servers;
    Ok(())
}

fn store_keepalive(d: &mut Directive, c: &mut MainConf) -> SetResult {
    let n = values::parse_uint_in(d.arg(1)?, 0, 1024)?;
    put(&mut c.keepalive, n as u32)
}

/* secret file */

/// Resolves a path relative to nginx's configuration prefix, like
/// `ssl_certificate` does.
fn full_path(cf: &mut ngx_conf_t, name: &ngx_str_t) -> Result<PathBuf, SecretFileError> {
    let mut name = *name;
    // SAFETY: cf->cycle is the cycle being configured; ngx_conf_full_name
    // replaces `name` with a copy allocated in the cycle pool when needed.
    if unsafe { ngx_conf_full_name(cf.cycle, &mut name, 1) } != NGX_OK as isize {
        return Err(SecretFileError::Resolve);
    }
    let text = name.to_str().map_err(|_| SecretFileError::PathNotUtf8)?;
    Ok(text.into())
}

/// Reads at most one byte more than a key may hold (a wrong path must not
/// make nginx read a huge file) into one buffer allocated up front, never
/// grown (growing would leave copies behind) and wiped when dropped; the
/// key keeps its own wiped copy.
fn read_secret(path: PathBuf) -> Result<SecretKey, SecretFileError> {
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(source) => return Err(SecretFileError::Open { path, source }),
    };
    let mut buf = Zeroizing::new(vec![0u8; SecretKey::MAX_LEN + 1]);
    let mut len = 0;
    while let Some(rest) = buf.get_mut(len..).filter(|rest| !rest.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(SecretFileError::Read { path, source }),
        }
    }
    values::parse_secret(buf.get(..len).unwrap_or_default())
        .map_err(|source| SecretFileError::Key { path, source })
}

/* glue between nginx and the setters */

type Setter<C> = fn(&mut Directive, &mut C) -> SetResult;

/// A setter, reached through `ngx_command_t::post`.
pub struct Handler<C>(Setter<C>);

/// Runs the setter stored in `cmd->post` on `conf`.
///
/// # Safety
/// `cf` and `cmd` are nginx's; `conf` is the `C` this module created for the
/// block being parsed; `cmd->post` points at a `Handler<C>` from this file.
unsafe fn apply<C>(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t, conf: *mut c_void) -> *mut c_char {
    // SAFETY: guaranteed by the caller, see above; cf->args holds the
    // directive name and its arguments as ngx_str_t.
    let (cf, handler, conf, args) = unsafe {
        let cf = &mut *cf;
        let handler = &*(*cmd).post.cast::<Handler<C>>();
        let args = (*cf.args).as_slice::<ngx_str_t>();
        (cf, handler, &mut *conf.cast::<C>(), args)
    };
    let mut directive = Directive { cf, args };
    match (handler.0)(&mut directive, conf) {
        Ok(()) => ptr::null_mut(),
        Err(SetError::Duplicate) => c"is duplicate".as_ptr().cast_mut(),
        Err(err) => conf_message(directive.cf, &err),
    }
}

/// Copies `is invalid: <msg>` into the configuration pool as the C string
/// nginx prints after the directive name.
fn conf_message(cf: &mut ngx_conf_t, err: &SetError) -> *mut c_char {
    let text = format!("is invalid: {err}");
    let bytes = text.as_bytes();
    // SAFETY: the allocation holds the message plus its NUL terminator; it
    // lives in the configuration pool until nginx has printed it.
    unsafe {
        let buf = ngx_pnalloc(cf.pool, bytes.len() + 1).cast::<u8>();
        if buf.is_null() {
            return NGX_CONF_ERROR;
        }
        ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len());
        *buf.add(bytes.len()) = 0;
        buf.cast()
    }
}

unsafe extern "C" fn set_loc(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: location commands carry Handler<LocConf> and are registered
    // with NGX_HTTP_LOC_CONF_OFFSET, so conf is our LocConf.
    unsafe { apply::<LocConf>(cf, cmd, conf) }
}

unsafe extern "C" fn set_main(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    // SAFETY: main commands carry Handler<MainConf> and are registered with
    // NGX_HTTP_MAIN_CONF_OFFSET, so conf is our MainConf.
    unsafe { apply::<MainConf>(cf, cmd, conf) }
}

const ANY_LEVEL: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF;

const fn loc_command(
    name: ngx_str_t,
    args: u32,
    handler: *const Handler<LocConf>,
) -> ngx_command_t {
    loc_command_in(ANY_LEVEL, name, args, handler)
}

/// A directive of `location` blocks only (a content handler).
const fn loc_only_command(
    name: ngx_str_t,
    args: u32,
    handler: *const Handler<LocConf>,
) -> ngx_command_t {
    loc_command_in(NGX_HTTP_LOC_CONF, name, args, handler)
}

const fn loc_command_in(
    contexts: u32,
    name: ngx_str_t,
    args: u32,
    handler: *const Handler<LocConf>,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: (contexts | args) as ngx_uint_t,
        set: Some(set_loc),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: handler.cast_mut().cast(),
    }
}

const fn main_command(
    name: ngx_str_t,
    args: u32,
    handler: *const Handler<MainConf>,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: (NGX_HTTP_MAIN_CONF | args) as ngx_uint_t,
        set: Some(set_main),
        conf: NGX_HTTP_MAIN_CONF_OFFSET,
        offset: 0,
        post: handler.cast_mut().cast(),
    }
}

/// Declares one static `Handler` per setter and the command table.
macro_rules! commands {
    ($(($kind:ident, $name:literal, $args:expr, $setter:ident, $conf:ty),)*) => {
        #[allow(non_upper_case_globals)]
        mod handlers {
            use super::*;
            $(pub static $setter: Handler<$conf> = Handler(super::$setter);)*
        }

        /// The module's directives, terminated by an empty entry.
        pub static mut COMMANDS: [ngx_command_t; [$($name,)*].len() + 1] = [
            $($kind(ngx_string!($name), $args, ptr::addr_of!(handlers::$setter)),)*
            ngx_command_t::empty(),
        ];
    };
}

commands! {
    (loc_command, "paranoid_session", NGX_CONF_FLAG, session, LocConf),
    (main_command, "paranoid_session_store", NGX_CONF_1MORE, store, MainConf),
    (loc_command, "paranoid_session_store_timeout", NGX_CONF_TAKE1, store_timeout, LocConf),
    (main_command, "paranoid_session_store_keepalive", NGX_CONF_TAKE1, store_keepalive, MainConf),
    (loc_command, "paranoid_session_store_failure", NGX_CONF_TAKE1, store_failure, LocConf),
    (loc_command, "paranoid_session_key_prefix", NGX_CONF_TAKE1, key_prefix, LocConf),
    (loc_command, "paranoid_session_secret_file", NGX_CONF_TAKE1, secret_file, LocConf),
    (loc_command, "paranoid_fingerprint", NGX_CONF_1MORE, fingerprint, LocConf),
    (loc_command, "paranoid_fingerprint_ip_prefix", NGX_CONF_TAKE2, fingerprint_ip_prefix, LocConf),
    (loc_command, "paranoid_nonce_timeout", NGX_CONF_TAKE1, nonce_timeout, LocConf),
    (loc_command, "paranoid_nonce_window", NGX_CONF_TAKE1, nonce_window, LocConf),
    (loc_command, "paranoid_nonce_window_timeout", NGX_CONF_TAKE1, nonce_window_timeout, LocConf),
    (loc_command, "paranoid_key_timeout", NGX_CONF_TAKE1, key_timeout, LocConf),
    (loc_command, "paranoid_idle_timeout", NGX_CONF_TAKE1, idle_timeout, LocConf),
    (loc_command, "paranoid_absolute_timeout", NGX_CONF_TAKE1, absolute_timeout, LocConf),
    (loc_command, "paranoid_cookie", NGX_CONF_1MORE, cookie, LocConf),
    (loc_command, "paranoid_nonce_cookie", NGX_CONF_TAKE1, nonce_cookie, LocConf),
    (loc_command, "paranoid_secure_cookie", NGX_CONF_TAKE1, secure_cookie, LocConf),
    (loc_command, "paranoid_cookie_secure", NGX_CONF_TAKE1, cookie_secure, LocConf),
    (loc_command, "paranoid_secure_cookie_upgrade", NGX_CONF_FLAG, secure_cookie_upgrade, LocConf),
    (loc_command, "paranoid_on_violation", NGX_CONF_TAKE1, on_violation, LocConf),
    (loc_command, "paranoid_session_bypass", NGX_CONF_1MORE, bypass, LocConf),
    (loc_command, "paranoid_session_rotate", NGX_CONF_FLAG, rotate, LocConf),
    (loc_command, "paranoid_session_destroy", NGX_CONF_FLAG, destroy, LocConf),
    (loc_command, "paranoid_harden_cookies", NGX_CONF_FLAG, harden_cookies, LocConf),
    (loc_command, "paranoid_session_control_header", NGX_CONF_TAKE1, control_header, LocConf),
    (loc_command, "paranoid_user_max_sessions", NGX_CONF_TAKE1, user_max_sessions, LocConf),
    (loc_only_command, "paranoid_session_metrics", NGX_CONF_NOARGS, metrics, LocConf),
}
