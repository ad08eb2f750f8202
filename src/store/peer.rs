//! One nginx peer connection with a single owner: the task that drives it
//! (`connection`). Its event handlers only wake that task; connecting,
//! sending, receiving and closing happen in the task, through this type.
//! Dropping it closes the connection.

use core::cell::Cell;
use core::ptr::{self, NonNull};
use core::task::Waker;
use std::io;

use nginx_sys::{
    ngx_addr_t, ngx_close_connection, ngx_connection_t, ngx_event_connect_peer, ngx_event_get_peer,
    ngx_event_t, ngx_handle_read_event, ngx_handle_write_event, ngx_log_t, ngx_peer_connection_t,
    ngx_post_event, ngx_posted_events, NGX_AGAIN, NGX_OK,
};
use ngx::core::Status;

use super::error::ConnError;
use crate::metrics::Counters;

/// Bytes asked of one recv().
const RECV_CHUNK: usize = 4096;

/// What the event handlers wake.
type Owner = Cell<Option<Waker>>;

pub struct Peer {
    c: NonNull<ngx_connection_t>,
    connected: bool,
    /// `c->data` points at it: boxed, it stays put when the `Peer` moves,
    /// and it is freed only after the connection is closed.
    owner: Box<Owner>,
    /// Counts the connection open until it is closed.
    counters: Option<&'static Counters>,
}

