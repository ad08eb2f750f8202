//! One memcached server as a worker sees it: its socket address in the form
//! nginx's peer connections take, its name for logs and routing, and its
//! pool of idle keepalive connections.

use core::mem;
use core::ptr::NonNull;

use nginx_sys::{ngx_connection_t, ngx_str_t};
use paranoid_core::values::{StoreAddr, StoreServer};

/// A socket address kept alive, and at a stable place, for the worker's
/// lifetime: peer connections point into it.
pub struct Server {
    /// As written in the configuration: logs and rendezvous routing use it.
    pub name: String,
    name_str: ngx_str_t,
    sockaddr: Box<libc::sockaddr_storage>,
    pub socklen: libc::socklen_t,
    /// Idle keepalive connections, most recently used last.
    pub idle: Vec<NonNull<ngx_connection_t>>,
    pub keepalive: usize,
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
            idle: Vec::with_capacity(keepalive),
            keepalive,
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
