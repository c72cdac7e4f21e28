//! Migration 0005 against a real cluster, as a (possibly compromised) host's login role
//! calls it: a remembered key or a verified session belongs to the host role that saw the
//! code, never to its realm; a host mints one only right after the database accepted a
//! code of that user from it, once; the database caps the durations and keeps tickets as
//! hashes. Hostile arguments (NULL, negative, huge, malformed, another realm's user) get
//! nothing.

use pam_client::SUCCESS;
use testkit::postgres::{Cluster, PgHost};
use testkit::product::{Client, DbError};
use testkit::{TEST_USER, oathtool, oathtool_at, settle_in_step};

use crate::hostile_host::{enroll, host_in};
use crate::schema::{SECRET, db_now, verify};

const CODE_PROMPT: &str = "Verification code: ";
const TICKET: &str = "0123456789abcdef0123456789abcdef";

fn fingerprint(c: char) -> String {
    format!("SHA256:{}", c.to_string().repeat(43))
}

/// The arguments of `host_remember_keys`: user, fingerprints, seconds.
type RememberCall<'a> = (Option<&'a str>, Option<&'a [String]>, Option<i32>);

fn remember(host: &mut Client, user: Option<&str>, keys: Option<&[String]>, seconds: Option<i32>) -> bool {
    let rows = host
        .query(
            "host_remember_keys",
            "SELECT pam_totp.host_remember_keys($1, $2, $3)",
            &[&user, &keys, &seconds],
        )
        .unwrap();
    rows[0].get(0)
}

fn remembered(host: &mut Client, user: &str, keys: &[String]) -> Option<(String, i64)> {
    let rows = host
        .query(
            "host_remembered_key",
            "SELECT * FROM pam_totp.host_remembered_key($1, $2)",
            &[&user, &keys],
        )
        .unwrap();
    rows.first().map(|row| (row.get(0), row.get(1)))
}

fn expect(host: &mut Client, user: &str, ticket: Option<&str>, seconds: Option<i32>) -> bool {
    let rows = host
        .query(
            "host_expect_session",
            "SELECT pam_totp.host_expect_session($1, $2, $3)",
            &[&user, &ticket, &seconds],
        )
        .unwrap();
    rows[0].get(0)
}

fn open(host: &mut Client, user: &str, ticket: &str, session: Option<i64>, seconds: Option<i32>) -> bool {
    let rows = host
        .query(
            "host_open_session",
            "SELECT pam_totp.host_open_session($1, $2, $3, $4)",
            &[&user, &ticket, &session, &seconds],
        )
        .unwrap();
    rows[0].get(0)
}

fn verified(host: &mut Client, user: &str, session: i64) -> Option<i64> {
    let rows = host
        .query(
            "host_verified_session",
            "SELECT pam_totp.host_verified_session($1, $2)",
            &[&user, &session],
        )
        .unwrap();
    rows[0].get(0)
}

fn close(host: &mut Client, user: &str, session: i64) {
    host.query(
        "host_close_session",
        "SELECT pam_totp.host_close_session($1, $2)",
        &[&user, &session],
    )
    .unwrap();
}

/// `host` has `user`'s current code accepted by the database.
fn accept(host: &mut Client, user: &str) {
    let now = u64::try_from(db_now(host)).unwrap();
    assert_eq!(
        verify(host, user, &oathtool_at(SECRET, now), false).verdict,
        "accepted",
        "{user}"
    );
}

