//! The module's counters: what every worker adds to, kept by the nginx
//! edge in a shared memory zone, and their exposition ([`render`]).
//!
//! [`Counters`] is plain atomics in a `#[repr(C)]` struct, so the same
//! bytes are read and written by every worker process without a lock, and
//! all zeros (a freshly allocated zone) is a valid, empty set. A worker adds
//! with relaxed increments: each counter is exact, and a scrape sees each
//! counter's latest value (not one instant of all of them).
//!
//! [`Shards`] gives each worker its own [`Counters`] on its own cache
//! lines, so that workers on different CPUs never fight over a line; a
//! scrape sums them.

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::control::Command;
use crate::engine::{Expiry, Plan, Status, Violation, Write};
use crate::settings::{OnViolation, StoreFailure};
use crate::wire::Request;

pub mod render;

/// Every `$paranoid_session_status` value, in exposition order.
pub const STATUSES: [Status; 8] = [
    Status::New,
    Status::Valid,
    Status::Rotated,
    Status::Expired,
    Status::Violation,
    Status::Destroyed,
    Status::Bypass,
    Status::Error,
];

/// Every violation reason.
pub const REASONS: [Violation; 3] = [
    Violation::Fingerprint,
    Violation::Nonce,
    Violation::SecureKey,
];

/// Every `paranoid_on_violation` action.
pub const ACTIONS: [OnViolation; 3] = [OnViolation::Clear, OnViolation::Deny, OnViolation::Log];

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A new session (a first visit, or the replacement of an ended one).
    Created,
    /// Timed cycling: a new token, the old one kept for the window.
    Cycled,
    /// A new token for a privilege change: the old one ended at once.
    Rotated,
    /// Ended on purpose: a destroy location or the application's logout.
    Destroyed,
    ExpiredIdle,
    ExpiredAbsolute,
}

pub const SESSION_EVENTS: [SessionEvent; 6] = [
    SessionEvent::Created,
    SessionEvent::Cycled,
    SessionEvent::Rotated,
    SessionEvent::Destroyed,
    SessionEvent::ExpiredIdle,
    SessionEvent::ExpiredAbsolute,
];

/// The application's commands (`X-Paranoid-Session`) applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCommand {
    Login,
    Logout,
    LogoutEverywhere,
}

impl AppCommand {
    pub fn of(command: &Command) -> AppCommand {
        match command {
            Command::Login { .. } => AppCommand::Login,
            Command::Logout => AppCommand::Logout,
            Command::LogoutEverywhere { .. } => AppCommand::LogoutEverywhere,
        }
    }
}

pub const APP_COMMANDS: [AppCommand; 3] = [
    AppCommand::Login,
    AppCommand::Logout,
    AppCommand::LogoutEverywhere,
];

/// memcached meta commands, by what they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCommand {
    Get,
    Add,
    Set,
    Delete,
    Touch,
}

pub const STORE_COMMANDS: [StoreCommand; 5] = [
    StoreCommand::Get,
    StoreCommand::Add,
    StoreCommand::Set,
    StoreCommand::Delete,
    StoreCommand::Touch,
];

impl StoreCommand {
    pub fn of(req: &Request<'_>) -> StoreCommand {
        match req {
            Request::Get { .. } => StoreCommand::Get,
            Request::Add { .. } => StoreCommand::Add,
            Request::Set { .. } => StoreCommand::Set,
            Request::Delete { .. } => StoreCommand::Delete,
            Request::Touch { .. } => StoreCommand::Touch,
        }
    }
}

/// Why an exchange with memcached failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// No answer within `paranoid_session_store_timeout`.
    Timeout,
    /// No connection could be made (refused, unreachable).
    Connect,
    /// An open connection failed: reset, closed by the server, or dropped
    /// because a command before this one timed out on it.
    Connection,
    /// A reply that does not parse, or a command that cannot be encoded.
    Protocol,
    /// Every connection the worker may open to the server is full.
    Busy,
}

pub const STORE_ERROR_KINDS: [StoreErrorKind; 5] = [
    StoreErrorKind::Timeout,
    StoreErrorKind::Connect,
    StoreErrorKind::Connection,
    StoreErrorKind::Protocol,
    StoreErrorKind::Busy,
];

