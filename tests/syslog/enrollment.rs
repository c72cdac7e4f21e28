//! What syslog says about recovery codes and admin actions, read from a `/dev/log` of
//! the test's own (a private mount namespace: see `testkit::namespace`).

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::namespace::in_private_namespace;
use testkit::{Fixture, SECRET, TEST_USER, recovery_codes};

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
        let used = ns.lines_with(&["recovery code used"]);
        assert_eq!(
            used,
            [format!(
                "pam_totp(totp:auth): recovery code used; 9 remaining; user={TEST_USER} rhost=192.0.2.7"
            )]
        );
        assert_eq!(fixture.login(&codes[2]).status, AUTH_ERR);
        let reused = ns.lines_with(&["reason=recovery code already used"]);
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
            let lines = ns.lines_with(&[&needle]);
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
            let lines = ns.lines_with(&[&format!("user=root {action} refused for {TEST_USER} (uid ")]);
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
