//! The store side of the application's commands (`login`, `logout`,
//! `logout-everywhere`) and of the per-user index that finds every session
//! of a user.

use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::Poll;

use paranoid_core::control::{Command, UserId};
use paranoid_core::engine::{self, Found, OsFresh, Plan, Presented, Status, Write};
use paranoid_core::lifetime::secs;
use paranoid_core::record::UID_LEN;
use paranoid_core::secret::{self, Hasher};
use paranoid_core::user_index::{Entry, UserIndex};
use paranoid_core::wire::{Reply, Request};

use super::records::Records;
use crate::store::deadline::Deadline;
use crate::store::StoreError;

/// Decisions made when compare-and-swap races are lost, as for requests.
const ATTEMPTS: usize = 8;
/// Writes of a user's index when compare-and-swap races are lost: the
/// logins of one user that meet in one loop iteration retry in lockstep and
/// one wins a round, so this bounds the concurrent logins of a user that
/// all succeed (the index holds at most 64 sessions anyway).
const INDEX_ATTEMPTS: usize = 64;

/// What the request knows of its session when the command arrives.
pub struct Ctx<'a> {
    pub hasher: &'a Hasher<'a>,
    pub presented: &'a Presented,
    /// Where the session lives (None: the access phase left none).
    pub key: Option<String>,
    /// The user the session was bound to.
    pub user: Option<UserId>,
}

/// What a command did.
pub enum Applied {
    /// `login` or `logout`: the plan performed (its cookies to send).
    Plan(Plan),
    /// `logout-everywhere`: how many sessions ended, whether the request's
    /// own session was one of them, and whether the user's index was
    /// missing (never made, or evicted by memcached).
    Everywhere {
        ended: usize,
        own: bool,
        no_index: bool,
    },
    /// Nothing to do (e.g. `logout-everywhere` without a user).
    Nothing(&'static str),
}

/// A session bound to a user that moved to a new token.
pub struct Moved {
    pub user: UserId,
    pub entry: Entry,
}

/// The user session a plan moved to a new token (cycling, rotation,
/// login), for the user's index.
pub fn moved_user_session(plan: &Plan) -> Option<Moved> {
    if plan.status != Status::Rotated {
        return None;
    }
    plan.writes.iter().find_map(|w| match w {
        Write::Add {
            token_hash,
            session,
        } => session.user.clone().map(|user| Moved {
            user,
            entry: Entry {
                key_hash: *token_hash,
                uid: session.uid,
                created_ms: session.created_ms,
            },
        }),
        _ => None,
    })
}

impl Records<'_> {
    /// Applies one command.
    pub async fn command(&self, command: &Command, ctx: &Ctx<'_>) -> Result<Applied, StoreError> {
        match command {
            Command::Login { user } => self.login(user.clone(), ctx).await.map(Applied::Plan),
            Command::Logout => self.logout(ctx).await.map(Applied::Plan),
            Command::LogoutEverywhere { user } => {
                let Some(user) = user.clone().or_else(|| ctx.user.clone()) else {
                    return Ok(Applied::Nothing(
                        "no user given and none bound to the session",
                    ));
                };
                self.logout_everywhere(&user, ctx).await
            }
        }
    }

    async fn login(&self, user: Option<UserId>, ctx: &Ctx<'_>) -> Result<Plan, StoreError> {
        let mut pushed = Vec::new();
        let result = self.login_once(user, ctx, &mut pushed).await;
        // Sessions the cap pushed out of the index end, whatever became of
        // the login: "logout everywhere" could not find them any more.
        for entry in pushed {
            self.end_session(Some(self.key_for(&entry.key_hash)), Some(entry.uid))
                .await?;
        }
        result
    }

    /// The user's index first (so the session can be found before its
    /// token exists anywhere, and a failure leaves the old token intact),
    /// then the move to the new token.
    async fn login_once(
        &self,
        user: Option<UserId>,
        ctx: &Ctx<'_>,
        pushed: &mut Vec<Entry>,
    ) -> Result<Plan, StoreError> {
        for attempt in 1..=ATTEMPTS {
            let lookup = self.lookup(ctx.key.clone()).await?;
            let previous = bound_user(&lookup.found);
            let found = lookup.found.clone();
            let mut plan = engine::login(
                self.settings,
                ctx.hasher,
                ctx.presented,
                found,
                user.clone(),
                &mut OsFresh,
            )
            .map_err(|_| StoreError::Random)?;
            if attempt == ATTEMPTS {
                plan = engine::last_resort(plan);
            }
            if let Some(moved) = moved_user_session(&plan).or_else(|| new_user_session(&plan)) {
                pushed.extend(self.index_login(ctx.hasher, moved).await?);
            }
            if !self.apply(&plan.writes, &lookup).await? {
                continue;
            }
            if let Some(old) = previous.filter(|old| Some(old) != plan.user.as_ref()) {
                if let Some(uid) = plan.uid {
                    self.index_remove(ctx.hasher, &old, &uid).await?;
                }
            }
            return Ok(plan);
        }
        Err(StoreError::Contention)
    }

