//! The control header value (`Command::parse`): arbitrary bytes, values
//! assembled from the grammar's own pieces, and every valid command.

use paranoid_core::control::{
    is_user_byte, Command, ControlError, UserId, UserIdError, MAX_USER_LEN,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::config;

/// Longest error message: the longest fixed text plus a worst-case
/// snippet (32 escaped bytes, quotes and `...`).
const MAX_MESSAGE: usize = 256;

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The checks every input gets: no panic; an accepted value is its
/// command's canonical rendering plus optional trailing whitespace, and
/// that rendering parses back to the same command; a refused one has a
/// short, printable message.
fn check(value: &[u8]) -> Result<Option<Command>, TestCaseError> {
    match Command::parse(value) {
        Ok(command) => {
            let canonical = command.to_string();
            let trimmed = value
                .iter()
                .rposition(|&b| !is_ows(b))
                .map_or(&value[..0], |i| &value[..=i]);
            prop_assert_eq!(trimmed, canonical.as_bytes());
            prop_assert_eq!(Command::parse(canonical.as_bytes()), Ok(command.clone()));
            Ok(Some(command))
        }
        Err(error) => {
            let message = error.to_string();
            prop_assert!(
                !message.is_empty() && message.len() <= MAX_MESSAGE,
                "{}",
                message
            );
            prop_assert!(
                message.bytes().all(|b| (0x20..=0x7e).contains(&b)),
                "unprintable message {:?}",
                message
            );
            Ok(None)
        }
    }
}

/// Pieces of the grammar and the mistakes around it, so that generated
/// values reach every branch of the parser.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => select(vec![
            "login", "logout", "logout-everywhere", " ", " ", "\t", "user", "=", "user=",
            "Login", "USER", "x", "42", ",", ";", "\"", "\\", "\r\n", "\0", "é", "-",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => vec(any::<u8>(), 1..4),
        1 => (1usize..=MAX_USER_LEN + 2).prop_map(|n| vec![b'u'; n]),
    ]
}

fn pieces() -> impl Strategy<Value = Vec<u8>> {
    vec(piece(), 0..8).prop_map(|p| p.concat())
}

/// A valid user id of any length and any allowed bytes.
fn user_id() -> impl Strategy<Value = UserId> {
    let allowed: Vec<u8> = (0..=u8::MAX).filter(|&b| is_user_byte(b)).collect();
    vec(select(allowed), 1..=MAX_USER_LEN).prop_map(|bytes| UserId::parse(&bytes).unwrap())
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        proptest::option::of(user_id()).prop_map(|user| Command::Login { user }),
        Just(Command::Logout),
        proptest::option::of(user_id()).prop_map(|user| Command::LogoutEverywhere { user }),
    ]
}

fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,4}"
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn arbitrary_bytes(value in vec(any::<u8>(), 0..300)) {
        check(&value)?;
    }

    #[test]
    fn grammar_pieces(value in pieces()) {
        check(&value)?;
    }

    /// Every command, rendered canonically with any trailing whitespace,
    /// parses to itself; leading whitespace is refused.
    #[test]
    fn valid_commands(command in command(), tail in ows(), head in "[ \t]{1,3}") {
        let text = format!("{command}{tail}");
        prop_assert_eq!(check(text.as_bytes())?, Some(command.clone()));
        let text = format!("{head}{command}");
        prop_assert_eq!(Command::parse(text.as_bytes()), Err(ControlError::LeadingWhitespace));
    }

    /// One damaged byte in a valid command: refused, or another command
    /// that is canonical (e.g. a different but valid user id).
    #[test]
    fn damaged_commands(command in command(), at in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = command.to_string().into_bytes();
        let len = bytes.len();
        bytes[at % len] = byte;
        check(&bytes)?;
    }

    /// User ids are not logged above `info`, and malformed values are
    /// logged at `error`: no message quotes the id, wherever the mistake.
    #[test]
    fn errors_never_quote_the_user_id(
        before in pieces(),
        id in "Q[0-9]{6}Q",
        after in pieces(),
    ) {
        let value = [before.as_slice(), b"user=", id.as_bytes(), after.as_slice()].concat();
        if let Err(error) = Command::parse(&value) {
            let message = error.to_string();
            prop_assert!(!message.contains(&id), "{:?}: {}", String::from_utf8_lossy(&value), message);
        }
    }

    /// The standalone id validator and the one inside commands agree.
    #[test]
    fn user_ids(bytes in vec(prop_oneof![any::<u8>(), Just(b'a')], 0..MAX_USER_LEN + 4)) {
        let direct = UserId::parse(&bytes);
        match &direct {
            Ok(id) => prop_assert_eq!(id.as_bytes(), &bytes[..]),
            Err(UserIdError::Empty) => prop_assert!(bytes.is_empty()),
            Err(UserIdError::TooLong { len }) => prop_assert!(*len == bytes.len() && *len > MAX_USER_LEN),
            Err(UserIdError::ForbiddenByte { at, byte }) => {
                prop_assert!(bytes.len() <= MAX_USER_LEN);
                prop_assert_eq!(bytes[*at], *byte);
                prop_assert!(!is_user_byte(*byte));
                prop_assert!(bytes[..*at].iter().all(|&b| is_user_byte(b)));
            }
        }
        if !bytes.iter().any(|&b| is_ows(b)) {
            let value = [b"login user=".as_slice(), &bytes].concat();
            let in_command = Command::parse(&value);
            match direct {
                Ok(id) => prop_assert_eq!(in_command, Ok(Command::Login { user: Some(id) })),
                Err(e) => prop_assert_eq!(in_command, Err(ControlError::User(e))),
            }
        }
    }
}
