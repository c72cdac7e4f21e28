//! What syslog says about recovery codes and admin actions, read from a `/dev/log` of
//! the test's own (a private mount namespace: see `testkit::namespace`).

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::namespace::{Namespace, in_private_namespace};
use testkit::{Fixture, SECRET, TEST_USER};

/// The lines mentioning `needle`, or a failure showing all lines.
fn lines_with(ns: &Namespace, needle: &str) -> Vec<String> {
    let lines = ns.syslog();
    let found: Vec<String> = lines.iter().filter(|l| l.contains(needle)).cloned().collect();
    assert!(
        !found.is_empty(),
        "no syslog line contains {needle:?}; lines: {lines:#?}"
    );
    found
}

/// The recovery codes an enrollment printed (`  1. xxxx-xxxx-xxxx`).
fn recovery_codes(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let (number, code) = line.trim().split_once(". ")?;
            (number.parse::<u32>().is_ok() && code.len() == 14 && code.matches('-').count() == 2)
                .then(|| code.to_owned())
        })
        .collect()
}

fn succeed(fixture: &Fixture, args: &[&str]) -> Vec<u8> {
    let out = fixture.enroll(args);
    assert!(
        out.status.success(),
        "totp-enroll {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn a_used_recovery_code_is_logged_with_the_count_left_and_never_the_code() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        let codes = recovery_codes(&succeed(
            &fixture,
            &["--user", TEST_USER, "--secret", SECRET, "--no-confirm"],
        ));
        assert_eq!(codes.len(), 10);

        assert_eq!(fixture.login(&codes[2]).status, SUCCESS);
        let used = lines_with(ns, "recovery code used");
        assert_eq!(
            used,
            [format!(
                "pam_totp(totp:auth): recovery code used; 9 remaining; user={TEST_USER} rhost=192.0.2.7"
            )]
        );
        assert_eq!(fixture.login(&codes[2]).status, AUTH_ERR);
        let reused = lines_with(ns, "reason=recovery code already used");
        assert!(reused[0].contains("authentication failure"), "{reused:?}");

        for line in ns.syslog() {
            for code in &codes {
                for form in [code.clone(), code.replace('-', "")] {
                    assert!(!line.contains(&form[5..]), "a recovery code in syslog: {line}");
                }
            }
        }
    });
}

#[test]
fn every_admin_action_is_logged_with_who_did_it() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        succeed(
            &fixture,
            &["--user", TEST_USER, "--secret", SECRET, "--no-confirm"],
        );
        succeed(&fixture, &["status", "--user", TEST_USER]);
        succeed(&fixture, &["list"]);
        succeed(&fixture, &["unlock", "--user", TEST_USER]);
        succeed(&fixture, &["recovery-codes", "--user", TEST_USER]);
        succeed(&fixture, &["remove", "--user", TEST_USER]);
        for needle in [
            format!("user={TEST_USER} enrolled by root"),
            format!("user={TEST_USER} status viewed by root"),
            "enrolled users listed by root".to_owned(),
            format!("user={TEST_USER} unlocked by root"),
            format!("user={TEST_USER} new recovery codes issued by root"),
            format!("user={TEST_USER} enrollment removed by root"),
        ] {
            let lines = lines_with(ns, &needle);
            assert!(lines.iter().all(|l| !l.contains(SECRET)), "{lines:?}");
        }
    });
}

#[test]
fn a_normal_users_refused_attempt_to_act_for_another_user_is_logged() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        // The test user can read the config, as on a real host.
        std::fs::set_permissions(fixture.dir.path(), Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(fixture.config_path(), Permissions::from_mode(0o644)).expect("chmod");
        for (args, action) in [
            (&["status", "--user", "root"][..], "status"),
            (
                &["--user", "root", "--secret", SECRET, "--no-qr"][..],
                "enrollment",
            ),
            (&["remove", "--user", "root"][..], "remove"),
        ] {
            let out = Command::new("runuser")
                .args(["-u", TEST_USER, "--"])
                .arg(testkit::enroll_bin())
                .arg("--config")
                .arg(fixture.config_path())
                .args(args)
                .output()
                .expect("runuser");
            assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
            let lines = lines_with(ns, &format!("user=root {action} refused for {TEST_USER} (uid "));
            assert!(
                lines[0].contains("only root can act for another user"),
                "{lines:?}"
            );
        }
        for line in ns.syslog() {
            assert!(!line.contains(SECRET), "a secret in syslog: {line}");
        }
    });
}
