//! The access phase handler: finds or creates the request's session through
//! the store, suspending the request while memcached works and resuming it
//! when the answer is in, as nginx's own modules do (auth_request,
//! limit_req).

use core::ptr;

use nginx_sys::{
    ngx_http_block_reading, ngx_http_core_run_phases, ngx_http_request_empty_handler,
    ngx_http_request_t, ngx_http_test_reading, ngx_int_t, ngx_post_event, ngx_posted_events,
    NGX_HTTP_FORBIDDEN, NGX_HTTP_SERVICE_UNAVAILABLE, NGX_LOG_ERR, NGX_LOG_WARN,
};
use ngx::core::Status as NgxStatus;
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf};
use ngx::ngx_log_error;
use paranoid_core::secret;
use paranoid_core::settings::{Settings, StoreFailure};

use crate::conf::LocConf;
use crate::control;
use crate::grace;
use crate::request_state::{self, RequestState, Status, Verdict};
use crate::session::{self, Decision, Facts, Outcome};
use crate::store::{Store, StoreError};
use crate::ParanoidSessionModule;

/// nginx access phase handler.
///
/// # Safety
/// Called by nginx with a live request.
pub unsafe extern "C" fn handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx passes a live request.
    let req = unsafe { &mut *r };
    let Some(conf) = location_conf(req) else {
        return NgxStatus::NGX_DECLINED.into();
    };
    let Some(settings) = conf.settings.as_ref().filter(|s| s.enabled) else {
        return NgxStatus::NGX_DECLINED.into();
    };
    if !ptr::eq(req.main, r) {
        return NgxStatus::NGX_DECLINED.into();
    }

    // SAFETY: r is a live main request.
    if let Some(state) = unsafe { request_state::find(r) } {
        return match state.verdict {
            // Already decided (this is an internal redirect, or the resume).
            Some(verdict) => finish(verdict),
            // The store is still working; a stray wake-up.
            None => NgxStatus::NGX_AGAIN.into(),
        };
    }

    // SAFETY: as above; no state exists yet.
    let Some(state) = (unsafe { request_state::create(r) }) else {
        return NgxStatus::NGX_ERROR.into();
    };

    // The application's command comes from its response only.
    // SAFETY: r is a live main request.
    unsafe { control::silence_request_header(r, settings) };

    if bypassed(req, conf) {
        if let Some(counters) = crate::metrics::of_request(r) {
            counters.request(Status::Bypass);
        }
        state.status = Some(Status::Bypass);
        state.verdict = Some(Verdict::Continue);
        return NgxStatus::NGX_DECLINED.into();
    }

    // SAFETY: r is live.
    let facts = unsafe { session::facts(r, conf, settings) };
    start(r, state, conf, facts)
}

fn location_conf(req: &ngx::ffi::ngx_http_request_t) -> Option<&'static LocConf> {
    // SAFETY: loc_conf of a live request holds this module's LocConf at
    // its ctx_index.
    let r = unsafe { ngx::http::Request::from_ngx_http_request(ptr::from_ref(req).cast_mut()) };
    ParanoidSessionModule::location_conf(r)
}

/// The worker's store, kept in the http block's configuration.
pub(crate) fn store(r: *mut ngx_http_request_t) -> Option<&'static Store> {
    // SAFETY: main_conf of a live request holds this module's MainConf at
    // its ctx_index.
    let r = unsafe { ngx::http::Request::from_ngx_http_request(r) };
    ParanoidSessionModule::main_conf(r).map(|main| main.store())
}

fn bypassed(req: &mut ngx_http_request_t, conf: &LocConf) -> bool {
    let Some(values) = conf.bypass.as_ref() else {
        return false;
    };
    // SAFETY: req is a live request.
    let r = unsafe { ngx::http::Request::from_ngx_http_request(req) };
    values
        .iter()
        .any(|cv| cv.evaluate(r).is_some_and(|v| !v.is_empty() && v != b"0"))
}

