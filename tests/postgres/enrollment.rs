//! `totp-enroll` with `store = "postgres"`, against a real server: the schema commands,
//! provisioning, remove, unlock, recovery codes, status and imports write the database
//! (checked with the admin's own queries, and by logging in through the module on a
//! host with real libpam), the host role reads no table, and a non-root user is told
//! who enrolls them.

use std::os::unix::fs::{PermissionsExt, chown};
use std::process::{Command, Output, Stdio};

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::postgres::{ADMIN, Cluster, DATABASE, PgHost};
use testkit::product::Config;
use testkit::product::Record;
use testkit::product::{admin, db};

use crate::schema::{host_client, lookup, set_policy, verify};
use testkit::{Fixture, SECRET, TEST_USER, enroll_bin, oathtool, settle_in_step, show};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{}", show(out));
}

/// The admin role's connection string over the cluster's unix socket.
fn admin_conninfo(cluster: &Cluster) -> String {
    format!(
        "host={} port={} user={ADMIN} dbname={DATABASE} sslmode=disable",
        cluster.socket_dir().display(),
        cluster.port
    )
}

/// The admin host: a config that says `store = "postgres"` with the admin role.
pub(crate) fn admin_host(cluster: &Cluster) -> Fixture {
    let fixture = Fixture::new("", "");
    fixture.write_config(&format!(
        "store = \"postgres\"\npostgres = \"{}\"\n",
        admin_conninfo(cluster)
    ));
    fixture
}

/// The enrollment as the admin side reads it back (the secret decrypted by the database,
/// its recovery codes as the database's own hashes).
fn record_of(cluster: &Cluster, user: &str) -> Option<Record> {
    admin::read_enrollment(&mut cluster.admin(), user).unwrap()
}

fn status_json(fixture: &Fixture) -> serde_json::Value {
    let out = fixture.enroll(&["status", "--user", TEST_USER, "--json"]);
    assert_ok(&out);
    serde_json::from_slice(&out.stdout).expect("status --json")
}

#[test]
fn db_init_twice_creates_the_schema_once_and_migrate_finds_nothing_pending() {
    let cluster = Cluster::start();
    cluster
        .admin()
        .batch_execute("start empty", "DROP SCHEMA pam_totp CASCADE")
        .unwrap();
    let fixture = admin_host(&cluster);

    let first = fixture.enroll(&["db", "init"]);
    assert_ok(&first);
    assert!(
        text(&first.stdout).contains(&format!(
            "Schema created: version {}",
            db::migrate::latest_version()
        )),
        "{}",
        show(&first)
    );
    let again = fixture.enroll(&["db", "init"]);
    assert_ok(&again);
    assert!(
        text(&again.stdout).contains("Nothing to apply"),
        "{}",
        show(&again)
    );
    let migrate = fixture.enroll(&["db", "migrate"]);
    assert_ok(&migrate);
    assert!(
        text(&migrate.stdout).contains("Nothing to apply"),
        "{}",
        show(&migrate)
    );
    assert_eq!(
        db::migrate::applied_versions(&mut cluster.admin()).unwrap(),
        db::migrate::MIGRATIONS
            .iter()
            .map(|(version, _)| *version)
            .collect::<Vec<_>>()
    );
}

