//! Keeps superseded nonces and tokens acceptable while the response that
//! carries their successors is pending (see `paranoid_core::lifetime`).
//!
//! The core writes a grace start of decision + slack. If the response
//! headers have not left by then, a task owned by the request writes a
//! lease ahead of the clock into the store, and renews it every half lease,
//! until the header filter drops the task. A fast response costs nothing.

use nginx_sys::ngx_log_t;
use paranoid_core::engine::Grace;
use paranoid_core::lifetime::{DELIVERY_SLACK_MS, LEASE_MS};
use paranoid_core::record::Hash;
use paranoid_core::secret;
use paranoid_core::settings::Settings;

use crate::session::now_ms;
use crate::session::records::{Lookup, Records};
use crate::store::deadline::Deadline;
use crate::store::Store;

/// What one request superseded, and where it lives now.
pub struct GraceWork {
    /// The session record's key after the writes.
    session_key: String,
    /// The superseded nonce, in that record's previous nonces.
    nonce: Option<Hash>,
    /// The pointer left under the old token, and where it points.
    pointer: Option<(String, Hash)>,
    decided_ms: u64,
}

impl GraceWork {
    pub fn new(
        settings: &Settings,
        grace: &Grace,
        lookup: &Lookup,
        now_ms: u64,
    ) -> Option<GraceWork> {
        let found = lookup.key.clone()?;
        let (session_key, pointer) = match grace.moved_to {
            Some(target) => (
                secret::key_for_hash(&settings.key_prefix, &target),
                Some((found, target)),
            ),
            None => (found, None),
        };
        Some(GraceWork {
            session_key,
            nonce: grace.nonce,
            pointer,
            decided_ms: now_ms,
        })
    }
}

/// Runs until dropped: leases for the superseded values once the slack
/// has passed without the response leaving.
pub async fn keep(settings: &Settings, store: &Store, work: GraceWork, log: *mut ngx_log_t) {
    let first = (work.decided_ms + DELIVERY_SLACK_MS).saturating_sub(now_ms());
    Deadline::new(first.max(1)).await;
    loop {
        let now = now_ms();
        let records = Records {
            settings,
            store,
            now_ms: now,
            log,
        };
        let until = now + LEASE_MS;
        // A failed lease only shortens the grace; the request goes on.
        if let Some(nonce) = &work.nonce {
            let _ = records.extend_nonce(&work.session_key, nonce, until).await;
        }
        if let Some((key, target)) = &work.pointer {
            let _ = records.extend_pointer(key, target, until).await;
        }
        Deadline::new(LEASE_MS / 2).await;
    }
}
