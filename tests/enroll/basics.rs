//! `totp-enroll` as people use it: the built binary, in a pty (`expect`) where a person
//! would type, QR codes read back by `zbarimg`, recovery codes through real libpam, and
//! a normal user kept to their own record.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::pty::Winsize;

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::{
    Fixture, SECRET, TEST_USER, enroll_bin, oathtool, recovery_codes, settle_in_step, show, wrong_code,
};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `URI: ...` line an enrollment printed.
fn printed_uri(stdout: &[u8]) -> String {
    text(stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("URI: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("no URI printed:\n{}", text(stdout)))
}

fn secret_of(uri: &str) -> String {
    let start = uri.find("secret=").expect("secret in URI") + "secret=".len();
    uri[start..].split('&').next().expect("secret").to_owned()
}

/// Provisions the test user and returns the recovery codes it printed.
fn provision_with_codes(fixture: &Fixture, secret: &str) -> Vec<String> {
    let out = fixture.enroll(&["--user", TEST_USER, "--secret", secret, "--no-confirm"]);
    assert!(out.status.success(), "{}", show(&out));
    let codes = recovery_codes(&out.stdout);
    assert_eq!(codes.len(), 10, "{}", show(&out));
    codes
}

fn status_json(fixture: &Fixture) -> serde_json::Value {
    let out = fixture.enroll(&["status", "--user", TEST_USER, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)))
}

/// `zbarimg`'s reading of an image file.
fn zbarimg(path: &Path) -> String {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(path)
        .output()
        .expect("zbarimg is not installed (apt-get install zbar-tools)");
    assert!(out.status.success(), "zbarimg {}: {}", path.display(), show(&out));
    text(&out.stdout).trim_end_matches('\n').to_owned()
}

/// Lets the test user reach the fixture's config (the state directory stays root's).
fn open_to_test_user(fixture: &Fixture) {
    std::fs::set_permissions(fixture.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(fixture.config_path(), std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

/// Runs `totp-enroll --config <fixture's> ARGS` as the test user.
fn enroll_as_test_user(fixture: &Fixture, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", TEST_USER, "--"])
        .arg(enroll_bin())
        .arg("--config")
        .arg(fixture.config_path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runuser")
}

/// A command on a pseudo-terminal, as a person at a terminal runs it: the test reads
/// what appears on the screen and types answers.
struct Pty {
    master: File,
    screen: Arc<Mutex<Vec<u8>>>,
    seen: usize,
    child: Child,
    reader: Option<JoinHandle<()>>,
}

impl Pty {
    fn spawn(mut command: Command, columns: u16) -> Pty {
        let size = Winsize {
            ws_row: 60,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(&size, None).expect("openpty");
        let slave = File::from(pty.slave);
        command
            .stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave)
            .env_remove("COLUMNS");
        let child = command.spawn().expect("spawn on the pty");
        drop(command); // closes our copies of the terminal side
        let master = File::from(pty.master);
        let mut reading = master.try_clone().expect("dup");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&screen);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every terminal-side descriptor is closed: the command ended.
            while let Ok(n @ 1..) = reading.read(&mut buf) {
                sink.lock().expect("lock").extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            screen,
            seen: 0,
            child,
            reader: Some(reader),
        }
    }

    /// Runs `totp-enroll --config <fixture's> ARGS`, as root or as `as_user`.
    fn enroll(fixture: &Fixture, as_user: Option<&str>, args: &[&str], columns: u16) -> Pty {
        let mut command = match as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(enroll_bin());
                c
            }
            None => Command::new(enroll_bin()),
        };
        command.arg("--config").arg(fixture.config_path()).args(args);
        Pty::spawn(command, columns)
    }

    fn screen(&self) -> String {
        text(&self.screen.lock().expect("lock"))
    }

    /// Waits (30 s at most) for `needle` to appear after what was waited for before;
    /// returns the screen text up to it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let finished = self.reader.as_ref().is_none_or(JoinHandle::is_finished);
            let screen = self.screen();
            if let Some(at) = screen.get(self.seen..).and_then(|rest| rest.find(needle)) {
                let end = self.seen + at + needle.len();
                let upto = screen[self.seen..end].to_owned();
                self.seen = end;
                return upto;
            }
            assert!(
                !finished && Instant::now() < deadline,
                "{needle:?} never appeared; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the first of `needles` to appear; returns which.
    fn wait_for_any(&mut self, needles: &[&str]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let finished = self.reader.as_ref().is_none_or(JoinHandle::is_finished);
            let screen = self.screen();
            let rest = screen.get(self.seen..).unwrap_or("");
            let first = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| rest.find(n).map(|at| (at, i, n.len())))
                .min();
            if let Some((at, which, len)) = first {
                self.seen += at + len;
                return which;
            }
            assert!(
                !finished && Instant::now() < deadline,
                "none of {needles:?} appeared; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types `line` and Enter.
    fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\r").as_bytes())
            .expect("type");
    }

    /// Ctrl-D: end of input.
    fn type_eof(&mut self) {
        self.master.write_all(b"\x04").expect("type");
    }

    /// Waits for the command to end: its exit code and everything it showed.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("wait");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("reader");
        }
        (status.code(), self.screen().replace('\r', ""))
    }
}

/// Runs the command with `input` on standard input (not a terminal).
fn enroll_with_input(fixture: &Fixture, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(enroll_bin())
        .arg("--config")
        .arg(fixture.config_path())
        .args(args)
        .env_remove("COLUMNS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run totp-enroll");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

// --- recovery codes through real libpam -------------------------------------------

#[test]
fn a_recovery_code_logs_in_once_and_only_once() {
    let fixture = Fixture::new("", "");
    let codes = provision_with_codes(&fixture, SECRET);
    assert_eq!(status_json(&fixture)["recovery_codes_left"], 10);

    let first = fixture.login(&codes[3]);
    assert_eq!(first.status, SUCCESS, "{first:?}");
    let again = fixture.login(&codes[3]);
    assert_eq!(again.status, AUTH_ERR, "a burnt recovery code must be refused");
    assert_eq!(status_json(&fixture)["recovery_codes_left"], 9);

    // Typed loosely (upper case, blanks for dashes): another code works, once.
    let loose = codes[7].to_uppercase().replace('-', " ");
    assert_eq!(fixture.login(&loose).status, SUCCESS);
    assert_eq!(fixture.login(&codes[7]).status, AUTH_ERR);
    let status = status_json(&fixture);
    assert_eq!(status["recovery_codes_left"], 8);
    assert_eq!(
        status["failures"], 1,
        "the refused reuse after the last success is a failure"
    );
}

#[test]
fn a_wrong_recovery_code_is_a_failure_and_a_right_totp_code_still_works() {
    let fixture = Fixture::new("", "");
    let codes = provision_with_codes(&fixture, SECRET);
    // Right shape and index, wrong random part.
    let mut wrong = codes[0].clone().into_bytes();
    wrong[13] = if wrong[13] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).expect("ascii");
    assert_eq!(fixture.login(&wrong).status, AUTH_ERR);
    assert_eq!(status_json(&fixture)["failures"], 1);
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
    let status = status_json(&fixture);
    assert_eq!(status["failures"], 0);
    assert_eq!(status["recovery_codes_left"], 10);
    assert!(status["last_login"].as_u64().is_some(), "{status}");
}

#[test]
fn new_recovery_codes_cancel_the_old_set() {
    let fixture = Fixture::new("", "");
    let old = provision_with_codes(&fixture, SECRET);
    assert_eq!(fixture.login(&old[0]).status, SUCCESS);

    let out = fixture.enroll(&["recovery-codes", "--user", TEST_USER]);
    assert!(out.status.success(), "{}", show(&out));
    let new = recovery_codes(&out.stdout);
    assert_eq!(new.len(), 10);
    assert_eq!(
        status_json(&fixture)["recovery_codes_left"],
        10,
        "a new set starts unused"
    );
    assert_eq!(fixture.login(&old[1]).status, AUTH_ERR, "old codes die");
    assert_eq!(
        fixture.login(&new[0]).status,
        SUCCESS,
        "index 0 of the new set is fresh"
    );
    assert_eq!(status_json(&fixture)["recovery_codes_left"], 9);
}

#[test]
fn the_user_proves_a_current_code_before_getting_new_recovery_codes() {
    let fixture = Fixture::new("", "");
    let old = provision_with_codes(&fixture, SECRET);
    open_to_test_user(&fixture);
    let record = std::fs::read(fixture.record_path()).expect("record");

    settle_in_step(5);
    let mut pty = Pty::enroll(&fixture, Some(TEST_USER), &["recovery-codes"], 120);
    pty.wait_for("enter a current code from your app: ");
    pty.type_line(&wrong_code(SECRET));
    pty.wait_for("does not match");
    pty.wait_for("enter a current code from your app: ");
    pty.type_line(&oathtool(SECRET, 0));
    let (code, screen) = pty.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("10 new recovery codes"), "{screen}");
    let new = recovery_codes(screen.as_bytes());
    assert_eq!(new.len(), 10, "{screen}");
    assert_ne!(std::fs::read(fixture.record_path()).expect("record"), record);
    assert_eq!(fixture.login(&old[2]).status, AUTH_ERR);
    assert_eq!(fixture.login(&new[2]).status, SUCCESS);
}

