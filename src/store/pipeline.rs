//! One memcached connection shared by the worker's exchanges.
//!
//! memcached answers the commands of a connection in the order it read them,
//! so a connection can carry many commands at once: each exchange appends
//! its command to the connection's output and queues a [`Slot`]; replies
//! fill the slots in order. The output is flushed from a posted event, after
//! the event loop has run every handler that was ready, so the commands of
//! all the requests handled in one loop iteration leave in one send() and
//! their replies come back in as few recv() calls. On a busy worker that
//! removes most of the per-request system calls of the store, on both
//! sides.
//!
//! Nothing here wakes a task while the worker's store is borrowed: slots are
//! finished from the connection's event handlers, or by the caller after it
//! took the pipeline out of the store.

use core::cell::RefCell;
use core::future::poll_fn;
use core::ptr::{self, NonNull};
use core::task::{Poll, Waker};

use nginx_sys::{
    ngx_close_connection, ngx_connection_t, ngx_event_connect_peer, ngx_event_get_peer,
    ngx_event_t, ngx_handle_read_event, ngx_handle_write_event, ngx_peer_connection_t,
    ngx_post_event, ngx_posted_events, NGX_AGAIN, NGX_OK,
};
use ngx::core::Status;
use paranoid_core::wire::{self, Reply, Request, WireError};

use super::server::Server;
use std::collections::VecDeque;
use std::rc::Rc;

/// Why talking to memcached failed; shown in the error log.
#[derive(Debug, Clone)]
pub enum IoError {
    Connect(String),
    /// nginx already wrote an error line naming the server and the reason.
    ConnectLogged,
    Send(String),
    Recv(String),
    Closed,
    /// Another command on the same connection timed out, so the connection
    /// was dropped with everything still waiting on it.
    Dropped,
    /// Every connection the server may have is full of waiting commands.
    Busy,
}

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IoError::Connect(why) => write!(f, "connect failed: {why}"),
            IoError::ConnectLogged => f.write_str("connect failed"),
            IoError::Send(why) => write!(f, "send failed: {why}"),
            IoError::Recv(why) => write!(f, "recv failed: {why}"),
            IoError::Closed => f.write_str("connection closed by the server"),
            IoError::Dropped => {
                f.write_str("connection dropped after another command on it timed out")
            }
            IoError::Busy => f.write_str("too many commands waiting for replies"),
        }
    }
}

/// How an exchange failed.
#[derive(Debug, Clone)]
pub enum Failure {
    Io(IoError),
    Wire(WireError),
}

/// Commands one connection may have waiting for replies.
pub const MAX_IN_FLIGHT: usize = 256;

/// Bytes asked of one recv().
const RECV_CHUNK: usize = 4096;

/// Where one exchange's reply lands.
pub struct Slot {
    /// The command's shape (no key or value): what the reply must answer.
    expect: Request<'static>,
    state: RefCell<SlotState>,
}

#[derive(Default)]
struct SlotState {
    result: Option<Result<Reply, Failure>>,
    waker: Option<Waker>,
}

impl Slot {
    pub fn new(req: &Request<'_>) -> Rc<Slot> {
        let expect = match *req {
            Request::Get { touch, .. } => Request::Get { key: b"", touch },
            Request::Add { ttl, .. } => Request::Add {
                key: b"",
                value: b"",
                ttl,
            },
            Request::Set { ttl, cas, .. } => Request::Set {
                key: b"",
                value: b"",
                ttl,
                cas,
            },
            Request::Delete { cas, .. } => Request::Delete { key: b"", cas },
            Request::Touch { ttl, .. } => Request::Touch { key: b"", ttl },
        };
        Rc::new(Slot {
            expect,
            state: RefCell::new(SlotState::default()),
        })
    }

