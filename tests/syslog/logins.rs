//! What the admin reads in syslog, captured in a private mount namespace with a
//! `/dev/log` of its own: every refusal is named, a full or read-only disk fails closed
//! with a clear line, and no line, message or error ever holds a secret or a code.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use pam_client::{AUTH_ERR, SUCCESS, SYSTEM_ERR, Transcript};
use testkit::namespace::{Namespace, in_private_namespace};
use testkit::product::Record;
use testkit::product::SecretKey;
use testkit::{Fixture, SECRET, TEST_USER, oathtool, settle_in_step, test_user, wrong_code};

const OTHER_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// Every form a secret could leak in: base32 (either case), hex (either case), raw.
fn secret_forms(base32: &str) -> Vec<String> {
    let key = SecretKey::from_base32(base32).expect("secret");
    let hex = key.as_bytes().iter().fold(String::new(), |mut hex, b| {
        let _ = std::fmt::Write::write_fmt(&mut hex, format_args!("{b:02x}"));
        hex
    });
    let mut forms = vec![
        base32[..16].to_owned(),
        base32[..16].to_ascii_lowercase(),
        hex[..16].to_owned(),
        hex[..16].to_ascii_uppercase(),
    ];
    if let Ok(raw) = std::str::from_utf8(&key.as_bytes()[..10]) {
        forms.push(raw.to_owned());
    }
    forms
}

#[test]
fn no_log_line_message_or_error_holds_a_secret_or_a_code() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("debug = true\nmax_failures = 3", "");
        let mut said: Vec<String> = Vec::new();
        let mut typed: Vec<String> = Vec::new();
        let mut keep = |t: &Transcript| said.extend(t.messages().into_iter().map(str::to_owned));

        fixture.provision(SECRET);
        settle_in_step(8);
        let right = oathtool(SECRET, 0);
        let wrong = wrong_code(SECRET);
        typed.extend([right.clone(), wrong.clone()]);
        let login = fixture.login(&right);
        assert_eq!(login.status, SUCCESS);
        keep(&login);
        keep(&fixture.login(&right)); // replay
        keep(&fixture.login(&format!("{}x", &right[..5]))); // malformed
        for _ in 0..3 {
            keep(&fixture.login(&wrong));
        }
        keep(&fixture.login(&oathtool(SECRET, 1))); // locked out
        typed.push(oathtool(SECRET, 1));

        // The admin's commands: unlock, re-provision, and a refused secret.
        let unlock = fixture.enroll(&["unlock", "--user", TEST_USER]);
        assert!(unlock.status.success());
        let bad_secret = format!("{}1", &OTHER_SECRET[..31]);
        let refused = fixture.enroll(&[
            "--user",
            TEST_USER,
            "--secret",
            &bad_secret,
            "--no-confirm",
            "--force",
        ]);
        assert!(!refused.status.success());
        let reprovision = fixture.enroll(&[
            "--user",
            TEST_USER,
            "--secret",
            OTHER_SECRET,
            "--no-confirm",
            "--force",
        ]);
        assert!(reprovision.status.success());
        let mut errors = String::new();
        for out in [&unlock, &refused, &reprovision] {
            errors.push_str(&String::from_utf8_lossy(&out.stderr));
        }

        // Records whose secret is broken in ways a parser might quote.
        let text = fs::read_to_string(fixture.record_path()).expect("record");
        for broken in [
            text.replace(OTHER_SECRET, &bad_secret),
            text.replace(&format!("\"{OTHER_SECRET}\""), OTHER_SECRET),
            text.replace("digits = 6", &format!("digits = \"{OTHER_SECRET}\"")),
            format!("{text}\nsecret2 = \"{OTHER_SECRET}\"\n"),
        ] {
            fs::write(fixture.record_path(), broken).expect("write");
            keep(&fixture.login(&right));
        }

        let lines = ns.syslog();
        assert!(
            lines.iter().any(|l| l.contains("authentication success")),
            "the capture works: {lines:#?}"
        );
        assert!(lines.iter().any(|l| l.contains("unlocked by")), "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains("record is malformed")),
            "{lines:#?}"
        );
        let mut needles = secret_forms(SECRET);
        needles.extend(secret_forms(OTHER_SECRET));
        needles.push(bad_secret[..16].to_owned());
        needles.extend(typed);
        let everything = [lines.join("\n"), said.join("\n"), errors].join("\n");
        for needle in &needles {
            assert!(
                !everything.contains(needle.as_str()),
                "{needle:?} leaked into:\n{everything}"
            );
        }
    });
}

