//! The command an application sends in its upstream response header
//! (`X-Paranoid-Session` unless `paranoid_session_control_header` renames
//! it) to tell the module what happened: a login, a logout, or the end of
//! every session of a user.
//!
//! # Grammar
//!
//! The value is exactly one command, case-sensitive:
//!
//! ```text
//! value    = command [ SP "user=" user-id ] *OWS
//! command  = "login" / "logout" / "logout-everywhere"
//! user-id  = 1*128( %x21-2B / %x2D-3A / %x3C-7E )
//!            ; printable ASCII without space, comma or semicolon
//! OWS      = SP / HTAB
//! ```
//!
//! - `user=` is allowed after `login` and `logout-everywhere` only:
//!   `logout user=ID` is malformed.
//! - Exactly one space separates the command from `user=`; no space is
//!   allowed around `=`.
//! - Trailing optional whitespace (SP, HTAB), which HTTP allows around a
//!   field value, is tolerated and ignored. Leading whitespace is not:
//!   nginx already strips it from upstream header values, so a value that
//!   still starts with whitespace did not come through nginx's parser and
//!   is refused.
//! - Anything else is malformed, with a [`ControlError`] saying which part
//!   is wrong. A malformed value must be ignored as a whole, never half
//!   applied.
//!
//! The value is parsed as bytes: non-UTF-8 or control bytes are simply
//! malformed.
//!
//! # Hygiene
//!
//! User ids are not secrets but are not logged above `info`. Error
//! messages are meant to be logged at `error`, so they never carry a user
//! id: errors about the id say only where it is wrong, and the snippets of
//! an unknown command or argument ([`Snippet`]) stop after the first `=`
//! and at 32 bytes, escaped. The [`Display`](fmt::Display) of a [`Command`]
//! (its canonical rendering) and of a [`UserId`] do contain the id.

use std::fmt;

use thiserror::Error;

/// The response header's name when `paranoid_session_control_header` is
/// not set.
pub const DEFAULT_HEADER: &str = "X-Paranoid-Session";

/// Longest user id, in bytes.
pub const MAX_USER_LEN: usize = 128;

/// Most bytes of the value an error message quotes.
pub const MAX_SNIPPET: usize = 32;

/// An application's user id: 1 to [`MAX_USER_LEN`] bytes of printable
/// ASCII (0x21..=0x7e) without commas or semicolons. Opaque to the module.
///
/// Its `Display` writes the id as it is: it holds no whitespace, control or
/// non-ASCII byte, so it cannot break a log line (but it is not logged
/// above `info`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Box<str>);

/// Why bytes are not a [`UserId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum UserIdError {
    #[error("the user id is empty")]
    Empty,
    #[error("the user id is {len} bytes long, at most 128 are allowed")]
    TooLong { len: usize },
    #[error(
        "the user id has the forbidden byte {byte:#04x} at offset {at}: only printable \
         ASCII without spaces, commas or semicolons is allowed"
    )]
    ForbiddenByte { at: usize, byte: u8 },
}

/// Whether `b` may appear in a user id.
pub fn is_user_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b',' && b != b';'
}

impl UserId {
    /// Validates `bytes` as a user id: emptiness first, then the length,
    /// then the first forbidden byte. Allocates exactly `bytes.len()`.
    pub fn parse(bytes: &[u8]) -> Result<UserId, UserIdError> {
        if bytes.is_empty() {
            return Err(UserIdError::Empty);
        }
        if bytes.len() > MAX_USER_LEN {
            return Err(UserIdError::TooLong { len: bytes.len() });
        }
        if let Some((at, &byte)) = bytes.iter().enumerate().find(|(_, &b)| !is_user_byte(b)) {
            return Err(UserIdError::ForbiddenByte { at, byte });
        }
        // Printable ASCII is UTF-8; the error branch cannot be taken.
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(UserId(Box::from(text))),
            Err(e) => Err(UserIdError::ForbiddenByte {
                at: e.valid_up_to(),
                byte: bytes.get(e.valid_up_to()).copied().unwrap_or(0),
            }),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in bytes, 1..=[`MAX_USER_LEN`].
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a user id has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", &*self.0)
    }
}

impl TryFrom<&str> for UserId {
    type Error = UserIdError;

    fn try_from(s: &str) -> Result<UserId, UserIdError> {
        UserId::parse(s.as_bytes())
    }
}

/// What the application asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A privilege change: a new token at once, the old one ended with no
    /// grace, the session bound to `user` when given.
    Login { user: Option<UserId> },
    /// The session destroyed, its cookies expired.
    Logout,
    /// Every session of `user`, or without it of the user bound to the
    /// current session, ended.
    LogoutEverywhere { user: Option<UserId> },
}

/// A bounded, escaped quote of part of a malformed value, for error
/// messages: at most [`MAX_SNIPPET`] bytes, never anything after the
/// first `=` (what follows may be a user id), `"`, `\` and bytes outside
/// printable ASCII escaped (`\"`, `\\`, `\xNN`), and `...` after the
/// closing quote when bytes were left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet(String);

