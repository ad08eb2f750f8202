//! Holding a response while the store applies the application's command,
//! as nginx holds a response for a slow client.
//!
//! The header filter does not pass the header on; the body filter keeps
//! the buffers it is given without consuming them, so they stay busy for
//! whoever produced them (upstream buffering, temporary files and
//! back-pressure work as they do for a slow client). A bit of the
//! connection's `buffered` flags tells nginx the response is not done: a
//! request finalized meanwhile waits in `ngx_http_writer`. When memcached
//! has answered, `filter::release` sends the header (with the cookies the
//! command decided) and the kept buffers down the chain and wakes the
//! request.

use core::ptr;

use nginx_sys::{ngx_alloc_chain_link, ngx_buf_t, ngx_chain_t, ngx_http_request_t};
use ngx::async_::Task;

/// Our bit of `c->buffered`: nginx's own HTTP filters use 0x10 (write)
/// and 0x20 (gzip) of the bits it keeps for them (0xf0).
pub const HELD: u32 = 0x80;

/// A response held for a command.
pub struct Hold {
    /// Applies the command, then releases. Owned here so that it ends with
    /// the request.
    pub task: Option<Task<()>>,
    /// Still holding.
    pub holding: bool,
    /// The response was replaced by an error page: what the producer sends
    /// after it is refused.
    pub discard: bool,
    /// The body buffers kept, in order.
    bufs: Vec<*mut ngx_buf_t>,
    /// Still inside the header filter that started the hold: a command
    /// done at once (memcached refused the connection) leaves its ending
    /// here for that filter.
    pub in_filter: bool,
    pub early: Option<crate::filter::Release>,
}

impl Hold {
    pub fn new() -> Hold {
        Hold {
            task: None,
            holding: true,
            discard: false,
            bufs: Vec::new(),
            in_filter: true,
            early: None,
        }
    }

    /// Keeps the buffers of `chain`.
    ///
    /// # Safety
    /// `chain` is a valid chain of the request being held.
    pub unsafe fn keep(&mut self, mut chain: *mut ngx_chain_t) {
        while !chain.is_null() {
            // SAFETY: a valid chain link (the caller's contract).
            unsafe {
                self.bufs.push((*chain).buf);
                chain = (*chain).next;
            }
        }
    }
}

/// Whether `r`'s connection is flagged as held (cheap: no state lookup).
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn flagged(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: r and its connection are live.
    unsafe { (*(*r).connection).buffered() & HELD != 0 }
}

/// Flags `r`'s connection as held or not.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn flag(r: *mut ngx_http_request_t, on: bool) {
    // SAFETY: r and its connection are live.
    unsafe {
        let c = (*r).connection;
        let flags = (*c).buffered();
        (*c).set_buffered(if on { flags | HELD } else { flags & !HELD });
    }
}

/// Takes the kept buffers and ends the hold's flag.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn unhold(r: *mut ngx_http_request_t, hold: &mut Hold) -> Vec<*mut ngx_buf_t> {
    hold.holding = false;
    // SAFETY: r is live.
    unsafe { flag(r, false) };
    core::mem::take(&mut hold.bufs)
}

/// Marks a buffer as sent, so that its producer reuses it.
///
/// # Safety
/// `b` is a live buffer.
pub unsafe fn consume(b: *mut ngx_buf_t) {
    // SAFETY: a live buffer (the caller's contract).
    unsafe {
        (*b).pos = (*b).last;
        if (*b).in_file() != 0 {
            (*b).file_pos = (*b).file_last;
        }
    }
}

/// A chain of `bufs` in `r`'s pool.
///
/// # Safety
/// `r` is live; the buffers are live.
pub unsafe fn chain_of(
    r: *mut ngx_http_request_t,
    bufs: &[*mut ngx_buf_t],
) -> Option<*mut ngx_chain_t> {
    let mut head: *mut ngx_chain_t = ptr::null_mut();
    let mut tail: *mut *mut ngx_chain_t = &mut head;
    for &b in bufs {
        // SAFETY: r's pool is live; the link is initialized before use.
        unsafe {
            let cl = ngx_alloc_chain_link((*r).pool);
            if cl.is_null() {
                return None;
            }
            (*cl).buf = b;
            (*cl).next = ptr::null_mut();
            *tail = cl;
            tail = ptr::addr_of_mut!((*cl).next);
        }
    }
    Some(head)
}