#[test]
fn a_lockout_is_logged_and_the_user_told_to_wait() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        fixture.provision(SECRET);
        for _ in 0..5 {
            assert_eq!(fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
        }
        let started = ns.lines_with(&["too many failed attempts"]);
        assert!(started[0].contains(&format!("user={TEST_USER}")), "{started:?}");
        assert!(started[0].contains("locked for 30 s"), "{started:?}");
        assert!(started[0].starts_with("pam_totp(totp:auth): "), "{started:?}");

        let refused = fixture.login(&wrong_code(SECRET));
        assert_eq!(
            refused.messages(),
            ["Too many failed attempts; try again in 1 minute."]
        );
        let logged = ns.lines_with(&["reason=locked out"]);
        assert!(logged[0].contains("authentication refused"), "{logged:?}");
    });
}

#[test]
fn each_hostile_record_or_state_is_named_in_syslog() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        fixture.provision(SECRET);
        let good = fs::read(fixture.record_path()).expect("record");
        let record = fixture.record_path();
        let user = test_user();
        let plant = |bytes: &[u8], mode: u32, owner: u32| {
            let _ = fs::remove_file(&record);
            fs::write(&record, bytes).expect("write");
            let group = if owner == user.uid.as_raw() {
                user.gid.as_raw()
            } else {
                owner
            };
            std::os::unix::fs::chown(&record, Some(owner), Some(group)).expect("chown");
            fs::set_permissions(&record, fs::Permissions::from_mode(mode)).expect("chmod");
        };
        let refuse = |what: &str, needle: &str| {
            let transcript = fixture.login("123456");
            assert_eq!(transcript.status, SYSTEM_ERR, "{what}: {transcript:?}");
            let lines = ns.lines_with(&[needle]);
            assert!(
                lines.iter().any(|l| l.contains(&format!("user={TEST_USER}"))),
                "{what}: {lines:?}"
            );
        };
        let uid = user.uid.as_raw();

        let _ = fs::remove_file(&record);
        symlink("/etc/shadow", &record).expect("symlink");
        refuse("symlink", "record is a symbolic link; refused");
        plant(&good, 0o644, uid);
        refuse("mode", "record mode is 0644");
        plant(&good, 0o600, 0);
        // Read with the user's rights, a root-owned 0600 record cannot even be opened.
        refuse("owner", "cannot open the record: Permission denied");
        plant(&good, 0o604, 0);
        refuse("owner", &format!("record is owned by uid 0, expected uid {uid}"));
        plant(&vec![b'#'; 20_000], 0o600, uid);
        refuse("size", "record is larger than 16384 bytes");
        let future = String::from_utf8_lossy(&good).replace("version = 1", "version = 7");
        plant(future.as_bytes(), 0o600, uid);
        refuse("version", "record version 7 is not supported");
        plant(&[0xff, 0x00, 0x13], 0o600, uid);
        refuse("binary", "record is malformed");
        let _ = fs::remove_file(&record);
        nix::unistd::mkfifo(&record, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        std::os::unix::fs::chown(&record, Some(uid), None).expect("chown");
        refuse("FIFO", "record is not a regular file");

        plant(&good, 0o600, uid);
        fs::create_dir_all(fixture.state_dir()).expect("mkdir");
        fs::set_permissions(fixture.state_dir(), fs::Permissions::from_mode(0o777)).expect("chmod");
        refuse(
            "state directory",
            "must be owned by root and not group/world writable",
        );
    });
}

#[test]
fn a_missing_state_directory_fails_closed_and_is_not_created() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        fixture.provision(SECRET);
        fs::remove_dir(fixture.state_dir()).expect("rmdir");
        settle_in_step(5);
        let transcript = fixture.login(&oathtool(SECRET, 0));
        assert_eq!(transcript.status, SYSTEM_ERR, "even a right code: {transcript:?}");
        let lines = ns.lines_with(&["cannot open the state directory (reinstall the package"]);
        assert!(lines[0].contains("No such file or directory"), "{lines:?}");
        assert!(
            !fixture.state_dir().exists(),
            "a login must not create the state directory (its SELinux label is the package's)"
        );
    });
}

/// A root-owned store in a tmpfs of its own, and a config pointing at it.
fn system_store(ns: &Namespace, fixture: &Fixture) -> std::path::PathBuf {
    let store = fixture.path("store");
    ns.mount_tmpfs(&store, "64k", 0o755);
    fixture.point_at_system_store(&store);
    store
}

/// Fills the file system holding `dir` until it refuses another byte.
fn fill(dir: &Path) {
    let mut filler = fs::File::create(dir.join("filler")).expect("filler");
    let block = [0x55u8; 4096];
    while filler.write_all(&block).is_ok() {}
    let _ = filler.sync_all();
}

fn record_secret(path: &Path) -> SecretKey {
    let text = fs::read_to_string(path).expect("the record is still there");
    Record::parse(&text).expect("the record is still whole").secret
}

