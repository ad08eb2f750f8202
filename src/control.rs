//! The application's command (`paranoid_session_control_header`, by
//! default `X-Paranoid-Session`): taken from the upstream's response and
//! never shown to the client, applied while the response is held, and
//! silenced in client requests.

use nginx_sys::{ngx_http_request_t, NGX_LOG_ERR, NGX_LOG_INFO, NGX_LOG_WARN};
use ngx::ngx_log_error;
use paranoid_core::control::Command;
use paranoid_core::engine::{CookieOut, Status};
use paranoid_core::secret::{self, Hasher};
use paranoid_core::settings::{Settings, StoreFailure};

use crate::conf::LocConf;
use crate::filter::{self, Release};
use crate::headers::each_named;
use crate::hold::Hold;
use crate::request_state::{self, RequestState};
use crate::session::commands::{Applied, Ctx};
use crate::session::records::Records;
use crate::session::{self, now_ms};
use crate::store::{Store, StoreError};
use paranoid_core::metrics::{AppCommand, Counters, SessionEvent};

/// A client's own copy of the control header reaches the upstream empty:
/// it does nothing, and an application that reads request headers by
/// mistake never sees the client's value. (nginx offers modules no way to
/// drop a request header; `proxy_set_header X-Paranoid-Session "";` drops
/// it entirely.)
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn silence_request_header(r: *mut ngx_http_request_t, settings: &Settings) {
    let Some(name) = settings.control_header.as_deref() else {
        return;
    };
    // SAFETY: r's request header list is live.
    unsafe {
        each_named(&mut (*r).headers_in.headers.part, name, |h| {
            h.value.len = 0;
            Ok::<(), ()>(())
        })
        .ok();
    }
}

/// The command in the upstream's response, removed from it. A malformed
/// value, or more than one, is logged and ignored as a whole.
///
/// # Safety
/// `r` must be a live main request in its header filter.
pub unsafe fn take(r: *mut ngx_http_request_t, settings: &Settings) -> Option<Command> {
    let name = settings.control_header.as_deref()?;
    let mut values = Vec::new();
    // SAFETY: r's response header list is live; hash 0 deletes a header.
    unsafe {
        each_named(&mut (*r).headers_out.headers.part, name, |h| {
            values.push(h.value.as_bytes().to_vec());
            h.hash = 0;
            Ok::<(), ()>(())
        })
        .ok();
    }
    // SAFETY: r's connection log is live.
    let log = unsafe { (*(*r).connection).log };
    match values.as_slice() {
        [] => None,
        [value] => match Command::parse(value) {
            Ok(command) => Some(command),
            Err(err) => {
                ngx_log_error!(
                    NGX_LOG_ERR,
                    log,
                    "paranoid_session: ignored the upstream's {}: {}",
                    name,
                    err
                );
                None
            }
        },
        _ => {
            ngx_log_error!(
                NGX_LOG_ERR,
                log,
                "paranoid_session: ignored the upstream's {}: {} of them, one command is allowed",
                name,
                values.len()
            );
            None
        }
    }
}

/// Holds the response and applies `command` in a task that releases it.
///
/// # Safety
/// `r` must be a live main request in its header filter; `state` is its
/// state.
pub unsafe fn start(
    r: *mut ngx_http_request_t,
    state: &mut RequestState,
    conf: &'static LocConf,
    command: Command,
) {
    let (Some(settings), Some(store)) = (conf.settings.as_ref(), crate::access::store(r)) else {
        return;
    };
    let state_ptr: *mut RequestState = state;
    state.hold = Some(Hold::new());
    // SAFETY: r is live.
    unsafe { crate::hold::flag(r, true) };
    // SAFETY: the connection's log outlives the request.
    let log = unsafe { (*(*r).connection).log };
    let task = ngx::async_::spawn(async move {
        // SAFETY: the task is owned by the request's state (its hold),
        // dropped with the request's pool: while it runs, r and the state
        // are alive. Borrows of the state do not cross an await or a call
        // into nginx.
        let how = unsafe { apply(state_ptr, conf, settings, store, command, log).await };
        // SAFETY: as above; release ends the task's use of r.
        unsafe { filter::release(r, how) };
    });
    if let Some(hold) = state.hold.as_mut() {
        if hold.holding {
            hold.task = Some(task);
        } else {
            // Released inside spawn: the task is done.
            drop(task);
        }
    }
}

