//! The commands of one memcached connection, shared by the exchanges that
//! use it and the task that owns it.
//!
//! memcached answers the commands of a connection in the order it read
//! them, so a connection can carry many commands at once: each exchange
//! appends its command to the output and queues a [`Slot`]; the owner
//! sends the output, and fills the slots in order as replies arrive. The
//! first command after a flush wakes the owner, which arranges the next
//! flush for the end of the event loop's iteration: the commands of all
//! the requests handled in one iteration leave in one send(), and their
//! replies come back in as few recv() calls.

use core::cell::RefCell;
use core::mem;
use core::task::Waker;
use std::collections::VecDeque;
use std::rc::Rc;

use paranoid_core::wire::{self, Reply, Request, WireError};

use super::error::{ConnError, ExchangeError};
use super::slot::Slot;

/// Commands one connection may have waiting for replies.
pub const MAX_IN_FLIGHT: usize = 256;

#[derive(Default)]
pub struct Pipeline {
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Encoded commands not sent yet; `sent` bytes of them have left.
    out: Vec<u8>,
    sent: usize,
    /// One per command queued or sent, oldest first.
    slots: VecDeque<Rc<Slot>>,
    /// The task that owns the connection.
    owner: Option<Waker>,
    /// The owner is running: it looks at the output before it sleeps.
    busy: bool,
    /// The owner already arranged to send what is queued.
    flush_arranged: bool,
    /// Why the connection must end, as an exchange asked.
    stop: Option<ConnError>,
    /// The connection ended: it takes no more commands.
    closed: bool,
}

impl Pipeline {
    pub fn is_open(&self) -> bool {
        !self.inner.borrow().closed
    }

    pub fn in_flight(&self) -> usize {
        self.inner.borrow().slots.len()
    }

    /// Queues one command and the slot its reply fills; it leaves with the
    /// next flush. On error nothing is queued.
    pub fn push(&self, req: &Request<'_>, slot: &Rc<Slot>) -> Result<(), ExchangeError> {
        let wake = {
            let mut inner = self.inner.borrow_mut();
            if inner.closed {
                return Err(ConnError::Closed.into());
            }
            wire::encode(req, &mut inner.out)?;
            inner.slots.push_back(Rc::clone(slot));
            if inner.busy || inner.flush_arranged {
                None
            } else {
                inner.owner.clone()
            }
        };
        // The owner runs at once: nothing is borrowed any more.
        if let Some(owner) = wake {
            owner.wake();
        }
        Ok(())
    }

    /// Asks the owner to close the connection and fail what waits on it.
    pub fn stop(&self, why: ConnError) {
        let wake = {
            let mut inner = self.inner.borrow_mut();
            if inner.closed {
                return;
            }
            inner.stop.get_or_insert(why);
            if inner.busy {
                None
            } else {
                inner.owner.clone()
            }
        };
        if let Some(owner) = wake {
            owner.wake();
        }
    }

    /* The owner's side */

    /// The owner starts (`Some`) or ends (`None`) a poll: while it runs,
    /// commands do not wake it.
    pub fn set_busy(&self, owner: Option<&Waker>) {
        let mut inner = self.inner.borrow_mut();
        inner.busy = owner.is_some();
        if let Some(waker) = owner {
            if !inner.owner.as_ref().is_some_and(|w| w.will_wake(waker)) {
                inner.owner = Some(waker.clone());
            }
        }
    }

    pub fn take_stop(&self) -> Option<ConnError> {
        self.inner.borrow_mut().stop.take()
    }

    /// Whether there is output to send.
    pub fn unsent(&self) -> bool {
        let inner = self.inner.borrow();
        inner.sent < inner.out.len()
    }

    pub fn flush_arranged(&self) -> bool {
        self.inner.borrow().flush_arranged
    }

    pub fn set_flush_arranged(&self, arranged: bool) {
        self.inner.borrow_mut().flush_arranged = arranged;
    }

    /// Sends the output with `send` (see `Peer::send`) until all of it is
    /// gone (`Ok(true)`) or the socket is full (`Ok(false)`).
    pub fn write_with(
        &self,
        mut send: impl FnMut(&[u8]) -> Result<Option<usize>, ConnError>,
    ) -> Result<bool, ConnError> {
        let mut inner = self.inner.borrow_mut();
        while let Some(rest) = inner.out.get(inner.sent..).filter(|r| !r.is_empty()) {
            match send(rest)? {
                Some(n) => inner.sent += n,
                None => return Ok(false),
            }
        }
        inner.out.clear();
        inner.sent = 0;
        Ok(true)
    }

    /// Takes every complete reply at the start of `input` off the queue,
    /// with its slot, into `done`, to be delivered by the caller once
    /// nothing is borrowed.
    pub fn take_replies(
        &self,
        input: &mut Vec<u8>,
        done: &mut Vec<(Rc<Slot>, Reply)>,
    ) -> Result<(), WireError> {
        let mut inner = self.inner.borrow_mut();
        let mut used = 0;
        let result = loop {
            let rest = input.get(used..).unwrap_or_default();
            if rest.is_empty() {
                break Ok(());
            }
            let Some(slot) = inner.slots.front() else {
                break Err(WireError::Protocol("a reply nobody asked for".into()));
            };
            match wire::parse(slot.expect, rest) {
                Ok(Some((reply, n))) => {
                    used += n;
                    if let Some(slot) = inner.slots.pop_front() {
                        done.push((slot, reply));
                    }
                }
                Ok(None) => break Ok(()),
                Err(err) => break Err(err),
            }
        };
        input.drain(..used);
        result
    }

    /// No more commands: the connection is ending.
    pub fn close(&self) {
        self.inner.borrow_mut().closed = true;
    }

    /// The connection is gone: fails every command still waiting with
    /// `why`.
    pub fn end(&self, why: ConnError) {
        let slots = {
            let mut inner = self.inner.borrow_mut();
            inner.closed = true;
            inner.owner = None;
            inner.out = Vec::new();
            inner.sent = 0;
            mem::take(&mut inner.slots)
        };
        for slot in slots {
            slot.finish(Err(why.clone()));
        }
    }
}
