//! "Not enrolled" is proven, never assumed: `nullok`, the grace period before
//! `enforce_after` and enrollment at login let a user through only when the record's
//! directory is there, trusted, and holds no record. A home that is not mounted (an
//! autofs or NFS home, an encrypted home not opened yet: here an empty file system over
//! the homes) or a missing store directory refuses the login with a syslog line naming
//! the cause and the way out.

use std::path::{Path, PathBuf};

use pam_client::{AUTH_ERR, SUCCESS, SYSTEM_ERR};
use testkit::namespace::in_private_namespace;
use testkit::product::UNAVAILABLE_MESSAGE;
use testkit::{Fixture, SECRET, TEST_USER, test_user, wrong_code};

const FUTURE: &str = "2099-01-15";

#[test]
fn an_enrolled_user_whose_home_is_not_mounted_is_refused_with_nullok_or_a_grace_period() {
    in_private_namespace(|ns| {
        let home = test_user().dir;
        let homes = home.parent().expect("homes directory").to_owned();
        for (config, args) in [
            (String::new(), "nullok"),
            (format!("enforce_after = \"{FUTURE}\""), ""),
            (format!("enforce_after = \"{FUTURE}\""), "nullok"),
        ] {
            let fixture = Fixture::new(&config, args);
            fixture.with_permit();
            // Not enrolled, home there and holding no record: let through, no code asked.
            let unenrolled = fixture.login("");
            assert_eq!(unenrolled.status, SUCCESS, "{config} {args}: {unenrolled:?}");
            assert!(unenrolled.prompts().is_empty(), "{unenrolled:?}");

            fixture.provision(SECRET);
            assert_eq!(fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
            // The home goes away (not mounted): the enrolled user must not get in.
            ns.mount_tmpfs(&homes, "64k", 0o755);
            let transcript = fixture.login(&wrong_code(SECRET));
            ns.unmount(&homes);
            assert_eq!(transcript.status, AUTH_ERR, "{config} {args}: {transcript:?}");
            assert_eq!(
                transcript.prompts(),
                ["Verification code: "],
                "prompted as anyone: {transcript:?}"
            );
            assert!(transcript.messages().is_empty(), "{transcript:?}");
        }
        let missing = format!("home directory {} is missing", home.display());
        let lines = ns.lines_with(&[&missing, "nullok", TEST_USER]);
        assert!(lines[0].contains("mount the home"), "the way out: {lines:#?}");
        ns.lines_with(&["authentication failure", "reason=record directory missing"]);
    });
}

/// A system store `records/${USER}` in `fixture`'s directory, with the test user
/// provisioned in it.
fn system_store(fixture: &Fixture) -> PathBuf {
    let records = fixture.make_system_store();
    fixture.provision(SECRET);
    assert!(records.join(TEST_USER).exists());
    records
}

fn set_args(fixture: &Fixture, args: &str) {
    fixture.set_args(args);
    fixture.with_permit();
}

#[test]
fn a_missing_system_store_directory_refuses_every_way_in_for_the_unenrolled() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        let records = system_store(&fixture);
        let away: &Path = &fixture.path("records.away");
        // Not mounted, or removed: the directory is not there.
        std::fs::rename(&records, away).unwrap();
        for args in [
            "nullok",
            &format!("enforce_after={FUTURE}"),
            "enroll_at_login",
            "enroll_at_login nullok",
        ] {
            set_args(&fixture, args);
            for user in [TEST_USER, "no-such-user-pamtotp"] {
                let transcript = fixture.login_as(user, &[wrong_code(SECRET).as_bytes()]);
                assert_eq!(transcript.status, SYSTEM_ERR, "{args} {user}: {transcript:?}");
                assert!(transcript.prompts().is_empty(), "{transcript:?}");
                assert_eq!(transcript.messages(), [UNAVAILABLE_MESSAGE], "{transcript:?}");
            }
        }
        let missing = format!("record directory {} is missing", records.display());
        let lines = ns.lines_with(&[&missing, "nullok", "create it"]);
        assert!(lines.iter().any(|l| l.contains(TEST_USER)), "{lines:#?}");

        // Back in place: the enrolled user needs the code again, the others pass nullok.
        std::fs::rename(away, &records).unwrap();
        set_args(&fixture, "nullok");
        assert_eq!(fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
        assert_eq!(fixture.login_as("root", &[b""]).status, SUCCESS);
    });
}
