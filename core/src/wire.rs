//! memcached meta protocol framing for the session store: the bytes of one
//! request and the incremental parse of its one reply. The choice of server
//! for a key is [`crate::route`], re-exported here as [`route`].
//!
//! Commands are built and reply headers parsed with the wire layer of the
//! `memcache` crate (`memcache::exp`, pinned to an exact version because
//! that layer is experimental); this module adds what the transport needs
//! around it: strict key/TTL/size checks, framing of the data block,
//! incremental parsing from a byte buffer, and the meaning of each return
//! code for each kind of request.
//!
//! | request  | wire                                   | replies                         |
//! |----------|----------------------------------------|---------------------------------|
//! | `Get`    | `mg <key> v c t l [T<ttl>]`            | `VA` value, `EN` miss           |
//! | `Add`    | `ms <key> <len> ME T<ttl>` + data      | `HD` stored, `NS` exists        |
//! | `Set`    | `ms <key> <len> T<ttl> [C<cas>]` + data| `HD`, `NS`; with CAS `EX`, `NF` |
//! | `Delete` | `md <key> [C<cas>]`                    | `HD` deleted, `NF` miss; with CAS `EX` |
//! | `Touch`  | `mg <key> T<ttl>`                      | `HD` touched, `EN` miss         |
//!
//! No quiet (`q`) or opaque flags: every request gets exactly one reply, in
//! order.

pub use crate::route::route;

use memcache::exp::{
    build_delete, build_get, build_set, parse_meta_result, DeleteOptions, GetOptions, MetaCommand,
    MetaCommandResult, MetaResponse, ReturnCode, SetMode, SetOptions,
};

/// Largest value a request may carry or a reply may announce (records are
/// under 1 KiB).
pub const MAX_VALUE: usize = 64 * 1024;
/// Longest key memcached accepts.
pub const MAX_KEY: usize = 250;
/// Longest TTL sent: memcached reads a larger number as an absolute unix
/// time, so a longer lifetime must be clamped by the caller.
pub const MAX_TTL: u32 = 30 * 24 * 3600;
/// Longest reply header line, without its CRLF.
pub const MAX_LINE: usize = 1024;

/// One request to memcached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// mg: value, CAS, remaining TTL, seconds since last access; `touch`
    /// sets a new TTL (seconds) atomically with the read. The TTL and idle
    /// time in the reply are those from before the touch (memcached 1.6.18:
    /// `mg k v c t l T120` on an item with 58 s left answers `t58`).
    Get { key: &'a [u8], touch: Option<u32> },
    /// ms in add mode: stores only if absent.
    Add {
        key: &'a [u8],
        value: &'a [u8],
        ttl: u32,
    },
    /// ms in set mode, compare-and-swap when cas is Some.
    Set {
        key: &'a [u8],
        value: &'a [u8],
        ttl: u32,
        cas: Option<u64>,
    },
    /// md, compare-and-swap when cas is Some: the item is removed only if
    /// nobody changed it since it was read.
    Delete { key: &'a [u8], cas: Option<u64> },
    /// touch only: new TTL, no value returned.
    Touch { key: &'a [u8], ttl: u32 },
}

/// What a reply must answer: the kind of request sent, without its key or
/// value. The same return code means different things per command (NF on
/// touch or delete is a miss, on a compare-and-swap set it is
/// [`Reply::NotFound`]), so the parser needs this and nothing more; a
/// pipelined connection keeps one per command in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Get,
    Touch,
    Add,
    /// `cas`: the set compares, so `EX` and `NF` are answers too.
    Set {
        cas: bool,
    },
    /// `cas`: the delete compares, so `EX` is an answer too.
    Delete {
        cas: bool,
    },
}

impl From<&Request<'_>> for Expect {
    fn from(req: &Request<'_>) -> Expect {
        match *req {
            Request::Get { .. } => Expect::Get,
            Request::Touch { .. } => Expect::Touch,
            Request::Add { .. } => Expect::Add,
            Request::Set { cas, .. } => Expect::Set { cas: cas.is_some() },
            Request::Delete { cas, .. } => Expect::Delete { cas: cas.is_some() },
        }
    }
}

