//! Brute force through real libpam: failures are counted in the state file, a run of
//! them locks the account out for a time that doubles up to a cap, and the admin has a
//! way out (`totp-enroll unlock`, `lockout_exempt`).

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod support;

use pam_client::{AUTH_ERR, SUCCESS};
use pam_totp::state::LoginState;
use support::{Fixture, SECRET, TEST_USER, now, oathtool, settle_in_step, wrong_code};

/// Fails `count` logins with a wrong code, each refused.
fn fail(fixture: &Fixture, count: u32) {
    for i in 0..count {
        let transcript = fixture.login(&wrong_code(SECRET));
        assert_eq!(transcript.status, AUTH_ERR, "wrong code {i}: {transcript:?}");
    }
}

/// Pretends the lock-out has run out, keeping the failure count.
fn expire_lockout(fixture: &Fixture) {
    let state = fixture.state();
    fixture.set_state(LoginState {
        locked_until: now() - 1,
        ..state
    });
}

fn lockout_length(fixture: &Fixture) -> u64 {
    fixture.state().locked_until.saturating_sub(now())
}

#[test]
fn failures_are_counted_in_the_state_file_and_a_right_code_resets_them() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    fail(&fixture, 3);
    assert_eq!(fixture.state().failures, 3, "each wrong code is persisted");
    // Malformed replies count too: they are guesses all the same.
    assert_eq!(fixture.login("12345").status, AUTH_ERR);
    assert_eq!(fixture.state().failures, 4);
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
    let state = fixture.state();
    assert_eq!((state.failures, state.locked_until), (0, 0));
}

#[test]
fn five_failures_lock_the_account_and_then_no_code_is_checked() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    fail(&fixture, 5);
    let length = lockout_length(&fixture);
    assert!(
        (28..=30).contains(&length),
        "first lock-out is 30 s, got {length}"
    );

    settle_in_step(3);
    let transcript = fixture.login(&oathtool(SECRET, 0));
    assert_eq!(
        transcript.status, AUTH_ERR,
        "the right code is refused while locked out"
    );
    assert!(
        transcript.prompts().is_empty(),
        "no prompt while locked out: {transcript:?}"
    );
    assert_eq!(
        transcript.messages(),
        ["Too many failed attempts; try again in 1 minute."]
    );
    let state = fixture.state();
    assert_eq!(state.failures, 5, "attempts during a lock-out are not checked");
    assert_eq!(state.last_step, 0, "the right code was not consumed");
}

#[test]
fn each_further_failure_doubles_the_lockout_up_to_the_cap() {
    let fixture = Fixture::new(
        "max_failures = 2\nlockout_seconds = 100\nlockout_max_seconds = 300",
        "",
    );
    fixture.provision(SECRET);
    let mut lengths = Vec::new();
    fail(&fixture, 2);
    lengths.push(lockout_length(&fixture));
    for _ in 0..3 {
        expire_lockout(&fixture);
        fail(&fixture, 1);
        lengths.push(lockout_length(&fixture));
    }
    // Allow a second or two for the logins themselves.
    let expected = [100, 200, 300, 300];
    for (got, want) in lengths.iter().zip(expected) {
        assert!(
            (want - 2..=want).contains(got),
            "lengths {lengths:?}, expected {expected:?}"
        );
    }
    let transcript = fixture.login(&wrong_code(SECRET));
    assert_eq!(
        transcript.messages(),
        ["Too many failed attempts; try again in 5 minutes."]
    );
}

#[test]
fn the_default_lockout_never_exceeds_fifteen_minutes() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    fixture.set_state(LoginState {
        failures: 1_000_000,
        ..LoginState::default()
    });
    fail(&fixture, 1);
    let length = lockout_length(&fixture);
    assert!((898..=900).contains(&length), "cap is 900 s, got {length}");
}

#[test]
fn unlock_lets_a_locked_out_user_in_again() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    fail(&fixture, 5);
    assert!(fixture.state().locked_until > now());

    let out = fixture.enroll(&["unlock", "--user", TEST_USER]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let state = fixture.state();
    assert_eq!((state.failures, state.locked_until), (0, 0));

    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}

#[test]
fn exempt_users_are_never_locked_out() {
    let fixture = Fixture::new(&format!("lockout_exempt = [\"{TEST_USER}\"]"), "");
    fixture.provision(SECRET);
    fail(&fixture, 12);
    let state = fixture.state();
    assert_eq!(state.failures, 12, "failures are still counted");
    assert_eq!(state.locked_until, 0);
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}

/// Removes root's record of one fixture, even when the test fails.
struct RootRecord(std::path::PathBuf);

impl Drop for RootRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn root_exempted_by_lockout_exempt_logs_in_after_many_failures() {
    let fixture = Fixture::new("lockout_exempt = [\"root\"]", "");
    let _cleanup =
        RootRecord(std::path::Path::new("/root").join(fixture.secret_path.trim_start_matches("~/")));
    let out = fixture.enroll(&["--user", "root", "--secret", SECRET, "--no-confirm"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for _ in 0..8 {
        assert_eq!(
            fixture.login_as("root", &[wrong_code(SECRET).as_bytes()]).status,
            AUTH_ERR
        );
    }
    settle_in_step(3);
    let transcript = fixture.login_as("root", &[oathtool(SECRET, 0).as_bytes()]);
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
}

#[test]
fn unlock_also_repairs_a_corrupt_state_file() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    fail(&fixture, 1);
    let file = fixture.state_dir().join(format!("{TEST_USER}.state"));
    std::fs::write(&file, [0x5a; 128]).expect("damage the state");
    settle_in_step(3);
    assert_eq!(
        fixture.login(&oathtool(SECRET, 0)).status,
        pam_client::SYSTEM_ERR,
        "a corrupt state fails closed"
    );
    let out = fixture.enroll(&["unlock", "--user", TEST_USER]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}