#[test]
#[allow(clippy::too_many_lines)] // one attack, end to end
fn a_host_remembers_a_key_only_right_after_its_own_accepted_code_once_and_for_itself() {
    let cluster = Cluster::start();
    for user in ["alice", "dave", "erin"] {
        enroll(&cluster, user, SECRET, &["p1"]);
    }
    enroll(&cluster, "bob", SECRET, &["p2"]);
    let (mut host_a, _a) = host_in(&cluster, "host_a", &["p1"]);
    let (mut host_b, _b) = host_in(&cluster, "host_b", &["p1"]);
    let key = vec![fingerprint('A')];
    testkit::settle_in_step(5);

    // No code accepted: nothing can be minted.
    assert!(!remember(&mut host_a, Some("alice"), Some(&key), Some(600)));
    assert!(!expect(&mut host_a, "alice", Some(TICKET), Some(300)));

    // Another host role's acceptance mints nothing here.
    accept(&mut host_b, "alice");
    assert!(!remember(&mut host_a, Some("alice"), Some(&key), Some(600)));
    assert!(remember(&mut host_b, Some("alice"), Some(&key), Some(600)));
    // Once per acceptance.
    assert!(!remember(
        &mut host_b,
        Some("alice"),
        Some(&[fingerprint('B')]),
        Some(600)
    ));
    let now = db_now(&mut host_b);
    let (seen, until) = remembered(&mut host_b, "alice", &[fingerprint('C'), fingerprint('A')]).unwrap();
    assert_eq!(seen, fingerprint('A'));
    assert!((now + 599..=now + 601).contains(&until), "{until} {now}");
    // The same realm's other host does not honour it; another key, another user: none.
    assert_eq!(remembered(&mut host_a, "alice", &key), None);
    assert_eq!(remembered(&mut host_b, "alice", &[fingerprint('B')]), None);
    assert_eq!(remembered(&mut host_b, "dave", &key), None);

    // Hostile values, after an accepted code of dave's: each refused, none uses up the grant.
    accept(&mut host_a, "dave");
    let seventeen: Vec<String> = (0..17).map(|i| fingerprint(char::from(b'a' + i))).collect();
    let malformed = vec!["SHA256:short".to_owned()];
    let sql = vec!["'; DELETE FROM pam_totp.remembered_keys; --".to_owned()];
    let cases: Vec<RememberCall<'_>> = vec![
        (Some("dave"), Some(&key), Some(0)),
        (Some("dave"), Some(&key), Some(-1)),
        (Some("dave"), Some(&key), Some(43_201)),
        (Some("dave"), Some(&key), Some(i32::MAX)),
        (Some("dave"), Some(&key), None),
        (Some("dave"), None, Some(600)),
        (Some("dave"), Some(&[]), Some(600)),
        (Some("dave"), Some(&seventeen), Some(600)),
        (Some("dave"), Some(&malformed), Some(600)),
        (Some("dave"), Some(&sql), Some(600)),
        (Some("DAVE"), Some(&key), Some(600)),
        (None, Some(&key), Some(600)),
    ];
    for (user, keys, seconds) in cases {
        assert!(
            !remember(&mut host_a, user, keys, seconds),
            "{user:?} {keys:?} {seconds:?}"
        );
    }
    let nulls: Vec<Option<String>> = vec![Some(fingerprint('A')), None];
    let rows = host_a
        .query(
            "NULL in the keys",
            "SELECT pam_totp.host_remember_keys('dave', $1, 600)",
            &[&nulls],
        )
        .unwrap();
    assert!(!rows[0].get::<_, bool>(0));
    // The longest the database allows, whatever the host's config says.
    assert!(remember(&mut host_a, Some("dave"), Some(&key), Some(43_200)));
    let (_, until) = remembered(&mut host_a, "dave", &key).unwrap();
    assert!(until <= db_now(&mut host_a) + 43_200);

    // Another realm's user: the host role cannot mint for bob even with an acceptance
    // recorded for it (written here as an admin would see it after a bug elsewhere).
    let now = db_now(&mut host_a);
    cluster
        .admin()
        .execute(
            "fake acceptance",
            "INSERT INTO pam_totp.last_acceptance (user_name, host_role, accepted_at) VALUES ('bob', 'host_a', $1)",
            &[&now],
        )
        .unwrap();
    assert!(!remember(&mut host_a, Some("bob"), Some(&key), Some(600)));
    assert!(!expect(&mut host_a, "bob", Some(TICKET), Some(300)));

    // An acceptance older than 120 s mints nothing.
    accept(&mut host_a, "erin");
    cluster
        .admin()
        .execute(
            "age the acceptance",
            "UPDATE pam_totp.last_acceptance SET accepted_at = accepted_at - 121 WHERE user_name = 'erin'",
            &[],
        )
        .unwrap();
    assert!(!remember(&mut host_a, Some("erin"), Some(&key), Some(600)));
    assert!(!expect(&mut host_a, "erin", Some(TICKET), Some(300)));

    // A remembered key past its end is not honoured.
    cluster
        .admin()
        .execute(
            "end the remembered key",
            "UPDATE pam_totp.remembered_keys SET expires_at = $1 WHERE user_name = 'dave'",
            &[&db_now(&mut host_a)],
        )
        .unwrap();
    assert_eq!(remembered(&mut host_a, "dave", &key), None);
}

