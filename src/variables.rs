//! `$paranoid_session_uid`, `$paranoid_session_status`,
//! `$paranoid_session_violation`, `$paranoid_session_user` and
//! `$paranoid_session_created`.
//!
//! They are not cacheable: their value is decided in the access phase, and a
//! `map` or `if` evaluated earlier must not pin an empty value.

use nginx_sys::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_int_t, ngx_pnalloc, ngx_str_t,
    ngx_variable_value_t, NGX_HTTP_VAR_NOCACHEABLE,
};
use ngx::core::Status;
use ngx::ngx_string;

use crate::request_state;

/// Which variable a get handler is asked for.
#[derive(Clone, Copy)]
#[repr(usize)]
enum Which {
    Uid = 0,
    Status = 1,
    Violation = 2,
    User = 3,
    Created = 4,
}

const VARIABLES: [(ngx_str_t, Which); 5] = [
    (ngx_string!("paranoid_session_uid"), Which::Uid),
    (ngx_string!("paranoid_session_status"), Which::Status),
    (ngx_string!("paranoid_session_violation"), Which::Violation),
    (ngx_string!("paranoid_session_user"), Which::User),
    (ngx_string!("paranoid_session_created"), Which::Created),
];

/// Adds the variables to nginx (called from preconfiguration).
///
/// # Safety
/// `cf` must be nginx's configuration context during preconfiguration.
pub unsafe fn register(cf: *mut ngx_conf_t) -> Result<(), ()> {
    for (name, which) in VARIABLES {
        let mut name = name;
        // SAFETY: cf is valid; nginx copies the name into its own storage.
        let var = unsafe { ngx_http_add_variable(cf, &mut name, NGX_HTTP_VAR_NOCACHEABLE as _) };
        if var.is_null() {
            return Err(());
        }
        // SAFETY: var was just returned non-null by nginx and is ours to fill.
        unsafe {
            (*var).get_handler = Some(get_variable);
            (*var).data = which as usize;
        }
    }
    Ok(())
}

/// The value of one variable for a request: empty when the module did not
/// look at it (off, or before the access phase).
fn value_of(r: *mut ngx_http_request_t, which: Which) -> &'static [u8] {
    // SAFETY: variable handlers get a live request.
    let Some(state) = (unsafe { request_state::find(r) }) else {
        return b"";
    };
    match which {
        Which::Uid => state.uid.as_bytes(),
        Which::Status => state.status.map_or("", |s| s.as_str()).as_bytes(),
        Which::Violation => state.violation.map_or("", |v| v.as_str()).as_bytes(),
        Which::User => state.user.as_ref().map_or(&b""[..], |u| u.as_bytes()),
        Which::Created => match state.created_ms {
            // Formatted only when a configuration asks for it, into the
            // request's pool: no cost to requests that never read it.
            Some(ms) => in_pool(r, (ms / 1000).to_string().as_bytes()),
            None => b"",
        },
    }
}

/// A copy of `text` in `r`'s pool (empty if the pool is exhausted).
fn in_pool(r: *mut ngx_http_request_t, text: &[u8]) -> &'static [u8] {
    // SAFETY: r is live; its pool outlives every use of the variable.
    unsafe {
        let buf = ngx_pnalloc((*r).pool, text.len()).cast::<u8>();
        if buf.is_null() {
            return b"";
        }
        core::ptr::copy_nonoverlapping(text.as_ptr(), buf, text.len());
        core::slice::from_raw_parts(buf, text.len())
    }
}

unsafe extern "C" fn get_variable(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    data: usize,
) -> ngx_int_t {
    let which = match data {
        0 => Which::Uid,
        1 => Which::Status,
        2 => Which::Violation,
        3 => Which::User,
        _ => Which::Created,
    };
    let value = value_of(r, which);
    // SAFETY: nginx calls get handlers with a value slot to fill.
    let v = unsafe { &mut *v };
    v.set_len(value.len() as u32);
    v.set_valid(1);
    v.set_no_cacheable(1);
    v.set_not_found(0);
    v.data = value.as_ptr().cast_mut();
    Status::NGX_OK.into()
}
