//! Re-enrolling with other parameters (period, digits, algorithm) through the real
//! `totp-enroll` and real libpam, file store: replay protection is kept as a Unix time,
//! so it survives the change and costs at most one period, never a permanent lock-out
//! (issue #14: a step number kept in units of the old period refused every code).

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use support::{Fixture, Params, reenroll_keeps_replay_protection_without_locking_out};

const TEN: Params = Params {
    period: 10,
    ..Params::DEFAULT
};

#[test]
fn a_period_of_10_then_30_keeps_replay_protection_and_lets_the_user_in() {
    let fixture = Fixture::new("", "");
    reenroll_keeps_replay_protection_without_locking_out(&fixture, &fixture, TEN, Params::DEFAULT);
}

#[test]
fn a_period_of_30_then_10_keeps_replay_protection_and_lets_the_user_in() {
    let fixture = Fixture::new("", "");
    reenroll_keeps_replay_protection_without_locking_out(&fixture, &fixture, Params::DEFAULT, TEN);
}

#[test]
fn other_digits_keep_replay_protection_and_let_the_user_in() {
    let fixture = Fixture::new("", "");
    let eight = Params {
        digits: 8,
        ..Params::DEFAULT
    };
    reenroll_keeps_replay_protection_without_locking_out(&fixture, &fixture, Params::DEFAULT, eight);
}

#[test]
fn another_algorithm_keeps_replay_protection_and_lets_the_user_in() {
    let fixture = Fixture::new("", "");
    let sha256 = Params {
        algorithm: "sha256",
        ..Params::DEFAULT
    };
    reenroll_keeps_replay_protection_without_locking_out(&fixture, &fixture, Params::DEFAULT, sha256);
}