/// Applies the command to the store and records what the response says.
///
/// # Safety
/// `state` points to `r`'s live state, not borrowed elsewhere during the
/// call.
async unsafe fn apply(
    state: *mut RequestState,
    conf: &LocConf,
    settings: &'static Settings,
    store: &Store,
    command: Command,
    log: *mut nginx_sys::ngx_log_t,
) -> Release {
    let (presented, key, user) = {
        // SAFETY: the caller's contract.
        let state = unsafe { &*state };
        (
            state.presented.clone(),
            state.session_key.clone(),
            state.user.clone(),
        )
    };
    let Some(presented) = presented else {
        return Release::Send;
    };
    let hasher = Hasher::new(settings.secret.as_deref());
    let records = Records {
        store,
        settings,
        now_ms: now_ms(),
        log,
    };
    let ctx = Ctx {
        hasher: &hasher,
        presented: &presented,
        key,
        user,
    };
    let result = records.command(&command, &ctx).await;
    if let Some(counters) = store.counters() {
        count(counters, &command, &result, settings);
    }
    // SAFETY: the caller's contract; the await is over.
    let state = unsafe { &mut *state };
    match result {
        Ok(Applied::Plan(plan)) => {
            let cookies = session::set_cookies(conf, settings, &presented, &plan.cookies);
            if plan.cookies.contains(&CookieOut::ExpireAll) {
                state.cookies = cookies;
            } else {
                let token = format!("{}=", conf.names.token);
                state.cookies.retain(|c| !c.starts_with(&token));
                state.cookies.extend(cookies);
            }
            state.status = Some(plan.status);
            state.uid = plan.uid.map(|u| secret::hex(&u)).unwrap_or_default();
            state.created_ms = plan.created_ms;
            state.session_key = session::commands::added_key(&plan, &settings.key_prefix);
            state.user = plan.user;
            ngx_log_error!(
                NGX_LOG_INFO,
                log,
                "paranoid_session: {} applied",
                command.name()
            );
            Release::Send
        }
        Ok(Applied::Everywhere {
            ended,
            own,
            no_index,
        }) => {
            if no_index {
                ngx_log_error!(
                    NGX_LOG_WARN,
                    log,
                    "paranoid_session: logout-everywhere found no session index for the user \
                     (never logged in, or memcached evicted it): sessions missing from it end \
                     only at their timeouts"
                );
            }
            ngx_log_error!(
                NGX_LOG_INFO,
                log,
                "paranoid_session: logout-everywhere ended {} sessions",
                ended
            );
            if own {
                let expire =
                    session::set_cookies(conf, settings, &presented, &[CookieOut::ExpireAll]);
                state.cookies = expire;
                state.status = Some(Status::Destroyed);
                state.uid.clear();
                state.created_ms = None;
                state.user = None;
                state.session_key = None;
            }
            Release::Send
        }
        Ok(Applied::Nothing(why)) => {
            ngx_log_error!(
                NGX_LOG_ERR,
                log,
                "paranoid_session: ignored {}: {}",
                command.name(),
                why
            );
            Release::Send
        }
        Err(err) => {
            if !err.already_logged() {
                ngx_log_error!(
                    NGX_LOG_ERR,
                    log,
                    "paranoid_session: {} not applied: {}",
                    command.name(),
                    err
                );
            }
            state.status = Some(Status::Error);
            match settings.store_failure {
                StoreFailure::Deny => Release::Refuse,
                StoreFailure::Allow => Release::Send,
            }
        }
    }
}

/// Counts an applied command, what it did to sessions, and the failure
/// policy when the store failed.
fn count(
    counters: &Counters,
    command: &Command,
    result: &Result<Applied, StoreError>,
    settings: &Settings,
) {
    let applied = match result {
        Ok(Applied::Plan(plan)) => {
            counters.plan(plan);
            true
        }
        Ok(Applied::Everywhere { ended, .. }) => {
            counters.session(SessionEvent::Destroyed, *ended as u64);
            true
        }
        Ok(Applied::Nothing(_)) => false,
        Err(_) => {
            counters.failure_policy(settings.store_failure);
            false
        }
    };
    if applied {
        counters.app_command(AppCommand::of(command));
    }
}

/// The state of `r` if its command may be applied: the module checked the
/// request (not bypassed) and no hold exists yet.
///
/// # Safety
/// `r` must be a live main request.
pub unsafe fn applicable(r: *mut ngx_http_request_t) -> Option<&'static mut RequestState> {
    // SAFETY: r is live.
    let state = unsafe { request_state::find(r) }?;
    if state.hold.is_some() || matches!(state.status, None | Some(Status::Bypass)) {
        return None;
    }
    Some(state)
}

/// Logs a command dropped because the module did not check the request
/// (`paranoid_session_bypass`) or the response was held already.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn not_applicable(r: *mut ngx_http_request_t, command: &Command) {
    // SAFETY: r's connection log is live.
    let log = unsafe { (*(*r).connection).log };
    ngx_log_error!(
        NGX_LOG_INFO,
        log,
        "paranoid_session: {} not applied: the request's session was not checked",
        command.name()
    );
}
