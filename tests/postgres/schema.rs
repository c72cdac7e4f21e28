//! The database schema on a real PostgreSQL server: versioned migrations applied once,
//! the admin functions, the atomic login functions, and least privilege for hosts.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use testkit::postgres::Cluster;
use testkit::product::Channel::{Console, Shared};
use testkit::product::{Client, admin, db, login};
use testkit::product::{Config, Store};

/// A root-only directory holding a passfile for `role`.
fn passfile(dir: &tempfile::TempDir, password: &str) -> PathBuf {
    let path = dir.path().join("pgpass");
    std::fs::write(&path, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn host_client(cluster: &Cluster, role: &str) -> (Client, tempfile::TempDir) {
    cluster.add_host_role(role, "host-secret");
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        store: Store::Postgres,
        postgres: cluster.conninfo(role, &passfile(&dir, "host-secret")),
        ..Config::default()
    };
    (db::connect(&config).expect("host connects"), dir)
}

const RECORD: &str = "version = 1\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n";

#[test]
fn migrations_apply_once_and_again_change_nothing() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    assert_eq!(db::migrate::applied_versions(&mut admin).unwrap(), vec![1, 2]);
    assert_eq!(db::migrate(&mut admin).unwrap(), Vec::<i32>::new());
    assert_eq!(db::migrate::applied_versions(&mut admin).unwrap(), vec![1, 2]);
}

#[test]
fn the_admin_writes_reads_lists_unlocks_and_removes_records() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    admin::put_record(&mut admin, "alice", RECORD).unwrap();
    assert!(!admin::insert_record_if_absent(&mut admin, "alice", "other").unwrap());
    assert!(admin::insert_record_if_absent(&mut admin, "bob", RECORD).unwrap());
    assert_eq!(
        admin::read_record(&mut admin, "alice")
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some(RECORD)
    );
    assert_eq!(
        admin::list_users(&mut admin).unwrap(),
        vec!["alice".to_owned(), "bob".to_owned()]
    );
    assert_eq!(admin::read_state(&mut admin, "alice").unwrap(), None);

    let config = Config {
        max_failures: 1,
        ..Config::default()
    };
    login::charge(&mut admin, &config, "alice", 1000, Shared).unwrap();
    let locked = admin::read_state(&mut admin, "alice").unwrap().unwrap();
    assert_eq!((locked.failures, locked.locked_until), (1, 1030));
    assert!(admin::unlock(&mut admin, "alice").unwrap());
    let unlocked = admin::read_state(&mut admin, "alice").unwrap().unwrap();
    assert_eq!((unlocked.failures, unlocked.locked_until), (0, 0));

    assert!(admin::remove(&mut admin, "alice").unwrap());
    assert!(!admin::remove(&mut admin, "alice").unwrap());
    assert_eq!(
        admin::read_state(&mut admin, "alice").unwrap(),
        None,
        "state goes with the record"
    );
    assert_eq!(admin::list_users(&mut admin).unwrap(), vec!["bob".to_owned()]);
}