// --- the code typed to confirm or prove is used up ----------------------------------

/// Enrolls the test user in a terminal, as `as_user` (or root), confirming with the
/// current code from `oathtool`; returns the new secret and the code typed.
fn enroll_and_confirm(fixture: &Fixture, as_user: Option<&str>) -> (String, String) {
    let args: &[&str] = if as_user.is_some() {
        &["--no-qr"]
    } else {
        &["--user", TEST_USER, "--no-qr"]
    };
    settle_in_step(10);
    let mut pty = Pty::enroll(fixture, as_user, args, 120);
    let shown = pty.wait_for("Enter the code your app shows now: ");
    let secret = secret_of(&printed_uri(shown.replace('\r', "").as_bytes()));
    let confirming = oathtool(&secret, 0);
    pty.type_line(&confirming);
    let (code, screen) = pty.finish();
    assert_eq!(code, Some(0), "{screen}");
    (secret, confirming)
}

#[test]
fn the_code_that_confirmed_a_users_own_enrollment_is_refused_at_login() {
    let fixture = Fixture::new("", "");
    open_to_test_user(&fixture);
    let (secret, confirming) = enroll_and_confirm(&fixture, Some(TEST_USER));
    // The user cannot write the root-only state; the record carries the step.
    let replay = fixture.login(&confirming);
    assert_eq!(
        replay.status, AUTH_ERR,
        "the confirming code is a replay: {replay:?}"
    );
    assert_eq!(fixture.state().failures, 1, "counted like any replay");
    assert_eq!(
        fixture.login(&oathtool(&secret, 1)).status,
        SUCCESS,
        "the next step's code"
    );
}

