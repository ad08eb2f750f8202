//! Why talking to memcached failed, one type per layer: a connection
//! ([`ConnError`], which keeps the OS error as its source), one exchange
//! on it ([`ExchangeError`]), and what a request's session sees
//! ([`StoreError`], which names the server, once).

use std::io;

use paranoid_core::metrics::StoreErrorKind;
use paranoid_core::wire::WireError;

/// Why a connection ended, or could not take a command. Every command
/// still waiting on a connection that ends fails with the same error, so
/// it is `Clone`.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connect failed: {0}")]
    Connect(#[source] io::Error),
    /// nginx already wrote an error line naming the server and the reason.
    #[error("connect failed")]
    ConnectLogged,
    #[error("send failed: {0}")]
    Send(#[source] io::Error),
    #[error("recv failed: {0}")]
    Recv(#[source] io::Error),
    /// nginx could not arm the connection's `read` or `write` event.
    #[error("cannot arm the {0} event")]
    Arm(&'static str),
    /// The connection has no `send` or `recv` function.
    #[error("no {0} handler")]
    NoHandler(&'static str),
    #[error("connection closed by the server")]
    Closed,
    /// Another command on the same connection timed out, so the connection
    /// was dropped with everything still waiting on it.
    #[error("connection dropped after another command on it timed out")]
    Dropped,
    /// Every connection the server may have is full of waiting commands.
    #[error("too many commands waiting for replies")]
    Busy,
    /// A reply that does not parse: the connection is out of sync.
    #[error(transparent)]
    Protocol(#[from] WireError),
}

impl Clone for ConnError {
    fn clone(&self) -> ConnError {
        match self {
            ConnError::Connect(e) => ConnError::Connect(copy(e)),
            ConnError::ConnectLogged => ConnError::ConnectLogged,
            ConnError::Send(e) => ConnError::Send(copy(e)),
            ConnError::Recv(e) => ConnError::Recv(copy(e)),
            ConnError::Arm(which) => ConnError::Arm(which),
            ConnError::NoHandler(which) => ConnError::NoHandler(which),
            ConnError::Closed => ConnError::Closed,
            ConnError::Dropped => ConnError::Dropped,
            ConnError::Busy => ConnError::Busy,
            ConnError::Protocol(e) => ConnError::Protocol(e.clone()),
        }
    }
}

/// `io::Error` is not `Clone`. Those here come from the OS, and an OS error
/// is its number: the copy is the same error, without an allocation.
fn copy(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// Why one exchange (a command and its reply) failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The connection it went on failed, or none could be had.
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// The command could not be encoded.
    #[error(transparent)]
    Encode(#[from] WireError),
    #[error("no answer within {ms}ms")]
    Timeout { ms: u64 },
}

impl ExchangeError {
    /// The failure as the metrics count it.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            ExchangeError::Timeout { .. } => StoreErrorKind::Timeout,
            ExchangeError::Encode(_) | ExchangeError::Conn(ConnError::Protocol(_)) => {
                StoreErrorKind::Protocol
            }
            ExchangeError::Conn(ConnError::Connect(_) | ConnError::ConnectLogged) => {
                StoreErrorKind::Connect
            }
            ExchangeError::Conn(ConnError::Busy) => StoreErrorKind::Busy,
            ExchangeError::Conn(
                ConnError::Send(_)
                | ConnError::Recv(_)
                | ConnError::Arm(_)
                | ConnError::NoHandler(_)
                | ConnError::Closed
                | ConnError::Dropped,
            ) => StoreErrorKind::Connection,
        }
    }
}

/// Why a request's session could not be looked up or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no memcached server configured")]
    NotConfigured,
    /// The OS CSPRNG failed, so no session secret could be made.
    #[error("the OS random generator failed")]
    Random,
    /// Concurrent requests of the session kept changing its record.
    #[error("the session record kept changing under concurrent requests")]
    Contention,
    /// Concurrent logins of a user kept changing the user's index.
    #[error("the user's session index kept changing under concurrent logins")]
    IndexContention,
    /// An exchange with `server` (as written in the configuration) failed.
    #[error("memcached {server}: {source}")]
    Server {
        server: String,
        source: ExchangeError,
    },
}

impl StoreError {
    /// Whether nginx already logged this failure (connect() errors).
    pub fn already_logged(&self) -> bool {
        matches!(
            self,
            StoreError::Server {
                source: ExchangeError::Conn(ConnError::ConnectLogged),
                ..
            }
        )
    }
}
