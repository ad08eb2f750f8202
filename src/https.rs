//! Whether a request came over TLS, on any nginx build.

use nginx_sys::ngx_http_request_t;

/// True when `r` arrived over TLS.
///
/// # Safety
/// `r` must be a live request.
// `c->ssl` exists when nginx is built with SSL, or with `--with-compat`
// (which keeps the field for modules, null without SSL).
#[cfg(any(ngx_feature = "ssl", ngx_feature = "compat"))]
pub unsafe fn over_https(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: r and its connection are live (the caller's contract).
    unsafe { !(*(*r).connection).ssl.is_null() }
}

/// True when `r` arrived over TLS: never, in an nginx without SSL.
///
/// # Safety
/// `r` must be a live request (kept for the same contract as with SSL).
#[cfg(not(any(ngx_feature = "ssl", ngx_feature = "compat")))]
pub unsafe fn over_https(_r: *mut ngx_http_request_t) -> bool {
    false
}