/// The meaning of one reply, for the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A hit on Get. `ttl_left` is -1 for an item without expiry.
    /// `idle_secs` is memcached's LRU "last access", which the server
    /// updates lazily: memcached 1.6.18 does not bump it on the first fetch
    /// after a store (stored at 0 s, fetched at 2 s: `l2`, at 4 s: `l4`).
    /// It can overstate idleness: prefer `ttl_left` for idle expiry.
    Value {
        value: Vec<u8>,
        cas: u64,
        ttl_left: Option<i64>,
        idle_secs: Option<u64>,
    },
    /// EN on get/touch, NF on delete/touch.
    Miss,
    /// HD on set/add/delete/touch.
    Stored,
    /// NS: add found an existing item (or the server declined to store).
    NotStored,
    /// EX: CAS mismatch.
    Exists,
    /// NF: CAS set on a missing item.
    NotFound,
}

/// Why a request could not be encoded or a reply parsed.
///
/// Clone and comparable, so one failure can be handed to every request
/// waiting on a connection: what the `memcache` crate reports is its text
/// (it carries no more: a usage message or the server's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Empty, longer than [`MAX_KEY`], or a byte that is not printable
    /// ASCII (space, control characters and non-ASCII bytes are refused).
    #[error("invalid memcached key: 1 to 250 printable ASCII characters without spaces required")]
    InvalidKey,
    /// A value longer than [`MAX_VALUE`] bytes.
    #[error("value of {0} bytes, at most {MAX_VALUE} are allowed")]
    ValueTooLarge(usize),
    /// A TTL of 0 (memcached: never expires) or above [`MAX_TTL`]
    /// (memcached: an absolute time).
    #[error("invalid TTL {0}: 1 to {MAX_TTL} seconds required")]
    InvalidTtl(u32),
    /// The `memcache` crate refused to build the command.
    #[error("cannot encode the memcached command: {0}")]
    Encode(String),
    /// A malformed or unexpected reply: the connection is out of sync.
    #[error("memcached protocol error: {0}")]
    Protocol(String),
    /// `ERROR` or `CLIENT_ERROR`: the server rejected the command.
    #[error("memcached rejected the command: {0}")]
    Client(String),
    /// `SERVER_ERROR`, with the server's text.
    #[error("memcached server error: {0}")]
    Server(String),
}

fn protocol(message: &str) -> WireError {
    WireError::Protocol(message.to_owned())
}

fn from_memcache(error: memcache::exp::Error) -> WireError {
    use memcache::exp::Error;
    match error {
        Error::Protocol(m) => WireError::Protocol(m),
        Error::Rejected(m) => WireError::Client(m),
        Error::Server(m) => WireError::Server(m),
        other => WireError::Protocol(other.to_string()),
    }
}