    async fn logout(&self, ctx: &Ctx<'_>) -> Result<Plan, StoreError> {
        for attempt in 1..=ATTEMPTS {
            let lookup = self.lookup(ctx.key.clone()).await?;
            let mut plan = engine::logout(&lookup.found);
            if attempt == ATTEMPTS {
                plan = engine::last_resort(plan);
            }
            if !self.apply(&plan.writes, &lookup).await? {
                continue;
            }
            if let Found::Session(stored) = &lookup.found {
                if let Some(user) = &stored.session.user {
                    self.index_remove(ctx.hasher, user, &stored.session.uid)
                        .await?;
                }
            }
            return Ok(plan);
        }
        Err(StoreError::Contention)
    }

    /// Ends every session in the user's index, then the index. A login
    /// that adds to the index meanwhile makes the delete lose its
    /// compare-and-swap, and the index is read again.
    async fn logout_everywhere(&self, user: &UserId, ctx: &Ctx<'_>) -> Result<Applied, StoreError> {
        let key = secret::user_key(&self.settings.key_prefix, ctx.hasher, user);
        let mut ended = 0;
        let mut no_index = false;
        for _ in 0..ATTEMPTS {
            let Some((index, cas)) = self.read_index(&key).await? else {
                no_index = true;
                break;
            };
            let results = join_all(
                index
                    .entries()
                    .iter()
                    .map(|e| self.end_session(Some(self.key_for(&e.key_hash)), Some(e.uid)))
                    .collect(),
            )
            .await;
            for result in results {
                ended += usize::from(result?);
            }
            let delete = Request::Delete {
                key: key.as_bytes(),
                cas: Some(cas),
            };
            if self.exchange(&delete).await? != Reply::Exists {
                break;
            }
        }
        // The request's own session, when it belongs to the user, ends
        // even if the index did not list it (evicted).
        let own = ctx.user.as_ref() == Some(user);
        if own && self.end_session(ctx.key.clone(), None).await? {
            ended += 1;
        }
        Ok(Applied::Everywhere {
            ended,
            own,
            no_index,
        })
    }

    /// Ends the session at `key` (following pointers), if it is still the
    /// session `uid` (any session when None). Ok(true): one was ended.
    async fn end_session(
        &self,
        key: Option<String>,
        uid: Option<[u8; UID_LEN]>,
    ) -> Result<bool, StoreError> {
        for attempt in 1..=ATTEMPTS {
            let lookup = self.lookup(key.clone()).await?;
            let Found::Session(stored) = &lookup.found else {
                return Ok(false);
            };
            if uid.is_some_and(|uid| uid != stored.session.uid) {
                return Ok(false);
            }
            let mut plan = engine::logout(&lookup.found);
            if attempt == ATTEMPTS {
                plan = engine::last_resort(plan);
            }
            if self.apply(&plan.writes, &lookup).await? {
                return Ok(true);
            }
        }
        Err(StoreError::Contention)
    }

    /// Adds a logged-in session to its user's index (an entry of the same
    /// uid is replaced); returns the sessions the cap
    /// (`paranoid_user_max_sessions`) pushed out, for the caller to end.
    async fn index_login(
        &self,
        hasher: &Hasher<'_>,
        moved: Moved,
    ) -> Result<Vec<Entry>, StoreError> {
        let key = secret::user_key(&self.settings.key_prefix, hasher, &moved.user);
        let cap = self.settings.user_max_sessions;
        for _ in 0..INDEX_ATTEMPTS {
            let (mut index, cas) = match self.read_index(&key).await? {
                Some((index, cas)) => (index, Some(cas)),
                None => (UserIndex::new(), None),
            };
            index.prune(self.now_ms, self.settings.absolute_timeout_ms);
            if cap.is_some_and(|cap| index.len() >= cap as usize) {
                self.drop_ended(&mut index).await?;
            }
            let pushed = index.add(moved.entry.clone(), cap);
            if self.write_index(&key, &index, cas).await? {
                return Ok(pushed);
            }
            backoff().await;
        }
        Err(StoreError::IndexContention)
    }

    /// The index of a user whose session moved to a new token (cycling):
    /// the entry follows it. A missing index (evicted) is made again.
    pub async fn index_replace_key(
        &self,
        hasher: &Hasher<'_>,
        moved: Moved,
    ) -> Result<(), StoreError> {
        let key = secret::user_key(&self.settings.key_prefix, hasher, &moved.user);
        for _ in 0..INDEX_ATTEMPTS {
            let (mut index, cas) = match self.read_index(&key).await? {
                Some((index, cas)) => (index, Some(cas)),
                None => (UserIndex::new(), None),
            };
            if !index.replace_key(&moved.entry.uid, moved.entry.key_hash) {
                index.add(moved.entry.clone(), None);
            }
            if self.write_index(&key, &index, cas).await? {
                return Ok(());
            }
            backoff().await;
        }
        Err(StoreError::IndexContention)
    }