    /// Waits for the reply (or the connection's failure).
    pub async fn wait(&self) -> Result<Reply, Failure> {
        poll_fn(|cx| {
            let mut state = self.state.borrow_mut();
            match state.result.take() {
                Some(result) => Poll::Ready(result),
                None => {
                    state.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Stores the result and wakes the exchange, which may run at once.
    fn finish(&self, result: Result<Reply, Failure>) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.result = Some(result);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// An open (or opening) connection and the commands waiting on it. Boxed in
/// its server's list: `c->data` points at it.
pub struct Pipeline {
    c: NonNull<ngx_connection_t>,
    /// Names the pipeline for `abandon` without keeping a pointer.
    pub id: u64,
    connected: bool,
    out: Vec<u8>,
    sent: usize,
    input: Vec<u8>,
    slots: VecDeque<Rc<Slot>>,
}

impl Pipeline {
    /// Starts connecting to `server`. nginx logs a connect() that fails at
    /// once through `log`; the connection logs through the cycle's log
    /// afterwards, as it outlives the request that opened it.
    pub fn open(
        server: &mut Server,
        id: u64,
        log: *mut nginx_sys::ngx_log_t,
    ) -> Result<Box<Pipeline>, IoError> {
        // SAFETY: an all-zero peer connection is nginx's initial state.
        let mut pc: ngx_peer_connection_t = unsafe { core::mem::zeroed() };
        let addr = server.peer();
        pc.sockaddr = addr.sockaddr;
        pc.socklen = addr.socklen;
        // nginx only reads the name, to log a failed connect().
        pc.name = ptr::from_ref(&addr.name).cast_mut();
        pc.get = Some(ngx_event_get_peer);
        pc.log = log;
        pc.set_log_error(nginx_sys::ngx_connection_log_error_e_NGX_ERROR_ERR);

        // SAFETY: pc is fully initialised; nginx allocates the connection
        // from the worker's connection pool and keeps no pointer to pc or
        // to what it points at once it returns.
        let rc = Status(unsafe { ngx_event_connect_peer(&mut pc) });
        let c = match NonNull::new(pc.connection) {
            Some(c) if rc == Status::NGX_OK || rc == Status::NGX_AGAIN => c,
            Some(c) => {
                // SAFETY: a connection nginx gave us and nobody else holds.
                unsafe { ngx_close_connection(c.as_ptr()) };
                return Err(IoError::ConnectLogged);
            }
            // ngx_event_connect_peer closed it and logged the failure.
            None => return Err(IoError::ConnectLogged),
        };
        let mut pipeline = Box::new(Pipeline {
            c,
            id,
            connected: rc == Status::NGX_OK,
            out: Vec::with_capacity(RECV_CHUNK),
            sent: 0,
            input: Vec::with_capacity(RECV_CHUNK),
            slots: VecDeque::new(),
        });
        // SAFETY: the connection is ours and its events are valid; the box
        // does not move while it is in the server's list, and the
        // connection is closed before the box is dropped.
        unsafe {
            let conn = &mut *c.as_ptr();
            conn.data = ptr::from_mut(&mut *pipeline).cast();
            conn.log = (*nginx_sys::ngx_cycle).log;
            (*conn.read).log = conn.log;
            (*conn.write).log = conn.log;
            (*conn.read).handler = Some(on_read);
            (*conn.write).handler = Some(on_write);
        }
        Ok(pipeline)
    }

    pub fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// Queues one encoded command; it leaves with the next flush.
    pub fn submit(&mut self, command: &[u8], slot: Rc<Slot>) {
        self.out.extend_from_slice(command);
        self.slots.push_back(slot);
        // SAFETY: the connection is open while the pipeline exists.
        let c = unsafe { &mut *self.c.as_ptr() };
        c.set_idle(0);
        if self.connected {
            // SAFETY: the write event of a live connection; posted events
            // run after every ready handler of this loop iteration.
            unsafe {
                if (*c.write).posted() == 0 {
                    ngx_post_event(c.write, ptr::addr_of_mut!(ngx_posted_events));
                }
            }
        }
    }

    /// Closes the connection and fails every command still waiting. The
    /// pipeline must already be out of its server's list.
    pub fn shut(self, why: Failure) {
        // SAFETY: closing the connection we own removes its events, posted
        // events and timers, so no handler sees the box after this.
        unsafe { ngx_close_connection(self.c.as_ptr()) };
        for slot in &self.slots {
            slot.finish(Err(why.clone()));
        }
    }

    /// The connection, borrowed apart from the pipeline's buffers.
    fn conn<'a>(&self) -> &'a mut ngx_connection_t {
        // SAFETY: the connection is open while the pipeline exists, and
        // nginx's structure is not part of the pipeline.
        unsafe { &mut *self.c.as_ptr() }
    }

    /// Write event: the connect finished, or there is output to send.
    fn writable(&mut self) -> Result<(), IoError> {
        if !self.connected {
            let fd = self.conn().fd;
            socket_error(fd).map_err(IoError::Connect)?;
            self.connected = true;
        }
        while self.sent < self.out.len() {
            let c = self.conn();
            let send = c
                .send
                .ok_or_else(|| IoError::Send("no send handler".into()))?;
            let rest = self.out.get(self.sent..).unwrap_or_default();
            // SAFETY: rest is valid for its length; send is nginx's socket
            // writer for this connection.
            let n = unsafe { send(c, rest.as_ptr().cast_mut(), rest.len()) };
            if n == NGX_AGAIN as isize {
                // SAFETY: the write event of a live connection.
                if unsafe { ngx_handle_write_event(c.write, 0) } != NGX_OK as isize {
                    return Err(IoError::Send("cannot arm the write event".into()));
                }
                return Ok(());
            }
            if n <= 0 {
                return Err(IoError::Send(last_os_error()));
            }
            self.sent += n as usize;
        }
        self.out.clear();
        self.sent = 0;
        Ok(())
    }

    /// Read event: reads what arrived and takes every complete reply off
    /// the queue. Returns the finished slots, to be woken by the caller,
    /// and the failure that ends the connection, if any.
    fn readable(&mut self) -> (Vec<(Rc<Slot>, Reply)>, Option<Failure>) {
        let mut done = Vec::new();
        loop {
            let c = self.conn();
            // SAFETY: the read event of a live connection.
            let rev = unsafe { &mut *c.read };
            if rev.ready() == 0 {
                // SAFETY: as above.
                if unsafe { ngx_handle_read_event(rev, 0) } != NGX_OK as isize {
                    let why = IoError::Recv("cannot arm the read event".into());
                    return (done, Some(Failure::Io(why)));
                }
                return (done, None);
            }
            let Some(recv) = c.recv else {
                let why = IoError::Recv("no recv handler".into());
                return (done, Some(Failure::Io(why)));
            };
            let start = self.input.len();
            self.input.resize(start + RECV_CHUNK, 0);
            // SAFETY: the CHUNK bytes just added are writable; recv is
            // nginx's socket reader for this connection.
            let n = unsafe { recv(c, self.input.as_mut_ptr().add(start), RECV_CHUNK) };
            self.input.truncate(start + n.max(0) as usize);
            if n == NGX_AGAIN as isize {
                continue; // rev->ready is now clear: arm and return above
            }
            if n == 0 {
                return (done, Some(Failure::Io(IoError::Closed)));
            }
            if n < 0 {
                return (done, Some(Failure::Io(IoError::Recv(last_os_error()))));
            }
            if let Err(err) = self.take_replies(&mut done) {
                return (done, Some(Failure::Wire(err)));
            }
        }
    }

    fn take_replies(&mut self, done: &mut Vec<(Rc<Slot>, Reply)>) -> Result<(), WireError> {
        let mut used = 0;
        let result = loop {
            let rest = self.input.get(used..).unwrap_or_default();
            if rest.is_empty() {
                break Ok(());
            }
            let Some(slot) = self.slots.front() else {
                break Err(WireError::Protocol("a reply nobody asked for".into()));
            };
            match wire::parse(&slot.expect, rest) {
                Ok(Some((reply, n))) => {
                    used += n;
                    if let Some(slot) = self.slots.pop_front() {
                        done.push((slot, reply));
                    }
                }
                Ok(None) => break Ok(()),
                Err(err) => break Err(err),
            }
        };
        self.input.drain(..used);
        if self.slots.is_empty() {
            self.conn().set_idle(1);
        }
        result
    }
}

/// Read events of a pipeline's connection; also called by nginx with
/// `c->close` set on an idle connection when the worker shuts down.
unsafe extern "C" fn on_read(ev: *mut ngx_event_t) {
    // SAFETY: ev->data is the connection and its data our pipeline, alive
    // until its connection is closed (which removes this handler's events).
    let (p, closing) = unsafe {
        let c = (*ev).data.cast::<ngx_connection_t>();
        ((*c).data.cast::<Pipeline>(), (*c).close() != 0)
    };
    let (done, failure) = if closing {
        (Vec::new(), Some(Failure::Io(IoError::Closed)))
    } else {
        // SAFETY: see above; no other reference to the pipeline is live.
        unsafe { (*p).readable() }
    };
    let finished = failure.is_none() && !done.is_empty();
    // The failure first: a reply read before it still reaches its slot,
    // and waking tasks can submit new commands only to a live pipeline.
    if let Some(why) = failure {
        if let Some(pipeline) = super::take_pipeline(p) {
            (*pipeline).shut(why);
        }
    }
    for (slot, reply) in done {
        slot.finish(Ok(reply));
    }
    if finished {
        super::release_if_idle(p);
    }
}

/// Write events (connect finished, socket writable) and the posted flush.
unsafe extern "C" fn on_write(ev: *mut ngx_event_t) {
    // SAFETY: as in on_read.
    let p = unsafe {
        (*(*ev).data.cast::<ngx_connection_t>())
            .data
            .cast::<Pipeline>()
    };
    // SAFETY: see on_read.
    if let Err(why) = unsafe { (*p).writable() } {
        if let Some(pipeline) = super::take_pipeline(p) {
            (*pipeline).shut(Failure::Io(why));
        }
    }
}

fn socket_error(fd: i32) -> Result<(), String> {
    let mut err: libc::c_int = 0;
    let mut len = core::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for getsockopt to write.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == -1 {
        return Err(last_os_error());
    }
    if err != 0 {
        return Err(std::io::Error::from_raw_os_error(err).to_string());
    }
    Ok(())
}

fn last_os_error() -> String {
    std::io::Error::last_os_error().to_string()
}