#[test]
fn a_step_is_accepted_once_and_failures_lock_out_with_the_file_stores_rule() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    admin::put_record(&mut admin, "carol", RECORD).unwrap();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    let config = Config {
        max_failures: 3,
        lockout_seconds: 30,
        lockout_max_seconds: 100,
        ..Config::default()
    };
    let now = 10_000;
    assert!(matches!(
        login::charge(&mut host, &config, "carol", now, Shared).unwrap(),
        Some(login::Charge::Charged(_))
    ));
    assert!(login::accept_step(&mut host, "carol", 333 * 30, 334 * 30, now, Shared).unwrap());
    assert!(
        !login::accept_step(&mut host, "carol", 333 * 30, 334 * 30, now, Shared).unwrap(),
        "a replay"
    );
    assert!(
        !login::accept_step(&mut host, "carol", 332 * 30, 333 * 30, now, Shared).unwrap(),
        "an older step"
    );
    // The same time in 10 s steps (a re-enrollment): steps starting before 334 * 30 are
    // used, the first one starting there is not.
    assert!(!login::accept_step(&mut host, "carol", 1001 * 10, 1002 * 10, now, Shared).unwrap());
    assert!(login::accept_step(&mut host, "carol", 1002 * 10, 1003 * 10, now, Shared).unwrap());
    // The replay's charge stays: failures 1 after the last success (which cleared one).
    for expected in [(1, 0), (2, 0), (3, now + 30)] {
        let Some(login::Charge::Charged(state)) =
            login::charge(&mut host, &config, "carol", now, Shared).unwrap()
        else {
            panic!("not charged");
        };
        assert_eq!((state.failures, state.locked_until), expected);
    }
    assert!(matches!(
        login::charge(&mut host, &config, "carol", now + 29, Shared).unwrap(),
        Some(login::Charge::LockedOut(_))
    ));
    // Expired: the next failure doubles the lock-out, capped at lockout_max_seconds.
    let Some(login::Charge::Charged(state)) =
        login::charge(&mut host, &config, "carol", now + 30, Shared).unwrap()
    else {
        panic!("not charged");
    };
    assert_eq!(state.locked_until, now + 30 + 60);
    let Some(login::Charge::Charged(state)) =
        login::charge(&mut host, &config, "carol", now + 90, Shared).unwrap()
    else {
        panic!("not charged");
    };
    assert_eq!(state.locked_until, now + 90 + 100);
    assert_eq!(
        login::charge(&mut host, &config, "nobody", now, Shared).unwrap(),
        None
    );
}

#[test]
fn console_attempts_of_an_exempt_account_have_counters_and_a_lock_out_of_their_own() {
    let cluster = Cluster::start();
    admin::put_record(&mut cluster.admin(), "root", RECORD).unwrap();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    let config = Config::default();
    let now = 10_000;
    for _ in 0..5 {
        login::charge(&mut host, &config, "root", now, Shared).unwrap();
    }
    assert!(matches!(
        login::charge(&mut host, &config, "root", now, Shared).unwrap(),
        Some(login::Charge::LockedOut(_))
    ));
    // Locked out remotely; the console is charged apart, and a right code there clears
    // the console's counters only.
    let Some(login::Charge::Charged(state)) =
        login::charge(&mut host, &config, "root", now, Console).unwrap()
    else {
        panic!("the console is not locked out");
    };
    assert_eq!(
        (state.console_failures, state.failures, state.locked_until),
        (1, 5, now + 30)
    );
    assert!(login::accept_step(&mut host, "root", now, now + 30, now, Console).unwrap());
    let state = admin::read_state(&mut cluster.admin(), "root").unwrap().unwrap();
    assert_eq!(
        (state.console_failures, state.failures, state.locked_until),
        (0, 5, now + 30)
    );
    for _ in 0..5 {
        login::charge(&mut host, &config, "root", now, Console).unwrap();
    }
    assert!(matches!(
        login::charge(&mut host, &config, "root", now, Console).unwrap(),
        Some(login::Charge::LockedOut(_))
    ));
    assert!(admin::unlock(&mut cluster.admin(), "root").unwrap());
    let state = admin::read_state(&mut cluster.admin(), "root").unwrap().unwrap();
    assert_eq!(
        (
            state.failures,
            state.locked_until,
            state.console_failures,
            state.console_locked_until
        ),
        (0, 0, 0, 0),
        "unlock clears both"
    );
}

#[test]
fn version_2_turns_each_last_step_into_the_time_it_ends_in_the_records_period() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    // A database as version 1 left it.
    admin
        .batch_execute(
            "back to version 1",
            &format!(
                "DROP SCHEMA pam_totp CASCADE; CREATE SCHEMA pam_totp;
                 CREATE TABLE pam_totp.schema_migrations (version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now());
                 INSERT INTO pam_totp.schema_migrations (version) VALUES (1);
                 {}",
                db::migrate::MIGRATIONS[0].1
            ),
        )
        .unwrap();
    let now = testkit::now();
    let step_10 = now / 10 - 3;
    let step_30 = now / 30 - 1;
    for (user, period_line, last_step) in [
        ("ten", "period = 10\n", step_10),
        ("thirty", "", step_30),
        // The old bug: a step of 10 s stored for a record now of 30 s.
        ("damaged", "period = 30\n", now / 10),
    ] {
        admin::put_record(&mut admin, user, &format!("{RECORD}{period_line}")).unwrap();
        admin
            .execute(
                "a version 1 state",
                "INSERT INTO pam_totp.login_state (user_name, last_step) VALUES ($1, $2)",
                &[&user, &i64::try_from(last_step).unwrap()],
            )
            .unwrap();
    }
    assert_eq!(db::migrate(&mut admin).unwrap(), vec![2]);
    let used = |user| {
        admin::read_state(&mut cluster.admin(), user)
            .unwrap()
            .unwrap()
            .used_until
    };
    assert_eq!(used("ten"), (step_10 + 1) * 10);
    assert_eq!(
        used("thirty"),
        (step_30 + 1) * 30,
        "30 s when the record names no period"
    );
    let damaged = used("damaged");
    assert!(
        (now + 11 * 30..=testkit::now() + 11 * 30).contains(&damaged),
        "clamped to the widest window's reach: {damaged}"
    );
}