#[test]
fn db_migrate_refuses_a_database_newer_than_this_build() {
    let cluster = Cluster::start();
    cluster
        .admin()
        .batch_execute(
            "a newer build's migration",
            "INSERT INTO pam_totp.schema_migrations (version) VALUES (999)",
        )
        .unwrap();
    let out = admin_host(&cluster).enroll(&["db", "migrate"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("newer than this build"),
        "{}",
        show(&out)
    );
}

#[test]
fn the_database_option_overrides_the_configs_connection_string() {
    let cluster = Cluster::start();
    let fixture = Fixture::new("", "");
    fixture.write_config(
        "store = \"postgres\"\npostgres = \"host=127.0.0.1 port=1 dbname=none user=none sslmode=disable\"\n",
    );
    let out = fixture.enroll(&["db", "migrate", "--database", &admin_conninfo(&cluster)]);
    assert_ok(&out);
    let unreachable = fixture.enroll(&["db", "migrate"]);
    assert_eq!(unreachable.status.code(), Some(1), "{}", show(&unreachable));
    assert!(text(&unreachable.stderr).contains("database: cannot connect"));
}

#[test]
fn grant_host_lets_a_role_have_codes_checked_for_its_realms_but_not_read_the_tables() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    cluster.superuser_sql("CREATE ROLE host_c LOGIN PASSWORD 'host-c-password'");
    assert_ok(&fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]));
    assert_ok(&fixture.enroll(&["db", "grant-host", "host_c"]));

    let passfile = testkit::postgres::write_passfile(fixture.dir.path(), "host-c-password");
    let config = Config {
        store: testkit::product::Store::Postgres,
        postgres: cluster.conninfo("host_c", &passfile),
        ..Config::default()
    };
    let mut host = db::connect(&config).expect("the host role connects");
    assert_eq!(lookup(&mut host, TEST_USER, false).0, "enrolled");
    for table in ["enrollments", "login_state", "policy", "host_realms"] {
        let denied = host
            .query("dump", &format!("SELECT * FROM pam_totp.{table}"), &[])
            .unwrap_err();
        assert!(denied.is_permission_denied(), "{table}: {denied}");
    }

    let bad = fixture.enroll(&["db", "grant-host", "Robert'); DROP TABLE x;--"]);
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));
    let bad = fixture.enroll(&["db", "grant-host", "host_c", "--realm", "P1; --"]);
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));

    // Realms: the user moves to p2, which host_c is not granted; then it is.
    assert_ok(&fixture.enroll(&[
        "--user",
        TEST_USER,
        "--secret",
        SECRET,
        "--no-confirm",
        "--force",
        "--realm",
        "p2",
    ]));
    assert_eq!(lookup(&mut host, TEST_USER, false).0, "not_allowed");
    assert_eq!(status_json(&fixture)["realms"], serde_json::json!(["p2"]));
    let granted = fixture.enroll(&["db", "grant-host", "host_c", "--realm", "p2"]);
    assert_ok(&granted);
    assert!(
        text(&granted.stdout).contains("default, p2"),
        "{}",
        show(&granted)
    );
    assert_eq!(lookup(&mut host, TEST_USER, false).0, "enrolled");
    let revoked = fixture.enroll(&["db", "revoke-host", "host_c", "--realm", "p2"]);
    assert_ok(&revoked);
    assert_eq!(lookup(&mut host, TEST_USER, false).0, "not_allowed");
    assert_ok(&fixture.enroll(&["db", "revoke-host", "host_c", "--realm", "default"]));
    let err = host
        .query("lookup", "SELECT * FROM pam_totp.host_lookup('x', false)", &[])
        .unwrap_err();
    assert!(err.is_permission_denied(), "no host any more: {err}");
}

#[test]
fn db_policy_shows_and_changes_what_the_database_decides_with() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    let shown = fixture.enroll(&["db", "policy"]);
    assert_ok(&shown);
    assert!(
        text(&shown.stdout).contains("max_failures = 5"),
        "{}",
        show(&shown)
    );
    assert_ok(&fixture.enroll(&[
        "db",
        "policy",
        "--max-failures",
        "2",
        "--lockout-exempt",
        "root",
        "ops",
    ]));
    let policy = admin::read_policy(&mut cluster.admin()).unwrap();
    assert_eq!(policy.max_failures, 2);
    assert_eq!(policy.lockout_exempt, vec!["root".to_owned(), "ops".to_owned()]);
    assert_eq!(policy.lockout_seconds, 30, "the rest stays");
    let bad = fixture.enroll(&["db", "policy", "--window", "11"]);
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));

    assert_ok(&fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]));
    let (mut host, _dir) = host_client(&cluster, "host_p");
    assert_eq!(verify(&mut host, TEST_USER, "000000", false).locked_until, 0);
    assert!(
        verify(&mut host, TEST_USER, "000000", false).locked_until > 0,
        "the second failure locks out under the new policy"
    );
}

