//! Logins through real libpam with `store = "postgres"`, against a real server: the
//! same prompts, messages and outcomes as the file store, and a record that no longer
//! needs a file on the host.

use std::time::{Duration, Instant};

use pam_client::{AUTH_ERR, SUCCESS, SYSTEM_ERR};
use testkit::postgres::{Cluster, PgHost, enroll, set_policy, state};
use testkit::product::admin;
use testkit::{SECRET, TEST_USER, oathtool, settle_in_step, wrong_code};

#[test]
fn a_right_code_logs_in_once_and_its_replay_is_refused() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    let host = PgHost::new(&cluster, "host_a", "");
    settle_in_step(3);
    let code = oathtool(SECRET, 0);
    let first = host.fixture.login(&code);
    assert_eq!(first.status, SUCCESS, "{first:?}\n{}", cluster.log());
    assert_eq!(first.prompts(), ["Verification code: "]);
    let again = host.fixture.login(&code);
    assert_eq!(again.status, AUTH_ERR, "{again:?}");
    let saved = state(&cluster, TEST_USER);
    assert_eq!(saved.used_until, (testkit::now() / 30 + 1) * 30);
    assert_eq!(saved.failures, 1, "the replay counts as a failure");
    let on_host = std::fs::read_dir(host.fixture.state_dir())
        .expect("state directory")
        .flatten()
        // The hourly clock warning's marker, on a host whose clock is not synchronised.
        .filter(|entry| entry.file_name() != ".clock-warned")
        .count();
    assert_eq!(on_host, 0, "no state file on the host");
}

#[test]
fn wrong_codes_lock_out_and_a_locked_out_user_is_not_prompted() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    set_policy(&cluster, |policy| policy.max_failures = 2);
    let host = PgHost::new(&cluster, "host_a", "");
    settle_in_step(3);
    for _ in 0..2 {
        assert_eq!(host.fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
    }
    let refused = host.fixture.login(&oathtool(SECRET, 0));
    assert_eq!(refused.status, AUTH_ERR);
    assert!(refused.prompts().is_empty(), "{refused:?}");
    assert!(
        refused
            .messages()
            .iter()
            .any(|m| m.starts_with("Too many failed attempts")),
        "{refused:?}"
    );
    assert_eq!(state(&cluster, TEST_USER).failures, 2);
}

#[test]
fn a_user_without_a_database_record_is_prompted_and_refused() {
    let cluster = Cluster::start();
    let host = PgHost::new(&cluster, "host_a", "");
    let refused = host.fixture.login(&oathtool(SECRET, 0));
    assert_eq!(refused.status, AUTH_ERR);
    assert_eq!(refused.prompts(), ["Verification code: "]);
    let ignored = PgHost::new(&cluster, "host_b", "nullok = true\n");
    let transcript = ignored.fixture.login("");
    // PAM_IGNORE from the only module leaves the stack without a verdict: libpam denies.
    assert_eq!(transcript.status, pam_client::PERM_DENIED);
    assert!(
        transcript.prompts().is_empty(),
        "nullok does not prompt: {transcript:?}"
    );
}

