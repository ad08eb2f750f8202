//! The counters as text: Prometheus' text exposition format (version
//! 0.0.4) and a JSON object with the same values.

use core::fmt::Write as _;

use super::SessionEvent;
use super::{
    AppCommand, Snapshot, StoreCommand, StoreErrorKind, ACTIONS, APP_COMMANDS, LATENCY_BOUNDS_US,
    REASONS, SESSION_EVENTS, STATUSES, STORE_COMMANDS, STORE_ERROR_KINDS,
};

/// `Content-Type` of [`prometheus`]'s output.
pub const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// `Content-Type` of [`json`]'s output.
pub const JSON_TYPE: &str = "application/json";

/// What the endpoint's `?format=` argument asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    Json,
}

impl Format {
    /// The argument's value (None: not given); None back for a value the
    /// endpoint does not speak.
    pub fn of(arg: Option<&[u8]>) -> Option<Format> {
        match arg {
            None | Some(b"prometheus") => Some(Format::Prometheus),
            Some(b"json") => Some(Format::Json),
            Some(_) => None,
        }
    }
}

impl AppCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            AppCommand::Login => "login",
            AppCommand::Logout => "logout",
            AppCommand::LogoutEverywhere => "logout_everywhere",
        }
    }
}

impl StoreCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreCommand::Get => "get",
            StoreCommand::Add => "add",
            StoreCommand::Set => "set",
            StoreCommand::Delete => "delete",
            StoreCommand::Touch => "touch",
        }
    }
}

impl StoreErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreErrorKind::Timeout => "timeout",
            StoreErrorKind::Connect => "connect",
            StoreErrorKind::Connection => "connection",
            StoreErrorKind::Protocol => "protocol",
            StoreErrorKind::Busy => "busy",
        }
    }
}

/// Seconds with microsecond precision, as Prometheus and JSON read them.
fn seconds(micros: u64) -> String {
    let (s, us) = (micros / 1_000_000, micros % 1_000_000);
    if us == 0 {
        return s.to_string();
    }
    let text = format!("{s}.{us:06}");
    text.trim_end_matches('0').to_string()
}

fn at(values: &[u64], i: usize) -> u64 {
    values.get(i).copied().unwrap_or(0)
}

/// One metric family: its HELP and TYPE lines, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, suffix: &str, labels: &[(&str, &str)], value: &str) {
        let _ = write!(self.out, "{}{}", self.name, suffix);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(self.out, "{sep}{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn count(&mut self, labels: &[(&str, &str)], value: u64) {
        self.sample("", labels, &value.to_string());
    }
}

/// The Prometheus text exposition of `s`.
pub fn prometheus(s: &Snapshot) -> String {
    let mut out = String::with_capacity(6 * 1024);
    let o = &mut out;

    let mut f = Family::new(
        o,
        "paranoid_session_requests_total",
        "counter",
        "Requests checked, by the $paranoid_session_status the check gave them.",
    );
    for (i, status) in STATUSES.iter().enumerate() {
        f.count(&[("status", status.as_str())], at(&s.requests, i));
    }

    let mut f = Family::new(
        o,
        "paranoid_session_violations_total",
        "counter",
        "Requests caught presenting another client's session, by reason and by the action taken.",
    );
    for (r, reason) in REASONS.iter().enumerate() {
        let row = s.violations.get(r).map(Vec::as_slice).unwrap_or(&[]);
        for (a, action) in ACTIONS.iter().enumerate() {
            f.count(
                &[("reason", reason.as_str()), ("action", action.as_str())],
                at(row, a),
            );
        }
    }

    let event = |e: SessionEvent| at(&s.sessions, super::index_of(&SESSION_EVENTS, e));
    Family::new(
        o,
        "paranoid_session_sessions_created_total",
        "counter",
        "Sessions created: first visits and replacements of ended sessions.",
    )
    .count(&[], event(SessionEvent::Created));
    Family::new(
        o,
        "paranoid_session_tokens_cycled_total",
        "counter",
        "Session tokens replaced by timed cycling (the old one kept for the window).",
    )
    .count(&[], event(SessionEvent::Cycled));
    Family::new(
        o,
        "paranoid_session_tokens_rotated_total",
        "counter",
        "Session tokens replaced for a privilege change (the old one ended at once).",
    )
    .count(&[], event(SessionEvent::Rotated));
    Family::new(
        o,
        "paranoid_session_sessions_destroyed_total",
        "counter",
        "Sessions ended on purpose: a destroy location or the application's logout.",
    )
    .count(&[], event(SessionEvent::Destroyed));
    let mut f = Family::new(
        o,
        "paranoid_session_sessions_expired_total",
        "counter",
        "Sessions found expired when used, by the timeout that ended them.",
    );
    f.count(&[("timeout", "idle")], event(SessionEvent::ExpiredIdle));
    f.count(
        &[("timeout", "absolute")],
        event(SessionEvent::ExpiredAbsolute),
    );

    let mut f = Family::new(
        o,
        "paranoid_session_application_commands_total",
        "counter",
        "Commands of the application's control header applied, by command.",
    );
    for (i, c) in APP_COMMANDS.iter().enumerate() {
        f.count(&[("command", c.as_str())], at(&s.app_commands, i));
    }

    let mut f = Family::new(
        o,
        "paranoid_session_store_commands_total",
        "counter",
        "memcached commands sent, by what they do.",
    );
    for (i, c) in STORE_COMMANDS.iter().enumerate() {
        f.count(&[("command", c.as_str())], at(&s.store_commands, i));
    }

    let mut f = Family::new(
        o,
        "paranoid_session_store_errors_total",
        "counter",
        "memcached commands that failed, by why.",
    );
    for (i, k) in STORE_ERROR_KINDS.iter().enumerate() {
        f.count(&[("kind", k.as_str())], at(&s.store_errors, i));
    }

    Family::new(
        o,
        "paranoid_session_store_cas_conflicts_total",
        "counter",
        "Compare-and-swap writes that lost to a concurrent request and were decided again.",
    )
    .count(&[], s.cas_conflicts);

    let mut f = Family::new(
        o,
        "paranoid_session_store_latency_seconds",
        "histogram",
        "Time from sending a memcached command to its reply or failure.",
    );
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
        cumulative += at(&s.latency, i);
        f.sample(
            "_bucket",
            &[("le", &seconds(*bound))],
            &cumulative.to_string(),
        );
    }
    f.sample("_bucket", &[("le", "+Inf")], &s.latency_count.to_string());
    f.sample("_sum", &[], &seconds(s.latency_sum_us));
    f.sample("_count", &[], &s.latency_count.to_string());

    Family::new(
        o,
        "paranoid_session_store_connections",
        "gauge",
        "memcached connections open, all workers together.",
    )
    .count(&[], s.open_connections());

    let mut f = Family::new(
        o,
        "paranoid_session_store_failures_total",
        "counter",
        "Requests whose store failed, by the paranoid_session_store_failure policy applied.",
    );
    f.count(&[("policy", "deny")], s.failure_deny);
    f.count(&[("policy", "allow")], s.failure_allow);
    out
}

