//! The database schema on a real PostgreSQL server: versioned migrations applied once,
//! the admin functions, the atomic login functions, and least privilege for hosts.

use testkit::postgres::{Cluster, write_passfile};
use testkit::product::{Client, admin, db};
use testkit::product::{Config, Store};

pub fn host_client(cluster: &Cluster, role: &str) -> (Client, tempfile::TempDir) {
    cluster.add_host_role(role, "host-secret");
    connect_host(cluster, role)
}

/// A new connection as the host role `role` (made by [`host_client`]).
pub fn connect_host(cluster: &Cluster, role: &str) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        store: Store::Postgres,
        postgres: cluster.conninfo(role, &write_passfile(dir.path(), "host-secret")),
        ..Config::default()
    };
    (db::connect(&config).expect("host connects"), dir)
}

const RECORD: &str = "version = 1\nsecret = \"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\"\n\
                      algorithm = \"SHA1\"\ndigits = 6\nperiod = 30\n";

/// [`RECORD`] with another period, as version 1 stored it.
fn record_with_period(period: u64) -> String {
    RECORD.replace("period = 30", &format!("period = {period}"))
}

/// What `pam_totp.host_verify` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub verdict: String,
    pub failures: i32,
    pub locked_until: i64,
    pub locked_until_before: i64,
    pub recovery_left: Option<i32>,
    /// A wrong code's clock offset (0004); on acceptance, the failures it ended.
    pub offset_seconds: Option<i32>,
    pub failures_before: Option<i32>,
}

/// Calls `pam_totp.host_verify` as `client`'s role.
pub fn verify(client: &mut Client, user: &str, answer: &str, console: bool) -> Answered {
    try_verify(client, Some(user), Some(answer), Some(console), Some("tty1")).expect("host_verify")
}

/// The same, with any argument possibly NULL.
pub fn try_verify(
    client: &mut Client,
    user: Option<&str>,
    answer: Option<&str>,
    console: Option<bool>,
    source: Option<&str>,
) -> Result<Answered, testkit::product::DbError> {
    let rows = client.query(
        "host_verify",
        "SELECT * FROM pam_totp.host_verify($1, $2, $3, $4)",
        &[&user, &answer, &console, &source],
    )?;
    assert_eq!(rows.len(), 1, "one row");
    let row = &rows[0];
    Ok(Answered {
        verdict: row.get(0),
        failures: row.get(1),
        locked_until: row.get(2),
        locked_until_before: row.get(3),
        recovery_left: row.get(4),
        offset_seconds: row.get(5),
        failures_before: row.get(6),
    })
}

/// Calls `pam_totp.host_lookup` as `client`'s role: (status, `locked_until`).
pub fn lookup(client: &mut Client, user: &str, console: bool) -> (String, i64) {
    let rows = client
        .query(
            "host_lookup",
            "SELECT * FROM pam_totp.host_lookup($1, $2)",
            &[&user, &console],
        )
        .expect("host_lookup");
    assert_eq!(rows.len(), 1, "one row");
    (rows[0].get(0), rows[0].get(1))
}

/// The database's clock.
pub fn db_now(client: &mut Client) -> i64 {
    let rows = client
        .query("now", "SELECT floor(extract(epoch FROM now()))::bigint", &[])
        .expect("now");
    rows[0].get(0)
}

/// Sets the database's policy (the rest as the defaults).
pub fn set_policy(cluster: &Cluster, max_failures: u32, seconds: u64, max_seconds: u64, exempt: &[&str]) {
    admin::write_policy(
        &mut cluster.admin(),
        &admin::Policy {
            max_failures,
            lockout_seconds: seconds,
            lockout_max_seconds: max_seconds,
            window: 1,
            lockout_exempt: exempt.iter().map(|s| (*s).to_owned()).collect(),
        },
    )
    .expect("policy");
}

pub const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

#[test]
fn migrations_apply_once_and_again_change_nothing() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    let every: Vec<i32> = db::migrate::MIGRATIONS
        .iter()
        .map(|(version, _)| *version)
        .collect();
    assert_eq!(db::migrate::applied_versions(&mut admin).unwrap(), every);
    assert_eq!(db::migrate(&mut admin).unwrap(), Vec::<i32>::new());
    assert_eq!(db::migrate::applied_versions(&mut admin).unwrap(), every);
}

