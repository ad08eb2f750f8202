//! The pure core of ngx_http_paranoid_session_module: everything that can be
//! decided without nginx or I/O lives here and is unit tested on its own.
//! The nginx module crate wraps it with FFI edges.

pub mod control;
pub mod cookie;
pub mod engine;
pub mod fingerprint;
pub mod lifetime;
pub mod metrics;
pub mod record;
pub mod route;
pub mod secret;
pub mod settings;
pub mod time;
pub mod user_index;
pub mod values;
pub mod wire;