#[test]
fn the_code_that_confirmed_an_enrollment_by_root_is_refused_at_login() {
    let fixture = Fixture::new("", "");
    let (secret, confirming) = enroll_and_confirm(&fixture, None);
    assert_eq!(
        fixture.state().used_until,
        (testkit::now() / 30 + 1) * 30,
        "root burnt the step in the login state"
    );
    let replay = fixture.login(&confirming);
    assert_eq!(
        replay.status, AUTH_ERR,
        "the confirming code is a replay: {replay:?}"
    );
    assert_eq!(
        fixture.login(&oathtool(&secret, 1)).status,
        SUCCESS,
        "the next step's code"
    );
}

#[test]
fn the_code_that_proved_a_user_for_new_recovery_codes_is_refused_at_login() {
    let fixture = Fixture::new("", "");
    provision_with_codes(&fixture, SECRET);
    open_to_test_user(&fixture);
    settle_in_step(10);
    let proof = oathtool(SECRET, 0);
    let mut pty = Pty::enroll(&fixture, Some(TEST_USER), &["recovery-codes"], 120);
    pty.wait_for("enter a current code from your app: ");
    pty.type_line(&proof);
    let (code, screen) = pty.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(fixture.login(&proof).status, AUTH_ERR, "the proof is a replay");
    assert_eq!(
        fixture.login(&oathtool(SECRET, 1)).status,
        SUCCESS,
        "the next step's code"
    );
}

// --- status, list, remove ----------------------------------------------------------