impl Snippet {
    pub fn of(bytes: &[u8]) -> Snippet {
        let upto = bytes
            .iter()
            .position(|&b| b == b'=')
            .map_or(bytes.len(), |i| i + 1)
            .min(MAX_SNIPPET);
        let shown = bytes.get(..upto).unwrap_or(bytes);
        let mut out = String::with_capacity(upto + 5);
        out.push('"');
        for &b in shown {
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                0x20..=0x7e => out.push(char::from(b)),
                _ => {
                    const DIGITS: &[u8; 16] = b"0123456789abcdef";
                    out.push_str("\\x");
                    out.push(char::from(DIGITS[usize::from(b >> 4)]));
                    out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
                }
            }
        }
        out.push('"');
        if upto < bytes.len() {
            out.push_str("...");
        }
        Snippet(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a control header value is malformed. Every message is one printable
/// line without a user id in it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    /// Nothing but optional whitespace.
    #[error("empty value")]
    Empty,
    /// SP or HTAB before the command.
    #[error("whitespace before the command")]
    LeadingWhitespace,
    /// The first word is not a command (case matters: `Login` is unknown).
    #[error(
        "unknown command {0}: expected \"login\", \"logout\" or \"logout-everywhere\" \
         (case-sensitive)"
    )]
    UnknownCommand(Snippet),
    /// `logout` followed by anything but trailing whitespace.
    #[error("\"logout\" takes no argument")]
    LogoutTakesNoArgument,
    /// The command and its argument are not separated by exactly one SP.
    #[error("the command and \"user=\" must be separated by exactly one space")]
    Separator,
    /// An argument other than `user=`.
    #[error("unknown argument {0}: only \"user=ID\" is allowed")]
    UnknownArgument(Snippet),
    /// `user` without `=`.
    #[error("\"user\" must be followed by \"=ID\"")]
    MissingEquals,
    /// `user =ID` or `user= ID`.
    #[error("no space is allowed around \"=\" in \"user=ID\"")]
    SpaceAroundEquals,
    /// The id after `user=` is empty, too long or has a forbidden byte.
    #[error("{0}")]
    User(#[from] UserIdError),
    /// Something after the user id: a second argument or command, or an id
    /// with whitespace in it.
    #[error(
        "unexpected text at offset {at} after the user id: one command with at most one \
         argument is allowed, and user ids have no spaces"
    )]
    TrailingData { at: usize },
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `bytes` split before its first SP or HTAB; `None` when it has none.
fn split_at_ows(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match bytes.iter().position(|&b| is_ows(b)) {
        Some(i) => {
            let (head, tail) = bytes.split_at(i);
            (head, Some(tail))
        }
        None => (bytes, None),
    }
}

impl Command {
    /// Parses one header value (see the module documentation for the
    /// grammar). Never panics, whatever the bytes.
    pub fn parse(value: &[u8]) -> Result<Command, ControlError> {
        let end = value.iter().rposition(|&b| !is_ows(b)).map_or(0, |i| i + 1);
        let value = value.get(..end).unwrap_or(value);
        match value.first() {
            None => return Err(ControlError::Empty),
            Some(&b) if is_ows(b) => return Err(ControlError::LeadingWhitespace),
            Some(_) => {}
        }
        let (word, rest) = split_at_ows(value);
        let with_user = match word {
            b"login" => true,
            b"logout" => false,
            b"logout-everywhere" => true,
            _ => return Err(ControlError::UnknownCommand(Snippet::of(word))),
        };
        let user = match rest {
            None => None,
            Some(_) if !with_user => return Err(ControlError::LogoutTakesNoArgument),
            Some(rest) => {
                let at = value.len() - rest.len();
                Some(Self::parse_user(rest, at)?)
            }
        };
        Ok(match word {
            b"login" => Command::Login { user },
            b"logout" => Command::Logout,
            _ => Command::LogoutEverywhere { user },
        })
    }

    /// `rest` is what follows the command, starting with SP or HTAB and
    /// ending with neither; `at` is its offset in the value.
    fn parse_user(rest: &[u8], at: usize) -> Result<UserId, ControlError> {
        let arg = match rest {
            [b' ', first, ..] if !is_ows(*first) => rest.get(1..).unwrap_or(&[]),
            _ => return Err(ControlError::Separator),
        };
        let name_end = arg
            .iter()
            .position(|&b| b == b'=' || is_ows(b))
            .unwrap_or(arg.len());
        let (name, after) = arg.split_at(name_end);
        if name != b"user" {
            return Err(ControlError::UnknownArgument(Snippet::of(arg)));
        }
        let id_and_more = match after {
            [] => return Err(ControlError::MissingEquals),
            [b'=', more @ ..] => more,
            _ => {
                // `user =ID`, or `user ID` with no `=` at all.
                let next = after.iter().find(|&&b| !is_ows(b));
                return Err(if next == Some(&b'=') {
                    ControlError::SpaceAroundEquals
                } else {
                    ControlError::MissingEquals
                });
            }
        };
        if id_and_more.first().is_some_and(|&b| is_ows(b)) {
            return Err(ControlError::SpaceAroundEquals);
        }
        let (id, tail) = split_at_ows(id_and_more);
        let user = UserId::parse(id)?;
        if let Some(tail) = tail {
            // `rest`, and so `tail`, end where the value does, with a byte
            // other than SP or HTAB: the unexpected text starts there.
            let spaces = tail.iter().take_while(|&&b| is_ows(b)).count();
            return Err(ControlError::TrailingData {
                at: at + rest.len() - tail.len() + spaces,
            });
        }
        Ok(user)
    }

    /// The command's name, without its user: safe to log at any level.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Login { .. } => "login",
            Command::Logout => "logout",
            Command::LogoutEverywhere { .. } => "logout-everywhere",
        }
    }

    /// The user the command names, if any.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Command::Login { user } | Command::LogoutEverywhere { user } => user.as_ref(),
            Command::Logout => None,
        }
    }
}

/// The canonical rendering: `login`, `login user=ID`, `logout`,
/// `logout-everywhere`, `logout-everywhere user=ID`. It parses back to the
/// same command; it contains the user id.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self.user() {
            Some(user) => write!(f, " user={user}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
