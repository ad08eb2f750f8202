//! The module's counters at the nginx edge: a shared memory zone that
//! every worker adds to ([`zone`]), and the `paranoid_session_metrics`
//! content handler that shows them ([`handler`]). What is counted and how
//! it is written out is the core's (`paranoid_core::metrics`).
//!
//! The zone exists only when a location checks sessions or shows the
//! metrics: a configuration that does not use the module counts nothing.

pub mod handler;
pub mod zone;

use nginx_sys::ngx_http_request_t;
use ngx::http::HttpModuleMainConf;
pub use paranoid_core::metrics::{Counters, Shards};

use crate::ParanoidSessionModule;

/// This worker's counters in `r`'s configuration, if it has a zone.
pub fn of_request(r: *mut ngx_http_request_t) -> Option<&'static Counters> {
    shards_of_request(r).map(|shards| shards.slot(worker_slot()))
}

/// This process's slot: worker `n` of the cycle (0 in the master).
pub fn worker_slot() -> usize {
    // SAFETY: ngx_worker is set once by nginx before a worker serves
    // anything, and only read afterwards.
    unsafe { nginx_sys::ngx_worker }
}

/// Every worker's counters in `r`'s configuration, for the exposition.
pub fn shards_of_request(r: *mut ngx_http_request_t) -> Option<&'static Shards> {
    // SAFETY: main_conf of a live request holds this module's MainConf at
    // its ctx_index.
    let r = unsafe { ngx::http::Request::from_ngx_http_request(r) };
    ParanoidSessionModule::main_conf(r).and_then(|main| main.shards())
}
