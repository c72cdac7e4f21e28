//! A compromised host: its login role calls what it is granted with hostile arguments
//! (another realm's user, NULL, negative or huge values, overlong answers, SQL in the
//! user name, the old functions that took a step or a verdict): no secret or hash comes
//! back, no counter goes back, no lock-out is lifted. And what it may do at all, from
//! `pg_catalog`: exactly the functions of the contract (0003's two, 0005's six for
//! remembered keys and verified sessions, whose hostile arguments are in
//! `shortcuts.rs`, 0006's three for enrollment at login, whose hostile arguments are in
//! `self_enrollment.rs`), and no privilege on a table.

use testkit::postgres::Cluster;
use testkit::product::{Client, admin};
use testkit::{SECRET, oathtool_at};

use crate::schema::{SECRET as SCHEMA_SECRET, db_now, host_client, lookup, set_policy, try_verify, verify};

const VERDICTS: &[&str] = &[
    "accepted",
    "accepted_recovery",
    "invalid_code",
    "replayed_code",
    "invalid_recovery_code",
    "recovery_code_already_used",
    "malformed_code",
    "locked_out",
    "not_enrolled",
    "not_allowed",
];

pub fn enroll(cluster: &Cluster, user: &str, secret: &str, realms: &[&str]) {
    let record = testkit::product::Record::new(
        testkit::product::SecretKey::from_base32(secret).unwrap(),
        testkit::product::Algorithm::Sha1,
        6,
        30,
        testkit::product::now_rfc3339(),
    );
    let realms: Vec<String> = realms.iter().map(|r| (*r).to_owned()).collect();
    admin::write_enrollment(
        &mut cluster.admin(),
        user,
        &record,
        admin::Codes::None,
        Some(&realms),
    )
    .unwrap();
}

pub fn host_in(cluster: &Cluster, role: &str, realms: &[&str]) -> (Client, tempfile::TempDir) {
    let (host, dir) = host_client(cluster, role);
    let mut admin = cluster.admin();
    admin::revoke_host_realms(&mut admin, role, &["default".to_owned()]).unwrap();
    let realms: Vec<String> = realms.iter().map(|r| (*r).to_owned()).collect();
    admin::grant_host_realms(&mut admin, role, &realms).unwrap();
    (host, dir)
}

