//! Enrollment at first login through a real `sshd` keyboard-interactive session: the
//! QR code, key and URI reach the ssh client, a code typed from them enrolls the user,
//! and the next login asks for a code like any other.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use testkit::sshd::{SSH_PASSWORD, SSH_USER, Scenario, Sshd};
use testkit::{oathtool, settle_in_step};

pub const CODE_PROMPT: &str = "Code shown by your app: ";
pub const ENTER_PROMPT: &str = "Press Enter once you have written the recovery codes down: ";

/// A root-owned record store for the server (`enroll_at_login` needs one).
struct Store(tempfile::TempDir);

impl Store {
    fn new() -> Store {
        Store(
            tempfile::Builder::new()
                .prefix("pam_totp-records")
                .tempdir()
                .unwrap(),
        )
    }

    fn module_args(&self) -> String {
        format!("secret={}/${{USER}} enroll_at_login", self.0.path().display())
    }

    fn record(&self) -> PathBuf {
        self.0.path().join(SSH_USER)
    }
}

/// What the client saw.
#[derive(Debug)]
pub struct Seen {
    pub prompts: Vec<String>,
    pub transcript: String,
    pub exit: Option<i32>,
}

impl Seen {
    /// The key the server showed, without blanks.
    pub fn key(&self) -> String {
        let line = self
            .transcript
            .lines()
            .find_map(|l| l.split_once("by hand (").map(|(_, rest)| rest.to_owned()))
            .expect("the key was shown");
        line.rsplit_once("): ").unwrap().1.trim().replace(' ', "")
    }
}

/// Logs in with `ssh_enroll.exp` (answers `@CODE` with the code for the key shown).
pub fn ssh(server: &Sshd, options: &[&str], answers: &[&str]) -> Seen {
    ssh_running(server, options, answers, Some("echo logged-in-$USER"))
}

/// As [`ssh`], running `command`, or an interactive login shell (left with `exit`).
fn ssh_running(server: &Sshd, options: &[&str], answers: &[&str], command: Option<&str>) -> Seen {
    let mut cmd = server.expect_ssh("ssh_enroll.exp", options, answers);
    cmd.args(command).env("LC_ALL", "C.UTF-8");
    let out = cmd.output().expect("run expect");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut prompts = Vec::new();
    let mut exit = None;
    for line in stdout.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(prompt) = line.strip_prefix("PAMTOTP-PROMPT:") {
            let prompt = prompt
                .strip_prefix('(')
                .and_then(|rest| rest.split_once(") "))
                .map_or(prompt, |(_, p)| p);
            prompts.push(prompt.to_owned());
        } else if let Some(code) = line.strip_prefix("PAMTOTP-EXIT:") {
            exit = code.trim().parse().ok();
        }
    }
    Seen {
        prompts,
        transcript: stdout,
        exit,
    }
}

pub fn logged_in(seen: &Seen) -> bool {
    seen.exit == Some(0)
        && seen
            .transcript
            .lines()
            .any(|l| l.trim_end_matches('\r') == format!("logged-in-{SSH_USER}"))
}

#[test]
fn first_ssh_login_with_a_key_enrolls_and_the_next_one_asks_for_the_code() {
    let store = Store::new();
    let server = Sshd::start(Scenario::PublicKeyAndCode, &store.module_args());
    let key = server.client_key().display().to_string();
    let with_key = [
        "-i",
        key.as_str(),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PreferredAuthentications=publickey,keyboard-interactive",
    ];
    settle_in_step(10);
    let first = ssh(&server, &with_key, &["@CODE", ""]);
    assert!(logged_in(&first), "{first:?}\n{}", server.log());
    assert_eq!(first.prompts, [CODE_PROMPT, ENTER_PROMPT]);
    for shown in [
        "Scan this QR code",
        "URI: otpauth://totp/",
        "Recovery codes",
        "  10. ",
        "\u{2588}\u{2588}\u{2588}\u{2588}",
    ] {
        assert!(first.transcript.contains(shown), "{shown}: {first:?}");
    }
    let meta = std::fs::metadata(store.record()).expect("record written by the module");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));

    // Enrolled now: the usual prompt, and the code of the next step (the enrollment
    // code itself is spent).
    let secret = first.key();
    let next = server.ssh_key(&[&oathtool(&secret, 1)], "echo logged-in-$USER");
    assert!(
        next.logged_in_and_printed(&format!("logged-in-{SSH_USER}")),
        "{next:?}"
    );
    assert_eq!(next.prompts, ["Verification code: "]);
}

#[test]
fn with_a_requisite_password_a_wrong_password_never_reaches_enrollment() {
    let store = Store::new();
    let server = Sshd::start(Scenario::PasswordAndCode, &store.module_args());
    // enroll_at_login needs the first factor to stop the stack when it fails.
    let service = server.path("pam.d/sshd");
    let stack = std::fs::read_to_string(&service).unwrap();
    assert!(stack.contains("auth required pam_unix.so"), "{stack}");
    std::fs::write(
        &service,
        stack.replace("auth required pam_unix.so", "auth requisite pam_unix.so"),
    )
    .unwrap();
    let kbd = ["-o", "PreferredAuthentications=keyboard-interactive"];

    let wrong = ssh(&server, &kbd, &["not-the-password", "@CODE", ""]);
    assert_eq!(wrong.exit, Some(255), "{wrong:?}");
    assert_eq!(wrong.prompts, ["Password: "], "{wrong:?}");
    assert!(
        !wrong.transcript.contains("by hand"),
        "no secret shown: {wrong:?}"
    );
    assert!(!store.record().exists());

    settle_in_step(10);
    let right = ssh(&server, &kbd, &[SSH_PASSWORD, "@CODE", ""]);
    assert!(logged_in(&right), "{right:?}\n{}", server.log());
    assert_eq!(right.prompts, ["Password: ", CODE_PROMPT, ENTER_PROMPT]);
    assert!(store.record().exists());
}

#[test]
fn during_the_grace_period_an_unenrolled_ssh_user_is_let_in_and_told_the_date() {
    let server = Sshd::start(Scenario::PasswordAndCode, "enforce_after=2099-01-15");
    // sshd shows what PAM said after the last prompt as a login message, that is to
    // an interactive login (not to `ssh host command`).
    let seen = ssh_running(
        &server,
        &["-tt", "-o", "PreferredAuthentications=keyboard-interactive"],
        &[SSH_PASSWORD],
        None,
    );
    assert_eq!(seen.exit, Some(0), "{seen:?}\n{}", server.log());
    assert_eq!(seen.prompts, ["Password: "], "no code asked");
    assert!(
        seen.transcript.contains("from 2099-01-15") && seen.transcript.contains("totp-enroll"),
        "the warning reaches the user: {seen:?}"
    );
}
