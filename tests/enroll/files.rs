//! Files `totp-enroll` writes with a secret in them (`--qr-png`, `--qr-svg`) are created
//! new and private: a file or symbolic link another user planted under the name is
//! refused and left as it was, never filled with the secret.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::{Fixture, SECRET, TEST_USER, show, test_user};

/// A world-writable directory with the sticky bit, like `/tmp`.
fn shared_dir(fixture: &Fixture) -> PathBuf {
    let dir = fixture.path("shared");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(fixture.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    dir
}

/// `x.png` or `x.svg`, as the flag asks.
fn image_name(flag: &str) -> String {
    format!("x.{}", flag.trim_start_matches("--qr-"))
}

/// Runs `sh -c SCRIPT` as the test user (the other user of the attack).
fn as_test_user(script: &str) {
    let out = Command::new("runuser")
        .args(["-u", TEST_USER, "--", "sh", "-c", script])
        .output()
        .expect("runuser");
    assert!(out.status.success(), "{script}: {}", show(&out));
}

/// Root provisions the test user, asking for the QR code in `flag`'s file `path`.
fn provision_with_image(fixture: &Fixture, flag: &str, path: &Path) -> Output {
    fixture.enroll(&[
        "--user",
        TEST_USER,
        "--secret",
        SECRET,
        "--no-confirm",
        flag,
        path.to_str().expect("path"),
    ])
}

fn assert_refused_untouched(fixture: &Fixture, out: &Output, path: &Path) {
    assert_eq!(out.status.code(), Some(1), "{}", show(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("exists; refusing to write the secret over a file that may not be yours"),
        "{}",
        show(out)
    );
    assert!(!fixture.record_path().exists(), "nothing enrolled: {}", show(out));
    let meta = std::fs::symlink_metadata(path).expect("planted file");
    assert_eq!(meta.uid(), test_user().uid.as_raw(), "still the other user's");
}

#[test]
fn a_qr_image_name_another_user_created_is_refused_and_gets_no_secret() {
    for flag in ["--qr-png", "--qr-svg"] {
        let fixture = Fixture::new("", "");
        let dir = shared_dir(&fixture);
        let planted = dir.join(image_name(flag));
        // The other user's file, readable by them (and everyone) and kept open in a real attack.
        as_test_user(&format!("umask 022; printf theirs > '{}'", planted.display()));

        let out = provision_with_image(&fixture, flag, &planted);
        assert_refused_untouched(&fixture, &out, &planted);
        assert_eq!(std::fs::read(&planted).expect("read"), b"theirs", "{flag}");
        let mode = std::fs::metadata(&planted).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "{flag}: mode unchanged");
    }
}

#[test]
fn a_qr_image_name_planted_as_a_symlink_is_refused_and_nothing_is_written_through_it() {
    for flag in ["--qr-png", "--qr-svg"] {
        let fixture = Fixture::new("", "");
        let dir = shared_dir(&fixture);
        let planted = dir.join(image_name(flag));
        let target = dir.join("target");
        as_test_user(&format!("ln -s '{}' '{}'", target.display(), planted.display()));

        let out = provision_with_image(&fixture, flag, &planted);
        assert_refused_untouched(&fixture, &out, &planted);
        assert!(
            std::fs::symlink_metadata(&planted)
                .expect("link")
                .file_type()
                .is_symlink()
        );
        assert!(!target.exists(), "{flag}: nothing written through the link");
    }
}

#[test]
fn a_fresh_qr_image_name_is_created_root_owned_mode_0600_and_scans() {
    for flag in ["--qr-png", "--qr-svg"] {
        let fixture = Fixture::new("", "");
        let dir = shared_dir(&fixture);
        let image = dir.join(image_name(flag));
        let out = provision_with_image(&fixture, flag, &image);
        assert!(out.status.success(), "{flag}: {}", show(&out));
        let meta = std::fs::symlink_metadata(&image).expect("image");
        assert!(meta.file_type().is_file());
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600), "{flag}");
        let read = Command::new("zbarimg")
            .args(["--raw", "-q"])
            .arg(&image)
            .output()
            .expect("zbarimg");
        assert!(
            String::from_utf8_lossy(&read.stdout).contains(&format!("secret={SECRET}")),
            "{flag}: {}",
            show(&read)
        );
    }
}
