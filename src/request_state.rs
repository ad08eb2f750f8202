//! What the module decided for one client request, kept where an internal
//! redirect cannot wipe it.
//!
//! nginx clears module contexts on internal redirects (index, try_files,
//! error_page, `rewrite ... last`), which would run the check twice. The
//! state therefore lives in a cleanup handler of the main request's pool,
//! the way the realip module finds its context again; `r->ctx` is only a
//! shortcut to it.

use core::ffi::c_void;

use nginx_sys::{ngx_http_request_t, ngx_pool_cleanup_add};
use ngx::async_::Task;
use ngx::http::HttpModule;

use crate::ParanoidSessionModule;

use paranoid_core::control::UserId;
use paranoid_core::engine::Presented;
pub use paranoid_core::engine::{Status, Violation};

/// How the access phase ends once the store answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the request go on.
    Continue,
    /// Answer with this HTTP status.
    Reject(usize),
}

/// One client request's session state.
#[derive(Default)]
pub struct RequestState {
    /// The store exchange while it runs; dropping it (with the request's
    /// pool) cancels it and closes its memcached connection.
    pub task: Option<Task<()>>,
    pub verdict: Option<Verdict>,
    pub status: Option<Status>,
    pub violation: Option<Violation>,
    /// 32 hex chars once the request has a session.
    pub uid: String,
    /// `$paranoid_session_created`: when that session began, Unix ms.
    pub created_ms: Option<u64>,
    /// `Set-Cookie` values for the header filter, sent once.
    pub cookies: Vec<String>,
    /// Keeps superseded values acceptable until the response leaves;
    /// dropped by the header filter.
    pub grace: Option<Task<()>>,
    pub cookies_sent: bool,
    /// `$paranoid_session_user`.
    pub user: Option<UserId>,
    /// The store key of the session after the access phase's writes, for
    /// the application's commands.
    pub session_key: Option<String>,
    /// What the request presented, for a session a `login` must start.
    pub presented: Option<Presented>,
    /// The response held while the application's command is applied.
    pub hold: Option<crate::hold::Hold>,
}

// Identified by address in the pool's cleanup list: never inlined or
// duplicated, so every use sees the same address.
#[inline(never)]
unsafe extern "C" fn drop_state(data: *mut c_void) {
    // SAFETY: data is the Box<RequestState> leaked by `create`, dropped once
    // here when the pool is destroyed.
    drop(unsafe { Box::from_raw(data.cast::<RequestState>()) });
}

/// The state of `r`'s main request, if the access handler created one.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn find(r: *mut ngx_http_request_t) -> Option<&'static mut RequestState> {
    // SAFETY: r and its main request are live; the cleanup list belongs to
    // the main request's pool, which subrequests share.
    unsafe {
        let main = ngx::http::Request::from_ngx_http_request((*r).main);
        let module = ParanoidSessionModule::module();
        // Read as a raw pointer: ngx's get_module_ctx hands out a shared
        // reference, and the state is mutated.
        let ctx = *(*(*r).main).ctx.add(module.ctx_index);
        if !ctx.is_null() {
            return Some(&mut *ctx.cast::<RequestState>());
        }
        let mut cln = (*(*r).main).pool.read().cleanup;
        while !cln.is_null() {
            let ours = drop_state as unsafe extern "C" fn(*mut c_void);
            if (*cln)
                .handler
                .is_some_and(|h| core::ptr::fn_addr_eq(h, ours))
            {
                let state = (*cln).data.cast::<RequestState>();
                main.set_module_ctx(state.cast(), module);
                return Some(&mut *state);
            }
            cln = (*cln).next;
        }
        None
    }
}

/// Creates the main request's state, owned by its pool.
///
/// # Safety
/// `r` must be a live main request without a state.
pub unsafe fn create(r: *mut ngx_http_request_t) -> Option<&'static mut RequestState> {
    // SAFETY: r is live; the cleanup frees the box exactly once with the
    // pool, after which nothing can reach it.
    unsafe {
        let cln = ngx_pool_cleanup_add((*r).pool, 0);
        if cln.is_null() {
            return None;
        }
        let state = Box::into_raw(Box::new(RequestState::default()));
        (*cln).handler = Some(drop_state);
        (*cln).data = state.cast();
        ngx::http::Request::from_ngx_http_request(r)
            .set_module_ctx(state.cast(), ParanoidSessionModule::module());
        Some(&mut *state)
    }
}
