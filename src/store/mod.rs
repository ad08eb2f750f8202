//! The session store: memcached, reached through nginx peer connections on
//! the worker's event loop. One `Store` per worker holds the servers and
//! their keepalive pools; `exchange` sends one meta command and reads its
//! reply within a deadline.

use core::cell::UnsafeCell;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;

use nginx_sys::{ngx_connection_t, ngx_log_t};
use paranoid_core::wire::{self, Reply, Request, WireError};

use crate::conf::MainConf;

pub mod peer;
pub mod server;

use peer::{IoError, Peer};
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
pub fn init(main: &MainConf) {
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

/// Removes a connection that the idle handler is about to close.
pub(crate) fn forget_idle(c: *mut ngx_connection_t) {
    with_store(|store| {
        for server in &mut store.servers {
            server.idle.retain(|idle| idle.as_ptr() != c);
        }
    });
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

    let talk = talk(index, req, out, log);
    match with_deadline(talk, timeout_ms).await {
        Some(Ok((reply, peer))) => {
            with_store(|store| {
                if let Some(s) = store.servers.get_mut(index) {
                    peer.release(s);
                }
            });
            Ok(reply)
        }
        Some(Err(Failure::Io(err))) => Err(StoreError::Io {
            server: server(),
            err,
        }),
        Some(Err(Failure::Wire(err))) => Err(StoreError::Protocol {
            server: server(),
            err,
        }),
        None => Err(StoreError::Timeout {
            server: server(),
            ms: timeout_ms,
        }),
    }
}

enum Failure {
    Io(IoError),
    Wire(WireError),
}

/// Connect (or reuse), send, read one reply. The peer is returned for reuse
/// only after a complete reply with nothing left over.
async fn talk(
    index: usize,
    req: &Request<'_>,
    out: Vec<u8>,
    log: *mut ngx_log_t,
) -> Result<(Reply, Peer), Failure> {
    let opened = with_store(|store| {
        store
            .servers
            .get_mut(index)
            .map(|server| Peer::open(server, log))
    })
    .flatten()
    .ok_or(Failure::Io(IoError::Closed))?;
    let (mut peer, connected) = opened.map_err(Failure::Io)?;
    if !connected {
        peer.connected().await.map_err(Failure::Io)?;
    }
    peer.send_all(&out).await.map_err(Failure::Io)?;
    let mut buf = Vec::with_capacity(peer::RECV_CHUNK);
    loop {
        peer.recv_some(&mut buf).await.map_err(Failure::Io)?;
        if let Some((reply, used)) = wire::parse(req, &buf).map_err(Failure::Wire)? {
            if used != buf.len() {
                return Err(Failure::Wire(WireError::Protocol(
                    "unexpected bytes after the reply".into(),
                )));
            }
            return Ok((reply, peer));
        }
    }
}

fn request_key<'a>(req: &Request<'a>) -> &'a [u8] {
    match *req {
        Request::Get { key, .. }
        | Request::Add { key, .. }
        | Request::Set { key, .. }
        | Request::Delete { key }
        | Request::Touch { key, .. } => key,
    }
}

/// Polls `fut` until it finishes or `ms` milliseconds pass (`None`).
/// Dropping the unfinished future closes its connection.
async fn with_deadline<F: Future>(fut: F, ms: u64) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut timer = pin!(ngx::async_::sleep(Duration::from_millis(ms)));
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