impl<'a> Request<'a> {
    /// The memcached key: it also chooses the server ([`route`]).
    pub fn key(&self) -> &'a [u8] {
        match *self {
            Request::Get { key, .. }
            | Request::Add { key, .. }
            | Request::Set { key, .. }
            | Request::Delete { key, .. }
            | Request::Touch { key, .. } => key,
        }
    }

    /// What its reply must answer.
    pub fn expects(&self) -> Expect {
        Expect::from(self)
    }

    fn command(&self) -> Result<MetaCommand, memcache::exp::Error> {
        match *self {
            Request::Get { key, touch } => {
                let mut options = GetOptions::default();
                options.value = true;
                options.return_cas = true;
                options.return_ttl = true;
                options.return_last_access = true;
                options.touch = touch;
                build_get(key, &options)
            }
            Request::Touch { key, ttl } => {
                let mut options = GetOptions::default();
                options.value = false;
                options.touch = Some(ttl);
                build_get(key, &options)
            }
            Request::Add { key, value, ttl } => {
                let mut options = SetOptions::default();
                options.mode = SetMode::Add;
                options.ttl = Some(ttl);
                build_set(key, value, &options)
            }
            Request::Set {
                key,
                value,
                ttl,
                cas,
            } => {
                let mut options = SetOptions::default();
                options.ttl = Some(ttl);
                options.compare_cas = cas;
                build_set(key, value, &options)
            }
            Request::Delete { key, cas } => {
                let mut options = DeleteOptions::default();
                options.compare_cas = cas;
                build_delete(key, &options)
            }
        }
    }

    fn validate(&self) -> Result<(), WireError> {
        let key = self.key();
        if key.is_empty() || key.len() > MAX_KEY || !key.iter().all(u8::is_ascii_graphic) {
            return Err(WireError::InvalidKey);
        }
        let (value, ttl) = match *self {
            Request::Get { touch, .. } => (None, touch),
            Request::Touch { ttl, .. } => (None, Some(ttl)),
            Request::Add { value, ttl, .. } | Request::Set { value, ttl, .. } => {
                (Some(value), Some(ttl))
            }
            Request::Delete { .. } => (None, None),
        };
        if let Some(value) = value {
            if value.len() > MAX_VALUE {
                return Err(WireError::ValueTooLarge(value.len()));
            }
        }
        match ttl {
            Some(ttl) if ttl == 0 || ttl > MAX_TTL => Err(WireError::InvalidTtl(ttl)),
            _ => Ok(()),
        }
    }
}

/// Appends the wire bytes of `req` to `out`. On error `out` is unchanged.
pub fn encode(req: &Request<'_>, out: &mut Vec<u8>) -> Result<(), WireError> {
    req.validate()?;
    let command = req
        .command()
        .map_err(|e| WireError::Encode(e.to_string()))?;
    let start = out.len();
    command.encode_into(out).map_err(|e| {
        out.truncate(start);
        WireError::Encode(e.to_string())
    })
}

/// Incremental parse of one reply at the start of `buf` for a request of
/// kind `expect` (an [`Expect`], or the [`Request`] itself: the same code
/// means different things per command, e.g. NF on touch/delete is Miss, on
/// CAS set is NotFound):
/// Ok(None) = need more bytes; Ok(Some((reply, consumed))) = one reply of
/// `consumed` bytes.
///
/// Never panics, never allocates more than [`MAX_VALUE`] for a value, and
/// rejects garbage: `ERROR`/`CLIENT_ERROR` become [`WireError::Client`],
/// `SERVER_ERROR` [`WireError::Server`] with the server's text; an unknown
/// or unexpected code, a header line longer than [`MAX_LINE`] bytes or with
/// a bare CR, LF or non-printable byte, a bad data length and a data block
/// not followed by CRLF are [`WireError::Protocol`]. Every decision depends
/// only on the bytes before it, so a prefix of a buffer parses to `Ok(None)`
/// or to the same result as the whole buffer.
pub fn parse(expect: impl Into<Expect>, buf: &[u8]) -> Result<Option<(Reply, usize)>, WireError> {
    let expect = expect.into();
    let Some((line, header_len)) = header_line(buf)? else {
        return Ok(None);
    };
    if line.first() == Some(&b' ') {
        return Err(protocol("reply line starts with a space"));
    }
    let response = MetaResponse::parse_header(line).map_err(from_memcache)?;
    let rc = response.rc();
    let datalen = if rc == ReturnCode::Va {
        Some(data_length(line)?)
    } else {
        None
    };
    let meta = parse_meta_result(response).map_err(from_memcache)?;
    let reply = interpret(expect, rc, &meta)?;
    let Some(len) = datalen else {
        return Ok(Some((reply, header_len)));
    };
    let Reply::Value {
        cas,
        ttl_left,
        idle_secs,
        ..
    } = reply
    else {
        return Err(protocol("data block on a reply without a value"));
    };
    let end = header_len.saturating_add(len);
    match buf.get(end) {
        None => return Ok(None),
        Some(b'\r') => {}
        Some(_) => return Err(protocol("data block not followed by CRLF")),
    }
    match buf.get(end.saturating_add(1)) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(protocol("data block not followed by CRLF")),
    }
    let value = buf
        .get(header_len..end)
        .ok_or_else(|| protocol("data block out of range"))?
        .to_vec();
    let reply = Reply::Value {
        value,
        cas,
        ttl_left,
        idle_secs,
    };
    Ok(Some((reply, end.saturating_add(2))))
}