#[test]
fn a_full_disk_fails_closed_with_a_clear_line_and_keeps_the_record() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        let store = system_store(ns, &fixture);
        fixture.provision(SECRET);
        let record = store.join(TEST_USER);

        // The state directory on a full disk: even the right code is refused.
        ns.mount_tmpfs(&fixture.state_dir(), "64k", 0o700);
        fill(&fixture.state_dir());
        settle_in_step(5);
        let right = oathtool(SECRET, 0);
        let transcript = fixture.login(&right);
        assert_eq!(transcript.status, SYSTEM_ERR, "{transcript:?}");
        let lines = ns.lines_with(&["No space left on device"]);
        assert!(lines[0].contains("cannot write the state file"), "{lines:?}");

        // A new enrollment on a full disk fails and leaves the old record.
        fill(&store);
        let out = fixture.enroll(&[
            "--user",
            TEST_USER,
            "--secret",
            OTHER_SECRET,
            "--no-confirm",
            "--force",
        ]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No space left on device"),
            "{out:?}"
        );
        assert_eq!(
            record_secret(&record),
            SecretKey::from_base32(SECRET).expect("secret")
        );

        // Space again: the code that was refused was not consumed.
        fs::remove_file(fixture.state_dir().join("filler")).expect("rm");
        assert_eq!(fixture.login(&right).status, SUCCESS);
    });
}

#[test]
fn a_read_only_file_system_fails_closed_and_keeps_the_record() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        let store = system_store(ns, &fixture);
        fixture.provision(SECRET);
        let record = store.join(TEST_USER);
        ns.mount_tmpfs(&fixture.state_dir(), "64k", 0o700);
        settle_in_step(5);
        assert_eq!(fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);

        ns.remount_read_only(&fixture.state_dir());
        ns.remount_read_only(&store);
        let transcript = fixture.login(&oathtool(SECRET, 0));
        assert_eq!(transcript.status, SYSTEM_ERR, "{transcript:?}");
        let lines = ns.lines_with(&["Read-only file system"]);
        assert!(lines[0].contains("state file"), "{lines:?}");

        let out = fixture.enroll(&[
            "--user",
            TEST_USER,
            "--secret",
            OTHER_SECRET,
            "--no-confirm",
            "--force",
        ]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(
            record_secret(&record),
            SecretKey::from_base32(SECRET).expect("secret")
        );
    });
}

#[test]
fn a_user_name_cannot_forge_syslog_lines() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "");
        let forged = "mallory\npam_totp(sshd:auth): authentication success; user=root";
        assert_eq!(fixture.login_as(forged, &[b"123456"]).status, AUTH_ERR);
        let lines = ns.lines_with(&["mallory"]);
        assert!(lines[0].contains("user=mallory?pam_totp"), "{lines:?}");
        assert!(
            !ns.syslog()
                .iter()
                .any(|l| l.starts_with("pam_totp(sshd:auth): authentication success")),
            "a forged line: {:?}",
            ns.syslog()
        );
    });
}

#[test]
fn a_ten_kilobyte_user_name_or_host_is_cut_in_the_log_line() {
    in_private_namespace(|ns| {
        let fixture = Fixture::new("", "nullok");
        let user = format!("mallory{}", "x".repeat(10_000));
        let rhost = format!("host{}", "h".repeat(10_000));
        let login = testkit::Login {
            confdir: fixture.dir.path(),
            service: &fixture.service,
            user: &user,
            rhost: Some(&rhost),
        };
        // Refused by the module (AUTH_ERR); libpam's own audit record, which cannot hold
        // such a field, then makes the result SYSTEM_ERR: either way, no way in.
        let refused = |login: &testkit::Login<'_>| {
            let transcript = pam_client::authenticate(login, &[b"123456"]);
            assert!(
                [AUTH_ERR, SYSTEM_ERR].contains(&transcript.status),
                "{transcript:?}"
            );
        };
        refused(&login);
        // An enrolled user too: every line naming a login goes through the same cut.
        fixture.provision(SECRET);
        refused(&testkit::Login {
            user: TEST_USER,
            ..login
        });
        let lines = ns.syslog();
        let failures: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("authentication failure"))
            .collect();
        assert_eq!(failures.len(), 2, "{lines:#?}");
        for line in &failures {
            assert!(line.len() < 300, "{} bytes: {line}", line.len());
            assert!(
                line.contains("rhost=hosthhh") && line.contains("...[cut]"),
                "{line}"
            );
        }
        assert!(failures[0].contains("user=malloryxxx"), "{}", failures[0]);
        assert!(lines.iter().all(|l| l.len() < 1000), "{lines:#?}");
    });
}