impl Peer {
    /// Starts connecting to `addr`. nginx logs a connect() that fails at
    /// once through `log`; the connection logs through the cycle's log
    /// afterwards, as it outlives the request that opened it.
    pub fn connect(
        addr: &ngx_addr_t,
        log: *mut ngx_log_t,
        counters: Option<&'static Counters>,
    ) -> Result<Peer, ConnError> {
        // SAFETY: an all-zero peer connection is nginx's initial state.
        let mut pc: ngx_peer_connection_t = unsafe { core::mem::zeroed() };
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
                return Err(ConnError::ConnectLogged);
            }
            // ngx_event_connect_peer closed it and logged the failure.
            None => return Err(ConnError::ConnectLogged),
        };
        let owner: Box<Owner> = Box::default();
        // SAFETY: the connection is ours and its events are valid; the
        // owner cell is boxed and outlives the connection (see Drop).
        unsafe {
            let conn = &mut *c.as_ptr();
            conn.data = ptr::from_ref(&*owner).cast_mut().cast();
            conn.log = (*nginx_sys::ngx_cycle).log;
            (*conn.read).log = conn.log;
            (*conn.write).log = conn.log;
            (*conn.read).handler = Some(wake_owner);
            (*conn.write).handler = Some(wake_owner);
        }
        if let Some(counters) = counters {
            counters.connections(1);
        }
        Ok(Peer {
            c,
            connected: rc == Status::NGX_OK,
            owner,
            counters,
        })
    }

    /// The connection, borrowed apart from the `Peer`.
    fn conn<'a>(&self) -> &'a mut ngx_connection_t {
        // SAFETY: the connection is open while the Peer exists, and
        // nginx's structure is not part of the Peer.
        unsafe { &mut *self.c.as_ptr() }
    }

    fn read_event<'a>(&self) -> &'a mut ngx_event_t {
        // SAFETY: the read event of a live connection.
        unsafe { &mut *self.conn().read }
    }

    fn write_event<'a>(&self) -> &'a mut ngx_event_t {
        // SAFETY: the write event of a live connection.
        unsafe { &mut *self.conn().write }
    }

    /// The task the event handlers wake from now on.
    pub fn set_owner(&self, waker: &Waker) {
        let owner = match self.owner.take() {
            Some(current) if current.will_wake(waker) => current,
            _ => waker.clone(),
        };
        self.owner.set(Some(owner));
    }

    /// nginx wants the connection closed: the worker is shutting down and
    /// the connection is idle.
    pub fn closing(&self) -> bool {
        self.conn().close() != 0
    }

    /// Whether the connection is established: `Ok(false)` while connect()
    /// is in progress.
    pub fn connected(&mut self) -> Result<bool, ConnError> {
        if self.connected {
            return Ok(true);
        }
        if self.write_event().ready() == 0 && self.read_event().ready() == 0 {
            return Ok(false);
        }
        socket_error(self.conn().fd).map_err(ConnError::Connect)?;
        self.connected = true;
        Ok(true)
    }

    /// Appends what arrived to `input`: `Ok(false)` once nothing more is
    /// there (the read event is then armed). End of stream is
    /// [`ConnError::Closed`].
    pub fn recv(&mut self, input: &mut Vec<u8>) -> Result<bool, ConnError> {
        let rev = self.read_event();
        if rev.ready() == 0 {
            return self.arm_read().map(|()| false);
        }
        let c = self.conn();
        let recv = c.recv.ok_or(ConnError::NoHandler("recv"))?;
        let start = input.len();
        input.resize(start + RECV_CHUNK, 0);
        // SAFETY: the RECV_CHUNK bytes just added are writable; recv is
        // nginx's socket reader for this connection.
        let n = unsafe { recv(c, input.as_mut_ptr().add(start), RECV_CHUNK) };
        input.truncate(start + n.max(0) as usize);
        match n {
            n if n == NGX_AGAIN as isize => self.arm_read().map(|()| false),
            0 => Err(ConnError::Closed),
            n if n < 0 => Err(ConnError::Recv(io::Error::last_os_error())),
            _ => Ok(true),
        }
    }

    fn arm_read(&self) -> Result<(), ConnError> {
        // SAFETY: the read event of a live connection.
        if unsafe { ngx_handle_read_event(self.read_event(), 0) } != NGX_OK as isize {
            return Err(ConnError::Arm("read"));
        }
        Ok(())
    }

    /// Sends from the start of `out`: the bytes taken, or `Ok(None)` when
    /// the socket is full (the write event is then armed).
    pub fn send(&mut self, out: &[u8]) -> Result<Option<usize>, ConnError> {
        let c = self.conn();
        let send = c.send.ok_or(ConnError::NoHandler("send"))?;
        // SAFETY: out is valid for its length; send is nginx's socket
        // writer for this connection and only reads it.
        let n = unsafe { send(c, out.as_ptr().cast_mut(), out.len()) };
        if n == NGX_AGAIN as isize {
            // SAFETY: the write event of a live connection.
            if unsafe { ngx_handle_write_event(self.write_event(), 0) } != NGX_OK as isize {
                return Err(ConnError::Arm("write"));
            }
            return Ok(None);
        }
        if n <= 0 {
            return Err(ConnError::Send(io::Error::last_os_error()));
        }
        Ok(Some(n as usize))
    }

    /// Wakes the owner after every handler that is ready in this
    /// iteration of the event loop has run: what they queue leaves in one
    /// send().
    pub fn post_flush(&mut self) {
        let wev = self.write_event();
        if wev.posted() == 0 {
            // SAFETY: the write event of a live connection; closing the
            // connection takes it off the posted queue.
            unsafe { ngx_post_event(wev, ptr::addr_of_mut!(ngx_posted_events)) };
        }
    }

    /// A flush is posted and has not run yet.
    pub fn flush_posted(&self) -> bool {
        self.write_event().posted() != 0
    }

    /// The socket may take more bytes.
    pub fn writable(&self) -> bool {
        self.write_event().ready() != 0
    }

    /// Marks the connection idle (nothing waits on it): nginx closes idle
    /// connections when the worker shuts down.
    pub fn set_idle(&mut self, idle: bool) {
        self.conn().set_idle(u32::from(idle));
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: closing the connection we own removes its events from
        // epoll, the posted queue and the timers, so no handler reads the
        // owner cell after this.
        unsafe { ngx_close_connection(self.c.as_ptr()) };
        if let Some(counters) = self.counters {
            counters.connections(-1);
        }
    }
}

/// Read and write events: the only work is waking the owner.
unsafe extern "C" fn wake_owner(ev: *mut ngx_event_t) {
    // SAFETY: ev->data is the connection and its data the owner cell of
    // the Peer that holds it, alive until that Peer closes the connection.
    let waker = unsafe {
        let c = (*ev).data.cast::<ngx_connection_t>();
        (*(*c).data.cast::<Owner>()).take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The result of a non-blocking connect().
fn socket_error(fd: i32) -> Result<(), io::Error> {
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
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(())
}
