//! The session store: memcached, reached through nginx peer connections on
//! the worker's event loop.
//!
//! | file | what |
//! |---|---|
//! | `address` | a server's address, parsed by nginx at configuration time |
//! | `server` | one server: its connections, and one exchange on them |
//! | `pipeline` | the commands of one connection, shared by its exchanges and its owner |
//! | `connection` | the task that owns one connection: reads, delivers, flushes, ends |
//! | `peer` | the nginx connection itself; its event handlers only wake the owner |
//! | `slot` | where one exchange's reply lands |
//! | `deadline` | the non-cancelable timer of an exchange |
//! | `error` | why it failed: connection, exchange, store |
//!
//! The worker's `Store` lives in the http block's configuration (as nginx's
//! upstream keepalive module keeps its cache there), built on first use.

use core::fmt;
use std::time::Instant;

use nginx_sys::ngx_log_t;
use paranoid_core::metrics::StoreCommand;
use paranoid_core::wire::{self, Reply, Request};

use crate::metrics::Counters;

pub mod address;
mod connection;
pub(crate) mod deadline;
pub mod error;
mod peer;
mod pipeline;
mod server;
mod slot;

pub use address::Address;
use error::ExchangeError;
pub use error::StoreError;
use server::Server;

/// The worker's servers, in configuration order, and their names for
/// routing.
pub struct Store {
    servers: Vec<Server>,
    names: Vec<String>,
    counters: Option<&'static Counters>,
}

impl Store {
    pub fn new(
        addresses: &'static [Address],
        keepalive: usize,
        counters: Option<&'static Counters>,
    ) -> Store {
        Store {
            servers: addresses
                .iter()
                .map(|a| Server::new(a, keepalive, counters))
                .collect(),
            names: addresses.iter().map(|a| a.name.clone()).collect(),
            counters,
        }
    }

    /// The configuration's counters, if the module is in use.
    pub fn counters(&self) -> Option<&'static Counters> {
        self.counters
    }

    /// Sends `req` to the server owning its key and returns the reply,
    /// within `timeout_ms` for connect, send and receive together.
    pub async fn exchange(
        &self,
        req: &Request<'_>,
        timeout_ms: u64,
        log: *mut ngx_log_t,
    ) -> Result<Reply, StoreError> {
        if self.servers.is_empty() {
            return Err(StoreError::NotConfigured);
        }
        let index = wire::route(req.key(), &self.names);
        let server = self.servers.get(index).ok_or(StoreError::NotConfigured)?;
        let started = self.counters.map(|_| Instant::now());
        let result = server.exchange(req, timeout_ms, log).await;
        if let (Some(counters), Some(started)) = (self.counters, started) {
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let failed = result.as_ref().err().map(ExchangeError::kind);
            counters.exchange(StoreCommand::of(req), micros, failed);
        }
        result.map_err(|source| StoreError::Server {
            server: self.names.get(index).cloned().unwrap_or_default(),
            source,
        })
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("servers", &self.names)
            .finish()
    }
}
