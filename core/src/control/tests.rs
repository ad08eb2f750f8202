use super::*;

fn user(s: &str) -> UserId {
    UserId::parse(s.as_bytes()).unwrap()
}

fn parse(s: &str) -> Result<Command, ControlError> {
    Command::parse(s.as_bytes())
}

fn login(id: &str) -> Command {
    Command::Login {
        user: Some(user(id)),
    }
}

fn everywhere(id: &str) -> Command {
    Command::LogoutEverywhere {
        user: Some(user(id)),
    }
}

fn snippet(s: &str) -> Snippet {
    Snippet::of(s.as_bytes())
}

// --- UserId ----------------------------------------------------------

#[test]
fn user_id_lengths() {
    assert_eq!(UserId::parse(b""), Err(UserIdError::Empty));
    assert_eq!(user("a").as_bytes(), b"a");
    assert_eq!(user("a").len(), 1);
    let max = "x".repeat(MAX_USER_LEN);
    assert_eq!(user(&max).as_str(), max);
    assert_eq!(user(&max).len(), 128);
    assert_eq!(
        UserId::parse("x".repeat(129).as_bytes()),
        Err(UserIdError::TooLong { len: 129 })
    );
    assert_eq!(
        UserId::parse(&[b','; 1000]),
        Err(UserIdError::TooLong { len: 1000 }),
        "the length is checked before the bytes"
    );
}

#[test]
fn user_id_bytes() {
    for b in 0u8..=255 {
        let allowed = (0x21..=0x7e).contains(&b) && b != b',' && b != b';';
        assert_eq!(is_user_byte(b), allowed, "{b:#04x}");
        for bytes in [vec![b], vec![b'a', b], vec![b, b'a'], vec![b'a', b, b'b']] {
            let at = bytes.iter().position(|&x| x == b).unwrap();
            match UserId::parse(&bytes) {
                Ok(id) => {
                    assert!(allowed, "{b:#04x}");
                    assert_eq!(id.as_bytes(), &bytes[..]);
                }
                Err(e) => {
                    assert!(!allowed, "{b:#04x}");
                    assert_eq!(e, UserIdError::ForbiddenByte { at, byte: b });
                }
            }
        }
    }
    // Everything printable but the three is fine, '=' and quotes included.
    assert_eq!(user("a=b\"c'd\\e").as_str(), "a=b\"c'd\\e");
    assert_eq!(
        UserId::parse("é".as_bytes()),
        Err(UserIdError::ForbiddenByte { at: 0, byte: 0xc3 })
    );
}

#[test]
fn user_id_conversions_and_display() {
    let id = UserId::try_from("alice@example.com").unwrap();
    assert_eq!(id.to_string(), "alice@example.com");
    assert_eq!(format!("{id:?}"), "UserId(\"alice@example.com\")");
    assert!(!id.is_empty());
    assert_eq!(
        UserId::try_from("a b"),
        Err(UserIdError::ForbiddenByte { at: 1, byte: b' ' })
    );
    assert!(user("a") < user("b"));
}

#[test]
fn user_id_errors_read_well() {
    assert_eq!(UserIdError::Empty.to_string(), "the user id is empty");
    assert_eq!(
        UserIdError::TooLong { len: 129 }.to_string(),
        "the user id is 129 bytes long, at most 128 are allowed"
    );
    assert_eq!(
        UserIdError::ForbiddenByte { at: 3, byte: b',' }.to_string(),
        "the user id has the forbidden byte 0x2c at offset 3: only printable ASCII \
         without spaces, commas or semicolons is allowed"
    );
    assert_eq!(
        UserIdError::ForbiddenByte { at: 0, byte: 0 }.to_string(),
        "the user id has the forbidden byte 0x00 at offset 0: only printable ASCII \
         without spaces, commas or semicolons is allowed"
    );
}

// --- valid commands ----------------------------------------------------

#[test]
fn the_five_forms() {
    assert_eq!(parse("login"), Ok(Command::Login { user: None }));
    assert_eq!(parse("login user=42"), Ok(login("42")));
    assert_eq!(parse("logout"), Ok(Command::Logout));
    assert_eq!(
        parse("logout-everywhere"),
        Ok(Command::LogoutEverywhere { user: None })
    );
    assert_eq!(parse("logout-everywhere user=bob"), Ok(everywhere("bob")));
}

#[test]
fn user_id_boundaries_in_commands() {
    let max = "u".repeat(128);
    assert_eq!(parse(&format!("login user={max}")), Ok(login(&max)));
    assert_eq!(
        parse(&format!("logout-everywhere user={max}")),
        Ok(everywhere(&max))
    );
    assert_eq!(parse("login user=1"), Ok(login("1")));
    assert_eq!(
        parse(&format!("login user={max}u")),
        Err(ControlError::User(UserIdError::TooLong { len: 129 }))
    );
    assert_eq!(
        parse("login user="),
        Err(ControlError::User(UserIdError::Empty))
    );
    assert_eq!(
        parse("logout-everywhere user="),
        Err(ControlError::User(UserIdError::Empty))
    );
    // The id may itself hold '=' and look like an argument.
    assert_eq!(parse("login user=user=x"), Ok(login("user=x")));
    assert_eq!(parse("login user=="), Ok(login("=")));
}