#[test]
fn status_shows_the_enrollment_but_never_the_secret() {
    let fixture = Fixture::new("", "");
    let out = fixture.enroll(&["status", "--user", TEST_USER]);
    assert_eq!(out.status.code(), Some(1), "not enrolled: {}", show(&out));
    assert!(
        text(&out.stdout).contains("enrolled:        no"),
        "{}",
        show(&out)
    );

    provision_with_codes(&fixture, SECRET);
    settle_in_step(3);
    assert_eq!(fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
    let out = fixture.enroll(&["status", "--user", TEST_USER]);
    assert!(out.status.success(), "{}", show(&out));
    let human = text(&out.stdout);
    for expected in [
        "enrolled:        yes, since 20",
        "SHA1, 6 digits, 30 s",
        "10 left of 10",
        "failures:        1",
    ] {
        assert!(human.contains(expected), "{expected:?} missing:\n{human}");
    }
    let json = status_json(&fixture);
    assert_eq!(json["enrolled"], true);
    assert_eq!(json["digits"], 6);
    assert_eq!(json["failures"], 1);
    assert_eq!(json["locked"], false);
    for out in [out, fixture.enroll(&["status", "--user", TEST_USER, "--json"])] {
        assert!(!text(&out.stdout).contains(SECRET) && !text(&out.stderr).contains(SECRET));
    }
}

#[test]
fn status_shows_a_lock_out_and_unlock_clears_it() {
    let fixture = Fixture::new("max_failures = 2\nlockout_seconds = 600", "");
    provision_with_codes(&fixture, SECRET);
    settle_in_step(3);
    for _ in 0..2 {
        assert_eq!(fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
    }
    let json = status_json(&fixture);
    assert_eq!(
        (json["locked"].clone(), json["failures"].clone()),
        (true.into(), 2.into())
    );
    assert!(json["locked_until"].as_u64().is_some());
    let out = fixture.enroll(&["unlock", "--user", TEST_USER]);
    assert!(out.status.success(), "{}", show(&out));
    let json = status_json(&fixture);
    assert_eq!(
        (json["locked"].clone(), json["failures"].clone()),
        (false.into(), 0.into())
    );
}

#[test]
fn list_shows_every_enrolled_user() {
    let fixture = Fixture::new("", "");
    let out = fixture.enroll(&["list", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let before: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(!before.to_string().contains(TEST_USER), "{before}");

    provision_with_codes(&fixture, SECRET);
    let out = fixture.enroll(&["list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let users: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["user"].as_str())
        .collect();
    assert_eq!(users, [TEST_USER], "{list}");
    assert_eq!(list[0]["recovery_codes_left"], 10);
    let human = fixture.enroll(&["list"]);
    assert!(text(&human.stdout).contains(TEST_USER), "{}", show(&human));
    assert!(text(&human.stdout).contains("SHA1/6/30s"), "{}", show(&human));
}

#[test]
fn remove_unenrolls_and_reset_is_the_same() {
    for verb in ["remove", "reset"] {
        let fixture = Fixture::new("", "");
        let codes = provision_with_codes(&fixture, SECRET);
        let out = fixture.enroll(&[verb, "--user", TEST_USER]);
        assert!(out.status.success(), "{verb}: {}", show(&out));
        assert!(!fixture.record_path().exists());
        assert_eq!(fixture.login(&codes[0]).status, AUTH_ERR);
        let again = fixture.enroll(&[verb, "--user", TEST_USER]);
        assert_eq!(
            again.status.code(),
            Some(1),
            "nothing left to remove: {}",
            show(&again)
        );
        assert_eq!(status_json(&fixture)["enrolled"], false);
    }
}

// --- a normal user and other users ---------------------------------------------------

#[test]
fn a_normal_user_cannot_act_on_another_user() {
    let fixture = Fixture::new("", "");
    provision_with_codes(&fixture, SECRET);
    open_to_test_user(&fixture);
    let before = std::fs::read(fixture.record_path()).expect("record");

    for args in [
        &["status", "--user", "root"][..],
        &["status", "--user", "root", "--json"],
        &["--user", "root", "--force", "--no-qr"],
        &["--user", "root", "--secret", SECRET, "--no-confirm", "--force"],
        &["recovery-codes", "--user", "root"],
        &["unlock", "--user", "root"],
        &["remove", "--user", "root"],
        &["reset", "--user", "root"],
    ] {
        let out = enroll_as_test_user(&fixture, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        assert!(
            text(&out.stderr).contains("only root can act for another user"),
            "{args:?}: {}",
            show(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", show(&out));
    }
    // Root's powers on one's own name are refused too.
    for args in [
        &["list"][..],
        &["unlock"],
        &["remove"],
        &["--secret", SECRET, "--no-confirm", "--force"],
    ] {
        let out = enroll_as_test_user(&fixture, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
    }
    assert_eq!(std::fs::read(fixture.record_path()).expect("record"), before);
}

#[test]
fn a_user_sees_their_own_status_without_the_root_only_login_state() {
    let fixture = Fixture::new("", "");
    provision_with_codes(&fixture, SECRET);
    open_to_test_user(&fixture);
    let out = enroll_as_test_user(&fixture, &["status"]);
    assert!(out.status.success(), "{}", show(&out));
    let human = text(&out.stdout);
    assert!(human.contains("enrolled:        yes"), "{human}");
    assert!(
        human.contains("10 issued") && human.contains("root-only"),
        "{human}"
    );
    let out = enroll_as_test_user(&fixture, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["login_state"], false);
    assert!(
        json["failures"].is_null() && json["recovery_codes_left"].is_null(),
        "{json}"
    );
}

// --- re-enrollment ---------------------------------------------------------------------

/// The test user re-enrolls with `--force`: proves with `proof` (typed up to three
/// times while asked), then confirms with `confirm(new secret)` up to three times.
/// Returns the exit code and the screen.
fn re_enroll(fixture: &Fixture, proof: &str, confirm: &dyn Fn(&str) -> String) -> (Option<i32>, String) {
    let mut pty = Pty::enroll(fixture, Some(TEST_USER), &["--force", "--no-qr"], 120);
    let mut proven = false;
    for _ in 0..3 {
        pty.wait_for_any(&["(or a recovery code): ", "enter a recovery code: "]);
        pty.type_line(proof);
        match pty.wait_for_any(&["URI: ", "try again", "nothing was changed"]) {
            0 => {
                proven = true;
                break;
            }
            1 => {}
            _ => break,
        }
    }
    if proven {
        let shown = pty.wait_for("Enter the code your app shows now: ");
        let secret = secret_of(&printed_uri(format!("URI: {shown}").replace('\r', "").as_bytes()));
        pty.type_line(&confirm(&secret));
        for _ in 0..2 {
            if pty.wait_for_any(&["re-enrolled", "does not match", "nothing was changed"]) != 1 {
                break;
            }
            pty.wait_for("Enter the code your app shows now: ");
            pty.type_line(&confirm(&secret));
        }
    }
    pty.finish()
}

#[test]
fn a_user_re_enrolls_a_new_phone_after_proving_the_old_one() {
    let fixture = Fixture::new("", "");
    provision_with_codes(&fixture, SECRET);
    open_to_test_user(&fixture);
    settle_in_step(8);
    let (code, screen) = re_enroll(&fixture, &oathtool(SECRET, 0), &|secret| oathtool(secret, 0));
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("re-enrolled"), "{screen}");
    let codes = recovery_codes(screen.as_bytes());
    assert_eq!(codes.len(), 10, "{screen}");
    let new_secret = secret_of(&printed_uri(screen.as_bytes()));
    assert_ne!(new_secret, SECRET);

    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, AUTH_ERR, "old phone");
    // The next step's code: the one that confirmed the enrollment is used up.
    assert_eq!(
        fixture.login(&oathtool(&new_secret, 1)).status,
        SUCCESS,
        "new phone"
    );
    assert_eq!(fixture.login(&codes[4]).status, SUCCESS, "new recovery codes");
}

#[test]
fn a_recovery_code_also_proves_the_user_for_a_new_phone() {
    let fixture = Fixture::new("", "");
    let old_codes = provision_with_codes(&fixture, SECRET);
    open_to_test_user(&fixture);
    let (code, screen) = re_enroll(&fixture, &old_codes[5], &|secret| oathtool(secret, 0));
    assert_eq!(code, Some(0), "{screen}");
    assert_eq!(fixture.login(&old_codes[6]).status, AUTH_ERR, "the old set died");
}

#[test]
fn the_old_secret_works_until_the_new_one_is_confirmed() {
    let fixture = Fixture::new("", "");
    provision_with_codes(&fixture, SECRET);
    open_to_test_user(&fixture);
    let before = std::fs::read(fixture.record_path()).expect("record");

    // A wrong proof, three times: refused before any new secret is made.
    let (code, screen) = re_enroll(&fixture, &wrong_code(SECRET), &|_| "000000".to_owned());
    assert_eq!(code, Some(1), "{screen}");
    assert!(screen.contains("nothing was changed"), "{screen}");
    assert!(!screen.contains("URI: "), "{screen}");

    // The right proof, but the new secret is never confirmed.
    settle_in_step(8);
    let (code, screen) = re_enroll(&fixture, &oathtool(SECRET, 0), &|_| "000000".to_owned());
    assert_eq!(code, Some(1), "{screen}");
    assert!(
        screen.contains("URI: ") && screen.contains("nothing was changed"),
        "{screen}"
    );
    assert_eq!(std::fs::read(fixture.record_path()).expect("record"), before);
    settle_in_step(3);
    assert_eq!(
        fixture.login(&oathtool(SECRET, 0)).status,
        SUCCESS,
        "old secret still works"
    );
}

#[test]
fn an_existing_enrollment_is_kept_without_force() {
    let fixture = Fixture::new("", "");
    provision_with_codes(&fixture, SECRET);
    let out = fixture.enroll(&["--user", TEST_USER, "--no-qr"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stderr).contains("--force"), "{}", show(&out));
}

// --- the QR code ----------------------------------------------------------------------

/// The half-block drawing in `output` (the lines in black on white) as a PGM image, so
/// that `zbarimg` can read what a phone would see on the terminal.
fn terminal_qr_as_pgm(output: &str, path: &Path) -> bool {
    const START: &str = "\x1b[30;107m";
    let lines: Vec<&str> = output
        .lines()
        .filter_map(|line| line.split(START).nth(1)?.split("\x1b[0m").next())
        .collect();
    testkit::half_blocks_as_pgm(&lines, path)
}

#[test]
fn every_qr_code_reads_back_as_the_printed_uri() {
    for issuer in ["Educloud", "UiO Educloud", "Bjørn's lab @ UiO", "研究所"] {
        let fixture = Fixture::new(&format!("issuer = \"{issuer}\""), "");
        let png = fixture.path("qr.png");
        let svg = fixture.path("qr.svg");
        settle_in_step(3);
        let out = enroll_with_input(
            &fixture,
            &[
                "--user",
                TEST_USER,
                "--secret",
                SECRET,
                "--qr-png",
                png.to_str().expect("path"),
                "--qr-svg",
                svg.to_str().expect("path"),
            ],
            &format!("{}\n", oathtool(SECRET, 0)),
        );
        assert!(out.status.success(), "{issuer}: {}", show(&out));
        let uri = printed_uri(&out.stdout);
        assert!(uri.is_ascii() && !uri.contains(' '), "{uri}");
        // Every app's defaults are left out: a smaller QR code.
        assert!(
            !uri.contains("algorithm=") && !uri.contains("digits=") && !uri.contains("period="),
            "{uri}"
        );
        assert_eq!(zbarimg(&png), uri, "{issuer}: PNG");
        assert_eq!(zbarimg(&svg), uri, "{issuer}: SVG");
        let pgm = fixture.path("terminal.pgm");
        assert!(
            terminal_qr_as_pgm(&text(&out.stdout), &pgm),
            "no QR drawn: {}",
            show(&out)
        );
        assert_eq!(zbarimg(&pgm), uri, "{issuer}: terminal");
        for image in [&png, &svg] {
            let mode = std::fs::metadata(image).expect("image").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{} holds the secret", image.display());
        }
    }
}

#[test]
fn an_issuer_with_a_colon_is_refused() {
    let fixture = Fixture::new("issuer = \"Lab:1\"", "");
    let out = fixture.enroll(&["--user", TEST_USER, "--no-qr"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("issuer"), "{}", show(&out));
    assert!(!fixture.record_path().exists());
}

#[test]
fn enrolling_in_a_terminal_draws_a_qr_code_that_scans() {
    let fixture = Fixture::new("issuer = \"UiO Educloud\"", "");
    let mut pty = Pty::enroll(&fixture, None, &["--user", TEST_USER], 160);
    let shown = pty.wait_for("Enter the code your app shows now: ");
    let uri = printed_uri(shown.replace('\r', "").as_bytes());
    pty.type_line(&oathtool(&secret_of(&uri), 0));
    let (code, transcript) = pty.finish();
    assert_eq!(code, Some(0), "{transcript}");
    let pgm = fixture.path("terminal.pgm");
    assert!(
        terminal_qr_as_pgm(&transcript, &pgm),
        "no QR drawn:\n{transcript}"
    );
    assert_eq!(zbarimg(&pgm), uri);
    assert_eq!(recovery_codes(transcript.as_bytes()).len(), 10);
    assert!(fixture.record_path().exists());
}

#[test]
fn a_terminal_too_narrow_for_the_qr_code_gets_the_uri_and_key_instead() {
    let fixture = Fixture::new("", "");
    let mut pty = Pty::enroll(&fixture, None, &["--user", TEST_USER, "--secret", SECRET], 30);
    pty.wait_for("Enter the code your app shows now: ");
    pty.type_eof();
    let (code, transcript) = pty.finish();
    assert_eq!(code, Some(1), "no code typed: {transcript}");
    assert!(transcript.contains("too narrow for the QR code"), "{transcript}");
    assert!(
        !transcript.contains('\u{2588}'),
        "no broken picture: {transcript}"
    );
    assert!(transcript.contains(&format!("secret={SECRET}")), "{transcript}");
    assert!(
        transcript.contains("GEZD GNBV"),
        "the key in groups: {transcript}"
    );
    assert!(!fixture.record_path().exists());
}

#[test]
fn no_qr_prints_only_the_uri_and_key() {
    let fixture = Fixture::new("", "");
    settle_in_step(3);
    let out = enroll_with_input(
        &fixture,
        &["--user", TEST_USER, "--secret", SECRET, "--no-qr"],
        &format!("{}\n", oathtool(SECRET, 0)),
    );
    assert!(out.status.success(), "{}", show(&out));
    assert!(!text(&out.stdout).contains('\u{2588}'));
    assert!(printed_uri(&out.stdout).contains(SECRET));
}

// --- parameters and the command line -----------------------------------------------------

#[test]
fn only_non_default_parameters_warn_about_microsoft_authenticator() {
    let fixture = Fixture::new("", "");
    let out = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !text(&out.stderr).contains("Microsoft Authenticator"),
        "{}",
        show(&out)
    );

    let out = fixture.enroll(&[
        "--user",
        TEST_USER,
        "--secret",
        SECRET,
        "--no-confirm",
        "--force",
        "--digits",
        "8",
        "--algorithm",
        "SHA256",
        "--period",
        "60",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning")
            && stderr.contains("Microsoft Authenticator honours only SHA1, 6 digits and 30 s"),
        "{stderr}"
    );
    let json = status_json(&fixture);
    assert_eq!(
        (
            json["algorithm"].as_str(),
            json["digits"].as_u64(),
            json["period"].as_u64()
        ),
        (Some("SHA256"), Some(8), Some(60))
    );
}

#[test]
fn a_secret_under_128_bits_is_enrolled_with_a_warning() {
    let fixture = Fixture::new("", "");
    let out = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!text(&out.stderr).contains("RFC 4226"), "{}", show(&out));

    // An old google-authenticator secret: 16 base32 characters, 80 bits.
    let short = "JBSWY3DPEHPK3PXP";
    let out = fixture.enroll(&["--user", TEST_USER, "--secret", short, "--no-confirm", "--force"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stderr)
            .contains("warning: secret has 80 bits, fewer than the 128 RFC 4226 asks for; accepted"),
        "{}",
        show(&out)
    );
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(short, 0)).status, SUCCESS);
}

#[test]
fn help_documents_commands_and_exit_codes_and_usage_errors_exit_2() {
    let out = Command::new(enroll_bin()).arg("--help").output().expect("run");
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in [
        "status",
        "list",
        "recovery-codes",
        "unlock",
        "remove",
        "--force",
        "--qr-png",
        "--qr-svg",
        "--no-qr",
        "Exit codes: 0 ok; 1 refused",
    ] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
    for args in [
        &["--digits", "9"][..],
        &["--bogus"],
        &["status", "--json", "extra"],
        &["--force", "status"],
    ] {
        let out = Command::new(enroll_bin()).args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
    }
    let fixture = Fixture::new("windw = 1", "");
    let out = fixture.enroll(&["status"]);
    assert_eq!(out.status.code(), Some(2), "bad config: {}", show(&out));
    assert!(text(&out.stderr).contains("windw"), "{}", show(&out));
}

// --- a system store (records kept by root) ------------------------------------------------

#[test]
fn in_a_system_store_root_enrolls_and_lists_users_and_users_are_sent_to_root() {
    let fixture = Fixture::new("", "");
    let records = fixture.make_system_store();
    let codes = provision_with_codes(&fixture, SECRET);
    assert!(records.join(TEST_USER).exists());
    assert_eq!(fixture.login(&codes[9]).status, SUCCESS);

    let out = fixture.enroll(&["list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list[0]["user"], TEST_USER, "{list}");
    assert_eq!(list[0]["recovery_codes_left"], 9, "{list}");

    open_to_test_user(&fixture);
    for args in [&["status"][..], &["recovery-codes"], &["--force", "--no-qr"]] {
        let out = enroll_as_test_user(&fixture, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        assert!(
            text(&out.stderr).contains("kept by the administrator"),
            "{args:?}: {}",
            show(&out)
        );
    }
}

#[test]
fn status_of_an_unusable_record_says_logins_are_refused_and_exits_1() {
    use std::os::unix::fs::MetadataExt;
    let fixture = Fixture::new("", "");
    provision_with_codes(&fixture, SECRET);
    let meta = std::fs::metadata(fixture.record_path()).expect("record");
    std::fs::write(fixture.record_path(), "version = 1\nsecret = 5\n").expect("damage");
    assert_eq!(
        std::fs::metadata(fixture.record_path()).expect("record").uid(),
        meta.uid()
    );
    let out = fixture.enroll(&["status", "--user", TEST_USER]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stdout).contains("record is unusable"), "{}", show(&out));
    assert!(text(&out.stderr).contains("--force"), "{}", show(&out));
    let json = status_json(&fixture);
    assert_eq!(json["enrolled"], true);
    assert!(
        json["record_error"]
            .as_str()
            .is_some_and(|e| e.contains("malformed")),
        "{json}"
    );
}

// --- recovery codes in records sealed to the host key ---------------------------------------

#[test]
fn recovery_codes_work_in_a_sealed_record_and_root_renews_them_keeping_the_seal() {
    let fixture = Fixture::new("", "");
    let keys = format!(
        "seal = true\nhost_key = \"{}\"\nhost_public_key = \"{}\"\n",
        fixture.path("host.key").display(),
        fixture.path("host.pub").display()
    );
    fixture.write_config(&keys);
    let out = fixture.enroll(&["keygen"]);
    assert!(out.status.success(), "{}", show(&out));
    let old = provision_with_codes(&fixture, SECRET);
    let sealed = std::fs::read_to_string(fixture.record_path()).expect("record");
    assert!(
        sealed.contains("sealed_secret") && sealed.contains("$argon2id$"),
        "{sealed}"
    );

    assert_eq!(fixture.login(&old[0]).status, SUCCESS);
    let json = status_json(&fixture);
    assert_eq!(
        (json["sealed"].clone(), json["recovery_codes_left"].clone()),
        (true.into(), 9.into())
    );

    let out = fixture.enroll(&["recovery-codes", "--user", TEST_USER]);
    assert!(out.status.success(), "{}", show(&out));
    let new = recovery_codes(&out.stdout);
    let renewed = std::fs::read_to_string(fixture.record_path()).expect("record");
    assert!(
        renewed.contains("sealed_secret") && !renewed.contains(SECRET),
        "{renewed}"
    );
    assert_eq!(fixture.login(&old[1]).status, AUTH_ERR);
    assert_eq!(fixture.login(&new[1]).status, SUCCESS);
    settle_in_step(3);
    assert_eq!(
        fixture.login(&oathtool(SECRET, 0)).status,
        SUCCESS,
        "the sealed secret still works"
    );

    // The user sees the record's parameters; opening the box is root's.
    open_to_test_user(&fixture);
    let out = enroll_as_test_user(&fixture, &["status"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        text(&out.stdout).contains("sealed to the host key"),
        "{}",
        show(&out)
    );
    let out = enroll_as_test_user(&fixture, &["recovery-codes"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("ask your administrator"),
        "{}",
        show(&out)
    );

    // A new phone: the user proves with a recovery code (the app's code cannot be
    // checked without the host's private key) and seals the new secret.
    let (code, screen) = re_enroll(&fixture, &new[2], &|secret| oathtool(secret, 0));
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("only a recovery code can be checked here"),
        "{screen}"
    );
    let new_secret = secret_of(&printed_uri(screen.as_bytes()));
    let record = std::fs::read_to_string(fixture.record_path()).expect("record");
    assert!(
        record.contains("sealed_secret") && !record.contains(&new_secret),
        "{record}"
    );
    // The step of the last login stays used (replay protection is per user): the next.
    assert_eq!(
        fixture.login(&oathtool(&new_secret, 1)).status,
        SUCCESS,
        "new phone"
    );
}