#[test]
fn a_session_is_verified_only_with_its_hosts_ticket_once_and_only_there() {
    let cluster = Cluster::start();
    for user in ["alice", "dave", "erin", "frank"] {
        enroll(&cluster, user, SECRET, &["p1"]);
    }
    let (mut host_a, _a) = host_in(&cluster, "host_a", &["p1"]);
    let (mut host_b, _b) = host_in(&cluster, "host_b", &["p1"]);
    testkit::settle_in_step(5);

    accept(&mut host_a, "dave");
    // Hostile ticket values and lengths refused without using up the grant.
    for (ticket, seconds) in [
        (None, Some(300)),
        (Some("0123"), Some(300)),
        (Some("'; --"), Some(300)),
        (Some(TICKET), Some(0)),
        (Some(TICKET), Some(601)),
        (Some(TICKET), None),
    ] {
        assert!(
            !expect(&mut host_a, "dave", ticket, seconds),
            "{ticket:?} {seconds:?}"
        );
    }
    assert!(expect(&mut host_a, "dave", Some(TICKET), Some(300)));
    assert!(
        !expect(&mut host_a, "dave", Some(TICKET), Some(300)),
        "once per acceptance"
    );
    // Only the hash is kept.
    let kept = cluster
        .admin()
        .query(
            "tickets",
            "SELECT count(*) FROM pam_totp.session_tickets t
             WHERE position(convert_to($1, 'UTF8') IN t.ticket_hash) > 0
                OR encode(t.ticket_hash, 'hex') = $1",
            &[&TICKET],
        )
        .unwrap();
    assert_eq!(kept[0].get::<_, i64>(0), 0);

    // Another host role, another user, another ticket: refused, the ticket stays.
    assert!(!open(&mut host_b, "dave", TICKET, Some(42), Some(600)));
    assert!(!open(&mut host_a, "alice", TICKET, Some(42), Some(600)));
    assert!(!open(&mut host_a, "dave", &"f".repeat(32), Some(42), Some(600)));
    assert!(open(&mut host_a, "dave", TICKET, Some(42), Some(600)));
    assert!(
        !open(&mut host_a, "dave", TICKET, Some(43), Some(600)),
        "a ticket is redeemed once"
    );
    let now = db_now(&mut host_a);
    let until = verified(&mut host_a, "dave", 42).unwrap();
    assert!((now + 599..=now + 601).contains(&until), "{until} {now}");
    assert_eq!(
        verified(&mut host_b, "dave", 42),
        None,
        "another host's session 42"
    );
    assert_eq!(verified(&mut host_a, "alice", 42), None);
    assert_eq!(verified(&mut host_a, "dave", 43), None);
    close(&mut host_b, "dave", 42);
    assert!(
        verified(&mut host_a, "dave", 42).is_some(),
        "another host cannot end it"
    );
    close(&mut host_a, "dave", 42);
    assert_eq!(verified(&mut host_a, "dave", 42), None, "after close_session");

    // Hostile session ids and durations: the ticket is used up, nothing verified.
    for (user, session, seconds) in [
        ("erin", Some(-1), Some(600)),
        ("alice", Some(4_294_967_295), Some(600)),
        ("frank", None, Some(600)),
    ] {
        accept(&mut host_a, user);
        let ticket = format!("{:0>32}", user.len() * 10 + usize::from(user.as_bytes()[0] % 10));
        assert!(expect(&mut host_a, user, Some(&ticket), Some(300)));
        assert!(
            !open(&mut host_a, user, &ticket, session, seconds),
            "{user} {session:?}"
        );
        assert!(
            !open(&mut host_a, user, &ticket, Some(7), Some(600)),
            "used up: {user}"
        );
    }
}

#[test]
fn a_shortcut_call_for_a_user_outside_the_hosts_realms_errs_nowhere_and_reveals_nothing() {
    let cluster = Cluster::start();
    enroll(&cluster, "bob", SECRET, &["p2"]);
    let (mut host_a, _a) = host_in(&cluster, "host_a", &["p1"]);
    let key = vec![fingerprint('A')];
    assert_eq!(remembered(&mut host_a, "bob", &key), None);
    assert_eq!(verified(&mut host_a, "bob", 1), None);
    let too_long: Result<_, DbError> = host_a.query(
        "long user",
        "SELECT pam_totp.host_verified_session($1, 1)",
        &[&"b".repeat(100_000)],
    );
    assert!(too_long.unwrap()[0].get::<_, Option<i64>>(0).is_none());
}

