//! Header and body filters: the session cookies the access phase decided
//! on, once per client request whatever internal redirects happened in
//! between; `paranoid_harden_cookies`; and the application's command,
//! during which the response is held (see `hold`).

use core::ptr;

use nginx_sys::{
    add_to_ngx_table, ngx_chain_t, ngx_http_filter_finalize_request,
    ngx_http_output_body_filter_pt, ngx_http_output_header_filter_pt, ngx_http_request_t,
    ngx_int_t, ngx_list_push, ngx_post_event, ngx_posted_events, ngx_table_elt_t, NGX_AGAIN,
    NGX_ERROR, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_OK,
};

use ngx::http::{HttpModule, HttpModuleLocationConf};
use paranoid_core::cookie;

use crate::conf::LocConf;
use crate::headers::each_named;
use crate::ParanoidSessionModule;
use crate::{control, hold, request_state};

/// The next filters in nginx's chains, set in postconfiguration.
static mut NEXT: ngx_http_output_header_filter_pt = None;
static mut NEXT_BODY: ngx_http_output_body_filter_pt = None;

/// Installs the filters at the top of nginx's filter chains.
///
/// # Safety
/// Only during postconfiguration.
pub unsafe fn install() {
    // SAFETY: configuration time is single-threaded; we take the current
    // tops as our successors, as every nginx filter does.
    unsafe {
        NEXT = nginx_sys::ngx_http_top_header_filter;
        nginx_sys::ngx_http_top_header_filter = Some(header_filter);
        NEXT_BODY = nginx_sys::ngx_http_top_body_filter;
        nginx_sys::ngx_http_top_body_filter = Some(body_filter);
    }
}

fn location_conf(r: *mut ngx_http_request_t) -> Option<&'static LocConf> {
    // SAFETY: r is live; its loc_conf holds our LocConf.
    let req = unsafe { ngx::http::Request::from_ngx_http_request(r) };
    ParanoidSessionModule::location_conf(req)
}

unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls filters with a live request.
    if !unsafe { ptr::eq((*r).main, r) } {
        // SAFETY: as above.
        return unsafe { next_header(r) };
    }
    let conf = location_conf(r);
    let settings = conf.and_then(|c| c.settings.as_ref());
    // Upstream cookies first: ours are already hardened.
    if settings.is_some_and(|s| s.harden_cookies) && harden_cookies(r).is_err() {
        return NGX_ERROR as ngx_int_t;
    }
    // SAFETY: r is live.
    if unsafe { hold::flagged(r) } {
        // The held response was replaced (an error page): the command is
        // abandoned with it.
        // SAFETY: r is live.
        if let Some(h) = unsafe { request_state::find(r) }.and_then(|s| s.hold.as_mut()) {
            // SAFETY: r is live.
            unsafe { hold::unhold(r, h) };
            h.task = None;
        }
    } else if let (Some(conf), Some(settings)) = (conf, settings.filter(|s| s.enabled)) {
        // SAFETY: r is a live main request in its header filter.
        if let Some(command) = unsafe { control::take(r, settings) } {
            // SAFETY: as above.
            let state = unsafe { control::applicable(r) };
            if state.is_none() {
                // SAFETY: as above.
                unsafe { control::not_applicable(r, &command) };
            }
            if let Some(state) = state {
                // SAFETY: as above.
                unsafe { control::start(r, state, conf, command) };
                // SAFETY: as above.
                let early = unsafe { request_state::find(r) }
                    .and_then(|s| s.hold.as_mut())
                    .and_then(|h| {
                        h.in_filter = false;
                        h.early.take()
                    });
                match early {
                    // SAFETY: r is live, in its header filter.
                    Some(Release::Refuse) => return unsafe { refuse(r) },
                    Some(Release::Send) => {}
                    // SAFETY: r is live.
                    None if unsafe { hold::flagged(r) } => return NGX_OK as ngx_int_t,
                    None => {}
                }
            }
        }
    }
    // SAFETY: r is live.
    unsafe { send_header(r) }
}

/// Our cookies, then the rest of the header chain.
///
/// # Safety
/// `r` must be a live main request.
unsafe fn send_header(r: *mut ngx_http_request_t) -> ngx_int_t {
    if add_cookies(r).is_err() {
        return NGX_ERROR as ngx_int_t;
    }
    // SAFETY: r is live.
    unsafe { next_header(r) }
}

/// # Safety
/// `r` must be a live request.
unsafe fn next_header(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: NEXT was set at configuration time, before any request.
    match unsafe { NEXT } {
        // SAFETY: calling the next filter with the same live request.
        Some(next) => unsafe { next(r) },
        None => NGX_ERROR as ngx_int_t,
    }
}