    /// Removes an ended session from its user's index.
    async fn index_remove(
        &self,
        hasher: &Hasher<'_>,
        user: &UserId,
        uid: &[u8; UID_LEN],
    ) -> Result<(), StoreError> {
        let key = secret::user_key(&self.settings.key_prefix, hasher, user);
        for _ in 0..INDEX_ATTEMPTS {
            let Some((mut index, cas)) = self.read_index(&key).await? else {
                return Ok(());
            };
            if index.remove_uid(uid).is_none() {
                return Ok(());
            }
            if self.write_index(&key, &index, Some(cas)).await? {
                return Ok(());
            }
            backoff().await;
        }
        Err(StoreError::IndexContention)
    }

    /// Drops the entries whose session record is gone (idle expiry, a
    /// logout on another host), so that the cap counts live sessions.
    async fn drop_ended(&self, index: &mut UserIndex) -> Result<(), StoreError> {
        let entries = index.entries().to_vec();
        let alive = join_all(
            entries
                .iter()
                .map(|e| self.exists(self.key_for(&e.key_hash)))
                .collect(),
        )
        .await;
        for (entry, alive) in entries.iter().zip(alive) {
            if !alive? {
                index.remove_uid(&entry.uid);
            }
        }
        Ok(())
    }

    async fn exists(&self, key: String) -> Result<bool, StoreError> {
        let get = Request::Get {
            key: key.as_bytes(),
            touch: None,
        };
        Ok(matches!(self.exchange(&get).await?, Reply::Value { .. }))
    }

    async fn read_index(&self, key: &str) -> Result<Option<(UserIndex, u64)>, StoreError> {
        let get = Request::Get {
            key: key.as_bytes(),
            touch: None,
        };
        match self.exchange(&get).await? {
            // An index that does not decode is treated as absent.
            Reply::Value { value, cas, .. } => Ok(UserIndex::decode(&value).ok().map(|i| (i, cas))),
            _ => Ok(None),
        }
    }

    /// Writes the index (compare-and-swap on `cas`, or only if absent), or
    /// removes it when empty. Ok(false): lost a race.
    async fn write_index(
        &self,
        key: &str,
        index: &UserIndex,
        cas: Option<u64>,
    ) -> Result<bool, StoreError> {
        let Some(until) = index.expires_at_ms(self.settings.absolute_timeout_ms) else {
            let Some(cas) = cas else {
                return Ok(true);
            };
            let delete = Request::Delete {
                key: key.as_bytes(),
                cas: Some(cas),
            };
            let won = self.exchange(&delete).await? != Reply::Exists;
            if !won {
                self.lost_race();
            }
            return Ok(won);
        };
        let ttl = secs(until.saturating_sub(self.now_ms));
        let value = index.encode();
        let req = match cas {
            Some(cas) => Request::Set {
                key: key.as_bytes(),
                value: &value,
                ttl,
                cas: Some(cas),
            },
            None => Request::Add {
                key: key.as_bytes(),
                value: &value,
                ttl,
            },
        };
        let won = self.exchange(&req).await? == Reply::Stored;
        if !won {
            self.lost_race();
        }
        Ok(won)
    }
}

/// The user the found session was bound to.
fn bound_user(found: &Found) -> Option<UserId> {
    match found {
        Found::Session(stored) => stored.session.user.clone(),
        Found::Nothing => None,
    }
}

/// A session that `login` had to start afresh, bound to a user.
fn new_user_session(plan: &Plan) -> Option<Moved> {
    let Some(Write::Add {
        token_hash,
        session,
    }) = plan.writes.first()
    else {
        return None;
    };
    session.user.clone().map(|user| Moved {
        user,
        entry: Entry {
            key_hash: *token_hash,
            uid: session.uid,
            created_ms: session.created_ms,
        },
    })
}

/// After a lost race on a user's index: 1 to 8 ms at random, so that the
/// logins of one user that met in one loop iteration (their commands left
/// together) do not retry in lockstep, one winner a round.
async fn backoff() {
    let ms = secret::random::<1>().map_or(4, |[b]| u64::from(b % 8) + 1);
    Deadline::new(ms).await;
}

/// Runs the futures concurrently (their commands leave together,
/// pipelined) and returns their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Where a plan's session record is: the token it added (None when it
/// added none, e.g. a logout).
pub fn added_key(plan: &Plan, prefix: &str) -> Option<String> {
    plan.writes.iter().find_map(|w| match w {
        Write::Add { token_hash, .. } => Some(secret::key_for_hash(prefix, token_hash)),
        _ => None,
    })
}
