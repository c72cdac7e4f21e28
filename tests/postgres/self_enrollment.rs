//! Migration 0006 against a real cluster, as a (possibly compromised) host's login role
//! calls it: `host_enroll` only for an unenrolled user of the host's realms, confirmed
//! by a current code the database checks; `totp-enroll reset`'s mark; and "change your
//! OTP": `host_reenroll` only with a single-use ticket granted to the host that just
//! had a code of that user accepted.

use testkit::oathtool_at;
use testkit::postgres::Cluster;
use testkit::product::{Client, SecretKey, admin};

use crate::hostile_host::{enroll, host_in};
use crate::schema::{SECRET, db_now, lookup, verify};

const NEW_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const OTHER_SECRET: &str = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU";
const CODES: [&str; 2] = ["0abcdefghjkm", "1abcdefghjkm"];

fn bytes(secret: &str) -> Vec<u8> {
    SecretKey::from_base32(secret).unwrap().as_bytes().to_vec()
}

/// The current code of `secret` by the database's clock.
fn current(host: &mut Client, secret: &str) -> String {
    oathtool_at(secret, u64::try_from(db_now(host)).unwrap())
}

pub fn host_enroll(
    host: &mut Client,
    user: &str,
    secret: &str,
    code: &str,
) -> Result<String, testkit::product::DbError> {
    let codes: Vec<&str> = CODES.to_vec();
    let rows = host.query(
        "host_enroll",
        "SELECT pam_totp.host_enroll($1, $2, 'SHA1', 6, 30, $3, $4)",
        &[&user, &bytes(secret), &code, &codes],
    )?;
    Ok(rows[0].get(0))
}

pub fn ticket(host: &mut Client, user: &str) -> Option<String> {
    let requested_at = db_now(host);
    host.query(
        "host_reenroll_ticket",
        "SELECT pam_totp.host_reenroll_ticket($1, $2)",
        &[&user, &requested_at],
    )
    .unwrap()[0]
        .get(0)
}

pub fn host_reenroll(
    host: &mut Client,
    user: &str,
    ticket: Option<&str>,
    secret: &str,
    code: &str,
) -> String {
    let codes: Vec<&str> = CODES.to_vec();
    host.query(
        "host_reenroll",
        "SELECT pam_totp.host_reenroll($1, $2, $3, 'SHA1', 6, 30, $4, $5)",
        &[&user, &ticket, &bytes(secret), &code, &codes],
    )
    .unwrap()[0]
        .get(0)
}

fn secret_of(cluster: &Cluster, user: &str) -> Option<String> {
    admin::read_enrollment(&mut cluster.admin(), user)
        .unwrap()
        .map(|record| record.secret.to_base32().as_str().to_owned())
}

/// Waits for the next step of the database's clock, so that a new code is fresh.
fn next_step(host: &mut Client) {
    let now = db_now(host);
    std::thread::sleep(std::time::Duration::from_secs(
        u64::try_from(30 - now % 30).unwrap() + 1,
    ));
}

#[test]
fn a_host_enrolls_an_unenrolled_user_of_its_realm_once_and_the_confirming_code_is_used_up() {
    let cluster = Cluster::start();
    let (mut host, _dir) = host_in(&cluster, "host_a", &["p1"]);
    admin::set_user_realms(&mut cluster.admin(), "alice", &["p1".to_owned()]).unwrap();
    assert_eq!(lookup(&mut host, "alice", false).0, "not_enrolled");

    let wrong = current(&mut host, OTHER_SECRET);
    assert_eq!(
        host_enroll(&mut host, "alice", NEW_SECRET, &wrong).unwrap(),
        "invalid_code"
    );
    assert_eq!(secret_of(&cluster, "alice"), None);

    let code = current(&mut host, NEW_SECRET);
    assert_eq!(
        host_enroll(&mut host, "alice", NEW_SECRET, &code).unwrap(),
        "enrolled"
    );
    assert_eq!(secret_of(&cluster, "alice").as_deref(), Some(NEW_SECRET));
    assert_eq!(lookup(&mut host, "alice", false).0, "enrolled");
    // The confirming code counts as used.
    assert_eq!(verify(&mut host, "alice", &code, false).verdict, "replayed_code");
    // The recovery codes were hashed by the database and work once.
    let used = verify(&mut host, "alice", "1abc-defg-hjkm", false);
    assert_eq!(
        (used.verdict.as_str(), used.recovery_left),
        ("accepted_recovery", Some(1))
    );
    // Never a replacement, whatever the code.
    let other = current(&mut host, OTHER_SECRET);
    assert_eq!(
        host_enroll(&mut host, "alice", OTHER_SECRET, &other).unwrap(),
        "already_enrolled"
    );
    assert_eq!(secret_of(&cluster, "alice").as_deref(), Some(NEW_SECRET));
}