/// Runs the session lookup on the event loop, suspending the request until
/// it is done.
fn start(
    r: *mut ngx_http_request_t,
    state: &'static mut RequestState,
    conf: &'static LocConf,
    facts: Facts,
) -> ngx_int_t {
    let state_ptr: *mut RequestState = state;
    // SAFETY: the connection's log outlives the request.
    let log = unsafe { (*(*r).connection).log };
    let store = store(r);
    let task = ngx::async_::spawn(async move {
        // The configuration outlives every request of its cycle.
        let Some(settings) = conf.settings.as_ref() else {
            return;
        };
        let outcome = match store {
            Some(store) => session::run(conf, settings, store, &facts, log).await,
            None => Outcome::StoreFailed(StoreError::NotConfigured),
        };
        // SAFETY: the task is owned by the request's state, dropped with the
        // request's pool: while it runs, r and the state are alive.
        let state = unsafe { &mut *state_ptr };
        state.presented = Some(facts.presented);
        // SAFETY: as above.
        unsafe { conclude(r, state, settings, store, outcome) };
    });
    // SAFETY: the state is alive (see above).
    let state = unsafe { &mut *state_ptr };
    if let Some(verdict) = state.verdict {
        // The lookup finished inside spawn (e.g. connect() failed at once):
        // nothing was suspended.
        return finish(verdict);
    }
    // SAFETY: r is live. While suspended, the read handler notices a client
    // that goes away (finalizing the request drops the task with the pool),
    // and stray write events do nothing.
    unsafe {
        (*r).read_event_handler = Some(ngx_http_test_reading);
        (*r).write_event_handler = Some(ngx_http_request_empty_handler);
    }
    state.task = Some(task);
    NgxStatus::NGX_AGAIN.into()
}

/// Records the outcome and, if the request was suspended, resumes its
/// phases.
///
/// # Safety
/// `r` and `state` must be alive.
unsafe fn conclude(
    r: *mut ngx_http_request_t,
    state: &mut RequestState,
    settings: &'static Settings,
    store: Option<&'static Store>,
    outcome: Outcome,
) {
    let counters = crate::metrics::of_request(r);
    let verdict = match outcome {
        Outcome::Decided(Decision {
            plan,
            cookies,
            grace,
            key,
        }) => {
            if let Some(violation) = plan.violation {
                // SAFETY: the request's connection log is alive; nginx adds
                // the client address. Never a token, nonce or key here.
                let log = unsafe { (*(*r).connection).log };
                let uid = plan
                    .offender
                    .map(|u| secret::hex(&u[..4]))
                    .unwrap_or_default();
                ngx_log_error!(
                    NGX_LOG_WARN,
                    log,
                    "paranoid_session: {} violation, session {}, action {}",
                    violation.as_str(),
                    uid,
                    settings.on_violation.as_str()
                );
            }
            if let Some(counters) = counters {
                counters.decided(&plan, settings.on_violation);
            }
            state.status = Some(plan.status);
            state.violation = plan.violation;
            state.uid = plan.uid.map(|u| secret::hex(&u)).unwrap_or_default();
            state.created_ms = plan.created_ms;
            state.cookies = cookies;
            state.user = plan.user;
            state.session_key = key;
            if let (Some(work), Some(store)) = (grace, store) {
                // SAFETY: the connection's log outlives the request, and the
                // task is owned by the request's state.
                let log = unsafe { (*(*r).connection).log };
                state.grace = Some(ngx::async_::spawn(grace::keep(settings, store, work, log)));
            }
            if plan.deny {
                Verdict::Reject(NGX_HTTP_FORBIDDEN as usize)
            } else {
                Verdict::Continue
            }
        }
        Outcome::StoreFailed(err) => {
            if !err.already_logged() {
                // SAFETY: the request's connection log is alive.
                let log = unsafe { (*(*r).connection).log };
                ngx_log_error!(NGX_LOG_ERR, log, "paranoid_session: {}", err);
            }
            state.status = Some(Status::Error);
            if let Some(counters) = counters {
                counters.request(Status::Error);
                counters.failure_policy(settings.store_failure);
            }
            match settings.store_failure {
                StoreFailure::Deny => Verdict::Reject(NGX_HTTP_SERVICE_UNAVAILABLE as usize),
                StoreFailure::Allow => Verdict::Continue,
            }
        }
    };
    state.verdict = Some(verdict);
    if state.task.is_none() {
        // Still inside spawn: start() returns the verdict itself.
        return;
    }
    // SAFETY: r is alive; the posted write event re-runs the phases from the
    // access phase handler, which now finds the verdict.
    unsafe {
        (*r).read_event_handler = Some(ngx_http_block_reading);
        (*r).write_event_handler = Some(ngx_http_core_run_phases);
        ngx_post_event(
            (*(*r).connection).write,
            ptr::addr_of_mut!(ngx_posted_events),
        );
    }
}

fn finish(verdict: Verdict) -> ngx_int_t {
    match verdict {
        Verdict::Continue => NgxStatus::NGX_DECLINED.into(),
        Verdict::Reject(code) => code as ngx_int_t,
    }
}
