//! A connection to a memcached server on nginx's event loop: connect, send
//! and receive as futures woken by the connection's read and write events.
//! Nothing here blocks; deadlines are the caller's (see `exchange`).

use core::future::poll_fn;
use core::ptr::{self, NonNull};
use core::task::{Poll, Waker};

use nginx_sys::{
    ngx_close_connection, ngx_connection_t, ngx_event_connect_peer, ngx_event_get_peer,
    ngx_event_t, ngx_handle_read_event, ngx_handle_write_event, ngx_peer_connection_t, NGX_AGAIN,
    NGX_OK,
};

use ngx::core::Status;

use super::server::Server;

/// Why talking to memcached failed; shown in the error log.
#[derive(Debug)]
pub enum IoError {
    Connect(String),
    /// nginx already wrote an error line naming the server and the reason.
    ConnectLogged,
    Send(String),
    Recv(String),
    Closed,
}

impl core::fmt::Display for IoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IoError::Connect(why) => write!(f, "connect failed: {why}"),
            IoError::ConnectLogged => f.write_str("connect failed"),
            IoError::Send(why) => write!(f, "send failed: {why}"),
            IoError::Recv(why) => write!(f, "recv failed: {why}"),
            IoError::Closed => f.write_str("connection closed by the server"),
        }
    }
}

/// Bytes asked of one recv(): a reply to our commands is far smaller.
pub const RECV_CHUNK: usize = 4096;

/// Where a connection's event handler finds the task to wake: `c->data`
/// points at it while a `Peer` owns the connection.
struct Link {
    waker: Option<Waker>,
}

/// An open connection owned by one exchange. Dropping it closes the
/// connection: one whose exchange did not finish is never reused.
pub struct Peer {
    /// `None` once the connection went back to the keepalive pool.
    c: Option<NonNull<ngx_connection_t>>,
    link: Box<Link>,
}

impl Peer {
    /// Starts connecting to `server` (or takes an idle keepalive connection).
    /// Returns the peer and whether it is already connected.
    pub fn open(
        server: &mut Server,
        log: *mut nginx_sys::ngx_log_t,
    ) -> Result<(Peer, bool), IoError> {
        if let Some(c) = server.idle.pop() {
            // SAFETY: idle connections are open and owned by the pool until
            // popped; the idle handler removes any that closed.
            let c_ref = unsafe { &mut *c.as_ptr() };
            c_ref.set_idle(0);
            c_ref.log = log;
            // SAFETY: a live connection has both events.
            unsafe {
                (*c_ref.read).log = log;
                (*c_ref.write).log = log;
            }
            return Ok((Peer::adopt(c), true));
        }

        // SAFETY: an all-zero peer connection is nginx's initial state.
        let mut pc: ngx_peer_connection_t = unsafe { core::mem::zeroed() };
        pc.sockaddr = server.sockaddr_ptr();
        pc.socklen = server.socklen;
        pc.name = server.name_ptr();
        pc.get = Some(ngx_event_get_peer);
        pc.log = log;
        pc.set_log_error(nginx_sys::ngx_connection_log_error_e_NGX_ERROR_ERR);

        // SAFETY: pc is fully initialised; nginx allocates the connection
        // from the worker's connection pool.
        let rc = Status(unsafe { ngx_event_connect_peer(&mut pc) });
        match NonNull::new(pc.connection) {
            Some(c) if rc == Status::NGX_OK => Ok((Peer::adopt(c), true)),
            Some(c) if rc == Status::NGX_AGAIN => Ok((Peer::adopt(c), false)),
            Some(c) => {
                // SAFETY: a connection nginx gave us and nobody else holds.
                unsafe { ngx_close_connection(c.as_ptr()) };
                Err(IoError::ConnectLogged)
            }
            // ngx_event_connect_peer closed it and logged the failure.
            None => Err(IoError::ConnectLogged),
        }
    }

    fn adopt(c: NonNull<ngx_connection_t>) -> Peer {
        let mut link = Box::new(Link { waker: None });
        // SAFETY: the connection is ours; its events are valid.
        unsafe {
            let c = &mut *c.as_ptr();
            c.data = ptr::from_mut(&mut *link).cast();
            (*c.read).handler = Some(on_event);
            (*c.write).handler = Some(on_event);
        }
        Peer { c: Some(c), link }
    }

    fn conn(&mut self) -> Result<&mut ngx_connection_t, IoError> {
        // SAFETY: the connection stays open while the Peer holds it.
        self.c
            .map(|c| unsafe { &mut *c.as_ptr() })
            .ok_or(IoError::Closed)
    }