#[test]
fn provisioning_writes_the_file_stores_record_and_status_shows_it() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    let out = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]);
    assert_ok(&out);
    assert!(!text(&out.stdout).contains(SECRET));
    let record = record_of(&cluster, TEST_USER).expect("a record in the database");
    assert_eq!(record.secret.to_base32().as_str(), SECRET);
    assert_eq!(record.recovery.len(), 10);
    assert!(
        !fixture.record_path().exists(),
        "no record file on the admin host"
    );

    let status = status_json(&fixture);
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["record"], format!("postgres:{TEST_USER}"));
    assert_eq!(status["recovery_codes_left"], 10);
    assert_eq!(status["realms"], serde_json::json!(["default"]));
    assert_eq!(status["failures"], 0);

    let again = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    assert!(text(&again.stderr).contains("already enrolled"));
    let other = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    assert_ok(&fixture.enroll(&["--user", TEST_USER, "--secret", other, "--no-confirm", "--force"]));
    assert_eq!(
        record_of(&cluster, TEST_USER)
            .unwrap()
            .secret
            .to_base32()
            .as_str(),
        other
    );

    let list = fixture.enroll(&["list", "--json"]);
    assert_ok(&list);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["user"], TEST_USER);

    let host = PgHost::new(&cluster, "host_a", "");
    let login = host.fixture.login(&oathtool(other, 0));
    assert_eq!(login.status, SUCCESS, "{login:?}\n{}", cluster.log());
    assert_eq!(
        status_json(&fixture)["last_login"].as_u64().map(|t| t / 30),
        Some(testkit::now() / 30)
    );
}

#[test]
fn remove_deletes_the_record_and_its_login_state() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    assert_ok(&fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]));
    let (mut host, _dir) = host_client(&cluster, "host_r");
    verify(&mut host, TEST_USER, "000000", false);
    assert!(
        admin::read_state(&mut cluster.admin(), TEST_USER)
            .unwrap()
            .is_some()
    );

    assert_ok(&fixture.enroll(&["remove", "--user", TEST_USER]));
    assert!(record_of(&cluster, TEST_USER).is_none());
    assert!(
        admin::read_state(&mut cluster.admin(), TEST_USER)
            .unwrap()
            .is_none()
    );
    let again = fixture.enroll(&["remove", "--user", TEST_USER]);
    assert_eq!(again.status.code(), Some(1), "{}", show(&again));
    // `reset` also marks a user who is not enrolled: they enroll at their next login.
    let reset = fixture.enroll(&["reset", "--user", TEST_USER]);
    assert_ok(&reset);
    assert!(
        text(&reset.stdout).contains("was not enrolled"),
        "{}",
        show(&reset)
    );
    assert_eq!(lookup(&mut host, TEST_USER, false).0, "enroll");
    let status = fixture.enroll(&["status", "--user", TEST_USER]);
    assert_eq!(status.status.code(), Some(1), "{}", show(&status));
}

#[test]
fn unlock_clears_failures_and_the_lock_out() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    assert_ok(&fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]));
    set_policy(&cluster, 1, 30, 900, &[]);
    let (mut host, _dir) = host_client(&cluster, "host_u");
    verify(&mut host, TEST_USER, "000000", false);
    assert_eq!(status_json(&fixture)["locked"], true);

    let out = fixture.enroll(&["unlock", "--user", TEST_USER]);
    assert_ok(&out);
    assert!(
        text(&out.stdout).contains("1 failed attempts cleared"),
        "{}",
        show(&out)
    );
    let state = admin::read_state(&mut cluster.admin(), TEST_USER)
        .unwrap()
        .unwrap();
    assert_eq!((state.failures, state.locked_until), (0, 0));
    assert_eq!(status_json(&fixture)["locked"], false);
}