#[test]
fn trailing_whitespace_is_tolerated() {
    for tail in [" ", "\t", "  ", " \t ", "\t\t"] {
        assert_eq!(
            parse(&format!("login{tail}")),
            Ok(Command::Login { user: None })
        );
        assert_eq!(parse(&format!("logout{tail}")), Ok(Command::Logout));
        assert_eq!(parse(&format!("login user=a{tail}")), Ok(login("a")));
        assert_eq!(
            parse(&format!("logout-everywhere user=a{tail}")),
            Ok(everywhere("a"))
        );
        assert_eq!(
            parse(&format!("login user={tail}")),
            Err(ControlError::User(UserIdError::Empty))
        );
    }
}

#[test]
fn leading_whitespace_is_refused() {
    for head in [" ", "\t", "  ", " \t"] {
        assert_eq!(
            parse(&format!("{head}login")),
            Err(ControlError::LeadingWhitespace)
        );
        assert_eq!(
            parse(&format!("{head}logout ")),
            Err(ControlError::LeadingWhitespace)
        );
    }
}

#[test]
fn empty_values() {
    for v in ["", " ", "\t", "   \t "] {
        assert_eq!(parse(v), Err(ControlError::Empty), "{v:?}");
    }
}

// --- malformed commands ------------------------------------------------

#[test]
fn unknown_commands() {
    for word in [
        "Login",
        "LOGIN",
        "Logout",
        "LOGOUT",
        "Logout-Everywhere",
        "logout-Everywhere",
        "logout_everywhere",
        "logouteverywhere",
        "logout-",
        "log",
        "logins",
        "xlogin",
        "login,logout",
        "login;",
        "rotate",
        "destroy",
        "user=x",
        "\"login\"",
        "login\0",
        "login\r\n",
        "login\n",
    ] {
        assert_eq!(
            parse(word),
            Err(ControlError::UnknownCommand(snippet(word))),
            "{word:?}"
        );
    }
    assert_eq!(
        parse("Login user=x"),
        Err(ControlError::UnknownCommand(snippet("Login")))
    );
    assert_eq!(
        parse("login, logout"),
        Err(ControlError::UnknownCommand(snippet("login,")))
    );
    assert_eq!(
        Command::parse(&[0xff, 0xfe]),
        Err(ControlError::UnknownCommand(Snippet::of(&[0xff, 0xfe])))
    );
}

#[test]
fn logout_takes_no_argument() {
    for v in [
        "logout user=x",
        "logout user=",
        "logout x",
        "logout\tuser=x",
        "logout  user=x",
        "logout logout",
    ] {
        assert_eq!(parse(v), Err(ControlError::LogoutTakesNoArgument), "{v:?}");
    }
}

#[test]
fn separators() {
    for cmd in ["login", "logout-everywhere"] {
        for sep in ["  ", "\t", " \t", "\t ", "   "] {
            assert_eq!(
                parse(&format!("{cmd}{sep}user=x")),
                Err(ControlError::Separator),
                "{cmd:?} {sep:?}"
            );
        }
    }
}

#[test]
fn spaces_around_equals() {
    for v in [
        "login user =x",
        "login user= x",
        "login user = x",
        "login user\t=x",
        "login user=\tx",
        "logout-everywhere user =x",
        "logout-everywhere user= x",
    ] {
        assert_eq!(parse(v), Err(ControlError::SpaceAroundEquals), "{v:?}");
    }
}

#[test]
fn missing_equals() {
    for v in [
        "login user",
        "login user x",
        "logout-everywhere user",
        "login user  ",
    ] {
        assert_eq!(parse(v), Err(ControlError::MissingEquals), "{v:?}");
    }
}

#[test]
fn unknown_arguments() {
    for (v, arg) in [
        ("login User=x", "User=x"),
        ("login USER=x", "USER=x"),
        ("login id=x", "id=x"),
        ("login users=x", "users=x"),
        ("login =x", "=x"),
        ("login x", "x"),
        ("login user:x", "user:x"),
        ("login user,x", "user,x"),
        ("logout-everywhere uid=0123", "uid=0123"),
        ("login logout", "logout"),
    ] {
        assert_eq!(
            parse(v),
            Err(ControlError::UnknownArgument(snippet(arg))),
            "{v:?}"
        );
    }
}

