//! One memcached server as a worker sees it: its address (parsed by nginx
//! at configuration time), its name for logs and routing, and its
//! connections, each carrying pipelined commands.

use std::rc::Rc;

use nginx_sys::{ngx_addr_t, ngx_log_t};

use super::address::Address;
use super::pipeline::{IoError, Pipeline, Slot, MAX_IN_FLIGHT};

pub struct Server {
    /// As written in the configuration: logs and rendezvous routing use it.
    pub name: String,
    /// The configuration's address: it outlives the worker's connections.
    address: &'static Address,
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
    pub fn new(address: &'static Address, keepalive: usize) -> Server {
        Server {
            name: address.name.clone(),
            address,
            conns: Vec::new(),
            keepalive,
            next_id: 0,
        }
    }

    /// The address in the form nginx's peer connections take.
    pub fn peer(&self) -> &ngx_addr_t {
        self.address.peer()
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
