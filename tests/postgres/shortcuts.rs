//! Migration 0005 against a real cluster, as a (possibly compromised) host's login role
//! calls it: a remembered key or a verified session belongs to the host role that saw the
//! code, never to its realm; a host mints one only right after the database accepted a
//! code of that user from it, once; the database caps the durations and keeps tickets as
//! hashes. Hostile arguments (NULL, negative, huge, malformed, another realm's user) get
//! nothing.

use testkit::oathtool_at;
use testkit::postgres::Cluster;
use testkit::product::{Client, DbError};

use crate::hostile_host::{enroll, host_in};
use crate::schema::{SECRET, db_now, verify};

const TICKET: &str = "0123456789abcdef0123456789abcdef";

fn fingerprint(c: char) -> String {
    format!("SHA256:{}", c.to_string().repeat(43))
}

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
    assert_eq!(verify(host, user, &oathtool_at(SECRET, now), false).verdict, "accepted", "{user}");
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
    assert!(!remember(&mut host_b, Some("alice"), Some(&[fingerprint('B')]), Some(600)));
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
    let cases: Vec<(Option<&str>, Option<&[String]>, Option<i32>)> = vec![
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
        assert!(!remember(&mut host_a, user, keys, seconds), "{user:?} {keys:?} {seconds:?}");
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
        assert!(!expect(&mut host_a, "dave", ticket, seconds), "{ticket:?} {seconds:?}");
    }
    assert!(expect(&mut host_a, "dave", Some(TICKET), Some(300)));
    assert!(!expect(&mut host_a, "dave", Some(TICKET), Some(300)), "once per acceptance");
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
    assert!(!open(&mut host_a, "dave", TICKET, Some(43), Some(600)), "a ticket is redeemed once");
    let now = db_now(&mut host_a);
    let until = verified(&mut host_a, "dave", 42).unwrap();
    assert!((now + 599..=now + 601).contains(&until), "{until} {now}");
    assert_eq!(verified(&mut host_b, "dave", 42), None, "another host's session 42");
    assert_eq!(verified(&mut host_a, "alice", 42), None);
    assert_eq!(verified(&mut host_a, "dave", 43), None);
    close(&mut host_b, "dave", 42);
    assert!(verified(&mut host_a, "dave", 42).is_some(), "another host cannot end it");
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
        assert!(!open(&mut host_a, user, &ticket, session, seconds), "{user} {session:?}");
        assert!(!open(&mut host_a, user, &ticket, Some(7), Some(600)), "used up: {user}");
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