    /// Waits until a non-blocking connect finished, and checks its result.
    pub async fn connected(&mut self) -> Result<(), IoError> {
        poll_fn(|cx| {
            let c = match self.conn() {
                Ok(c) => c,
                Err(e) => return Poll::Ready(Err(e)),
            };
            // SAFETY: events of a live connection.
            let (wready, rready) = unsafe { ((*c.write).ready() != 0, (*c.read).ready() != 0) };
            if !wready && !rready {
                self.link.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(socket_error(c.fd).map_err(IoError::Connect))
        })
        .await
    }

    /// Sends all of `buf`.
    pub async fn send_all(&mut self, mut buf: &[u8]) -> Result<(), IoError> {
        poll_fn(|cx| {
            while !buf.is_empty() {
                let c = match self.conn() {
                    Ok(c) => c,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                let Some(send) = c.send else {
                    return Poll::Ready(Err(IoError::Send("no send handler".into())));
                };
                // SAFETY: buf is valid for its length; send is nginx's socket
                // writer for this connection.
                let n = unsafe { send(c, buf.as_ptr().cast_mut(), buf.len()) };
                if n == NGX_AGAIN as isize {
                    // SAFETY: the write event of a live connection.
                    if unsafe { ngx_handle_write_event(c.write, 0) } != NGX_OK as isize {
                        return Poll::Ready(Err(IoError::Send("cannot arm write event".into())));
                    }
                    self.link.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                if n <= 0 {
                    return Poll::Ready(Err(IoError::Send(last_os_error())));
                }
                buf = buf.get(n as usize..).unwrap_or_default();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Reads what is available (at least one byte) into `buf`.
    pub async fn recv_some(&mut self, buf: &mut Vec<u8>) -> Result<usize, IoError> {
        const CHUNK: usize = RECV_CHUNK;
        poll_fn(|cx| {
            let start = buf.len();
            let c = match self.conn() {
                Ok(c) => c,
                Err(e) => return Poll::Ready(Err(e)),
            };
            // SAFETY: the read event of a live connection.
            let rev = unsafe { &mut *c.read };
            if rev.ready() == 0 {
                // Nothing has arrived since the socket was last drained:
                // wait for the event instead of a recv() bound to fail.
                // SAFETY: as above.
                if unsafe { ngx_handle_read_event(rev, 0) } != NGX_OK as isize {
                    return Poll::Ready(Err(IoError::Recv("cannot arm read event".into())));
                }
                self.link.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            buf.resize(start + CHUNK, 0);
            let Some(recv) = c.recv else {
                buf.truncate(start);
                return Poll::Ready(Err(IoError::Recv("no recv handler".into())));
            };
            // SAFETY: the spare capacity just resized is writable for CHUNK
            // bytes; recv is nginx's socket reader for this connection.
            let n = unsafe { recv(c, buf.as_mut_ptr().add(start), CHUNK) };
            buf.truncate(start + n.max(0) as usize);
            if n == NGX_AGAIN as isize {
                // SAFETY: the read event of a live connection.
                if unsafe { ngx_handle_read_event(c.read, 0) } != NGX_OK as isize {
                    return Poll::Ready(Err(IoError::Recv("cannot arm read event".into())));
                }
                self.link.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if n == 0 {
                return Poll::Ready(Err(IoError::Closed));
            }
            if n < 0 {
                return Poll::Ready(Err(IoError::Recv(last_os_error())));
            }
            Poll::Ready(Ok(n as usize))
        })
        .await
    }

    /// Hands the connection to `server`'s keepalive pool, or closes it when
    /// the pool is full.
    pub fn release(mut self, server: &mut Server) {
        if server.idle.len() >= server.keepalive {
            return; // dropping self closes it
        }
        let Some(c) = self.c.take() else {
            return;
        };
        // SAFETY: the connection is open and now belongs to the pool; its
        // data no longer points at our Link, which is freed with self.
        unsafe {
            let conn = &mut *c.as_ptr();
            conn.data = ptr::null_mut();
            conn.set_idle(1);
            conn.log = (*nginx_sys::ngx_cycle).log;
            (*conn.read).log = conn.log;
            (*conn.write).log = conn.log;
            (*conn.read).handler = Some(on_idle_event);
            (*conn.write).handler = Some(on_idle_write);
        }
        server.idle.push(c);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(c) = self.c.take() {
            // SAFETY: closing the connection we own; ngx_close_connection
            // removes its events and timers, so no handler sees the freed
            // Link.
            unsafe { ngx_close_connection(c.as_ptr()) };
        }
    }
}

/// Read and write events of an owned connection: wake the exchange.
unsafe extern "C" fn on_event(ev: *mut ngx_event_t) {
    // SAFETY: ev->data is the connection, whose data is our Link while a
    // Peer owns it.
    unsafe {
        let c = (*ev).data.cast::<ngx_connection_t>();
        let link = (*c).data.cast::<Link>();
        if let Some(waker) = link.as_mut().and_then(|l| l.waker.take()) {
            waker.wake();
        }
    }
}

/// A readable idle connection means memcached closed it or sent something
/// unasked: either way it cannot be reused. Also called by nginx with
/// `c->close` set when the worker shuts down.
unsafe extern "C" fn on_idle_event(ev: *mut ngx_event_t) {
    // SAFETY: ev->data is an idle connection of one of our pools.
    unsafe {
        let c = (*ev).data.cast::<ngx_connection_t>();
        if (*c).close() == 0 {
            let mut byte = 0u8;
            let n = libc::recv((*c).fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK);
            let nothing =
                n == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock;
            if nothing && ngx_handle_read_event((*c).read, 0) == NGX_OK as isize {
                return;
            }
        }
        super::forget_idle(c);
        ngx_close_connection(c);
    }
}

unsafe extern "C" fn on_idle_write(_ev: *mut ngx_event_t) {}

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
