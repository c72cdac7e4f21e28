//! Secrets sealed to a host key, through real libpam: what a sealed record holds, logins
//! with it, a record on a host without the key, unsafe keys, rotation and `reseal`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pam_client::{SUCCESS, SYSTEM_ERR};
use testkit::product::HostKey;
use testkit::product::{
    Conversation, ConversationError, FileStore, Logger, Login, Outcome, Priority, Stores, SystemAccounts,
    UNAVAILABLE_MESSAGE, authenticate,
};
use testkit::{Fixture, SECRET, TEST_USER, enroll_bin, now, oathtool, settle_in_step};
use zeroize::Zeroizing;

/// A fixture whose config seals to a key pair in its own directory.
fn sealed_fixture(extra: &str) -> Fixture {
    let fixture = Fixture::new("", "");
    fixture.write_config(&sealing_config(&fixture, extra));
    fixture
}

fn sealing_config(fixture: &Fixture, extra: &str) -> String {
    format!(
        "seal = true\nhost_key = \"{}\"\nhost_public_key = \"{}\"\n{extra}",
        private_key(fixture).display(),
        public_key(fixture).display()
    )
}

fn private_key(fixture: &Fixture) -> PathBuf {
    fixture.path("host.key")
}

fn public_key(fixture: &Fixture) -> PathBuf {
    fixture.path("host.pub")
}

