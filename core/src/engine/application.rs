//! What the application says through its control header (`login`,
//! `logout`), decided as plans like [`decide`](super::decide)'s, so that
//! the caller performs and retries their writes the same way.

use super::{
    destroyed, new_session, CookieOut, Found, Fresh, Plan, Presented, Status, Stored, Write,
};
use crate::control::UserId;
use crate::secret::{Hasher, RandomError};
use crate::settings::Settings;

/// `login [user=ID]`, a privilege change: the session moves to a new token
/// and the old one ends at once, with no grace pointer. With `user=` the
/// session is bound to that user; without, a bound user stays. When the
/// session ended meanwhile (a logout raced the login), a fresh one is
/// started and bound.
pub fn login(
    settings: &Settings,
    hasher: &Hasher<'_>,
    req: &Presented,
    found: Found,
    user: Option<UserId>,
    fresh: &mut impl Fresh,
) -> Result<Plan, RandomError> {
    let Found::Session(Stored {
        mut session,
        cas,
        via_pointer,
        ..
    }) = found
    else {
        let mut plan = new_session(settings, hasher, req, fresh, Plan::new(Status::New))?;
        if let Some(Write::Add { session, .. }) = plan.writes.last_mut() {
            session.user.clone_from(&user);
        }
        plan.user = user;
        return Ok(plan);
    };
    if user.is_some() {
        session.user = user;
    }
    let token = fresh.token()?;
    let target = hasher.token_hash(&token);
    session.key_issued_ms = req.now_ms;
    let mut plan = Plan::new(Status::Rotated);
    plan.uid = Some(session.uid);
    plan.created_ms = Some(session.created_ms);
    plan.user.clone_from(&session.user);
    plan.cookies.push(CookieOut::Token(token));
    plan.writes.push(Write::Add {
        token_hash: target,
        session,
    });
    plan.writes.push(Write::Retire { pointer: None, cas });
    if via_pointer {
        // Older tokens of the session end too.
        plan.writes.push(Write::DeletePath);
    }
    Ok(plan)
}

/// `logout`: the session ends and its cookies expire.
pub fn logout(found: &Found) -> Plan {
    match found {
        Found::Session(stored) => destroyed(Some(stored)),
        Found::Nothing => destroyed(None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{found, presented, session, settings, DELETE, H};
    use super::*;

    struct Counter(u8);

    impl Fresh for Counter {
        fn token(&mut self) -> Result<crate::secret::Token, RandomError> {
            self.0 += 1;
            Ok([self.0; 32])
        }
        fn key(&mut self) -> Result<super::super::Key, RandomError> {
            self.0 += 1;
            Ok([self.0; 16])
        }
        fn uid(&mut self) -> Result<[u8; 16], RandomError> {
            self.0 += 1;
            Ok([self.0; 16])
        }
    }

    fn alice() -> UserId {
        UserId::parse(b"alice").unwrap()
    }

    #[test]
    fn login_moves_the_session_and_ends_the_old_token() {
        let s = settings(|_| {});
        let plan = login(
            &s,
            &H,
            &presented(),
            found(session()),
            Some(alice()),
            &mut Counter(100),
        )
        .unwrap();
        assert_eq!(plan.status, Status::Rotated);
        assert_eq!(plan.uid, Some([7; 16]));
        assert_eq!(plan.user, Some(alice()));
        assert_eq!(plan.cookies, vec![CookieOut::Token([101; 32])]);
        let [Write::Add {
            token_hash,
            session: added,
        }, Write::Retire {
            pointer: None,
            cas: 42,
        }] = plan.writes.as_slice()
        else {
            panic!("{:?}", plan.writes)
        };
        assert_eq!(*token_hash, H.token_hash(&[101; 32]));
        assert_eq!(added.user, Some(alice()));
        assert_eq!(added.uid, [7; 16]);
        assert_eq!(plan.grace, None);
    }

    #[test]
    fn login_without_user_keeps_the_bound_one() {
        let mut bound = session();
        bound.user = Some(alice());
        let plan = login(
            &settings(|_| {}),
            &H,
            &presented(),
            found(bound),
            None,
            &mut Counter(100),
        )
        .unwrap();
        assert_eq!(plan.user, Some(alice()));
        assert!(
            matches!(&plan.writes[0], Write::Add { session, .. } if session.user == Some(alice()))
        );
    }

    #[test]
    fn login_after_the_session_ended_starts_a_bound_one() {
        let plan = login(
            &settings(|_| {}),
            &H,
            &presented(),
            Found::Nothing,
            Some(alice()),
            &mut Counter(100),
        )
        .unwrap();
        assert_eq!(plan.status, Status::New);
        assert_eq!(plan.user, Some(alice()));
        assert!(
            matches!(&plan.writes[..], [Write::Add { session, .. }] if session.user == Some(alice()))
        );
    }

    #[test]
    fn logout_ends_the_session() {
        let plan = logout(&found(session()));
        assert_eq!(plan.status, Status::Destroyed);
        assert_eq!(plan.writes, vec![DELETE]);
        assert_eq!(plan.cookies, vec![CookieOut::ExpireAll]);
        assert_eq!(plan.uid, None);
        assert_eq!(logout(&Found::Nothing).writes, vec![]);
    }
}