/// Writes `{"k":v,...}` for names and values taken in step.
fn object<'n>(out: &mut String, names: impl Iterator<Item = &'n str>, values: &[u64]) {
    out.push('{');
    for (i, name) in names.enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}\"{name}\":{}", at(values, i));
    }
    out.push('}');
}

/// The same values as one JSON object (the names the exposition's labels
/// use; every value an integer except the latency sum, in seconds).
pub fn json(s: &Snapshot) -> String {
    let mut o = String::with_capacity(2048);
    o.push_str("{\"requests\":");
    object(&mut o, STATUSES.iter().map(|x| x.as_str()), &s.requests);
    o.push_str(",\"violations\":{");
    for (r, reason) in REASONS.iter().enumerate() {
        let sep = if r == 0 { "" } else { "," };
        let _ = write!(o, "{sep}\"{}\":", reason.as_str());
        let row = s.violations.get(r).map(Vec::as_slice).unwrap_or(&[]);
        object(&mut o, ACTIONS.iter().map(|a| a.as_str()), row);
    }
    o.push_str("},\"sessions\":");
    let names = [
        "created",
        "cycled",
        "rotated",
        "destroyed",
        "expired_idle",
        "expired_absolute",
    ];
    debug_assert_eq!(names.len(), SESSION_EVENTS.len());
    object(&mut o, names.into_iter(), &s.sessions);
    o.push_str(",\"application\":");
    object(
        &mut o,
        APP_COMMANDS.iter().map(|c| c.as_str()),
        &s.app_commands,
    );
    o.push_str(",\"store\":{\"commands\":");
    object(
        &mut o,
        STORE_COMMANDS.iter().map(|c| c.as_str()),
        &s.store_commands,
    );
    o.push_str(",\"errors\":");
    object(
        &mut o,
        STORE_ERROR_KINDS.iter().map(|k| k.as_str()),
        &s.store_errors,
    );
    let _ = write!(
        o,
        ",\"cas_conflicts\":{},\"connections\":{},\"latency\":{{\"buckets\":[",
        s.cas_conflicts,
        s.open_connections()
    );
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
        cumulative += at(&s.latency, i);
        let _ = write!(
            o,
            "{{\"le\":{},\"count\":{}}},",
            seconds(*bound),
            cumulative
        );
    }
    let _ = write!(
        o,
        "{{\"le\":\"+Inf\",\"count\":{}}}],\"sum\":{},\"count\":{}}}}}",
        s.latency_count,
        seconds(s.latency_sum_us),
        s.latency_count
    );
    let _ = write!(
        o,
        ",\"failure_policy\":{{\"deny\":{},\"allow\":{}}}}}",
        s.failure_deny, s.failure_allow
    );
    o.push('\n');
    o
}
