//! `paranoid_session_metrics`: a content handler, as `stub_status` is,
//! answering the counters in Prometheus' text format, or as JSON with
//! `?format=json`. Who may read it is the operator's to decide (`allow`,
//! `deny`, `auth_basic`).

use nginx_sys::{
    ngx_http_arg, ngx_http_request_t, ngx_int_t, ngx_str_t, NGX_HTTP_BAD_REQUEST, NGX_HTTP_GET,
    NGX_HTTP_HEAD, NGX_HTTP_NOT_ALLOWED, NGX_HTTP_OK,
};
use ngx::core::{Buffer, Status};
use ngx::http::{HTTPStatus, Request};
use paranoid_core::metrics::render::{self, Format, JSON_TYPE, PROMETHEUS_TYPE};
use paranoid_core::metrics::{Counters, Shards};

/// nginx content handler of a `paranoid_session_metrics` location.
///
/// # Safety
/// Called by nginx with a live request.
pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request.
    let method = unsafe { (*r).method } as u32;
    if method & (NGX_HTTP_GET | NGX_HTTP_HEAD) == 0 {
        return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
    }
    // SAFETY: as above.
    let req = unsafe { Request::from_ngx_http_request(r) };
    let rc = req.discard_request_body();
    if rc != Status::NGX_OK {
        return rc.into();
    }
    // SAFETY: r is live; the value points into its request line.
    let Some(format) = Format::of(unsafe { format_arg(r) }) else {
        return NGX_HTTP_BAD_REQUEST as ngx_int_t;
    };
    let snapshot = super::shards_of_request(r)
        .map(Shards::snapshot)
        .unwrap_or_else(|| Counters::default().snapshot());
    let (body, content_type) = match format {
        Format::Prometheus => (render::prometheus(&snapshot), PROMETHEUS_TYPE),
        Format::Json => (render::json(&snapshot), JSON_TYPE),
    };
    // SAFETY: r is live; the content type is a static string nginx only
    // reads.
    unsafe { set_content_type(r, content_type) };
    req.set_status(HTTPStatus(NGX_HTTP_OK as usize));
    req.set_content_length_n(body.len());
    let rc = req.send_header();
    if rc == Status::NGX_ERROR || rc.0 > Status::NGX_OK.0 || req.header_only() {
        return rc.into();
    }
    let Some(mut buf) = req.pool().create_buffer_from_str(&body) else {
        return Status::NGX_ERROR.into();
    };
    buf.set_last_buf(true);
    buf.set_last_in_chain(true);
    let mut out = nginx_sys::ngx_chain_t {
        buf: buf.as_ngx_buf_mut(),
        next: core::ptr::null_mut(),
    };
    req.output_filter(&mut out).into()
}

/// The value of the `format` argument, if given.
///
/// # Safety
/// `r` must be a live request; the slice lives as long as it does.
unsafe fn format_arg(r: *mut ngx_http_request_t) -> Option<&'static [u8]> {
    let mut value = ngx_str_t::default();
    let name = b"format";
    // SAFETY: r is live; nginx reads `name` and points `value` into r->args.
    let rc = unsafe { ngx_http_arg(r, name.as_ptr().cast_mut(), name.len(), &mut value) };
    if rc != Status::NGX_OK.into() {
        return None;
    }
    if value.len == 0 {
        return Some(&[]);
    }
    // SAFETY: value points at value.len bytes of r->args, alive with the
    // request.
    Some(unsafe { core::slice::from_raw_parts(value.data, value.len) })
}

/// # Safety
/// `r` must be a live request.
unsafe fn set_content_type(r: *mut ngx_http_request_t, content_type: &'static str) {
    // SAFETY: r is live; nginx only reads content_type.
    unsafe {
        let out = &mut (*r).headers_out;
        out.content_type_len = content_type.len();
        out.content_type = ngx_str_t {
            len: content_type.len(),
            data: content_type.as_ptr().cast_mut(),
        };
        out.content_type_lowcase = core::ptr::null_mut();
    }
}
