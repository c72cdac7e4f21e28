//! What an admin sees of a reset with the real `totp-enroll` on a real cluster: `status`,
//! `status --json` and `list` say that a reset user is to enroll again (and since when)
//! until they do, and show a live re-enrollment ticket ("change your OTP") while one is
//! held. The admin's own enrollment ends a reset as the user's does.

use std::process::Output;

use testkit::postgres::Cluster;
use testkit::{Fixture, SECRET, TEST_USER, now, oathtool_at, show};

use crate::enrollment::admin_host;
use crate::hostile_host::host_in;
use crate::schema::{db_now, lookup, verify};
use crate::self_enrollment::{host_enroll, ticket};

const NEW_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn status(fixture: &Fixture) -> (Output, serde_json::Value) {
    let human = fixture.enroll(&["status", "--user", TEST_USER]);
    let json = fixture.enroll(&["status", "--user", TEST_USER, "--json"]);
    assert_eq!(human.status.code(), json.status.code(), "{}", show(&json));
    let value = serde_json::from_slice(&json.stdout).expect("status --json");
    (human, value)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_and_list_show_a_reset_until_the_user_enrolls_again_and_a_held_ticket() {
    let cluster = Cluster::start();
    let fixture = admin_host(&cluster);
    let enrolled = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]);
    assert!(enrolled.status.success(), "{}", show(&enrolled));
    let (mut host, _dir) = host_in(&cluster, "host_a", &["default"]);

    // Enrolled, nothing under way.
    let (human, json) = status(&fixture);
    assert!(human.status.success(), "{}", show(&human));
    assert!(json["marked_for_enrollment_since"].is_null(), "{json}");
    assert!(json["reenroll_ticket_host"].is_null(), "{json}");
    assert!(!stdout(&human).contains("reset by an admin"), "{}", show(&human));

    // host_a accepted a code and holds a ticket for "change your OTP".
    let code = oathtool_at(SECRET, u64::try_from(db_now(&mut host)).unwrap());
    assert_eq!(verify(&mut host, TEST_USER, &code, false).verdict, "accepted");
    assert!(ticket(&mut host, TEST_USER).is_some());
    let (human, json) = status(&fixture);
    assert_eq!(json["reenroll_ticket_host"], "host_a", "{json}");
    assert!(
        json["reenroll_ticket_expires"].as_u64().unwrap() > now(),
        "{json}"
    );
    assert!(
        stdout(&human).contains("is held by host_a until"),
        "{}",
        show(&human)
    );

    // The admin resets: not enrolled, marked since now, the ticket gone with the enrollment.
    let reset = fixture.enroll(&["reset", "--user", TEST_USER]);
    assert!(reset.status.success(), "{}", show(&reset));
    let (human, json) = status(&fixture);
    assert_eq!(human.status.code(), Some(1), "{}", show(&human));
    assert_eq!(json["enrolled"], false, "{json}");
    let since = json["marked_for_enrollment_since"].as_u64().expect("marked");
    assert!(since.abs_diff(now()) <= 60, "{json}");
    assert!(json["reenroll_ticket_host"].is_null(), "{json}");
    let shown = stdout(&human);
    assert!(
        shown.contains("enrolled:        no: reset by an admin at "),
        "{}",
        show(&human)
    );
    assert!(shown.contains("enroll_at_login = true"), "{}", show(&human));
    assert!(
        String::from_utf8_lossy(&human.stderr).contains("was reset and is not enrolled again yet"),
        "{}",
        show(&human)
    );
    let list = fixture.enroll(&["list"]);
    assert!(list.status.success(), "{}", show(&list));
    assert!(
        stdout(&list)
            .lines()
            .any(|l| l.starts_with(TEST_USER) && l.contains("RESET")),
        "{}",
        show(&list)
    );
    let list_json: serde_json::Value =
        serde_json::from_slice(&fixture.enroll(&["list", "--json"]).stdout).expect("list --json");
    assert_eq!(list_json[0]["marked_for_enrollment_since"], since, "{list_json}");

    // They enroll again at a login (the host's call): the mark goes away.
    let code = oathtool_at(NEW_SECRET, u64::try_from(db_now(&mut host)).unwrap());
    assert_eq!(
        host_enroll(&mut host, TEST_USER, NEW_SECRET, &code).unwrap(),
        "enrolled"
    );
    let (human, json) = status(&fixture);
    assert!(human.status.success(), "{}", show(&human));
    assert_eq!(json["enrolled"], true, "{json}");
    assert!(json["marked_for_enrollment_since"].is_null(), "{json}");
    assert!(!stdout(&human).contains("reset by an admin"), "{}", show(&human));
    assert!(
        stdout(&fixture.enroll(&["list"]))
            .lines()
            .all(|l| !l.contains("RESET")),
        "listed as reset after enrolling again"
    );

    // The admin's own enrollment ends a reset too: a later `remove` leaves the user not
    // enrolled, not marked again.
    assert!(fixture.enroll(&["reset", "--user", TEST_USER]).status.success());
    let provisioned = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]);
    assert!(provisioned.status.success(), "{}", show(&provisioned));
    assert!(status(&fixture).1["marked_for_enrollment_since"].is_null());
    assert!(fixture.enroll(&["remove", "--user", TEST_USER]).status.success());
    assert_eq!(lookup(&mut host, TEST_USER, false).0, "not_enrolled");
    assert!(status(&fixture).1["marked_for_enrollment_since"].is_null());
}