#[test]
fn a_host_cannot_enroll_another_realms_user_an_enrolled_user_or_with_weak_parameters() {
    let cluster = Cluster::start();
    let (mut host, _dir) = host_in(&cluster, "host_a", &["p1"]);
    enroll(&cluster, "bob", SECRET, &["p1"]);
    admin::set_user_realms(&mut cluster.admin(), "carol", &["p2".to_owned()]).unwrap();
    admin::set_user_realms(&mut cluster.admin(), "dave", &["p1".to_owned()]).unwrap();
    let code = current(&mut host, NEW_SECRET);
    assert_eq!(
        host_enroll(&mut host, "carol", NEW_SECRET, &code).unwrap(),
        "not_allowed"
    );
    assert_eq!(secret_of(&cluster, "carol"), None);
    assert_eq!(
        host_enroll(&mut host, "bob", NEW_SECRET, &code).unwrap(),
        "already_enrolled"
    );
    assert_eq!(secret_of(&cluster, "bob").as_deref(), Some(SECRET));
    // Ten bytes of secret, no recovery codes, hostile codes: refused, nothing written.
    let short = host.query(
        "short secret",
        "SELECT pam_totp.host_enroll('dave', '\\x00000000000000000000'::bytea, 'SHA1', 6, 30, '000000', ARRAY['0abcdefghjkm'])",
        &[],
    );
    assert_eq!(short.unwrap()[0].get::<_, String>(0), "malformed");
    let no_codes = host.query(
        "no codes",
        "SELECT pam_totp.host_enroll('dave', $1, 'SHA1', 6, 30, $2, ARRAY[]::text[])",
        &[&bytes(NEW_SECRET), &code],
    );
    assert_eq!(no_codes.unwrap()[0].get::<_, String>(0), "malformed");
    let injected = host.query(
        "hostile codes",
        "SELECT pam_totp.host_enroll('dave', $1, 'SHA1', 6, 30, $2, ARRAY['$2a$08$x', NULL])",
        &[&bytes(NEW_SECRET), &code],
    );
    assert_eq!(injected.unwrap()[0].get::<_, String>(0), "malformed");
    assert_eq!(
        host_enroll(&mut host, "dave'; --", NEW_SECRET, &code).unwrap(),
        "not_allowed"
    );
    assert_eq!(secret_of(&cluster, "dave"), None);
}