/// Upper bounds of the exchange latency buckets, in microseconds (the
/// exposition writes them in seconds). A last bucket, `+Inf`, follows.
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// Written in the first word of a zone's counters: a zone that nginx kept
/// over a reload is reused only if it holds this very layout.
pub const MAGIC: u64 = 0x7073_6d65_7472_0002 ^ (core::mem::size_of::<Shards>() as u64);

/// Per-worker counters: worker `n` adds to slot `n % SHARDS`.
pub const SHARDS: usize = 32;

/// The counters of one nginx configuration: one [`Counters`] per worker
/// slot. Workers beyond [`SHARDS`], and the old workers of a reload still
/// finishing their requests, share slots: still exact, only slower.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Shards {
    slots: [Counters; SHARDS],
}

impl Shards {
    /// The counters worker `worker` adds to.
    pub fn slot(&self, worker: usize) -> &Counters {
        &self.slots[worker % SHARDS]
    }

    /// Whether these shards were marked by [`Shards::mark`] with this
    /// layout.
    pub fn is_marked(&self) -> bool {
        self.slots[0].magic.load(Ordering::Relaxed) == MAGIC
    }

    pub fn mark(&self) {
        self.slots[0].magic.store(MAGIC, Ordering::Relaxed);
    }

    /// Every worker's counters summed, for the exposition.
    pub fn snapshot(&self) -> Snapshot {
        let mut total = self.slots[0].snapshot();
        for slot in &self.slots[1..] {
            total.add(&slot.snapshot());
        }
        total
    }
}

/// The counters of one worker (see [`Shards`]), on cache lines of their
/// own.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct Counters {
    magic: AtomicU64,
    requests: [AtomicU64; STATUSES.len()],
    violations: [[AtomicU64; ACTIONS.len()]; REASONS.len()],
    sessions: [AtomicU64; SESSION_EVENTS.len()],
    app_commands: [AtomicU64; APP_COMMANDS.len()],
    store_commands: [AtomicU64; STORE_COMMANDS.len()],
    store_errors: [AtomicU64; STORE_ERROR_KINDS.len()],
    cas_conflicts: AtomicU64,
    /// Per bucket, not cumulative; the last one is `+Inf`.
    latency: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    latency_sum_us: AtomicU64,
    connections: AtomicI64,
    failure_policy: [AtomicU64; 2],
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn index_of<T: PartialEq + Copy>(all: &[T], one: T) -> usize {
    all.iter().position(|&x| x == one).unwrap_or(0)
}

impl Counters {
    /// A checked request's status, and what its plan did to sessions.
    pub fn decided(&self, plan: &Plan, action: OnViolation) {
        self.request(plan.status);
        if let Some(reason) = plan.violation {
            add(
                &self.violations[index_of(&REASONS, reason)][index_of(&ACTIONS, action)],
                1,
            );
        }
        self.plan(plan);
    }

    /// A request by status alone (bypassed, or failed before a plan).
    pub fn request(&self, status: Status) {
        add(&self.requests[index_of(&STATUSES, status)], 1);
    }

    /// What a performed plan did to sessions.
    pub fn plan(&self, plan: &Plan) {
        for event in session_events(plan) {
            self.session(event, 1);
        }
    }

    pub fn session(&self, event: SessionEvent, n: u64) {
        add(&self.sessions[index_of(&SESSION_EVENTS, event)], n);
    }

    pub fn app_command(&self, command: AppCommand) {
        add(&self.app_commands[index_of(&APP_COMMANDS, command)], 1);
    }

    /// A store failure and the policy applied to the request.
    pub fn failure_policy(&self, policy: StoreFailure) {
        let i = match policy {
            StoreFailure::Deny => 0,
            StoreFailure::Allow => 1,
        };
        add(&self.failure_policy[i], 1);
    }

    /// One exchange with memcached: its command, how long it took, and
    /// why it failed if it did.
    pub fn exchange(&self, command: StoreCommand, micros: u64, error: Option<StoreErrorKind>) {
        add(&self.store_commands[index_of(&STORE_COMMANDS, command)], 1);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        add(&self.latency[bucket], 1);
        add(&self.latency_sum_us, micros);
        if let Some(kind) = error {
            add(&self.store_errors[index_of(&STORE_ERROR_KINDS, kind)], 1);
        }
    }

    /// A compare-and-swap write that lost to a concurrent change.
    pub fn cas_conflict(&self) {
        add(&self.cas_conflicts, 1);
    }

