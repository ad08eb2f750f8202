//! The store I/O of one session: find the record a token leads to, perform
//! the writes the core decided, and keep the grace of superseded values.

use nginx_sys::ngx_log_t;
use paranoid_core::engine::{Found, Stored, Write};
use paranoid_core::lifetime::{self, secs};
use paranoid_core::record::{Hash, Pointer, Record, Session};
use paranoid_core::secret;
use paranoid_core::settings::Settings;
use paranoid_core::wire::{Reply, Request};

use crate::store::{Store, StoreError};

/// Pointers followed at most from a token to its session: timed cycling
/// twice within the window makes a chain of two.
const MAX_HOPS: usize = 3;

/// Where a token led.
pub struct Lookup {
    pub found: Found,
    /// The key of the session record found.
    pub key: Option<String>,
    /// The keys of the pointers followed to it, oldest first.
    pub path: Vec<String>,
}

impl Lookup {
    fn nothing() -> Lookup {
        Lookup {
            found: Found::Nothing,
            key: None,
            path: Vec::new(),
        }
    }
}

/// A decoded record, its CAS and the TTL it had left before the read.
type Read = (Record, u64, Option<i64>);

/// Store I/O on behalf of one request.
pub struct Records<'a> {
    pub settings: &'a Settings,
    pub store: &'a Store,
    pub now_ms: u64,
    pub log: *mut ngx_log_t,
}

