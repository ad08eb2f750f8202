//! One memcached server as a worker sees it: its address and its open
//! connections. An exchange queues its command on the first connection
//! with room, dialling a new one when all are full, and waits for the
//! reply within its deadline.

use core::cell::RefCell;
use std::rc::Rc;

use nginx_sys::ngx_log_t;
use paranoid_core::wire::{Reply, Request};

use super::address::Address;
use super::connection;
use super::deadline;
use super::error::{ConnError, ExchangeError};
use super::peer::Peer;
use super::pipeline::{Pipeline, MAX_IN_FLIGHT};
use super::slot::Slot;
use crate::metrics::Counters;

pub struct Server {
    /// The configuration's address: it outlives the worker's connections.
    address: &'static Address,
    pool: Rc<Pool>,
    counters: Option<&'static Counters>,
}

/// A server's connections. Each is owned by its task, which ends it; the
/// list only hands them to exchanges, and forgets those that ended.
pub struct Pool {
    /// Filled first to last: commands gather on the first one, so they
    /// leave and return in batches.
    conns: RefCell<Vec<Rc<Pipeline>>>,
    /// Connections kept open while nothing waits on them; also the most
    /// there may be (at least one).
    pub keepalive: usize,
}

impl Pool {
    /// Open connections with nothing waiting on them.
    pub fn idle(&self) -> usize {
        self.conns
            .borrow()
            .iter()
            .filter(|p| p.is_open() && p.in_flight() == 0)
            .count()
    }
}

impl Server {
    pub fn new(
        address: &'static Address,
        keepalive: usize,
        counters: Option<&'static Counters>,
    ) -> Server {
        Server {
            address,
            counters,
            pool: Rc::new(Pool {
                conns: RefCell::new(Vec::new()),
                keepalive,
            }),
        }
    }

    /// Sends `req` and returns its reply, within `timeout_ms` for connect,
    /// send and receive together.
    pub async fn exchange(
        &self,
        req: &Request<'_>,
        timeout_ms: u64,
        log: *mut ngx_log_t,
    ) -> Result<Reply, ExchangeError> {
        let slot = Slot::new(req.expects());
        let pipeline = self.submit(req, &slot, log)?;
        match deadline::within(timeout_ms, slot.wait()).await {
            Some(result) => Ok(result?),
            None => {
                // memcached answers in order: the replies behind this one
                // are late too, so the connection goes, with what waits
                // on it.
                pipeline.stop(ConnError::Dropped);
                Err(ExchangeError::Timeout { ms: timeout_ms })
            }
        }
    }

    /// Queues `req` on the first connection with room, dialling a new one
    /// when all are full. Returns the connection.
    fn submit(
        &self,
        req: &Request<'_>,
        slot: &Rc<Slot>,
        log: *mut ngx_log_t,
    ) -> Result<Rc<Pipeline>, ExchangeError> {
        let (room, count) = {
            let mut conns = self.pool.conns.borrow_mut();
            conns.retain(|p| p.is_open());
            let room = conns.iter().find(|p| p.in_flight() < MAX_IN_FLIGHT);
            (room.cloned(), conns.len())
        };
        if let Some(pipeline) = room {
            pipeline.push(req, slot)?;
            return Ok(pipeline);
        }
        if count >= self.pool.keepalive.max(1) {
            return Err(ConnError::Busy.into());
        }
        let peer = Peer::connect(self.address.peer(), log, self.counters)?;
        let pipeline = Rc::new(Pipeline::default());
        // Before the owner runs: a command that does not encode leaves no
        // connection behind (dropping the peer closes it).
        pipeline.push(req, slot)?;
        self.pool.conns.borrow_mut().push(Rc::clone(&pipeline));
        connection::spawn(peer, Rc::clone(&pipeline), Rc::clone(&self.pool));
        Ok(pipeline)
    }
}