#[test]
fn recovery_codes_start_a_new_set_and_the_old_sets_burns_stop_counting() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    let enrolled = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]);
    assert_ok(&enrolled);
    let old_codes = testkit::recovery_codes(&enrolled.stdout);
    assert_eq!(old_codes.len(), 10);
    let old = record_of(&cluster, TEST_USER).unwrap();
    assert!(
        old.recovery.iter().all(|hash| hash.starts_with("$2a$08$")),
        "hashed by the database's crypt()"
    );
    let (mut host, _dir) = host_client(&cluster, "host_rc");
    let used = verify(&mut host, TEST_USER, &old_codes[0], false);
    assert_eq!(
        (used.verdict.as_str(), used.recovery_left),
        ("accepted_recovery", Some(9))
    );
    assert_eq!(status_json(&fixture)["recovery_codes_left"], 9);

    let out = fixture.enroll(&["recovery-codes", "--user", TEST_USER]);
    assert_ok(&out);
    let new_codes = testkit::recovery_codes(&out.stdout);
    let new = record_of(&cluster, TEST_USER).unwrap();
    assert_ne!(new.recovery_epoch, old.recovery_epoch);
    assert_ne!(new.recovery, old.recovery);
    assert_eq!(new.secret.to_base32().as_str(), SECRET, "the secret stays");
    assert_eq!(status_json(&fixture)["recovery_codes_left"], 10);
    assert_eq!(
        verify(&mut host, TEST_USER, &old_codes[1], false).verdict,
        "invalid_recovery_code",
        "the old set is gone"
    );
    assert_eq!(
        verify(&mut host, TEST_USER, &new_codes[0], false).recovery_left,
        Some(9)
    );
}