#[test]
fn a_database_migrated_to_6_without_5_gets_5_next_and_its_functions_work() {
    let cluster = Cluster::start();
    enroll(&cluster, "alice", SECRET, &["p1"]);
    // As a build without version 5 left it: 6 applied, none of 5's objects.
    cluster
        .admin()
        .batch_execute(
            "undo version 5",
            "DROP FUNCTION pam_totp.host_remembered_key(text, text[]), pam_totp.host_remember_keys(text, text[], integer),
                           pam_totp.host_expect_session(text, text, integer),
                           pam_totp.host_open_session(text, text, bigint, integer),
                           pam_totp.host_verified_session(text, bigint), pam_totp.host_close_session(text, bigint),
                           pam_totp.take_shortcut_grant(text, text), pam_totp.shortcut_seconds(integer);
             DROP TABLE pam_totp.remembered_keys, pam_totp.session_tickets, pam_totp.verified_sessions,
                        pam_totp.shortcut_grants;
             DELETE FROM pam_totp.schema_migrations WHERE version = 5",
        )
        .unwrap();
    assert_eq!(
        testkit::product::db::migrate(&mut cluster.admin()).unwrap(),
        vec![5]
    );
    let (mut host_a, _a) = host_in(&cluster, "host_a", &["p1"]);
    testkit::settle_in_step(5);
    accept(&mut host_a, "alice");
    let key = vec![fingerprint('A')];
    assert!(remember(&mut host_a, Some("alice"), Some(&key), Some(600)));
    assert!(remembered(&mut host_a, "alice", &key).is_some());
}

/// `SSH_AUTH_INFO_0` as sshd sets it after verifying a new ed25519 key of `dir`'s.
fn auth_info_of_new_key(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let mut words = public.split_whitespace();
    let (kind, blob) = (words.next().unwrap(), words.next().unwrap());
    format!("SSH_AUTH_INFO_0=publickey {kind} {blob}\n")
}

/// One login of the `sshd` service (the only one whose `SSH_AUTH_INFO_0` counts) on
/// `host` through real libpam, with `auth_info` in the PAM environment.
fn sshd_login(host: &PgHost, auth_info: &str, answers: &[&[u8]]) -> pam_client::Transcript {
    let dir = host.fixture.dir.path();
    let service = dir.join("sshd");
    if !service.exists() {
        std::fs::copy(dir.join(&host.fixture.service), &service).unwrap();
    }
    let login = pam_client::Login {
        confdir: dir,
        service: "sshd",
        user: TEST_USER,
        rhost: Some("192.0.2.7"),
    };
    pam_client::authenticate_with_env(&login, &[auth_info], answers)
}

#[test]
fn through_libpam_the_same_key_passes_without_a_code_on_the_same_host_only() {
    let cluster = Cluster::start();
    testkit::postgres::enroll(&cluster, TEST_USER, SECRET);
    let host_a = PgHost::new(&cluster, "host_a", "remember_key_seconds = 600\n");
    let host_b = PgHost::new(&cluster, "host_b", "remember_key_seconds = 600\n");
    let keys = tempfile::tempdir().unwrap();
    let key_1 = auth_info_of_new_key(keys.path(), "one");
    let key_2 = auth_info_of_new_key(keys.path(), "two");
    settle_in_step(5);

    let first = sshd_login(&host_a, &key_1, &[oathtool(SECRET, 0).as_bytes()]);
    assert_eq!(first.status, SUCCESS, "{first:?}\n{}", cluster.log());
    assert_eq!(first.prompts(), [CODE_PROMPT]);
    let remembered: Vec<String> = cluster
        .admin()
        .query(
            "remembered keys",
            "SELECT user_name || ' ' || host_role FROM pam_totp.remembered_keys",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(remembered, [format!("{TEST_USER} host_a")]);

    let again = sshd_login(&host_a, &key_1, &[]);
    assert_eq!(again.status, SUCCESS, "{again:?}\n{}", cluster.log());
    assert!(again.prompts().is_empty(), "{again:?}");

    let other_key = sshd_login(&host_a, &key_2, &[]);
    assert_ne!(other_key.status, SUCCESS, "{other_key:?}");
    assert_eq!(other_key.prompts(), [CODE_PROMPT]);

    let other_host = sshd_login(&host_b, &key_1, &[]);
    assert_ne!(other_host.status, SUCCESS, "{other_host:?}");
    assert_eq!(other_host.prompts(), [CODE_PROMPT]);

    // The same key named to another service (not sshd, which verified it) is no proof.
    let login = pam_client::Login {
        confdir: host_a.fixture.dir.path(),
        service: &host_a.fixture.service,
        user: TEST_USER,
        rhost: Some("192.0.2.7"),
    };
    let not_sshd = pam_client::authenticate_with_env(&login, &[&key_1], &[]);
    assert_ne!(not_sshd.status, SUCCESS, "{not_sshd:?}");
    assert_eq!(not_sshd.prompts(), [CODE_PROMPT]);
}