#[test]
fn a_wrong_database_password_fails_closed_with_the_unavailable_message() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    let host = PgHost::new(&cluster, "host_a", "");
    std::fs::write(host.fixture.path("pgpass"), "not-the-password\n").unwrap();
    let started = Instant::now();
    let refused = host.fixture.login(&oathtool(SECRET, 0));
    assert_eq!(refused.status, SYSTEM_ERR, "{refused:?}");
    assert!(refused.prompts().is_empty());
    assert!(
        refused
            .messages()
            .iter()
            .any(|m| m.contains("cannot be checked right now")),
        "{refused:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn an_unsafe_passfile_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    let host = PgHost::new(&cluster, "host_a", "");
    std::fs::set_permissions(
        host.fixture.path("pgpass"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(host.fixture.login(&oathtool(SECRET, 0)).status, SYSTEM_ERR);
}

#[test]
fn a_recovery_code_logs_in_once_whichever_host_it_is_typed_on() {
    use testkit::product::Algorithm;
    use testkit::product::Record;
    use testkit::product::SecretKey;
    let cluster = Cluster::start();
    let record = Record::new(
        SecretKey::from_base32(SECRET).unwrap(),
        Algorithm::Sha1,
        6,
        30,
        testkit::product::now_rfc3339(),
    );
    let (record, codes) = testkit::product::new_set(record).unwrap();
    // The database hashes the codes itself (crypt()), from the plaintext sent once, in
    // the form it compares (no dashes).
    let plain: Vec<_> = codes
        .iter()
        .map(|code| zeroize::Zeroizing::new(code.display().replace('-', "")))
        .collect();
    let set = admin::Codes::Plain {
        epoch: record.recovery_epoch,
        codes: &plain,
        scratch: false,
    };
    admin::write_enrollment(&mut cluster.admin(), TEST_USER, &record, set, None).unwrap();
    let a = PgHost::new(&cluster, "host_a", "");
    let b = PgHost::new(&cluster, "host_b", "");
    assert_eq!(a.fixture.login(&codes[2].display()).status, SUCCESS);
    assert_eq!(
        b.fixture.login(&codes[2].display()).status,
        AUTH_ERR,
        "burnt on A"
    );
    assert_eq!(b.fixture.login(&codes[3].display()).status, SUCCESS);
    let saved = state(&cluster, TEST_USER);
    assert_eq!(
        (saved.recovery_epoch, saved.recovery_used),
        (record.recovery_epoch, 0b1100)
    );
}

#[test]
fn the_hosts_own_lock_out_and_window_keys_are_not_used_the_databases_policy_decides() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    // What a host's config says about lock-outs and the window is not asked for.
    let host = PgHost::new(
        &cluster,
        "host_a",
        "max_failures = 1\nlockout_seconds = 600\nlockout_max_seconds = 600\nwindow = 0\n",
    );
    settle_in_step(10);
    for _ in 0..2 {
        assert_eq!(host.fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
    }
    let after = state(&cluster, TEST_USER);
    assert_eq!(
        (after.failures, after.locked_until),
        (2, 0),
        "the database's 5 failures"
    );
    // The database's window (1 step) takes the previous step's code.
    let previous = host.fixture.login(&oathtool(SECRET, -1));
    assert_eq!(previous.status, SUCCESS, "{previous:?}");
    // The next step's code: refused with the database's window at 0, taken at 1.
    let next = oathtool(SECRET, 1);
    set_policy(&cluster, |policy| policy.window = 0);
    // A code three minutes ahead first: its hint burns that step and holds back the
    // next hint, which would burn the next step's (clock_and_failures.rs).
    assert_eq!(host.fixture.login(&oathtool(SECRET, 6)).status, AUTH_ERR);
    assert_eq!(host.fixture.login(&next).status, AUTH_ERR, "window 0");
    set_policy(&cluster, |policy| policy.window = 1);
    assert_eq!(host.fixture.login(&next).status, SUCCESS, "window 1");
}

#[test]
fn a_user_reset_by_the_admin_is_never_let_through_by_nullok_where_enroll_at_login_is_off() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    assert!(admin::reset(&mut cluster.admin(), TEST_USER).unwrap());
    let host = PgHost::new(
        &cluster,
        "host_a",
        "nullok = true\nenforce_after = \"2099-01-15\"\n",
    );
    let refused = host.fixture.login(&oathtool(SECRET, 0));
    assert_eq!(refused.status, AUTH_ERR, "{refused:?}");
    assert_eq!(refused.prompts(), ["Verification code: "], "{refused:?}");
    // An unenrolled user who was never reset is let through by nullok as before.
    let other = PgHost::new(&cluster, "host_b", "nullok = true\n");
    assert!(admin::remove(&mut cluster.admin(), TEST_USER).is_ok());
    cluster
        .admin()
        .execute("forget the mark", "DELETE FROM pam_totp.enroll_marks", &[])
        .unwrap();
    assert_eq!(other.fixture.login("").status, pam_client::PERM_DENIED);
}