/// The rows a host function returned, as text, for looking for what must not be there.
fn all_text(client: &mut Client, sql: &str) -> Result<String, testkit::product::DbError> {
    let rows = client.query(
        "probe",
        &format!("SELECT row_to_json(t)::text FROM ({sql}) t"),
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n"))
}

#[test]
fn a_host_may_execute_exactly_the_functions_of_the_contract_and_has_no_privilege_on_any_table() {
    let cluster = Cluster::start();
    let (_host, _dir) = host_client(&cluster, "host_a");
    let mut admin = cluster.admin();
    let functions: Vec<String> = admin
        .query(
            "functions a host may execute",
            "SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND has_schema_privilege('host_a', n.oid, 'USAGE')
               AND has_function_privilege('host_a', p.oid, 'EXECUTE')
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        functions,
        vec![
            "pam_totp.host_close_session(text,bigint)".to_owned(),
            "pam_totp.host_enroll(text,bytea,text,integer,integer,text,text[])".to_owned(),
            "pam_totp.host_expect_session(text,text,integer)".to_owned(),
            "pam_totp.host_lookup(text,boolean)".to_owned(),
            "pam_totp.host_open_session(text,text,bigint,integer)".to_owned(),
            "pam_totp.host_reenroll(text,text,bytea,text,integer,integer,text,text[])".to_owned(),
            "pam_totp.host_reenroll_ticket(text,bigint)".to_owned(),
            "pam_totp.host_remember_keys(text,text[],integer)".to_owned(),
            "pam_totp.host_remembered_key(text,text[])".to_owned(),
            "pam_totp.host_verified_session(text,bigint)".to_owned(),
            "pam_totp.host_verify(text,text,boolean,text)".to_owned(),
        ]
    );
    let privileges: Vec<String> = admin
        .query(
            "table privileges of a host",
            "SELECT c.oid::regclass::text || ' ' || p.privilege FROM pg_catalog.pg_class c
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                     'REFERENCES', 'TRIGGER']) AS p(privilege)
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
               AND (has_table_privilege('host_a', c.oid, p.privilege)
                    OR has_any_column_privilege('host_a', c.oid,
                           CASE WHEN p.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
                                THEN p.privilege ELSE 'SELECT' END))",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(privileges, Vec::<String>::new());
    let rows = admin
        .query(
            "what else",
            "SELECT has_schema_privilege('host_a', 'pam_totp_crypto', 'USAGE'),
                    has_schema_privilege('host_a', 'pam_totp', 'CREATE'),
                    has_function_privilege('host_a', 'pg_catalog.pg_read_file(text)', 'EXECUTE'),
                    (SELECT array_agg(r.rolname::text ORDER BY r.rolname) FROM pg_catalog.pg_auth_members m
                     JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
                     WHERE m.member = 'host_a'::regrole)",
            &[],
        )
        .unwrap();
    assert_eq!(
        (
            rows[0].get::<_, bool>(0),
            rows[0].get::<_, bool>(1),
            rows[0].get::<_, bool>(2),
            rows[0].get::<_, Vec<String>>(3)
        ),
        (false, false, false, vec!["pam_totp_host".to_owned()])
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one attack, end to end
fn hostile_arguments_get_no_secret_back_move_no_counter_back_and_lift_no_lock_out() {
    let cluster = Cluster::start();
    enroll(&cluster, "alice", SECRET, &["p1"]);
    enroll(&cluster, "bob", SCHEMA_SECRET, &["p2"]);
    let (mut host, _dir) = host_in(&cluster, "host_a", &["p1"]);
    set_policy(&cluster, 2, 300, 900, &[]);

    // A used step, then a lock-out.
    testkit::settle_in_step(5);
    let now = u64::try_from(db_now(&mut host)).unwrap();
    assert_eq!(
        verify(&mut host, "alice", &oathtool_at(SECRET, now), false).verdict,
        "accepted"
    );
    verify(&mut host, "alice", "000000", false);
    let locked = verify(&mut host, "alice", "000000", false);
    assert!(
        locked.locked_until > i64::try_from(now).unwrap() + 200,
        "{locked:?}"
    );
    let before = testkit::postgres::state(&cluster, "alice");

    let bob_code = oathtool_at(SCHEMA_SECRET, now);
    let long = "9".repeat(100_000);
    let sql = "'; UPDATE pam_totp.login_state SET locked_until = 0; --";
    let users: Vec<Option<&str>> = vec![
        Some("bob"),
        Some("alice'; DELETE FROM pam_totp.enrollments; --"),
        Some("ALICE"),
        Some(" alice"),
        Some("alice "),
        Some(""),
        Some(&long),
        None,
    ];
    let next_code = oathtool_at(SECRET, now + 30);
    let answers: Vec<Option<&str>> = vec![
        Some(&bob_code),
        Some(&next_code),
        Some("accepted"),
        Some(sql),
        Some(&long),
        Some("-1"),
        Some("99999999999999999999"),
        Some(""),
        None,
    ];
    let mut seen = Vec::new();
    for user in users.iter().chain([Some("alice")].iter()) {
        for answer in &answers {
            for console in [Some(true), Some(false), None] {
                for source in [Some("tty1"), Some(long.as_str()), None] {
                    match try_verify(&mut host, *user, *answer, console, source) {
                        Ok(v) => {
                            assert!(VERDICTS.contains(&v.verdict.as_str()), "{v:?}");
                            assert_ne!(v.verdict, "accepted", "{user:?} {answer:?}");
                            assert_ne!(v.verdict, "accepted_recovery", "{user:?} {answer:?}");
                            seen.push(v.verdict);
                        }
                        // Refused by the server (a value out of range): nothing done.
                        Err(e) => assert!(!e.is_permission_denied(), "{e}"),
                    }
                }
            }
        }
        if let Some(user) = user {
            let (status, _) = lookup(&mut host, user, false);
            assert!(["enrolled", "not_enrolled", "not_allowed"].contains(&status.as_str()));
        }
    }
    assert!(seen.iter().any(|v| v == "not_allowed"), "bob is another realm's");
    assert!(seen.iter().any(|v| v == "locked_out"), "alice stays locked out");

    // Nothing that looks like a secret or a hash in anything a host function returns.
    for sql in [
        "SELECT * FROM pam_totp.host_lookup('alice', false)",
        "SELECT * FROM pam_totp.host_lookup('bob', true)",
        "SELECT * FROM pam_totp.host_verify('alice', '123456', false, 'x')",
        "SELECT * FROM pam_totp.host_verify('bob', '123456', true, 'x')",
    ] {
        let text = all_text(&mut host, sql).unwrap();
        for secret in [SECRET, SCHEMA_SECRET, "$2a$", "\\\\x"] {
            assert!(!text.contains(secret), "{sql}: {text}");
        }
    }
    // The old functions that took a step, a verdict or a clock are gone.
    for sql in [
        "SELECT pam_totp.login_read('alice')",
        "SELECT pam_totp.login_accept_step('alice', 99999999999, 99999999999, 0, false)",
        "SELECT pam_totp.login_charge('alice', 0, 1000000, 0, 0, true)",
        "SELECT pam_totp.login_burn_recovery('alice', 0, 0, 0, 0, false)",
    ] {
        assert!(host.query("old", sql, &[]).is_err(), "{sql}");
    }

    let after = testkit::postgres::state(&cluster, "alice");
    assert!(
        after.used_until >= before.used_until,
        "replay protection never goes back"
    );
    assert!(
        after.locked_until >= before.locked_until,
        "the lock-out is not lifted"
    );
    assert!(after.failures >= before.failures, "no failure is forgotten");
    assert_eq!(after.last_success, before.last_success, "no success");
    assert_eq!(
        testkit::postgres::state(&cluster, "bob"),
        testkit::product::LoginState::default(),
        "bob untouched"
    );
    let source: Vec<i32> = cluster
        .admin()
        .query(
            "source",
            "SELECT length(last_failure_source) FROM pam_totp.login_state WHERE user_name = 'alice'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(source[0] <= 64, "{source:?}");
}

#[test]
fn realms_decide_who_a_host_may_check_whatever_the_code() {
    let cluster = Cluster::start();
    enroll(&cluster, "alice", SECRET, &["p1"]);
    enroll(&cluster, "bob", SECRET, &["p2"]);
    enroll(&cluster, "carol", SECRET, &["p1", "p2"]);
    let (mut p1, _d1) = host_in(&cluster, "host_p1", &["p1"]);
    let (mut everyone, _d2) = host_client(&cluster, "host_default");
    testkit::settle_in_step(3);
    let now = u64::try_from(db_now(&mut p1)).unwrap();
    let code = oathtool_at(SECRET, now);
    assert_eq!(lookup(&mut p1, "bob", false).0, "not_allowed");
    assert_eq!(verify(&mut p1, "bob", &code, false).verdict, "not_allowed");
    assert_eq!(verify(&mut p1, "alice", &code, false).verdict, "accepted");
    assert_eq!(verify(&mut p1, "carol", &code, false).verdict, "accepted");
    // A user with no enrollment and no realm is in `default`: not enrolled there, not
    // allowed on a host without it (never "not enrolled", which nullok would pass).
    assert_eq!(lookup(&mut everyone, "nobody", false).0, "not_enrolled");
    assert_eq!(lookup(&mut p1, "nobody", false).0, "not_allowed");
    assert_eq!(verify(&mut p1, "nobody", "123456", false).verdict, "not_allowed");
    assert_eq!(
        lookup(&mut everyone, "bob", false).0,
        "not_allowed",
        "bob is in p2 only"
    );
    // A removed enrollment leaves the user in its realms.
    assert!(admin::remove(&mut cluster.admin(), "bob").unwrap());
    assert_eq!(lookup(&mut p1, "bob", false).0, "not_allowed");
    assert_eq!(lookup(&mut everyone, "bob", false).0, "not_allowed");
}

#[test]
fn the_databases_window_decides_which_steps_are_accepted() {
    let cluster = Cluster::start();
    enroll(&cluster, "alice", SECRET, &["default"]);
    let (mut host, _dir) = host_client(&cluster, "host_a");
    admin::write_policy(
        &mut cluster.admin(),
        &admin::Policy {
            window: 0,
            ..admin::read_policy(&mut cluster.admin()).unwrap()
        },
    )
    .unwrap();
    testkit::settle_in_step(5);
    let now = u64::try_from(db_now(&mut host)).unwrap();
    let previous = oathtool_at(SECRET, now - 30);
    assert_eq!(
        verify(&mut host, "alice", &previous, false).verdict,
        "invalid_code"
    );
    admin::write_policy(
        &mut cluster.admin(),
        &admin::Policy {
            window: 1,
            ..admin::read_policy(&mut cluster.admin()).unwrap()
        },
    )
    .unwrap();
    assert_eq!(verify(&mut host, "alice", &previous, false).verdict, "accepted");
    // Ten steps ahead is outside any window: refused, and replay protection unmoved.
    let far = oathtool_at(SECRET, now + 300);
    let used = testkit::postgres::state(&cluster, "alice").used_until;
    assert_eq!(verify(&mut host, "alice", &far, false).verdict, "invalid_code");
    assert_eq!(testkit::postgres::state(&cluster, "alice").used_until, used);
}

/// HMACs (`pam_totp.hotp` calls, counted by the server) one `host_verify` costs.
fn hmacs_of(host: &mut Client, user: &str, answer: &str) -> i64 {
    // The session's pending counts, which hold earlier transactions' too: a difference.
    let calls = |host: &mut Client| -> i64 {
        host.query(
            "count",
            "SELECT pg_stat_get_xact_function_calls('pam_totp.hotp(bytea,bigint,text,integer)'::regprocedure)",
            &[],
        )
        .unwrap()[0]
            .get::<_, Option<i64>>(0)
            .unwrap_or(0)
    };
    host.batch_execute("begin", "BEGIN").unwrap();
    let before = calls(host);
    try_verify(host, Some(user), Some(answer), Some(false), Some("tty1")).unwrap();
    let after = calls(host);
    host.batch_execute("end", "ROLLBACK").unwrap();
    after - before
}

#[test]
fn an_unknown_user_and_another_realms_user_cost_the_same_hmacs_as_a_wrong_code() {
    let cluster = Cluster::start();
    enroll(&cluster, "alice", SECRET, &["p1"]);
    enroll(&cluster, "bob", SECRET, &["p2"]);
    drop(host_in(&cluster, "host_a", &["p1"]));
    cluster.superuser_sql("ALTER ROLE host_a SET track_functions = 'all'");
    let (mut host, _dir) = crate::schema::connect_host(&cluster, "host_a");
    for window in [1u8, 3] {
        admin::write_policy(
            &mut cluster.admin(),
            &admin::Policy {
                window,
                ..admin::read_policy(&mut cluster.admin()).unwrap()
            },
        )
        .unwrap();
        let wrong = hmacs_of(&mut host, "alice", "000000");
        assert_eq!(
            wrong,
            2 * 20 + 1,
            "every step within 600 s: the window's, then the clock hint's"
        );
        assert_eq!(hmacs_of(&mut host, "nobody", "000000"), wrong, "not enrolled");
        assert_eq!(hmacs_of(&mut host, "bob", "000000"), wrong, "not allowed");
    }
}

#[test]
fn a_code_for_another_time_tells_its_offset_only_for_an_enrolled_user_of_the_hosts_realms() {
    let cluster = Cluster::start();
    enroll(&cluster, "alice", SECRET, &["p1"]);
    enroll(&cluster, "bob", SECRET, &["p2"]);
    drop(host_in(&cluster, "host_a", &["p1"]));
    let (mut host, _dir) = crate::schema::connect_host(&cluster, "host_a");
    testkit::settle_in_step(3);
    let ahead = testkit::oathtool(SECRET, 6);
    let told = verify(&mut host, "alice", &ahead, false);
    assert_eq!(
        (told.verdict.as_str(), told.offset_seconds),
        ("invalid_code", Some(180))
    );
    assert_eq!(told.failures, 1, "still refused and counted");
    // Another realm's user, an unknown one: the same code, nothing told.
    for user in ["bob", "nobody"] {
        let answered = verify(&mut host, user, &ahead, false);
        assert_eq!(answered.offset_seconds, None, "{user}: {answered:?}");
        assert_eq!(answered.failures_before, None, "{user}: {answered:?}");
    }
    // Eleven minutes off: plain invalid.
    let far = verify(&mut host, "alice", &testkit::oathtool(SECRET, 22), false);
    assert_eq!((far.verdict.as_str(), far.offset_seconds), ("invalid_code", None));
    assert_eq!(testkit::postgres::state(&cluster, "alice").clock_offset, 180);
}

#[test]
fn the_step_a_hint_was_given_for_is_burnt_in_the_database() {
    let cluster = Cluster::start();
    enroll(&cluster, "alice", SECRET, &["p1"]);
    drop(host_in(&cluster, "host_a", &["p1"]));
    let (mut host, _dir) = crate::schema::connect_host(&cluster, "host_a");
    testkit::settle_in_step(3);
    let hinted = testkit::oathtool(SECRET, 2);
    assert_eq!(
        verify(&mut host, "alice", &hinted, false).offset_seconds,
        Some(60)
    );
    // No second hint while that step may still come into the window.
    let next = verify(&mut host, "alice", &testkit::oathtool(SECRET, 6), false);
    assert_eq!(
        (next.verdict.as_str(), next.offset_seconds),
        ("invalid_code", None)
    );
    // Once it is in the window (a wider one here), its code is refused as used.
    admin::write_policy(
        &mut cluster.admin(),
        &admin::Policy {
            window: 2,
            ..admin::read_policy(&mut cluster.admin()).unwrap()
        },
    )
    .unwrap();
    assert_eq!(
        verify(&mut host, "alice", &hinted, false).verdict,
        "replayed_code"
    );
    assert_eq!(
        verify(&mut host, "alice", &testkit::oathtool(SECRET, 0), false).verdict,
        "accepted"
    );
}
