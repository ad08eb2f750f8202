use super::*;

fn servers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("10.0.0.{}:11211", i + 1)).collect()
}

/// Keys shaped like the module's: a prefix and 64 hex digits.
fn session_key(i: u32) -> Vec<u8> {
    format!(
        "ps:{:064x}",
        u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    )
    .into_bytes()
}

/// `ps:` and `i` in 64 hex digits: easy to rebuild in another language.
fn plain_key(i: u32) -> Vec<u8> {
    format!("ps:{i:064x}").into_bytes()
}

fn three() -> Vec<String> {
    [
        "127.0.0.1:11211",
        "127.0.0.1:11212",
        "unix:/run/memcached.sock",
    ]
    .map(String::from)
    .into()
}

/// The weights, computed outside Rust (python3 hashlib:
/// `int.from_bytes(sha256(s + b"\0" + k).digest()[:8], "big")`).
#[test]
fn weight_is_the_documented_sha256_prefix() {
    let zeros = format!("ps:{}", "0".repeat(64));
    assert_eq!(
        weight(b"127.0.0.1:11211", zeros.as_bytes()),
        0x90a4_1e3b_06a6_aacd
    );
    assert_eq!(
        weight(b"127.0.0.1:11212", zeros.as_bytes()),
        0xadc5_684f_3ef2_92b0
    );
    assert_eq!(
        weight(b"unix:/run/memcached.sock", b""),
        0xe915_eb97_0332_dbcd
    );
    // SHA-256 of the single byte 0x00.
    assert_eq!(weight(b"", b""), 0x6e34_0b9c_ffb3_7a98);
}

/// Pinned answers, computed outside Rust with the formula of the module
/// documentation: every nginx host must route a key to the same server,
/// whatever toolchain built it. If this fails, hosts built before and
/// after the change disagree and a cluster loses its sessions.
#[test]
fn route_is_pinned() {
    const THREE: [usize; 32] = [
        1, 2, 0, 1, 0, 2, 0, 2, 1, 0, 1, 0, 2, 0, 0, 2, 1, 1, 0, 2, 0, 0, 0, 1, 1, 0, 0, 2, 2, 1,
        1, 0,
    ];
    const FIVE: [usize; 32] = [
        1, 3, 2, 1, 4, 1, 1, 0, 1, 3, 3, 4, 1, 1, 2, 0, 3, 4, 1, 3, 1, 0, 0, 1, 3, 4, 1, 3, 4, 4,
        3, 2,
    ];
    let three = three();
    let five = servers(5);
    let answers: Vec<usize> = (0..32).map(|i| route(&plain_key(i), &three)).collect();
    assert_eq!(answers, THREE);
    let answers: Vec<usize> = (0..32).map(|i| route(&plain_key(i), &five)).collect();
    assert_eq!(answers, FIVE);
}

/// The example of README's "Several servers": the key of the all-zero
/// token without a secret file goes to the second server.
#[test]
fn readme_example() {
    let key = b"ps:66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925";
    assert_eq!(route(key, &servers(3)), 1);
}

#[test]
fn route_edge_cases() {
    assert_eq!(route(b"k", &[]), 0);
    assert_eq!(route(b"", &[]), 0);
    assert_eq!(route(b"k", &servers(1)), 0);
    for i in 0..100 {
        let key = session_key(i);
        assert_eq!(route(&key, &servers(3)), route(&key, &servers(3)));
        assert!(route(&key, &servers(3)) < 3);
    }
}

#[test]
fn equal_names_go_to_the_first() {
    let twice = vec!["a:1".to_owned(), "a:1".to_owned()];
    for i in 0..100 {
        assert_eq!(route(&session_key(i), &twice), 0);
    }
}

#[test]
fn route_is_balanced() {
    for n in [2usize, 3, 5] {
        let list = servers(n);
        let mut counts = vec![0u32; n];
        for i in 0..30_000 {
            counts[route(&session_key(i), &list)] += 1;
        }
        // Each server within 10% of its fair share.
        let fair = 30_000 / n as u32;
        for &count in &counts {
            assert!(count.abs_diff(fair) <= fair / 10, "{n}: {counts:?}");
        }
    }
}

#[test]
fn adding_a_server_moves_keys_only_to_it() {
    let two = servers(2);
    let three = servers(3);
    let mut moved = 0;
    for i in 0..10_000 {
        let key = session_key(i);
        let before = route(&key, &two);
        let after = route(&key, &three);
        if after != before {
            assert_eq!(after, 2, "key {i} moved between old servers");
            moved += 1;
        }
    }
    // About a third of the keys move to the new server.
    assert!((3_000..=3_700).contains(&moved), "{moved}");
}

#[test]
fn removing_a_server_moves_only_its_keys() {
    let four = servers(4);
    let without_second: Vec<String> = [0, 2, 3].iter().map(|&i| four[i].clone()).collect();
    let mut moved = 0;
    for i in 0..10_000 {
        let key = session_key(i);
        let before = &four[route(&key, &four)];
        let after = &without_second[route(&key, &without_second)];
        if before != after {
            assert_eq!(before, &four[1], "key {i} left a server that stayed");
            moved += 1;
        }
    }
    assert!((2_250..=2_750).contains(&moved), "{moved}");
}

#[test]
fn route_does_not_depend_on_order() {
    let forward = servers(4);
    let mut backward = forward.clone();
    backward.reverse();
    for i in 0..1_000 {
        let key = session_key(i);
        assert_eq!(
            forward[route(&key, &forward)],
            backward[route(&key, &backward)]
        );
    }
}