fn succeed(out: &Output) -> String {
    assert!(
        out.status.success(),
        "totp-enroll failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn record_text(fixture: &Fixture) -> String {
    std::fs::read_to_string(fixture.record_path()).expect("record written")
}

/// The key id a sealed record names (`x25519-sealedbox:KEYID:...`).
fn sealed_to(fixture: &Fixture) -> String {
    let text = record_text(fixture);
    let start = text.find("x25519-sealedbox:").expect("a sealed record") + "x25519-sealedbox:".len();
    text[start..start + 16].to_owned()
}

fn key_id(path: &Path) -> String {
    HostKey::read(path).expect("a key").id().to_string()
}

/// The module's decision and its syslog lines for one login: the same code path as
/// `pam_sm_authenticate`, with a logger that keeps the lines instead of sending them.
fn login_logged(fixture: &Fixture, code: &str) -> (Outcome, Vec<String>, Vec<String>) {
    struct Lines(std::cell::RefCell<Vec<String>>);
    impl Logger for Lines {
        fn log(&self, _: Priority, message: &str) {
            self.0.borrow_mut().push(message.to_owned());
        }
    }
    struct Answer(Vec<u8>, Vec<String>);
    impl Conversation for Answer {
        fn ask_hidden(&mut self, _: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
            Ok(Some(Zeroizing::new(self.0.clone())))
        }
        fn show_error(&mut self, text: &str) {
            self.1.push(text.to_owned());
        }
    }
    let args = [format!("config={}", fixture.config_path().display())];
    let login = Login {
        user: TEST_USER,
        rhost: Some("192.0.2.7"),
        tty: None,
        args: &args,
        now: now(),
    };
    let lines = Lines(std::cell::RefCell::new(Vec::new()));
    let mut conv = Answer(code.as_bytes().to_vec(), Vec::new());
    let outcome = authenticate::authenticate(
        &login,
        Stores {
            file: &FileStore,
            postgres: None,
            accounts: &SystemAccounts,
        },
        &mut conv,
        &lines,
    );
    (outcome, lines.0.into_inner(), conv.1)
}

/// Logs in through libpam expecting `PAM_SYSTEM_ERR`, then returns the syslog line the
/// module writes for the same login; neither may carry the secret.
fn refused_with_line(fixture: &Fixture) -> String {
    let transcript = fixture.login(&oathtool(SECRET, 0));
    assert_eq!(transcript.status, SYSTEM_ERR, "{transcript:?}");
    assert_eq!(transcript.messages(), [UNAVAILABLE_MESSAGE]);
    let (outcome, lines, shown) = login_logged(fixture, &oathtool(SECRET, 0));
    assert_eq!(outcome, Outcome::SystemError);
    assert_eq!(shown, [UNAVAILABLE_MESSAGE]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = lines.into_iter().next().unwrap_or_default();
    assert!(line.contains(&format!("user={TEST_USER}")), "{line}");
    assert!(!line.contains(SECRET) && !line.contains(&SECRET[..8]), "{line}");
    line
}

#[test]
fn a_sealed_record_holds_no_trace_of_the_secret_and_logs_in_through_libpam() {
    let fixture = sealed_fixture("");
    succeed(&fixture.enroll(&["keygen"]));
    fixture.provision(SECRET);

    let text = record_text(&fixture);
    assert!(text.contains("sealed_secret = \"x25519-sealedbox:"), "{text}");
    assert!(!text.contains("\nsecret"), "{text}");
    let raw = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, SECRET).unwrap();
    let hex = raw
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .concat();
    let bytes = std::fs::read(fixture.record_path()).unwrap();
    let lower = text.to_ascii_lowercase();
    for chunk in SECRET.as_bytes().chunks(8) {
        let chunk = std::str::from_utf8(chunk).unwrap();
        assert!(
            !text.to_ascii_uppercase().contains(chunk),
            "base32 {chunk} in {text}"
        );
    }
    for chunk in hex.as_bytes().chunks(8) {
        assert!(
            !lower.contains(std::str::from_utf8(chunk).unwrap()),
            "hex in {text}"
        );
    }
    assert!(
        !bytes.windows(6).any(|w| raw.windows(6).any(|r| r == w)),
        "raw secret bytes in the record"
    );

    settle_in_step(3);
    let transcript = fixture.login(&oathtool(SECRET, 0));
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
}

#[test]
fn a_sealed_record_copied_to_a_host_without_the_private_key_is_refused_with_a_clear_line() {
    let fixture = sealed_fixture("");
    succeed(&fixture.enroll(&["keygen"]));
    fixture.provision(SECRET);
    let original = key_id(&private_key(&fixture));

    // The other host has no private key at all.
    std::fs::rename(private_key(&fixture), fixture.path("elsewhere.key")).unwrap();
    let line = refused_with_line(&fixture);
    assert!(line.contains("host key") && line.contains("is missing"), "{line}");
    assert!(
        line.contains(&private_key(&fixture).display().to_string()),
        "{line}"
    );

    // The other host has a key pair of its own.
    std::fs::remove_file(public_key(&fixture)).unwrap();
    succeed(&fixture.enroll(&["keygen"]));
    let line = refused_with_line(&fixture);
    assert!(
        line.contains(&format!("record is sealed to key {original}")),
        "{line}"
    );
}

#[test]
fn a_world_readable_foreign_owned_symlinked_or_garbage_private_key_fails_closed() {
    let fixture = sealed_fixture("");
    succeed(&fixture.enroll(&["keygen"]));
    fixture.provision(SECRET);
    let key = private_key(&fixture);
    let good = std::fs::read(&key).unwrap();

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let line = refused_with_line(&fixture);
    assert!(line.contains("mode 0644") && line.contains("chmod 600"), "{line}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    nix::unistd::chown(&key, Some(user.uid), None).unwrap();
    let line = refused_with_line(&fixture);
    assert!(line.contains("not root"), "{line}");
    nix::unistd::chown(&key, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();

    std::fs::rename(&key, fixture.path("real.key")).unwrap();
    std::os::unix::fs::symlink(fixture.path("real.key"), &key).unwrap();
    let line = refused_with_line(&fixture);
    assert!(line.contains("symbolic link"), "{line}");
    std::fs::remove_file(&key).unwrap();

    std::fs::write(&key, "pam_totp-host-key-x25519 not-base64\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let line = refused_with_line(&fixture);
    assert!(line.contains("is not a pam_totp key"), "{line}");

    // Put right, the same record works again: the refusals were about the key.
    std::fs::write(&key, good).unwrap();
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}

#[test]
fn a_record_on_a_retired_key_works_while_listed_and_reseal_moves_it_to_the_new_key() {
    let fixture = sealed_fixture("window = 1");
    succeed(&fixture.enroll(&["keygen"]));
    fixture.provision(SECRET);
    let old = key_id(&private_key(&fixture));

    let refused = fixture.enroll(&["keygen"]);
    assert_eq!(refused.status.code(), Some(1), "keygen over a key needs --force");
    assert_eq!(key_id(&private_key(&fixture)), old);

    let out = succeed(&fixture.enroll(&["keygen", "--force"]));
    let new = key_id(&private_key(&fixture));
    assert_ne!(new, old);
    let retired = std::fs::read_dir(fixture.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("host.key.retired-"))
        .expect("the old key kept under a retired name");
    assert!(
        out.contains(&format!("retired_keys = [\"{}\"]", retired.display())),
        "{out}"
    );
    assert_eq!(key_id(&retired), old);

    // Not listed: refused, and the line says which key the record needs.
    let line = refused_with_line(&fixture);
    assert!(line.contains(&format!("sealed to key {old}")), "{line}");

    let listed = format!("window = 1\nretired_keys = [\"{}\"]", retired.display());
    fixture.write_config(&sealing_config(&fixture, &listed));
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, -1)).status, SUCCESS);

    let out = succeed(&fixture.enroll(&["reseal"]));
    assert!(out.contains(&format!("1 resealed to key {new}")), "{out}");
    assert_eq!(sealed_to(&fixture), new);
    let meta = std::fs::metadata(fixture.record_path()).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_ne!(
        meta.uid(),
        0,
        "resealed with the user's rights, still the user's file"
    );

    // The old key can go: the record opens with the new key alone.
    std::fs::remove_file(&retired).unwrap();
    fixture.write_config(&sealing_config(&fixture, "window = 1"));
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
    let out = succeed(&fixture.enroll(&["reseal"]));
    assert!(
        out.contains("0 resealed") && out.contains("1 already on it"),
        "{out}"
    );
}

#[test]
fn a_world_readable_retired_key_is_refused() {
    let fixture = sealed_fixture("");
    succeed(&fixture.enroll(&["keygen"]));
    fixture.provision(SECRET);
    succeed(&fixture.enroll(&["keygen", "--force"]));
    let retired = std::fs::read_dir(fixture.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("host.key.retired-"))
        .unwrap();
    std::fs::set_permissions(&retired, std::fs::Permissions::from_mode(0o640)).unwrap();
    let listed = format!("retired_keys = [\"{}\"]", retired.display());
    fixture.write_config(&sealing_config(&fixture, &listed));
    let line = refused_with_line(&fixture);
    assert!(line.contains("mode 0640"), "{line}");
    let out = fixture.enroll(&["reseal"]);
    assert_eq!(out.status.code(), Some(1), "reseal fails closed too");
}

#[test]
fn keygen_writes_a_root_only_private_key_and_a_world_readable_public_key() {
    let fixture = sealed_fixture("");
    let out = succeed(&fixture.enroll(&["keygen"]));
    let private = std::fs::symlink_metadata(private_key(&fixture)).unwrap();
    let public = std::fs::symlink_metadata(public_key(&fixture)).unwrap();
    assert!(private.is_file() && public.is_file());
    assert_eq!((private.uid(), private.mode() & 0o777), (0, 0o600));
    assert_eq!((public.uid(), public.mode() & 0o777), (0, 0o644));
    let id = key_id(&private_key(&fixture));
    assert!(out.contains(&id), "{out}");
    let key_text = std::fs::read_to_string(private_key(&fixture)).unwrap();
    let encoded = key_text.lines().last().unwrap().split(' ').nth(1).unwrap();
    assert!(!out.contains(encoded), "keygen never prints the private key");
}

#[test]
fn an_ordinary_user_enrolls_sealed_with_the_public_key_alone() {
    let fixture = sealed_fixture("");
    succeed(&fixture.enroll(&["keygen"]));
    // The user can read the config and the public key, never the private key.
    std::fs::set_permissions(fixture.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    settle_in_step(5);
    // runuser: the user's own uid, gid and groups, none of root's.
    let mut child = Command::new("runuser")
        .args(["-u", TEST_USER, "--"])
        .arg(enroll_bin())
        .arg("--config")
        .arg(fixture.config_path())
        .args(["--secret", SECRET, "--no-qr"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", oathtool(SECRET, 0)).unwrap();
    }
    succeed(&child.wait_with_output().unwrap());
    assert!(record_text(&fixture).contains("sealed_secret"));
    for admin_only in ["keygen", "reseal"] {
        let out = Command::new("runuser")
            .args(["-u", TEST_USER, "--"])
            .arg(enroll_bin())
            .arg("--config")
            .arg(fixture.config_path())
            .arg(admin_only)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{admin_only} by a user");
        assert!(String::from_utf8_lossy(&out.stderr).contains("root only"));
    }
    assert_eq!(
        std::fs::metadata(fixture.record_path()).unwrap().uid(),
        user.uid.as_raw()
    );
    // The next step's code: the confirming one is used up (the record says until when).
    assert_eq!(fixture.login(&oathtool(SECRET, 1)).status, SUCCESS);
}

#[test]
fn seal_without_a_public_key_refuses_enrollment_before_writing() {
    let fixture = sealed_fixture("");
    let out = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("host public key") && err.contains("is missing"),
        "{err}"
    );
    assert!(!fixture.record_path().exists(), "nothing written");
}

#[test]
fn reseal_include_plain_seals_records_written_before_sealing() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    assert!(record_text(&fixture).contains(SECRET));
    fixture.write_config(&sealing_config(&fixture, ""));
    succeed(&fixture.enroll(&["keygen"]));
    settle_in_step(3);
    assert_eq!(
        fixture.login(&oathtool(SECRET, -1)).status,
        SUCCESS,
        "a plain record still works on a sealing host"
    );
    let out = succeed(&fixture.enroll(&["reseal"]));
    assert!(out.contains("1 not sealed"), "{out}");
    assert!(
        record_text(&fixture).contains(SECRET),
        "plain records are left without the flag"
    );
    succeed(&fixture.enroll(&["reseal", "--include-plain"]));
    assert!(!record_text(&fixture).contains(SECRET));
    assert_eq!(sealed_to(&fixture), key_id(&private_key(&fixture)));
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}

#[test]
fn reseal_finds_the_records_of_a_system_store() {
    let fixture = Fixture::new("", "");
    let records = fixture.path("records");
    std::fs::create_dir(&records).unwrap();
    std::fs::set_permissions(&records, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Written whole: the fixture's own secret_path is a home store.
    let config = format!(
        "secret_path = \"{}/totp-${{USER}}.toml\"\nstate_dir = \"{}\"\n{}",
        records.display(),
        fixture.state_dir().display(),
        sealing_config(&fixture, "")
    );
    std::fs::write(fixture.config_path(), config).unwrap();
    std::fs::write(records.join("unrelated"), "not a record").unwrap();
    succeed(&fixture.enroll(&["keygen"]));
    fixture.provision(SECRET);
    let record = records.join(format!("totp-{TEST_USER}.toml"));
    let sealed = std::fs::read_to_string(&record).unwrap();
    assert!(sealed.contains("sealed_secret"), "{sealed}");

    succeed(&fixture.enroll(&["keygen", "--force"]));
    let out = fixture.enroll(&["reseal"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the old key is not listed: reseal fails"
    );
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        sealed,
        "left unchanged"
    );

    let retired = std::fs::read_dir(fixture.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("host.key.retired-"))
        .unwrap();
    let config = std::fs::read_to_string(fixture.config_path()).unwrap();
    let listed = format!("{config}\nretired_keys = [\"{}\"]\n", retired.display());
    std::fs::write(fixture.config_path(), listed).unwrap();
    let out = succeed(&fixture.enroll(&["reseal"]));
    assert!(out.contains("1 resealed"), "{out}");
    let meta = std::fs::metadata(&record).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    std::fs::remove_file(&retired).unwrap();
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}