#[test]
fn two_hosts_racing_to_enroll_the_same_user_exactly_one_wins() {
    let cluster = Cluster::start();
    let (_a, _dir_a) = host_in(&cluster, "host_a", &["default"]);
    let (_b, _dir_b) = host_in(&cluster, "host_b", &["default"]);
    for round in 0..5 {
        let user = format!("racer{round}");
        let results: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = [("host_a", NEW_SECRET), ("host_b", OTHER_SECRET)]
                .into_iter()
                .map(|(role, secret)| {
                    let cluster = &cluster;
                    let user = &user;
                    scope.spawn(move || {
                        let (mut host, _dir) = crate::schema::connect_host(cluster, role);
                        let code = current(&mut host, secret);
                        host_enroll(&mut host, user, secret, &code).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = results.clone();
        sorted.sort();
        assert_eq!(sorted, ["already_enrolled", "enrolled"], "{results:?}");
        let winner = if results[0] == "enrolled" {
            NEW_SECRET
        } else {
            OTHER_SECRET
        };
        assert_eq!(secret_of(&cluster, &user).as_deref(), Some(winner));
    }
}

#[test]
fn reset_stops_the_old_secret_at_once_and_marks_the_user_until_they_enroll() {
    let cluster = Cluster::start();
    let (mut host, _dir) = host_in(&cluster, "host_a", &["default"]);
    enroll(&cluster, "erin", SECRET, &["default"]);
    assert!(admin::reset(&mut cluster.admin(), "erin").unwrap());
    assert_eq!(lookup(&mut host, "erin", false).0, "enroll");
    let old = current(&mut host, SECRET);
    assert_eq!(verify(&mut host, "erin", &old, false).verdict, "not_enrolled");
    let code = current(&mut host, NEW_SECRET);
    assert_eq!(
        host_enroll(&mut host, "erin", NEW_SECRET, &code).unwrap(),
        "enrolled"
    );
    assert_eq!(lookup(&mut host, "erin", false).0, "enrolled");
    assert!(!admin::marked_for_enrollment(&mut cluster.admin(), "erin").unwrap());
}

#[test]
fn a_replacement_needs_a_ticket_of_the_host_that_just_accepted_a_code_of_that_user_once() {
    let cluster = Cluster::start();
    let (mut host_a, _dir_a) = host_in(&cluster, "host_a", &["default"]);
    let (mut host_b, _dir_b) = host_in(&cluster, "host_b", &["default"]);
    enroll(&cluster, "frank", SECRET, &["default"]);
    enroll(&cluster, "grace", OTHER_SECRET, &["default"]);
    let new_code = current(&mut host_a, NEW_SECRET);

    // No acceptance yet: no ticket; no ticket: no replacement.
    assert_eq!(ticket(&mut host_a, "frank"), None);
    assert_eq!(
        host_reenroll(&mut host_a, "frank", None, NEW_SECRET, &new_code),
        "no_ticket"
    );
    assert_eq!(
        host_reenroll(&mut host_a, "frank", Some("00"), NEW_SECRET, &new_code),
        "no_ticket"
    );

    let code = current(&mut host_a, SECRET);
    assert_eq!(verify(&mut host_a, "frank", &code, false).verdict, "accepted");
    // Another host role gets nothing for host_a's acceptance.
    assert_eq!(ticket(&mut host_b, "frank"), None);
    let granted = ticket(&mut host_a, "frank").expect("a ticket right after the accepted code");
    assert_eq!(ticket(&mut host_a, "frank"), None, "once per acceptance");
    // Another user's name with frank's ticket, or host_b with it: refused (and used up).
    assert_eq!(
        host_reenroll(&mut host_a, "grace", Some(&granted), NEW_SECRET, &new_code),
        "no_ticket"
    );
    assert_eq!(
        host_reenroll(&mut host_b, "frank", Some(&granted), NEW_SECRET, &new_code),
        "no_ticket"
    );
    assert_eq!(secret_of(&cluster, "grace").as_deref(), Some(OTHER_SECRET));
    assert_eq!(
        host_reenroll(&mut host_a, "frank", Some(&granted), NEW_SECRET, &new_code),
        "reenrolled"
    );
    assert_eq!(
        host_reenroll(&mut host_a, "frank", Some(&granted), OTHER_SECRET, &new_code),
        "no_ticket",
        "single use"
    );
    assert_eq!(secret_of(&cluster, "frank").as_deref(), Some(NEW_SECRET));

    // The old secret stops; the new one works from its next code.
    next_step(&mut host_a);
    let old = current(&mut host_a, SECRET);
    assert_eq!(verify(&mut host_a, "frank", &old, false).verdict, "invalid_code");
    let fresh = current(&mut host_a, NEW_SECRET);
    assert_eq!(verify(&mut host_b, "frank", &fresh, false).verdict, "accepted");
}

#[test]
fn null_and_huge_arguments_write_nothing_and_grant_nothing() {
    let cluster = Cluster::start();
    let (mut host, _dir) = host_in(&cluster, "host_a", &["default"]);
    enroll(&cluster, "henry", SECRET, &["default"]);
    let code = current(&mut host, SECRET);
    assert_eq!(verify(&mut host, "henry", &code, false).verdict, "accepted");
    let huge = "9".repeat(100_000);
    for (sql, expected) in [
        (
            "SELECT pam_totp.host_enroll(NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            Some("not_allowed"),
        ),
        (
            "SELECT pam_totp.host_enroll('ivy', NULL, NULL, NULL, NULL, NULL, NULL)",
            Some("malformed"),
        ),
        (
            "SELECT pam_totp.host_enroll('ivy', '\\x00'::bytea, 'MD5', 2147483647, -1, $1, ARRAY[$1])",
            Some("malformed"),
        ),
        ("SELECT pam_totp.host_reenroll_ticket(NULL, NULL)", None),
        ("SELECT pam_totp.host_reenroll_ticket('henry', NULL)", None),
        // A request older than the enrollment (one already carried out) is ignored.
        ("SELECT pam_totp.host_reenroll_ticket('henry', 0)", None),
        (
            "SELECT pam_totp.host_reenroll(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            Some("not_allowed"),
        ),
        (
            "SELECT pam_totp.host_reenroll('henry', $1, NULL, NULL, NULL, NULL, NULL, NULL)",
            Some("no_ticket"),
        ),
        (
            "SELECT pam_totp.host_reenroll('henry', NULL, NULL, NULL, NULL, NULL, $1, NULL)",
            Some("no_ticket"),
        ),
    ] {
        let rows = if sql.contains("$1") {
            host.query("hostile", sql, &[&huge])
        } else {
            host.query("hostile", sql, &[])
        };
        let got: Option<String> = rows.unwrap_or_else(|e| panic!("{sql}: {e}"))[0].get(0);
        assert_eq!(got.as_deref(), expected, "{sql}");
    }
    assert_eq!(secret_of(&cluster, "henry").as_deref(), Some(SECRET));
    assert_eq!(secret_of(&cluster, "ivy"), None);
    // An acceptance more than 120 s old grants nothing; the refused requests above did
    // not use it up: a proper request right after it gets a ticket.
    let age = |seconds: i64| {
        cluster
            .admin()
            .execute(
                "age the acceptance",
                "UPDATE pam_totp.last_acceptance SET accepted_at = accepted_at + $1",
                &[&seconds],
            )
            .unwrap();
    };
    age(-121);
    assert_eq!(ticket(&mut host, "henry"), None);
    age(121);
    assert!(ticket(&mut host, "henry").is_some());
}