    /// A memcached connection opened (+1) or closed (-1).
    pub fn connections(&self, delta: i64) {
        self.connections.fetch_add(delta, Ordering::Relaxed);
    }

    /// The values now, for the exposition.
    pub fn snapshot(&self) -> Snapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let latency: Vec<u64> = self.latency.iter().map(load).collect();
        Snapshot {
            requests: self.requests.iter().map(load).collect(),
            violations: self
                .violations
                .iter()
                .map(|row| row.iter().map(load).collect())
                .collect(),
            sessions: self.sessions.iter().map(load).collect(),
            app_commands: self.app_commands.iter().map(load).collect(),
            store_commands: self.store_commands.iter().map(load).collect(),
            store_errors: self.store_errors.iter().map(load).collect(),
            cas_conflicts: load(&self.cas_conflicts),
            latency_count: latency.iter().sum(),
            latency,
            latency_sum_us: load(&self.latency_sum_us),
            connections: self.connections.load(Ordering::Relaxed),
            failure_deny: load(&self.failure_policy[0]),
            failure_allow: load(&self.failure_policy[1]),
        }
    }
}

/// What a performed plan did to sessions: a new record alone is a new
/// session; with a retired one it is a cycle (a pointer left behind) or a
/// rotation (none); an ending on purpose is a destruction; an expiry says
/// which timeout.
pub fn session_events(plan: &Plan) -> impl Iterator<Item = SessionEvent> {
    let added = plan.writes.iter().any(|w| matches!(w, Write::Add { .. }));
    let retired = plan.writes.iter().find_map(|w| match w {
        Write::Retire { pointer, .. } => Some(pointer.is_some()),
        _ => None,
    });
    let token = match (added, retired) {
        (true, None) => Some(SessionEvent::Created),
        (_, Some(true)) => Some(SessionEvent::Cycled),
        (_, Some(false)) => Some(SessionEvent::Rotated),
        (false, None) => None,
    };
    let ended = plan.status == Status::Destroyed
        && plan
            .writes
            .iter()
            .any(|w| matches!(w, Write::Delete { .. }));
    let expiry = plan.expiry.map(|e| match e {
        Expiry::Idle => SessionEvent::ExpiredIdle,
        Expiry::Absolute => SessionEvent::ExpiredAbsolute,
    });
    token
        .into_iter()
        .chain(ended.then_some(SessionEvent::Destroyed))
        .chain(expiry)
}

/// A copy of the counters' values, in the order of the `*S` constants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: Vec<u64>,
    pub violations: Vec<Vec<u64>>,
    pub sessions: Vec<u64>,
    pub app_commands: Vec<u64>,
    pub store_commands: Vec<u64>,
    pub store_errors: Vec<u64>,
    pub cas_conflicts: u64,
    /// Per bucket, not cumulative; the last one is `+Inf`.
    pub latency: Vec<u64>,
    pub latency_count: u64,
    pub latency_sum_us: u64,
    /// Opened minus closed (a worker may close what another slot's worker
    /// opened only when slots are shared, so one slot may be negative);
    /// the exposition shows at least 0.
    pub connections: i64,
    pub failure_deny: u64,
    pub failure_allow: u64,
}

fn add_all(into: &mut [u64], from: &[u64]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

impl Snapshot {
    /// Adds another worker's values.
    pub fn add(&mut self, other: &Snapshot) {
        add_all(&mut self.requests, &other.requests);
        for (row, other_row) in self.violations.iter_mut().zip(&other.violations) {
            add_all(row, other_row);
        }
        add_all(&mut self.sessions, &other.sessions);
        add_all(&mut self.app_commands, &other.app_commands);
        add_all(&mut self.store_commands, &other.store_commands);
        add_all(&mut self.store_errors, &other.store_errors);
        self.cas_conflicts += other.cas_conflicts;
        add_all(&mut self.latency, &other.latency);
        self.latency_count += other.latency_count;
        self.latency_sum_us += other.latency_sum_us;
        self.connections += other.connections;
        self.failure_deny += other.failure_deny;
        self.failure_allow += other.failure_allow;
    }

    /// Open connections as shown: never below 0.
    pub fn open_connections(&self) -> u64 {
        self.connections.max(0) as u64
    }
}

#[cfg(test)]
mod tests;
