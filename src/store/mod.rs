//! The session store: memcached, reached through nginx peer connections on
//! the worker's event loop. One `Store` per worker holds the servers and
//! their connections; `exchange` queues one meta command on a connection
//! (commands are pipelined, see `pipeline`) and waits for its reply within
//! a deadline.

use core::cell::UnsafeCell;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use nginx_sys::ngx_log_t;
use paranoid_core::wire::{self, Reply, Request, WireError};

use crate::conf::MainConf;

pub mod address;
pub(crate) mod deadline;
pub mod pipeline;
pub mod server;

pub use address::Address;
use deadline::Deadline;
use pipeline::{Failure, IoError, Pipeline, Slot};
use server::Server;

/// Why an exchange with memcached failed.
#[derive(Debug)]
pub enum StoreError {
    NotConfigured,
    /// The OS CSPRNG failed, so no session secret could be made.
    Random,
    /// Concurrent requests of the session kept changing its record.
    Contention,
    Io {
        server: String,
        err: IoError,
    },
    Timeout {
        server: String,
        ms: u64,
    },
    Protocol {
        server: String,
        err: WireError,
    },
}

impl StoreError {
    /// Whether nginx already logged this failure (connect() errors).
    pub fn already_logged(&self) -> bool {
        matches!(
            self,
            StoreError::Io {
                err: IoError::ConnectLogged,
                ..
            }
        )
    }
}

impl core::fmt::Display for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::NotConfigured => f.write_str("no memcached server configured"),
            StoreError::Random => f.write_str("the OS random generator failed"),
            StoreError::Contention => {
                f.write_str("the session record kept changing under concurrent requests")
            }
            StoreError::Io { server, err } => write!(f, "memcached {server}: {err}"),
            StoreError::Timeout { server, ms } => {
                write!(f, "memcached {server}: no answer within {ms}ms")
            }
            StoreError::Protocol { server, err } => write!(f, "memcached {server}: {err}"),
        }
    }
}

/// The worker's servers, in configuration order.
pub struct Store {
    servers: Vec<Server>,
    names: Vec<String>,
}

/// Per-worker state: nginx workers are single-threaded, and nothing here is
/// touched from nginx's thread pools.
struct WorkerCell(UnsafeCell<Option<Store>>);

// SAFETY: only the worker's event-loop thread reads or writes the cell.
unsafe impl Sync for WorkerCell {}

static STORE: WorkerCell = WorkerCell(UnsafeCell::new(None));

/// Runs `f` on the worker's store. Never call it re-entrantly or hold the
/// reference across an await: every use is a short synchronous section.
fn with_store<T>(f: impl FnOnce(&mut Store) -> T) -> Option<T> {
    // SAFETY: single-threaded worker, and no caller nests with_store or
    // keeps the reference past its closure.
    let store = unsafe { &mut *STORE.0.get() };
    store.as_mut().map(f)
}

/// Builds the worker's store from the configuration (init_process).
pub fn init(main: &'static MainConf) {
    let keepalive = main.keepalive() as usize;
    let servers: Vec<Server> = main
        .servers
        .iter()
        .map(|s| Server::new(s, keepalive))
        .collect();
    let names = servers.iter().map(|s| s.name.clone()).collect();
    // SAFETY: init_process runs before any request of this worker.
    unsafe { *STORE.0.get() = Some(Store { servers, names }) };
}

/// Takes the pipeline at `p` out of its server's list, if still there.
pub(crate) fn take_pipeline(p: *const Pipeline) -> Option<Box<Pipeline>> {
    with_store(|store| {
        store
            .servers
            .iter_mut()
            .find_map(|server| server.take(|q| core::ptr::eq(q, p)))
    })
    .flatten()
}

/// After replies were delivered: closes the pipeline at `p` if nothing
/// waits on it and its server already keeps enough idle connections (or
/// the worker is shutting down).
pub(crate) fn release_if_idle(p: *const Pipeline) {
    // SAFETY: a plain read of nginx's flag, on the worker's thread.
    let exiting = unsafe { nginx_sys::ngx_exiting } != 0;
    let surplus = with_store(|store| {
        let server = store
            .servers
            .iter_mut()
            .find(|server| server.conns.iter().any(|q| core::ptr::eq(&**q, p)))?;
        if exiting || server.idle() > server.keepalive {
            server.take(|q| core::ptr::eq(q, p) && q.in_flight() == 0)
        } else {
            None
        }
    })
    .flatten();
    if let Some(pipeline) = surplus {
        (*pipeline).shut(Failure::Io(IoError::Closed));
    }
}

/// Sends `req` to the server owning its key and returns the reply, within
/// `timeout_ms` for connect, send and receive together.
pub async fn exchange(
    req: &Request<'_>,
    timeout_ms: u64,
    log: *mut ngx_log_t,
) -> Result<Reply, StoreError> {
    let key = request_key(req);
    let index =
        with_store(|store| (!store.names.is_empty()).then(|| wire::route(key, &store.names)))
            .flatten()
            .ok_or(StoreError::NotConfigured)?;
    // The name is only needed when something fails.
    let server = || {
        with_store(|store| store.names.get(index).cloned())
            .flatten()
            .unwrap_or_default()
    };
    let mut out = Vec::with_capacity(128);
    wire::encode(req, &mut out).map_err(|err| StoreError::Protocol {
        server: server(),
        err,
    })?;

    let slot = Slot::new(req);
    let id = with_store(|store| {
        store
            .servers
            .get_mut(index)
            .map(|s| s.submit(&out, slot.clone(), log))
    })
    .flatten()
    .ok_or(StoreError::NotConfigured)?
    .map_err(|err| StoreError::Io {
        server: server(),
        err,
    })?;

    match with_deadline(slot.wait(), timeout_ms).await {
        Some(Ok(reply)) => Ok(reply),
        Some(Err(Failure::Io(err))) => Err(StoreError::Io {
            server: server(),
            err,
        }),
        Some(Err(Failure::Wire(err))) => Err(StoreError::Protocol {
            server: server(),
            err,
        }),
        None => {
            // memcached answers in order: the replies behind this one are
            // late too, so the connection goes, with what waits on it.
            let late = with_store(|store| {
                store
                    .servers
                    .get_mut(index)
                    .and_then(|s| s.take(|p| p.id == id))
            })
            .flatten();
            if let Some(pipeline) = late {
                (*pipeline).shut(Failure::Io(IoError::Dropped));
            }
            Err(StoreError::Timeout {
                server: server(),
                ms: timeout_ms,
            })
        }
    }
}

fn request_key<'a>(req: &Request<'a>) -> &'a [u8] {
    match *req {
        Request::Get { key, .. }
        | Request::Add { key, .. }
        | Request::Set { key, .. }
        | Request::Delete { key, .. }
        | Request::Touch { key, .. } => key,
    }
}

/// Polls `fut` until it finishes or `ms` milliseconds pass (`None`).
/// The timer is not cancelable (see `deadline`); dropping the unfinished
/// future leaves its slot to be filled, unread, by the late reply.
async fn with_deadline<F: Future>(fut: F, ms: u64) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut timer = pin!(Deadline::new(ms));
    poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