impl Records<'_> {
    pub(super) async fn exchange(&self, req: &Request<'_>) -> Result<Reply, StoreError> {
        self.store
            .exchange(req, self.settings.store_timeout_ms, self.log)
            .await
    }

    pub(super) fn key_for(&self, hash: &Hash) -> String {
        secret::key_for_hash(&self.settings.key_prefix, hash)
    }

    /// The session a token leads to, following the pointers left by timed
    /// cycling while their grace lasts. One meta get for a current token.
    pub async fn lookup(&self, key: Option<String>) -> Result<Lookup, StoreError> {
        let Some(mut key) = key else {
            return Ok(Lookup::nothing());
        };
        let mut path = Vec::new();
        for _ in 0..=MAX_HOPS {
            let touch = Some(lifetime::read_ttl(self.settings));
            match self.read(&key, touch).await? {
                Some((Record::Session(session), cas, ttl_left)) => {
                    self.cap_ttl(&key, &session).await?;
                    let found = Found::Session(Stored {
                        session,
                        cas,
                        via_pointer: !path.is_empty(),
                        ttl_left,
                    });
                    return Ok(Lookup {
                        found,
                        key: Some(key),
                        path,
                    });
                }
                Some((Record::Pointer(pointer), _, _)) => {
                    let left = lifetime::pointer_grace_left(
                        self.settings,
                        pointer.created_ms,
                        self.now_ms,
                    );
                    if left == 0 {
                        break;
                    }
                    // Reading refreshed the pointer's TTL: give it back its own.
                    self.touch(&key, secs(left)).await?;
                    path.push(key);
                    key = self.key_for(&pointer.target);
                }
                None => break,
            }
        }
        Ok(Lookup::nothing())
    }

    /// Reads and decodes a record (one that does not decode is absent),
    /// setting its TTL to `touch` in the same command.
    async fn read(&self, key: &str, touch: Option<u32>) -> Result<Option<Read>, StoreError> {
        let get = Request::Get {
            key: key.as_bytes(),
            touch,
        };
        match self.exchange(&get).await? {
            Reply::Value {
                value,
                cas,
                ttl_left,
                ..
            } => Ok(Record::decode(&value).ok().map(|r| (r, cas, ttl_left))),
            _ => Ok(None),
        }
    }

    /// Near the absolute timeout the TTL set by the read is too long:
    /// shorten it so memcached drops the record with the session's tail.
    /// A session already past its end is about to be deleted.
    async fn cap_ttl(&self, key: &str, session: &Session) -> Result<(), StoreError> {
        let age = self.now_ms.saturating_sub(session.created_ms);
        if age >= self.settings.absolute_timeout_ms {
            return Ok(());
        }
        let ttl = lifetime::session_ttl(self.settings, session, self.now_ms);
        if ttl < lifetime::read_ttl(self.settings) {
            self.touch(key, ttl).await?;
        }
        Ok(())
    }

    async fn touch(&self, key: &str, ttl: u32) -> Result<(), StoreError> {
        let touch = Request::Touch {
            key: key.as_bytes(),
            ttl,
        };
        self.exchange(&touch).await.map(drop)
    }

    async fn delete(&self, key: &str, cas: Option<u64>) -> Result<Reply, StoreError> {
        let delete = Request::Delete {
            key: key.as_bytes(),
            cas,
        };
        self.exchange(&delete).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: u32, cas: u64) -> Result<Reply, StoreError> {
        let set = Request::Set {
            key: key.as_bytes(),
            value,
            ttl,
            cas: Some(cas),
        };
        self.exchange(&set).await
    }

    /// Performs the decided writes. Ok(false): one lost a race, the session
    /// added by the plan (if any) is removed again, and the request must be
    /// decided again.
    pub async fn apply(&self, writes: &[Write], lookup: &Lookup) -> Result<bool, StoreError> {
        let mut added = None;
        for write in writes {
            if !self.perform(write, lookup, &mut added).await? {
                self.lost_race();
                if let Some(key) = added {
                    // Nobody holds its token; best effort.
                    let _ = self.delete(&key, None).await;
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Counts a compare-and-swap write that lost to a concurrent change.
    pub(super) fn lost_race(&self) {
        if let Some(counters) = self.store.counters() {
            counters.cas_conflict();
        }
    }

    /// One write; Ok(false) when it lost a race.
    async fn perform(
        &self,
        write: &Write,
        lookup: &Lookup,
        added: &mut Option<String>,
    ) -> Result<bool, StoreError> {
        let found = lookup.key.as_deref();
        match (write, found) {
            (
                Write::Add {
                    token_hash,
                    session,
                },
                _,
            ) => {
                let key = self.key_for(token_hash);
                let value = session.encode();
                let add = Request::Add {
                    key: key.as_bytes(),
                    value: &value,
                    ttl: lifetime::session_ttl(self.settings, session, self.now_ms),
                };
                let stored = self.exchange(&add).await? == Reply::Stored;
                if stored {
                    *added = Some(key);
                }
                Ok(stored)
            }
            (Write::Update { session, cas }, Some(key)) => {
                let ttl = lifetime::session_ttl(self.settings, session, self.now_ms);
                Ok(self.set(key, &session.encode(), ttl, *cas).await? == Reply::Stored)
            }
            (
                Write::Retire {
                    pointer: Some(pointer),
                    cas,
                },
                Some(key),
            ) => {
                let left =
                    lifetime::pointer_grace_left(self.settings, pointer.created_ms, self.now_ms);
                let value = Record::Pointer(pointer.clone()).encode();
                Ok(self.set(key, &value, secs(left), *cas).await? == Reply::Stored)
            }
            (Write::Retire { pointer: None, cas }, Some(key)) => {
                Ok(self.delete(key, Some(*cas)).await? == Reply::Stored)
            }
            (Write::Delete { cas }, Some(key)) => {
                Ok(self.delete(key, *cas).await? != Reply::Exists)
            }
            (Write::DeletePath, _) => {
                for key in &lookup.path {
                    self.delete(key, None).await?;
                }
                Ok(true)
            }
            // Writes to the found record when nothing was found: none.
            (_, None) => Ok(true),
        }
    }

    /// Moves the grace start of the superseded nonce `nonce` in the session
    /// at `key` to `until` (a lease while the response is pending).
    pub async fn extend_nonce(
        &self,
        key: &str,
        nonce: &Hash,
        until: u64,
    ) -> Result<(), StoreError> {
        for _ in 0..3 {
            let Some((Record::Session(mut session), cas, _)) = self.read(key, None).await? else {
                return Ok(());
            };
            let Some(old) = session.previous.iter_mut().find(|p| p.hash == *nonce) else {
                return Ok(());
            };
            if old.at_ms >= until {
                return Ok(());
            }
            old.at_ms = until;
            let ttl = lifetime::session_ttl(self.settings, &session, self.now_ms);
            match self.set(key, &session.encode(), ttl, cas).await? {
                Reply::Exists => continue,
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// The same for the pointer left at `key` towards `target`.
    pub async fn extend_pointer(
        &self,
        key: &str,
        target: &Hash,
        until: u64,
    ) -> Result<(), StoreError> {
        for _ in 0..3 {
            let Some((Record::Pointer(pointer), cas, _)) = self.read(key, None).await? else {
                return Ok(());
            };
            if pointer.target != *target || pointer.created_ms >= until {
                return Ok(());
            }
            let pointer = Pointer {
                target: *target,
                created_ms: until,
            };
            let left = lifetime::pointer_grace_left(self.settings, until, self.now_ms);
            let value = Record::Pointer(pointer).encode();
            match self.set(key, &value, secs(left), cas).await? {
                Reply::Exists => continue,
                _ => return Ok(()),
            }
        }
        Ok(())
    }
}