#[test]
fn the_admin_writes_reads_lists_unlocks_and_removes_enrollments() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    admin::put_record(&mut admin, "alice", RECORD).unwrap();
    assert!(!admin::insert_record_if_absent(&mut admin, "alice", RECORD).unwrap());
    assert!(admin::insert_record_if_absent(&mut admin, "bob", RECORD).unwrap());
    let read = admin::read_enrollment(&mut admin, "alice")
        .unwrap()
        .expect("alice");
    assert_eq!(read.secret.to_base32().as_str(), SECRET);
    assert_eq!((read.digits, read.period), (6, 30));
    let info = admin::read_info(&mut admin, "alice").unwrap().expect("alice");
    assert_eq!(info.realms, vec!["default".to_owned()]);
    assert_eq!(
        admin::list_users(&mut admin).unwrap(),
        vec!["alice".to_owned(), "bob".to_owned()]
    );
    assert_eq!(admin::read_state(&mut admin, "alice").unwrap(), None);

    set_policy(&cluster, 1, 30, 900, &[]);
    let (mut host, _dir) = host_client(&cluster, "host_a");
    let v = verify(&mut host, "alice", "000000", false);
    assert_eq!((v.verdict.as_str(), v.failures), ("invalid_code", 1));
    let locked = admin::read_state(&mut admin, "alice").unwrap().unwrap();
    assert_eq!(locked.failures, 1);
    assert!(locked.locked_until > 0);
    assert!(admin::unlock(&mut admin, "alice").unwrap());
    let unlocked = admin::read_state(&mut admin, "alice").unwrap().unwrap();
    assert_eq!((unlocked.failures, unlocked.locked_until), (0, 0));

    assert!(admin::remove(&mut admin, "alice").unwrap());
    assert!(!admin::remove(&mut admin, "alice").unwrap());
    assert_eq!(
        admin::read_state(&mut admin, "alice").unwrap(),
        None,
        "state goes with the enrollment"
    );
    assert_eq!(admin::list_users(&mut admin).unwrap(), vec!["bob".to_owned()]);
}

#[test]
fn a_step_is_accepted_once_and_failures_lock_out_with_the_file_stores_rule() {
    let cluster = Cluster::start();
    admin::put_record(&mut cluster.admin(), "carol", RECORD).unwrap();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    set_policy(&cluster, 3, 30, 100, &[]);
    testkit::settle_in_step(3);
    let now = db_now(&mut host);
    let code = testkit::oathtool_at(SECRET, u64::try_from(now).unwrap());
    assert_eq!(verify(&mut host, "carol", &code, false).verdict, "accepted");
    let replay = verify(&mut host, "carol", &code, false);
    assert_eq!((replay.verdict.as_str(), replay.failures), ("replayed_code", 1));
    let older = testkit::oathtool_at(SECRET, u64::try_from(now - 30).unwrap());
    assert_eq!(
        verify(&mut host, "carol", &older, false).verdict,
        "replayed_code",
        "an older step than the one used"
    );
    // The third failure locks for 30 s; a locked-out user is not charged nor checked.
    let third = verify(&mut host, "carol", "000000", false);
    assert_eq!(third.verdict, "invalid_code");
    assert_eq!(third.failures, 3);
    assert!((now + 30..=now + 32).contains(&third.locked_until), "{third:?}");
    let next = testkit::oathtool_at(SECRET, u64::try_from(now + 30).unwrap());
    let locked = verify(&mut host, "carol", &next, false);
    assert_eq!(
        (
            locked.verdict.as_str(),
            locked.failures,
            locked.locked_until_before
        ),
        ("locked_out", 3, third.locked_until)
    );
    assert_eq!(
        lookup(&mut host, "carol", false),
        ("enrolled".to_owned(), third.locked_until)
    );
    assert_eq!(lookup(&mut host, "nobody", false), ("not_enrolled".to_owned(), 0));
    assert_eq!(verify(&mut host, "nobody", &code, false).verdict, "not_enrolled");
}

