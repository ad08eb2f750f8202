//! A `paranoid_session_store` server's address, parsed at configuration
//! time by nginx's own `ngx_parse_url`, as nginx's upstream `server`
//! directive does: `host:port` (a host name is resolved then, and its
//! first address used), `[IPv6]:port` and `unix:/path`. The core adds its
//! own rules first (`values::validate_store_server`); nothing resolves a
//! name while the worker runs.

use core::ffi::CStr;
use core::fmt;
use core::mem;

use nginx_sys::{ngx_addr_t, ngx_cmp_sockaddr, ngx_conf_t, ngx_parse_url, ngx_str_t, ngx_url_t};
use ngx::core::Status;
use paranoid_core::values;

/// One server: its socket address, in the configuration's pool, and its
/// name as written.
pub struct Address {
    /// As written in the configuration: logs and rendezvous routing use it.
    pub name: String,
    /// `sockaddr` lives in the configuration's pool; `name` is the
    /// directive's argument, also there: both live as long as the
    /// configuration, which outlives every connection of its workers.
    addr: ngx_addr_t,
}

impl Address {
    /// Parses one argument of `paranoid_session_store`.
    pub fn parse(cf: &mut ngx_conf_t, arg: &ngx_str_t) -> Result<Address, String> {
        let text = arg
            .to_str()
            .map_err(|_| "the server address is not valid UTF-8".to_owned())?;
        values::validate_store_server(text)?;
        let invalid = |why: &str| format!("{why} in {text:?}");

        // SAFETY: all-zero is how nginx's own callers start an ngx_url_t
        // (ngx_memzero): no default port, resolve names, no URI part.
        let mut url: ngx_url_t = unsafe { mem::zeroed() };
        url.url = *arg;
        // SAFETY: cf->pool is the configuration's pool; ngx_parse_url
        // allocates the addresses there and sets `err` to a static string
        // when it refuses the URL.
        let rc = Status(unsafe { ngx_parse_url(cf.pool, &mut url) });
        if rc != Status::NGX_OK {
            let why = if url.err.is_null() {
                "cannot parse the address"
            } else {
                // SAFETY: a NUL-terminated static string of nginx's.
                unsafe { CStr::from_ptr(url.err) }
                    .to_str()
                    .unwrap_or("invalid address")
            };
            return Err(invalid(why));
        }
        if url.no_port() != 0 {
            return Err(invalid("no port"));
        }
        if url.addrs.is_null() || url.naddrs == 0 {
            return Err(invalid("host not found"));
        }
        // SAFETY: ngx_parse_url filled `naddrs` (> 0) entries.
        let first = unsafe { *url.addrs };
        Ok(Address {
            name: text.to_owned(),
            addr: ngx_addr_t {
                sockaddr: first.sockaddr,
                socklen: first.socklen,
                name: *arg,
            },
        })
    }

    /// Whether both reach the same socket (address and port).
    pub fn same_socket(&self, other: &Address) -> bool {
        // SAFETY: both sockaddrs are nginx's, valid for their lengths;
        // ngx_cmp_sockaddr only reads them.
        let rc = unsafe {
            ngx_cmp_sockaddr(
                self.addr.sockaddr,
                self.addr.socklen,
                other.addr.sockaddr,
                other.addr.socklen,
                1,
            )
        };
        Status(rc) == Status::NGX_OK
    }

    /// The address in the form nginx's peer connections take. nginx reads
    /// it only while it connects (`ngx_event_connect_peer`).
    pub fn peer(&self) -> &ngx_addr_t {
        &self.addr
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Address").field(&self.name).finish()
    }
}
