//! One memcached server as a worker sees it: its socket address in the form
//! nginx's peer connections take, its name for logs and routing, and its
//! connections, each carrying pipelined commands.

use core::mem;
use std::rc::Rc;

use nginx_sys::{ngx_log_t, ngx_str_t};
use paranoid_core::values::{StoreAddr, StoreServer};

use super::pipeline::{IoError, Pipeline, Slot, MAX_IN_FLIGHT};

/// A socket address kept alive, and at a stable place, for the worker's
/// lifetime: peer connections point into it.
pub struct Server {
    /// As written in the configuration: logs and rendezvous routing use it.
    pub name: String,
    name_str: ngx_str_t,
    sockaddr: Box<libc::sockaddr_storage>,
    pub socklen: libc::socklen_t,
    /// Open connections, filled first to last: commands gather on the
    /// first one, so they leave and return in batches. Boxed: each
    /// connection's `data` points at its pipeline, which must not move.
    #[allow(clippy::vec_box)]
    pub conns: Vec<Box<Pipeline>>,
    /// Connections kept open while nothing waits on them; also the most
    /// there may be (at least one).
    pub keepalive: usize,
    next_id: u64,
}

impl Server {
    pub fn new(conf: &StoreServer, keepalive: usize) -> Server {
        let (sockaddr, socklen) = sockaddr_of(&conf.addr);
        let name = conf.name.clone();
        let mut server = Server {
            name_str: ngx_str_t::default(),
            name,
            sockaddr: Box::new(sockaddr),
            socklen,
            conns: Vec::new(),
            keepalive,
            next_id: 0,
        };
        // The String's heap buffer does not move when `server` does.
        server.name_str = ngx_str_t {
            len: server.name.len(),
            data: server.name.as_ptr().cast_mut(),
        };
        server
    }

    pub fn sockaddr_ptr(&mut self) -> *mut nginx_sys::sockaddr {
        (&mut *self.sockaddr as *mut libc::sockaddr_storage).cast()
    }

    pub fn name_ptr(&mut self) -> *mut ngx_str_t {
        &mut self.name_str
    }

    /// Queues an encoded command on the first connection with room,
    /// dialling a new one when all are full. Returns the connection's id.
    pub fn submit(
        &mut self,
        command: &[u8],
        slot: Rc<Slot>,
        log: *mut ngx_log_t,
    ) -> Result<u64, IoError> {
        if let Some(p) = self
            .conns
            .iter_mut()
            .find(|p| p.in_flight() < MAX_IN_FLIGHT)
        {
            p.submit(command, slot);
            return Ok(p.id);
        }
        if self.conns.len() >= self.keepalive.max(1) {
            return Err(IoError::Busy);
        }
        self.next_id += 1;
        let mut p = Pipeline::open(self, self.next_id, log)?;
        p.submit(command, slot);
        let id = p.id;
        self.conns.push(p);
        Ok(id)
    }

    /// Takes a connection out of the list (to be shut by the caller).
    pub fn take(&mut self, which: impl Fn(&Pipeline) -> bool) -> Option<Box<Pipeline>> {
        let i = self.conns.iter().position(|p| which(p))?;
        Some(self.conns.remove(i))
    }

    /// Connections with nothing waiting on them.
    pub fn idle(&self) -> usize {
        self.conns.iter().filter(|p| p.in_flight() == 0).count()
    }
}

fn sockaddr_of(addr: &StoreAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid (unspecified) sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        StoreAddr::Tcp(std::net::SocketAddr::V4(v4)) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any
            // sockaddr type.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            mem::size_of::<libc::sockaddr_in>()
        }
        StoreAddr::Tcp(std::net::SocketAddr::V6(v6)) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_scope_id = v6.scope_id();
            mem::size_of::<libc::sockaddr_in6>()
        }
        StoreAddr::Unix(path) => {
            // SAFETY: as above.
            let sun = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_un) };
            sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
            let bytes = path.as_os_str().as_encoded_bytes();
            // The configuration parser bounds the path below sun_path's size.
            for (dst, src) in sun.sun_path.iter_mut().zip(bytes) {
                *dst = *src as libc::c_char;
            }
            mem::size_of::<libc::sa_family_t>() + bytes.len().min(sun.sun_path.len() - 1) + 1
        }
    };
    (storage, len as libc::socklen_t)
}