#[test]
fn a_recovery_code_burns_once_and_a_new_set_starts_afresh() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    admin::put_record(&mut admin, "dave", RECORD).unwrap();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    login::charge(&mut host, &Config::default(), "dave", 5, Shared).unwrap();
    assert!(login::burn_recovery(&mut host, "dave", 77, 10, 3, 5, Shared).unwrap());
    assert!(!login::burn_recovery(&mut host, "dave", 77, 10, 3, 5, Shared).unwrap());
    assert!(login::burn_recovery(&mut host, "dave", 77, 10, 4, 5, Shared).unwrap());
    assert!(
        login::burn_recovery(&mut host, "dave", u64::MAX, 10, 3, 5, Shared).unwrap(),
        "another epoch"
    );
    let state = admin::read_state(&mut admin, "dave").unwrap().unwrap();
    assert_eq!(
        (state.recovery_epoch, state.recovery_used, state.failures),
        (u64::MAX, 1 << 3, 0)
    );
}

#[test]
fn a_host_can_neither_list_users_nor_read_the_tables() {
    let cluster = Cluster::start();
    admin::put_record(&mut cluster.admin(), "erin", RECORD).unwrap();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    for sql in [
        "SELECT * FROM pam_totp.records",
        "SELECT * FROM pam_totp.login_state",
        "SELECT * FROM pam_totp.schema_migrations",
        "UPDATE pam_totp.login_state SET failures = 0",
        "DELETE FROM pam_totp.records",
    ] {
        let err = host.query("probe", sql, &[]).expect_err(sql);
        assert!(err.is_permission_denied(), "{sql}: {err}");
        println!("{sql}: {err}");
    }
    let err = admin::list_users(&mut host).expect_err("listing");
    assert!(err.is_permission_denied(), "{err}");
    let err = admin::put_record(&mut host, "mallory", RECORD).expect_err("writing");
    assert!(err.is_permission_denied(), "{err}");
    // What it may do: one named user at a time.
    let found = login::read(&mut host, "erin").unwrap().expect("erin's record");
    assert_eq!(found.record.as_str(), RECORD);
    assert!(login::read(&mut host, "nobody").unwrap().is_none());
}

/// The lock-out rule in SQL (`pam_totp.lockout_after`, used by `login_charge`) against
/// the same table of cases as the Rust rule (`pam_totp_core::lockout`'s unit test).
#[test]
fn the_sql_lock_out_rule_follows_the_same_table_of_cases_as_the_rust_one() {
    use pam_totp_core::lockout::{CASES, CASES_POLICY};
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    for case in CASES {
        let failures = i32::try_from(case.failures + 1).unwrap();
        let rows = admin
            .query(
                "apply the lock-out rule",
                "SELECT pam_totp.lockout_after($1, $2, $3, $4, $5, $6)",
                &[
                    &failures,
                    &i64::try_from(case.locked_until).unwrap(),
                    &i64::try_from(case.now).unwrap(),
                    &i32::try_from(CASES_POLICY.max_failures).unwrap(),
                    &i64::try_from(CASES_POLICY.seconds).unwrap(),
                    &i64::try_from(CASES_POLICY.max_seconds).unwrap(),
                ],
            )
            .unwrap();
        let until: i64 = rows[0].get(0);
        assert_eq!(
            (case.failures + 1, u64::try_from(until).unwrap()),
            case.after,
            "{case:?}"
        );
    }
}
