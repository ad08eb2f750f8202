//! How long records live in memcached, and what memcached's clock says
//! about a session's idleness.
//!
//! # Expiry
//!
//! A session ends `paranoid_idle_timeout` after its last request or
//! `paranoid_absolute_timeout` after its creation, whichever comes first.
//! Its record outlives that end by a *tail* (the idle timeout, at most an
//! hour, plus a second for memcached's whole-second clock), so that a
//! client coming back late is told `expired` instead of `new`; the engine
//! deletes such a record at once, it is never revived.
//! Every read of a record refreshes its TTL to `idle + tail` in the same
//! meta get, which also reports the TTL that was left before the refresh:
//! a TTL left of at most `tail` means the idle timeout had passed. A steady
//! request therefore costs one memcached command, as before.
//!
//! # Grace of superseded values
//!
//! A renewed nonce or a cycled token reaches the client only with the
//! response. The values they supersede stay acceptable for
//! `paranoid_nonce_window_timeout` counted from a *grace start*: the
//! decision plus [`DELIVERY_SLACK_MS`], which covers a response whose
//! headers leave within that slack. A slower response keeps the grace start
//! ahead of the clock (a lease of [`LEASE_MS`], renewed every half lease
//! while its headers have not left), so overlapping requests that still
//! carry the old values are accepted until the client could have received
//! the new ones, plus the window timeout.

use crate::record::Session;
use crate::settings::Settings;
use crate::time::{HOUR, SECOND};
use crate::wire::MAX_TTL;

/// Longest tail a record keeps after its session ended.
pub const MAX_TAIL_MS: u64 = HOUR;
/// Time a response has to hand the client its new nonce or token before
/// the grace of the superseded ones needs a lease in the store.
pub const DELIVERY_SLACK_MS: u64 = 250;
/// How far ahead of the clock a lease puts the grace start of a value
/// whose successor has not left yet; renewed every half lease.
pub const LEASE_MS: u64 = SECOND;

/// A duration as a memcached TTL: whole seconds rounded up, at least 1, at
/// most what memcached takes as relative (30 days).
pub fn secs(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(SECOND))
        .unwrap_or(MAX_TTL)
        .clamp(1, MAX_TTL)
}

/// How long a record outlives its session, in whole seconds: the idle
/// timeout (at most an hour), and one second more because memcached's
/// clock ticks in whole seconds: an item can expire up to a second early
/// in real time, and the tail must still be there.
fn tail_secs(settings: &Settings) -> u32 {
    secs(settings.idle_timeout_ms.min(MAX_TAIL_MS)).saturating_add(1)
}

/// The TTL every read sets: the idle timeout plus the tail.
pub fn read_ttl(settings: &Settings) -> u32 {
    secs(settings.idle_timeout_ms)
        .saturating_add(tail_secs(settings))
        .min(MAX_TTL)
}

/// The TTL of a session record written or read at `now_ms`:
/// `min(idle timeout, time left before the absolute timeout)` plus the
/// tail.
pub fn session_ttl(settings: &Settings, session: &Session, now_ms: u64) -> u32 {
    let age = now_ms.saturating_sub(session.created_ms);
    let left = settings.absolute_timeout_ms.saturating_sub(age);
    secs(settings.idle_timeout_ms.min(left))
        .saturating_add(tail_secs(settings))
        .min(MAX_TTL)
}

/// Whether a record whose TTL left before this read was `ttl_left` (in
/// seconds, as memcached reports it; -1 = no expiry) had been idle for the
/// idle timeout: every read set `read_ttl`, so at most the tail is left.
pub fn idle_expired(settings: &Settings, ttl_left: Option<i64>) -> bool {
    ttl_left.is_some_and(|left| (0..=i64::from(tail_secs(settings))).contains(&left))
}

/// The grace start written for values superseded at `now_ms`: the slack
/// for the response is added only when superseded values have a finite,
/// non-zero window.
pub fn grace_start(settings: &Settings, now_ms: u64) -> u64 {
    match settings.nonce_window_timeout_ms {
        Some(window) if window > 0 => now_ms.saturating_add(DELIVERY_SLACK_MS),
        _ => now_ms,
    }
}

/// Whether a value superseded with grace start `at_ms` is still
/// acceptable at `now_ms`.
pub fn within_grace(settings: &Settings, at_ms: u64, now_ms: u64) -> bool {
    settings
        .nonce_window_timeout_ms
        .is_none_or(|window| now_ms < at_ms.saturating_add(window))
}

