//! Header filter: adds the session cookies the access phase decided on, once
//! per client request, whatever internal redirects happened in between.

use core::ptr;

use nginx_sys::{
    add_to_ngx_table, ngx_http_output_header_filter_pt, ngx_http_request_t, ngx_int_t,
    ngx_list_push, ngx_table_elt_t, NGX_ERROR,
};

use ngx::http::HttpModuleLocationConf;
use paranoid_core::cookie;

use crate::request_state;
use crate::ParanoidSessionModule;

/// The next filter in nginx's chain, set in postconfiguration.
static mut NEXT: ngx_http_output_header_filter_pt = None;

/// Installs the filter at the top of nginx's header filter chain.
///
/// # Safety
/// Only during postconfiguration.
pub unsafe fn install() {
    // SAFETY: configuration time is single-threaded; we take the current top
    // as our successor, as every nginx filter does.
    unsafe {
        NEXT = nginx_sys::ngx_http_top_header_filter;
        nginx_sys::ngx_http_top_header_filter = Some(header_filter);
    }
}

unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls filters with a live request.
    if unsafe { ptr::eq((*r).main, r) } {
        // Upstream cookies first: ours are already hardened.
        if harden_enabled(r) && harden_cookies(r).is_err() {
            return NGX_ERROR as ngx_int_t;
        }
        if add_cookies(r).is_err() {
            return NGX_ERROR as ngx_int_t;
        }
    }
    // SAFETY: NEXT was set at configuration time, before any request.
    match unsafe { NEXT } {
        // SAFETY: calling the next filter with the same live request.
        Some(next) => unsafe { next(r) },
        None => NGX_ERROR as ngx_int_t,
    }
}

fn harden_enabled(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: r is live; its loc_conf holds our LocConf.
    let req = unsafe { ngx::http::Request::from_ngx_http_request(r) };
    ParanoidSessionModule::location_conf(req)
        .and_then(|c| c.settings.as_ref())
        .is_some_and(|s| s.harden_cookies)
}

/// `paranoid_harden_cookies`: every Set-Cookie already in the response gets
/// HttpOnly, Secure (HTTPS) and SameSite=Lax where it lacks them.
fn harden_cookies(r: *mut ngx_http_request_t) -> Result<(), ()> {
    // SAFETY: r is live.
    let https = unsafe { crate::https::over_https(r) };
    // SAFETY: walking the response header list of a live request; values
    // are replaced by copies in the request pool.
    unsafe {
        let mut part: *mut nginx_sys::ngx_list_part_t = &mut (*r).headers_out.headers.part;
        while !part.is_null() {
            let elts = (*part).elts.cast::<ngx_table_elt_t>();
            for i in 0..(*part).nelts {
                let h = &mut *elts.add(i);
                if h.hash == 0 || !h.key.as_bytes().eq_ignore_ascii_case(b"set-cookie") {
                    continue;
                }
                if let Some(value) = cookie::harden(h.value.as_bytes(), https) {
                    h.value = nginx_sys::ngx_str_t::from_bytes((*r).pool, &value).ok_or(())?;
                }
            }
            part = (*part).next;
        }
    }
    Ok(())
}

fn add_cookies(r: *mut ngx_http_request_t) -> Result<(), ()> {
    // SAFETY: r is live.
    let Some(state) = (unsafe { request_state::find(r) }) else {
        return Ok(());
    };
    if state.cookies_sent {
        return Ok(());
    }
    state.cookies_sent = true;
    // The response leaves: the client can now learn the new nonce or token.
    state.grace = None;
    for value in &state.cookies {
        // SAFETY: r is live; the element is zeroed before use so fields that
        // newer nginx versions added (e.g. `next`) are null.
        unsafe {
            let h = ngx_list_push(&mut (*r).headers_out.headers).cast::<ngx_table_elt_t>();
            if h.is_null() {
                return Err(());
            }
            ptr::write_bytes(h, 0, 1);
            add_to_ngx_table(h, (*r).pool, "Set-Cookie", value).ok_or(())?;
        }
    }
    Ok(())
}