/// # Safety
/// `r` must be a live request, `chain` a valid chain of it.
unsafe fn next_body(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: NEXT_BODY was set at configuration time, before any request.
    match unsafe { NEXT_BODY } {
        // SAFETY: calling the next filter with the same live request.
        Some(next) => unsafe { next(r, chain) },
        None => NGX_ERROR as ngx_int_t,
    }
}

unsafe extern "C" fn body_filter(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    // Cheap tests first: only a held or refused main request has more to do.
    // SAFETY: nginx calls filters with a live request.
    let maybe =
        unsafe { ptr::eq((*r).main, r) && (hold::flagged(r) || (*r).filter_finalize() != 0) };
    if maybe {
        // SAFETY: r is live.
        if let Some(h) = unsafe { request_state::find(r) }.and_then(|s| s.hold.as_mut()) {
            if h.holding {
                // SAFETY: the chain is the request's.
                unsafe { h.keep(chain) };
                return NGX_AGAIN as ngx_int_t;
            }
            if h.discard {
                // The response was replaced by a 503: what follows of it is
                // refused, and its producer stops.
                return NGX_ERROR as ngx_int_t;
            }
        }
    }
    // SAFETY: r and chain are the caller's.
    unsafe { next_body(r, chain) }
}

/// Replaces `r`'s response by a 503, and refuses what its producer sends
/// after it.
///
/// # Safety
/// `r` must be a live main request whose header has not been sent.
unsafe fn refuse(r: *mut ngx_http_request_t) -> ngx_int_t {
    let module = ptr::from_ref(ParanoidSessionModule::module()).cast_mut();
    // SAFETY: r is live; nginx sends its error page through the filters,
    // which let it pass (the hold is over).
    let rc = unsafe {
        ngx_http_filter_finalize_request(r, module, NGX_HTTP_SERVICE_UNAVAILABLE as ngx_int_t)
    };
    // SAFETY: r is live.
    if let Some(h) = unsafe { request_state::find(r) }.and_then(|s| s.hold.as_mut()) {
        h.discard = true;
    }
    rc
}

/// How a hold ends.
pub enum Release {
    /// Send the response, with the cookies now in the request's state.
    Send,
    /// Replace it by a 503 (`paranoid_session_store_failure deny`).
    Refuse,
}

/// Ends `r`'s hold: the header and the kept body go down the chain, or the
/// response is replaced by a 503; then whoever drives the response (the
/// upstream, `ngx_http_writer`) is woken.
///
/// # Safety
/// `r` must be a live main request with a hold, and no filter of `r` may be
/// running (this runs in the command's task).
pub unsafe fn release(r: *mut ngx_http_request_t, how: Release) {
    // SAFETY: r is live; the borrow of its state ends here.
    let Some(h) = (unsafe { request_state::find(r) })
        .and_then(|s| s.hold.as_mut())
        .filter(|h| h.holding)
    else {
        return;
    };
    // SAFETY: r is live.
    let bufs = unsafe { hold::unhold(r, h) };
    if h.in_filter {
        // Done inside the header filter that started it: that filter goes
        // on (nothing was kept yet).
        h.early = Some(how);
        return;
    }
    // SAFETY: r, its connection and its pool are live; the buffers were
    // given to us by r's filter chain and are still their producer's.
    unsafe {
        let c = (*r).connection;
        match how {
            Release::Refuse => {
                for b in bufs {
                    hold::consume(b);
                }
                refuse(r);
            }
            Release::Send => {
                let rc = send_header(r);
                if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t {
                    (*c).set_error(1);
                } else if !bufs.is_empty() && (*r).header_only() == 0 {
                    match hold::chain_of(r, &bufs) {
                        Some(chain) if next_body(r, chain) != NGX_ERROR as ngx_int_t => {}
                        _ => (*c).set_error(1),
                    }
                }
            }
        }
        ngx_post_event((*c).write, ptr::addr_of_mut!(ngx_posted_events));
    }
}

/// `paranoid_harden_cookies`: every Set-Cookie already in the response gets
/// HttpOnly, Secure (HTTPS) and SameSite=Lax where it lacks them.
fn harden_cookies(r: *mut ngx_http_request_t) -> Result<(), ()> {
    // SAFETY: r is live.
    let https = unsafe { crate::https::over_https(r) };
    // SAFETY: walking the response header list of a live request; values
    // are replaced by copies in the request pool.
    unsafe {
        let pool = (*r).pool;
        each_named(&mut (*r).headers_out.headers.part, "set-cookie", |h| {
            if let Some(value) = cookie::harden(h.value.as_bytes(), https) {
                h.value = nginx_sys::ngx_str_t::from_bytes(pool, &value).ok_or(())?;
            }
            Ok(())
        })
    }
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
