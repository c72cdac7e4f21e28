//! Brute force through real libpam: failures are counted in the state file, a run of
//! them locks the account out for a time that doubles up to a cap, and the admin has a
//! way out (`totp-enroll unlock`; for `lockout_exempt` accounts, the local console, which
//! has a counter and lock-out of its own).

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::product::LoginState;
use testkit::{Fixture, SECRET, TEST_USER, now, oathtool, settle_in_step, wrong_code};

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
    assert_eq!(state.used_until, 0, "the right code was not consumed");
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

/// `count` wrong codes on the local console `tty1`, each refused.
fn fail_at_console(fixture: &Fixture, user: &str, count: u32) {
    for i in 0..count {
        let transcript = fixture.login_on(user, None, "tty1", &wrong_code(SECRET));
        assert_eq!(
            transcript.status, AUTH_ERR,
            "wrong code {i} at the console: {transcript:?}"
        );
    }
}

#[test]
fn an_exempt_account_brute_forced_over_ssh_is_locked_out_and_a_right_code_is_not_checked() {
    let fixture = Fixture::new(&format!("lockout_exempt = [\"{TEST_USER}\"]"), "");
    fixture.provision(SECRET);
    // Fixture::login comes from a remote host, as over ssh.
    fail(&fixture, 5);
    let state = fixture.state();
    assert_eq!(state.failures, 5);
    assert!(
        state.locked_until > now(),
        "an exempt account is locked out remotely"
    );
    settle_in_step(3);
    let transcript = fixture.login(&oathtool(SECRET, 0));
    assert_eq!(transcript.status, AUTH_ERR, "{transcript:?}");
    assert!(
        transcript.prompts().is_empty(),
        "not even prompted: {transcript:?}"
    );
    let state = fixture.state();
    assert_eq!(
        (state.failures, state.used_until),
        (5, 0),
        "the right code was not checked"
    );
}

#[test]
fn the_owner_at_the_console_gets_in_while_the_remote_channel_is_locked_out() {
    let fixture = Fixture::new(&format!("lockout_exempt = [\"{TEST_USER}\"]"), "");
    fixture.provision(SECRET);
    fail(&fixture, 5);
    assert!(fixture.state().locked_until > now());
    settle_in_step(3);
    let transcript = fixture.login_on(TEST_USER, None, "tty1", &oathtool(SECRET, 0));
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    let state = fixture.state();
    assert!(state.locked_until > now(), "the remote lock-out stays");
    assert_eq!((state.failures, state.console_failures), (5, 0));
}

#[test]
fn the_console_channel_is_locked_out_after_its_own_five_failures() {
    let fixture = Fixture::new(&format!("lockout_exempt = [\"{TEST_USER}\"]"), "");
    fixture.provision(SECRET);
    fail_at_console(&fixture, TEST_USER, 5);
    let state = fixture.state();
    assert_eq!(
        (state.console_failures, state.failures, state.locked_until),
        (5, 0, 0)
    );
    assert!(state.console_locked_until > now());
    settle_in_step(3);
    let transcript = fixture.login_on(TEST_USER, None, "/dev/tty1", &oathtool(SECRET, 0));
    assert_eq!(transcript.status, AUTH_ERR, "{transcript:?}");
    assert_eq!(
        transcript.messages(),
        ["Too many failed attempts; try again in 1 minute."]
    );
    assert_eq!(fixture.state().used_until, 0, "the right code was not checked");
    let status = fixture.enroll(&["status", "--user", TEST_USER]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("console:         5 failures, locked out until"),
        "{shown}"
    );
    assert!(shown.contains("locked out:      no"), "{shown}");
    // The other channel has a counter of its own: the right code works over ssh.
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}

#[test]
fn a_pseudo_terminal_without_a_remote_host_counts_as_remote() {
    let fixture = Fixture::new(&format!("lockout_exempt = [\"{TEST_USER}\"]"), "");
    fixture.provision(SECRET);
    // su or sudo from a local user's session: a pts, no remote host.
    for _ in 0..5 {
        let transcript = fixture.login_on(TEST_USER, None, "pts/0", &wrong_code(SECRET));
        assert_eq!(transcript.status, AUTH_ERR);
    }
    let state = fixture.state();
    assert_eq!((state.failures, state.console_failures), (5, 0));
    assert!(state.locked_until > now());
    settle_in_step(3);
    assert_eq!(
        fixture
            .login_on(TEST_USER, None, "pts/0", &oathtool(SECRET, 0))
            .status,
        AUTH_ERR
    );
}

/// Removes root's record of one fixture, even when the test fails.
struct RootRecord(std::path::PathBuf);

impl Drop for RootRecord {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn root_in_lockout_exempt_is_locked_out_over_ssh_and_still_gets_in_at_the_console() {
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
    let remote = fixture.login_as("root", &[oathtool(SECRET, 0).as_bytes()]);
    assert_eq!(remote.status, AUTH_ERR, "{remote:?}");
    assert!(remote.prompts().is_empty(), "locked out over ssh: {remote:?}");
    let console = fixture.login_on("root", None, "tty1", &oathtool(SECRET, 0));
    assert_eq!(console.status, SUCCESS, "{console:?}");
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