#[test]
fn console_attempts_of_an_exempt_account_have_counters_and_a_lock_out_of_their_own() {
    let cluster = Cluster::start();
    admin::put_record(&mut cluster.admin(), "root", RECORD).unwrap();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    set_policy(&cluster, 5, 30, 900, &["root"]);
    for _ in 0..5 {
        verify(&mut host, "root", "000000", false);
    }
    assert_eq!(verify(&mut host, "root", "000000", false).verdict, "locked_out");
    // Locked out remotely; the console is charged apart, and a right code there clears
    // the console's counters only.
    let v = verify(&mut host, "root", "000000", true);
    assert_eq!(
        (v.verdict.as_str(), v.failures, v.locked_until),
        ("invalid_code", 1, 0)
    );
    testkit::settle_in_step(3);
    let code = testkit::oathtool(SECRET, 0);
    assert_eq!(verify(&mut host, "root", &code, true).verdict, "accepted");
    let state = admin::read_state(&mut cluster.admin(), "root").unwrap().unwrap();
    assert_eq!((state.console_failures, state.failures), (0, 5));
    assert!(state.locked_until > 0);
    for _ in 0..5 {
        verify(&mut host, "root", "000000", true);
    }
    assert_eq!(verify(&mut host, "root", "000000", true).verdict, "locked_out");
    // The console is the database's exemption: without it, the console has no counters.
    set_policy(&cluster, 5, 30, 900, &[]);
    assert_eq!(lookup(&mut host, "root", true).0, "enrolled");
    assert!(
        lookup(&mut host, "root", true).1 > 0,
        "the shared lock-out applies at the console"
    );
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
    for (user, period, last_step) in [
        ("ten", 10, step_10),
        ("thirty", 30, step_30),
        // The old bug: a step of 10 s stored for a record now of 30 s.
        ("damaged", 30, now / 10),
    ] {
        admin
            .execute(
                "a version 1 record",
                "INSERT INTO pam_totp.records (user_name, record) VALUES ($1, $2)",
                &[&user, &record_with_period(period)],
            )
            .unwrap();
        admin
            .execute(
                "a version 1 state",
                "INSERT INTO pam_totp.login_state (user_name, last_step) VALUES ($1, $2)",
                &[&user, &i64::try_from(last_step).unwrap()],
            )
            .unwrap();
    }
    let after_1: Vec<i32> = db::migrate::MIGRATIONS
        .iter()
        .map(|(version, _)| *version)
        .skip(1)
        .collect();
    assert_eq!(db::migrate(&mut admin).unwrap(), after_1);
    let used = |user| {
        admin::read_state(&mut cluster.admin(), user)
            .unwrap()
            .unwrap()
            .used_until
    };
    assert_eq!(used("ten"), (step_10 + 1) * 10);
    assert_eq!(used("thirty"), (step_30 + 1) * 30);
    let damaged = used("damaged");
    assert!(
        (now + 11 * 30..=testkit::now() + 11 * 30).contains(&damaged),
        "clamped to the widest window's reach: {damaged}"
    );
}

#[test]
fn a_recovery_code_burns_once_and_a_new_set_starts_afresh() {
    use zeroize::Zeroizing;
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    let record = testkit::product::Record::parse(RECORD).unwrap();
    let codes: Vec<Zeroizing<String>> = ["0aaaaaaaaaaa", "1bbbbbbbbbbb", "2ccccccccccc"]
        .into_iter()
        .map(|c| Zeroizing::new(c.to_owned()))
        .collect();
    let plain = admin::Codes::Plain {
        epoch: 77,
        codes: &codes,
        scratch: false,
    };
    admin::write_enrollment(&mut admin, "dave", &record, plain, None).unwrap();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    let v = verify(&mut host, "dave", "1BBB-BBBB-BBBB", false);
    assert_eq!(
        (v.verdict.as_str(), v.recovery_left),
        ("accepted_recovery", Some(2))
    );
    assert_eq!(
        verify(&mut host, "dave", "1bbbbbbbbbbb", false).verdict,
        "recovery_code_already_used"
    );
    assert_eq!(
        verify(&mut host, "dave", "1bbbbbbbbbbc", false).verdict,
        "invalid_recovery_code"
    );
    assert_eq!(
        verify(&mut host, "dave", "2ccc cccc cccc", false).recovery_left,
        Some(1)
    );
    // A new set (another epoch): every code of it is unused.
    let plain = admin::Codes::Plain {
        epoch: u64::MAX,
        codes: &codes,
        scratch: false,
    };
    admin::write_enrollment(&mut admin, "dave", &record, plain, None).unwrap();
    assert_eq!(
        verify(&mut host, "dave", "1bbbbbbbbbbb", false).recovery_left,
        Some(2)
    );
    let state = admin::read_state(&mut admin, "dave").unwrap().unwrap();
    assert_eq!(
        (state.recovery_epoch, state.recovery_used, state.failures),
        (u64::MAX, 1 << 1, 0)
    );
}

#[test]
fn a_host_can_neither_list_users_nor_read_the_tables() {
    let cluster = Cluster::start();
    admin::put_record(&mut cluster.admin(), "erin", RECORD).unwrap();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    for sql in [
        "SELECT * FROM pam_totp.enrollments",
        "SELECT * FROM pam_totp.login_state",
        "SELECT * FROM pam_totp.schema_migrations",
        "SELECT * FROM pam_totp.policy",
        "SELECT * FROM pam_totp.user_realms",
        "SELECT * FROM pam_totp.host_realms",
        "UPDATE pam_totp.login_state SET failures = 0",
        "UPDATE pam_totp.policy SET max_failures = 1000000",
        "INSERT INTO pam_totp.host_realms VALUES ('host_a', 'p2')",
        "DELETE FROM pam_totp.enrollments",
        "SELECT pam_totp.at_rest_key()",
        "SELECT pam_totp.open_secret('')",
        "SELECT pg_read_file('pam_totp_secret.key')",
        "SELECT pam_totp_crypto.hmac('a', 'b', 'sha1')",
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
    assert_eq!(lookup(&mut host, "erin", false), ("enrolled".to_owned(), 0));
    assert_eq!(lookup(&mut host, "nobody", false), ("not_enrolled".to_owned(), 0));
}

/// The lock-out rule in SQL (`pam_totp.lockout_after`, used by `host_verify`) against
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
