//! Property tests of every parser in paranoid-core: cookie headers, cookie
//! values (tokens, keys), session records, memcached replies, directive
//! values, settings validation, the IP addresses in fingerprints, the
//! application's control header and the per-user index of sessions.
//!
//! Each property runs a bounded number of generated cases (see [`config`])
//! inside `cargo test -p paranoid-core`, from a fixed seed so that a CI run
//! is reproducible. To search further by hand:
//!
//! ```text
//! PROPTEST_CASES=100000 PROPTEST_RNG_SEED=12345 cargo test -p paranoid-core --test properties
//! ```
//!
//! A failure prints the smallest input proptest could shrink it to; no
//! regression file is written into the tree.
//!
//! The binary counts heap allocations per thread (see [`alloc`]) so that
//! properties can assert that a decoder never sizes an allocation from a
//! length the input merely claims.

use proptest::test_runner::{Config, RngSeed};

mod alloc;
mod control;
mod cookie;
mod fingerprint;
mod record;
mod secret;
mod settings;
mod user_index;
mod values;
mod wire;

/// Seed used when `PROPTEST_RNG_SEED` is not set.
const SEED: u64 = 0x7061_7261_6e6f_6964; // "paranoid"

/// `cases` generated inputs per property unless `PROPTEST_CASES` says
/// otherwise; a fixed seed unless `PROPTEST_RNG_SEED` says otherwise.
pub fn config(cases: u32) -> Config {
    let base = Config::default();
    let from_env = |name: &str| std::env::var_os(name).is_some();
    Config {
        cases: if from_env("PROPTEST_CASES") {
            base.cases
        } else {
            cases
        },
        rng_seed: if from_env("PROPTEST_RNG_SEED") {
            base.rng_seed
        } else {
            RngSeed::Fixed(SEED)
        },
        failure_persistence: None,
        ..base
    }
}