#[test]
fn a_google_authenticator_file_is_imported_into_the_database() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    let user = testkit::test_user();
    let file = user.dir.join(format!(".google_authenticator-{}", cluster.port));
    let _cleanup = testkit::RemoveOnDrop(file.clone());
    std::fs::write(
        &file,
        format!("{SECRET}\n\" TOTP_AUTH\n\" DISALLOW_REUSE 1000\n12345678\n"),
    )
    .unwrap();
    chown(&file, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let out = fixture.enroll(&[
        "import",
        "--user",
        TEST_USER,
        "--google-authenticator",
        file.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let record = record_of(&cluster, TEST_USER).unwrap();
    assert_eq!(record.secret.to_base32().as_str(), SECRET);
    assert_eq!(record.recovery.len(), 1, "the scratch code is kept");
    let state = admin::read_state(&mut cluster.admin(), TEST_USER)
        .unwrap()
        .unwrap();
    assert_eq!(
        state.used_until,
        1001 * 30,
        "the used step is carried, as the time it ends"
    );

    let host = PgHost::new(&cluster, "host_a", "");
    settle_in_step(3);
    let login = host.fixture.login(&oathtool(SECRET, 0));
    assert_eq!(login.status, SUCCESS, "{login:?}\n{}", cluster.log());
    let scratch = host.fixture.login("12345678");
    assert_eq!(
        scratch.status, SUCCESS,
        "the scratch code works once: {scratch:?}"
    );
    assert_eq!(host.fixture.login("12345678").status, AUTH_ERR);
}

#[test]
fn this_hosts_record_files_move_into_the_database_with_their_replay_protection() {
    let cluster = Cluster::start();
    let fixture = Fixture::new("", "");
    settle_in_step(15);
    fixture.provision(SECRET);
    let mut used = fixture.state();
    used.used_until = (testkit::now() / 30 + 1) * 30;
    fixture.set_state(used);
    let file_text = std::fs::read_to_string(fixture.record_path()).unwrap();
    fixture.write_config(&format!(
        "store = \"postgres\"\npostgres = \"{}\"\n",
        admin_conninfo(&cluster)
    ));

    let out = fixture.enroll(&["import", "--pam-totp-files"]);
    assert_ok(&out);
    assert!(
        text(&out.stdout).contains("1 imported, 0 skipped, 0 failed"),
        "{}",
        show(&out)
    );
    let in_db = record_of(&cluster, TEST_USER).unwrap();
    let in_file = Record::parse(&file_text).unwrap();
    assert_eq!(in_db.secret.to_base32().as_str(), SECRET);
    assert_eq!((in_db.digits, in_db.period), (in_file.digits, in_file.period));
    assert!(
        in_db.recovery.is_empty(),
        "argon2 hashes the database cannot check"
    );
    assert!(
        text(&out.stdout).contains("recovery-codes --user"),
        "the admin is told to issue a new set: {}",
        show(&out)
    );
    let state = admin::read_state(&mut cluster.admin(), TEST_USER)
        .unwrap()
        .unwrap();
    assert_eq!(state.used_until, used.used_until);
    assert!(
        fixture.record_path().exists(),
        "the file is kept for the admin to remove"
    );

    let again = fixture.enroll(&["import", "--pam-totp-files", "--user", TEST_USER]);
    assert_ok(&again);
    assert!(
        text(&again.stdout).contains("0 imported, 1 skipped"),
        "{}",
        show(&again)
    );

    // On a host: the code of the step used on the old host is refused, the next one
    // accepted.
    let host = PgHost::new(&cluster, "host_a", "");
    let replay = host.fixture.login(&oathtool(SECRET, 0));
    assert_eq!(replay.status, AUTH_ERR, "{replay:?}");
    let next = host.fixture.login(&oathtool(SECRET, 1));
    assert_eq!(next.status, SUCCESS, "{next:?}\n{}", cluster.log());
}

#[test]
fn a_non_root_user_is_told_that_an_administrator_enrolls_them() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    std::fs::set_permissions(fixture.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(fixture.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let cases: [&[&str]; 4] = [&[], &["status"], &["recovery-codes"], &["db", "migrate"]];
    for args in cases {
        let out = Command::new("runuser")
            .args(["-u", TEST_USER, "--"])
            .arg(enroll_bin())
            .arg("--config")
            .arg(fixture.config_path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("done by an administrator"), "{args:?}: {stderr}");
        assert!(stderr.contains("totp-enroll --user NAME"), "{stderr}");
        assert!(!stderr.contains("ermission denied"), "{stderr}");
    }
}

#[test]
fn reenrolling_with_another_period_digits_or_algorithm_keeps_replay_protection_and_lets_the_user_in() {
    use testkit::{Params, reenroll_keeps_replay_protection_without_locking_out};
    let cluster = Cluster::start();
    let admin = admin_host(&cluster);
    let host = PgHost::new(&cluster, "host_a", "");
    let ten = Params {
        period: 10,
        ..Params::DEFAULT
    };
    let eight = Params {
        digits: 8,
        ..Params::DEFAULT
    };
    let sha256 = Params {
        algorithm: "sha256",
        ..Params::DEFAULT
    };
    for (from, to) in [
        (ten, Params::DEFAULT),
        (Params::DEFAULT, ten),
        (Params::DEFAULT, eight),
        (Params::DEFAULT, sha256),
    ] {
        reenroll_keeps_replay_protection_without_locking_out(&admin, &host.fixture, from, to);
        // A fresh start for the next pair: the database drops the state with the record.
        assert_ok(&admin.enroll(&["remove", "--user", TEST_USER]));
    }
}

#[test]
fn the_code_that_confirmed_an_enrollment_is_burnt_in_the_database() {
    use std::io::Write;
    let cluster = Cluster::start();
    let admin = admin_host(&cluster);
    let host = PgHost::new(&cluster, "host_a", "");
    settle_in_step(10);
    let confirming = oathtool(SECRET, 0);
    let mut child = Command::new(enroll_bin())
        .arg("--config")
        .arg(admin.config_path())
        .args(["--user", TEST_USER, "--secret", SECRET, "--no-qr"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{confirming}\n").as_bytes())
        .unwrap();
    assert_ok(&child.wait_with_output().unwrap());
    assert_eq!(
        testkit::postgres::state(&cluster, TEST_USER).used_until,
        (testkit::now() / 30 + 1) * 30,
        "burnt through the admin side"
    );
    let replay = host.fixture.login(&confirming);
    assert_eq!(replay.status, AUTH_ERR, "{replay:?}");
    let next = host.fixture.login(&oathtool(SECRET, 1));
    assert_eq!(next.status, SUCCESS, "{next:?}\n{}", cluster.log());
}