/// The reply line at the start of `buf` without its CRLF, and the length
/// with it. Scans left to right and decides at the first offending byte.
fn header_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, WireError> {
    let mut after_cr = false;
    for (i, &byte) in buf.iter().enumerate() {
        if after_cr {
            if byte != b'\n' {
                return Err(protocol("bare CR in reply line"));
            }
            let line = buf
                .get(..i.saturating_sub(1))
                .ok_or_else(|| protocol("reply line out of range"))?;
            return Ok(Some((line, i.saturating_add(1))));
        }
        match byte {
            b'\r' => after_cr = true,
            b'\n' => return Err(protocol("bare LF in reply line")),
            b' '..=b'~' => {}
            _ => return Err(protocol("non-printable byte in reply line")),
        }
        if i >= MAX_LINE && !after_cr {
            return Err(protocol("reply line longer than 1024 bytes"));
        }
    }
    Ok(None)
}

/// The data length of a `VA` line: decimal digits only, at most MAX_VALUE.
fn data_length(line: &[u8]) -> Result<usize, WireError> {
    let token = line
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .nth(1)
        .ok_or_else(|| protocol("VA reply without a data length"))?;
    if !token.iter().all(u8::is_ascii_digit) {
        return Err(protocol("VA reply with an invalid data length"));
    }
    let len = token.iter().fold(0usize, |n, &d| {
        n.saturating_mul(10)
            .saturating_add(usize::from(d.wrapping_sub(b'0')))
    });
    if len > MAX_VALUE {
        return Err(WireError::Protocol(format!(
            "VA reply announces {len} bytes, at most {MAX_VALUE} are allowed"
        )));
    }
    Ok(len)
}

/// What a return code means for this kind of request.
fn interpret(expect: Expect, rc: ReturnCode, meta: &MetaCommandResult) -> Result<Reply, WireError> {
    let unexpected = || {
        let what = match expect {
            Expect::Get => "mg",
            Expect::Touch => "touch",
            Expect::Add => "add",
            Expect::Set { .. } => "ms",
            Expect::Delete { .. } => "md",
        };
        Err(WireError::Protocol(format!(
            "unexpected {rc:?} reply to {what}"
        )))
    };
    match (expect, rc) {
        (Expect::Get, ReturnCode::Va) => Ok(Reply::Value {
            value: Vec::new(),
            cas: meta.cas.ok_or_else(|| protocol("VA reply without a CAS"))?,
            ttl_left: meta.ttl,
            idle_secs: meta.last_access,
        }),
        (Expect::Get, ReturnCode::En)
        | (Expect::Touch, ReturnCode::En | ReturnCode::Nf)
        | (Expect::Delete { .. }, ReturnCode::Nf) => Ok(Reply::Miss),
        (
            Expect::Touch | Expect::Add | Expect::Set { .. } | Expect::Delete { .. },
            ReturnCode::Hd,
        ) => Ok(Reply::Stored),
        (Expect::Add | Expect::Set { .. }, ReturnCode::Ns) => Ok(Reply::NotStored),
        (Expect::Set { cas: true } | Expect::Delete { cas: true }, ReturnCode::Ex) => {
            Ok(Reply::Exists)
        }
        (Expect::Set { cas: true }, ReturnCode::Nf) => Ok(Reply::NotFound),
        _ => unexpected(),
    }
}

#[cfg(test)]
mod tests;