#[test]
fn forbidden_bytes_in_the_id() {
    for b in (0u8..=255).filter(|&b| !is_user_byte(b) && b != b' ' && b != b'\t') {
        let mut v = b"login user=ab".to_vec();
        v.insert(12, b);
        assert_eq!(
            Command::parse(&v),
            Err(ControlError::User(UserIdError::ForbiddenByte {
                at: 1,
                byte: b
            })),
            "{b:#04x}"
        );
        // At the end too (nothing strips it but SP and HTAB).
        let mut v = b"logout-everywhere user=ab".to_vec();
        v.push(b);
        assert_eq!(
            Command::parse(&v),
            Err(ControlError::User(UserIdError::ForbiddenByte {
                at: 2,
                byte: b
            })),
            "{b:#04x}"
        );
    }
}

#[test]
fn one_command_only() {
    for (v, at) in [
        ("login user=a b", 13),
        ("login user=a  b", 14),
        ("login user=a user=b", 13),
        ("login user=a\tlogout", 13),
        ("logout-everywhere user=a login", 25),
    ] {
        assert_eq!(parse(v), Err(ControlError::TrailingData { at }), "{v:?}");
    }
}

// --- rendering -----------------------------------------------------------

#[test]
fn canonical_rendering_and_names() {
    let cases = [
        (Command::Login { user: None }, "login", "login"),
        (login("a"), "login user=a", "login"),
        (Command::Logout, "logout", "logout"),
        (
            Command::LogoutEverywhere { user: None },
            "logout-everywhere",
            "logout-everywhere",
        ),
        (
            everywhere("x=y"),
            "logout-everywhere user=x=y",
            "logout-everywhere",
        ),
    ];
    for (command, text, name) in cases {
        assert_eq!(command.to_string(), text);
        assert_eq!(command.name(), name);
        assert_eq!(parse(text), Ok(command.clone()));
    }
    assert_eq!(login("a").user(), Some(&user("a")));
    assert_eq!(Command::Logout.user(), None);
    assert_eq!(Command::Login { user: None }.user(), None);
}

// --- error messages ------------------------------------------------------

#[test]
fn snippets_are_bounded_escaped_and_stop_after_equals() {
    assert_eq!(snippet("Login").as_str(), "\"Login\"");
    assert_eq!(snippet("").as_str(), "\"\"");
    assert_eq!(snippet("a\"b\\c").as_str(), "\"a\\\"b\\\\c\"");
    assert_eq!(
        Snippet::of(b"\0\r\n\x7f\xff").as_str(),
        "\"\\x00\\x0d\\x0a\\x7f\\xff\""
    );
    assert_eq!(snippet("a b").as_str(), "\"a b\"");
    assert_eq!(snippet("user=secret").as_str(), "\"user=\"...");
    assert_eq!(snippet("user=").as_str(), "\"user=\"");
    assert_eq!(snippet("=x").as_str(), "\"=\"...");
    let long = "x".repeat(MAX_SNIPPET);
    assert_eq!(snippet(&long).as_str(), format!("\"{long}\""));
    assert_eq!(
        snippet(&format!("{long}y")).as_str(),
        format!("\"{long}\"...")
    );
    // Worst case: 32 escaped bytes of 4 characters each.
    let worst = Snippet::of(&[0xff; 1000]).to_string();
    assert_eq!(worst.len(), 2 + 4 * MAX_SNIPPET + 3);
}

#[test]
fn error_messages() {
    let cases = [
        (ControlError::Empty, "empty value"),
        (
            ControlError::LeadingWhitespace,
            "whitespace before the command",
        ),
        (
            ControlError::UnknownCommand(snippet("Login")),
            "unknown command \"Login\": expected \"login\", \"logout\" or \
             \"logout-everywhere\" (case-sensitive)",
        ),
        (
            ControlError::LogoutTakesNoArgument,
            "\"logout\" takes no argument",
        ),
        (
            ControlError::Separator,
            "the command and \"user=\" must be separated by exactly one space",
        ),
        (
            ControlError::UnknownArgument(snippet("id=x")),
            "unknown argument \"id=\"...: only \"user=ID\" is allowed",
        ),
        (
            ControlError::MissingEquals,
            "\"user\" must be followed by \"=ID\"",
        ),
        (
            ControlError::SpaceAroundEquals,
            "no space is allowed around \"=\" in \"user=ID\"",
        ),
        (
            ControlError::User(UserIdError::Empty),
            "the user id is empty",
        ),
        (
            ControlError::TrailingData { at: 13 },
            "unexpected text at offset 13 after the user id: one command with at most one \
             argument is allowed, and user ids have no spaces",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn errors_never_quote_the_user_id() {
    let id = "s3cr3t-user";
    for v in [
        format!("login user={id},x"),
        format!("login user={id} more"),
        format!("login user= {id}"),
        format!("login uid={id}"),
        format!("logout user={id}"),
        format!("Login user={id}"),
        format!("user={id}"),
        format!("login  user={id}"),
        format!("login user={id}{}", "x".repeat(200)),
    ] {
        let error = parse(&v).unwrap_err().to_string();
        assert!(!error.contains(id), "{v:?}: {error}");
    }
}