/// Milliseconds of grace left at `now_ms` for a token pointer whose grace
/// starts at `at_ms` (0 without a finite window).
pub fn pointer_grace_left(settings: &Settings, at_ms: u64, now_ms: u64) -> u64 {
    settings.nonce_window_timeout_ms.map_or(0, |window| {
        at_ms.saturating_add(window).saturating_sub(now_ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::RawSettings;
    use crate::time::MINUTE;

    fn settings(idle_ms: u64, absolute_ms: u64, window: Option<u64>) -> Settings {
        let raw = RawSettings {
            idle_timeout_ms: Some(idle_ms),
            absolute_timeout_ms: Some(absolute_ms),
            nonce_window_timeout_ms: Some(window),
            ..RawSettings::default()
        };
        raw.resolve().unwrap()
    }

    fn session(created_ms: u64) -> Session {
        Session {
            uid: [0; 16],
            created_ms,
            key_issued_ms: created_ms,
            fingerprint: None,
            secure_key: None,
            nonce: None,
            previous: Vec::new(),
            user: None,
        }
    }

    #[test]
    fn secs_rounds_up_and_clamps() {
        assert_eq!(secs(0), 1);
        assert_eq!(secs(1), 1);
        assert_eq!(secs(1000), 1);
        assert_eq!(secs(1001), 2);
        assert_eq!(secs(u64::MAX), MAX_TTL);
    }

    #[test]
    fn tail_is_the_idle_timeout_at_most_an_hour() {
        let s = settings(2000, 10_000, Some(1000));
        assert_eq!(read_ttl(&s), 5);
        let s = settings(30 * MINUTE, 12 * HOUR, Some(1000));
        assert_eq!(read_ttl(&s), 3601);
        let s = settings(5 * HOUR, 12 * HOUR, Some(1000));
        assert_eq!(read_ttl(&s), 5 * 3600 + 3601);
    }

    #[test]
    fn session_ttl_is_capped_by_the_absolute_timeout() {
        let s = settings(60_000, 100_000, Some(1000));
        // young: idle + tail (60 s + 1 s)
        assert_eq!(session_ttl(&s, &session(0), 0), 121);
        // 70 s old: 30 s left, + tail
        assert_eq!(session_ttl(&s, &session(0), 70_000), 91);
        // past the end: the least TTL, + tail
        assert_eq!(session_ttl(&s, &session(0), 200_000), 62);
    }

    #[test]
    fn idle_expiry_reads_the_ttl_left() {
        let s = settings(2000, 10_000, Some(1000));
        // read_ttl is 5: 2 s idle + 3 s tail
        assert!(!idle_expired(&s, Some(5)));
        assert!(!idle_expired(&s, Some(4)));
        assert!(idle_expired(&s, Some(3)));
        assert!(idle_expired(&s, Some(2)));
        assert!(idle_expired(&s, Some(0)));
        assert!(!idle_expired(&s, Some(-1)), "no expiry set: not ours");
        assert!(!idle_expired(&s, None));
    }

    #[test]
    fn grace_starts_after_the_slack_only_with_a_finite_window() {
        assert_eq!(grace_start(&settings(1, 1, Some(1000)), 10), 260);
        assert_eq!(grace_start(&settings(1, 1, Some(0)), 10), 10);
        assert_eq!(grace_start(&settings(1, 1, None), 10), 10);
    }

    #[test]
    fn grace_counts_from_its_start() {
        let s = settings(1, 1, Some(1000));
        assert!(within_grace(&s, 5000, 100), "a lease ahead of the clock");
        assert!(within_grace(&s, 5000, 5999));
        assert!(!within_grace(&s, 5000, 6000));
        assert!(within_grace(&settings(1, 1, None), 0, u64::MAX));
        assert!(!within_grace(&settings(1, 1, Some(0)), 10, 10));
        assert_eq!(pointer_grace_left(&s, 5000, 100), 5900);
        assert_eq!(pointer_grace_left(&s, 5000, 5500), 500);
        assert_eq!(pointer_grace_left(&s, 5000, 7000), 0);
        assert_eq!(pointer_grace_left(&settings(1, 1, None), 5000, 0), 0);
    }
}
