//! nginx complex values (strings with variables) used by
//! `paranoid_fingerprint` and `paranoid_session_bypass`.

use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_conf_t, ngx_http_compile_complex_value, ngx_http_compile_complex_value_t,
    ngx_http_complex_value_t, ngx_pcalloc, ngx_str_t, NGX_OK,
};

use super::Fingerprint;

/// Why a configuration value could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum ComplexError {
    /// The configuration pool is exhausted.
    #[error("out of memory")]
    OutOfMemory,
    /// nginx refused the value (it logged why, e.g. an unknown variable).
    #[error("cannot compile \"{0}\"")]
    Compile(String),
}

/// A compiled complex value, allocated in the configuration pool, so it
/// lives as long as the configuration cycle that owns this module's config.
#[derive(Debug, Clone, Copy)]
pub struct ComplexValue(NonNull<ngx_http_complex_value_t>);

impl ComplexValue {
    pub fn as_ptr(self) -> *mut ngx_http_complex_value_t {
        self.0.as_ptr()
    }

    /// The value for request `r`, in `r`'s pool (ngx's
    /// `Request::get_complex_value`); None when a variable could not be
    /// evaluated.
    pub fn evaluate(self, r: &ngx::http::Request) -> Option<&[u8]> {
        // SAFETY: the pointer was produced by compile() and lives as long as
        // the configuration that holds this value.
        let cv = unsafe { self.0.as_ref() };
        r.get_complex_value(cv).map(|v| v.as_bytes())
    }

    /// Whether the value holds variables (a constant cannot tell clients
    /// apart).
    pub fn has_variables(self) -> bool {
        // SAFETY: the pointer was produced by compile() and is alive for the
        // configuration's lifetime.
        unsafe { !(*self.0.as_ptr()).lengths.is_null() }
    }
}

/// Compiles `value` (as written in the configuration) in `cf`'s pool.
pub fn compile(cf: &mut ngx_conf_t, value: &ngx_str_t) -> Result<ComplexValue, ComplexError> {
    // SAFETY: cf is the live configuration context; the allocation is zeroed
    // and sized for the type, and freed with the configuration pool.
    let cv = unsafe {
        ngx_pcalloc(cf.pool, core::mem::size_of::<ngx_http_complex_value_t>())
            .cast::<ngx_http_complex_value_t>()
    };
    let cv = NonNull::new(cv).ok_or(ComplexError::OutOfMemory)?;
    let mut value = *value;
    // SAFETY: an all-zero compile request is the documented initial state
    // (nginx's own modules memzero it before filling the fields).
    let mut ccv: ngx_http_compile_complex_value_t = unsafe { core::mem::zeroed() };
    ccv.cf = ptr::from_mut(cf);
    ccv.value = &mut value;
    ccv.complex_value = cv.as_ptr();
    // SAFETY: ccv points at live data for the duration of the call; nginx
    // copies what it keeps into the configuration pool and logs its own
    // message (e.g. unknown variable) on failure.
    if unsafe { ngx_http_compile_complex_value(&mut ccv) } != NGX_OK as isize {
        return Err(ComplexError::Compile(value.to_string()));
    }
    Ok(ComplexValue(cv))
}

/// `$remote_addr $http_user_agent`, the fingerprint used when the
/// configuration names none.
pub fn default_fingerprint(cf: &mut ngx_conf_t) -> Result<Fingerprint, ComplexError> {
    let mut values = Vec::with_capacity(2);
    for name in [
        ngx::ngx_string!("$remote_addr"),
        ngx::ngx_string!("$http_user_agent"),
    ] {
        values.push(compile(cf, &name)?);
    }
    Ok(Fingerprint::Values(values))
}
