//! Shipped `pam.d/` snippets, stacked as written with the built module, run through
//! real libpam: `sudo` (the way sudo runs it), `sshd-one-prompt` (`forward_pass`) and
//! `sshd-enroll-at-login` (a wrong password never reaches the enrollment).

// Test fixtures: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used)]

use pam_client::{AUTH_ERR, Login, SUCCESS, Shown};
use testkit::sshd::{SSH_PASSWORD, SSH_USER, ensure_ssh_user, service_from_snippet};
use testkit::{ModuleBuild, SECRET, enroll_bin, oathtool, phone_user, repo_dir, settle_in_step, wrong_code};

/// A PAM directory whose one service is a shipped snippet.
struct SnippetService {
    dir: tempfile::TempDir,
    secret_path: String,
}

impl SnippetService {
    /// The snippet `pam.d/<name>` as the service `<name>`.
    fn new(name: &str, module_args: &str) -> SnippetService {
        ensure_ssh_user();
        let dir = tempfile::Builder::new()
            .prefix("pam_totp-sudo")
            .tempdir()
            .unwrap();
        let tag = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        let service = SnippetService {
            secret_path: format!("~/.pam_totp-{tag}"),
            dir,
        };
        let module = service.dir.path().join("pam_totp.so");
        std::fs::copy(testkit::module(ModuleBuild::Workspace), &module).unwrap();
        let config = service.dir.path().join("pam_totp.toml");
        testkit::make_state_dir(&service.dir.path().join("state"));
        std::fs::write(
            &config,
            format!(
                "secret_path = \"{}\"\nstate_dir = \"{}\"\n",
                service.secret_path,
                service.dir.path().join("state").display()
            ),
        )
        .unwrap();
        let module_line = format!("{} config={} {module_args}", module.display(), config.display());
        std::fs::write(
            service.dir.path().join("service"),
            service_from_snippet(&repo_dir().join("pam.d").join(name), module_line.trim_end()),
        )
        .unwrap();
        service
    }

    fn provision(&self) {
        let out = std::process::Command::new(enroll_bin())
            .arg("--config")
            .arg(self.dir.path().join("pam_totp.toml"))
            .args(["--user", SSH_USER, "--secret", SECRET, "--no-confirm"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn log_in(&self, password: &str, code: &str) -> pam_client::Transcript {
        self.answer(&[password, code])
    }

    fn answer(&self, answers: &[&str]) -> pam_client::Transcript {
        let answers: Vec<&[u8]> = answers.iter().map(|a| a.as_bytes()).collect();
        pam_client::authenticate(&self.login(), &answers)
    }

    fn respond(&self, responder: pam_client::Responder) -> pam_client::Transcript {
        pam_client::authenticate_responding(&self.login(), responder)
    }

    fn login(&self) -> Login<'_> {
        Login {
            confdir: self.dir.path(),
            service: "service",
            user: SSH_USER,
            rhost: None,
        }
    }
}

impl Drop for SnippetService {
    fn drop(&mut self) {
        if let Ok(Some(user)) = nix::unistd::User::from_name(SSH_USER) {
            let _ = std::fs::remove_file(user.dir.join(self.secret_path.trim_start_matches("~/")));
        }
    }
}

#[test]
fn sudo_snippet_asks_password_then_code_and_accepts_both_right() {
    let sudo = SnippetService::new("sudo", "");
    sudo.provision();
    settle_in_step(3);
    let transcript = sudo.log_in(SSH_PASSWORD, &oathtool(SECRET, 0));
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert_eq!(transcript.prompts(), ["Password: ", "Verification code: "]);
}

#[test]
fn sudo_snippet_refuses_either_factor_wrong_with_the_same_prompts() {
    let sudo = SnippetService::new("sudo", "");
    sudo.provision();
    settle_in_step(8);
    let wrong_password = sudo.log_in("not-the-password", &oathtool(SECRET, 0));
    let wrong_code = sudo.log_in(SSH_PASSWORD, &wrong_code(SECRET));
    assert_eq!(wrong_password.status, AUTH_ERR, "{wrong_password:?}");
    assert_eq!(wrong_code.status, AUTH_ERR, "{wrong_code:?}");
    assert_eq!(wrong_password.shown, wrong_code.shown);
}

#[test]
fn sudo_snippet_with_nullok_lets_an_unenrolled_user_in_with_the_password_alone() {
    let sudo = SnippetService::new("sudo", "nullok");
    let transcript = sudo.log_in(SSH_PASSWORD, "");
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert_eq!(transcript.prompts(), ["Password: "]);
    assert_eq!(sudo.log_in("not-the-password", "").status, AUTH_ERR);
}

#[test]
fn one_prompt_snippet_takes_password_and_code_in_one_answer() {
    let service = SnippetService::new("sshd-one-prompt", "");
    service.provision();
    settle_in_step(3);
    let transcript = service.answer(&[&format!("{SSH_PASSWORD}{}", oathtool(SECRET, 0))]);
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert_eq!(
        transcript.prompts(),
        ["Password & verification code: "],
        "pam_unix must not ask again"
    );
}

#[test]
fn one_prompt_snippet_refuses_either_part_wrong_with_one_prompt() {
    let service = SnippetService::new("sshd-one-prompt", "");
    service.provision();
    settle_in_step(8);
    let wrong_password = service.answer(&[&format!("not-the-password{}", oathtool(SECRET, 0))]);
    let wrong_code = service.answer(&[&format!("{SSH_PASSWORD}{}", wrong_code(SECRET))]);
    let too_short = service.answer(&["12345"]);
    for transcript in [&wrong_password, &wrong_code, &too_short] {
        assert_eq!(transcript.status, AUTH_ERR, "{transcript:?}");
        assert_eq!(transcript.prompts(), ["Password & verification code: "]);
    }
    assert_eq!(wrong_password.shown, wrong_code.shown);
}

#[test]
fn one_prompt_snippet_checks_the_password_of_an_unenrolled_user_too() {
    let service = SnippetService::new("sshd-one-prompt", "");
    let transcript = service.answer(&[&format!("{SSH_PASSWORD}123456")]);
    assert_eq!(transcript.status, AUTH_ERR, "{transcript:?}");
    assert_eq!(transcript.prompts(), ["Password & verification code: "]);
}

/// With `enroll_at_login`, the `requisite` password line keeps the enrollment (and the
/// secret it shows) from whoever does not know the password.
fn enroll_at_login_service() -> (SnippetService, std::path::PathBuf) {
    let records = tempfile::Builder::new()
        .prefix("pam_totp-records")
        .tempdir()
        .unwrap()
        .keep();
    let args = format!("secret={}/${{USER}} enroll_at_login", records.display());
    (
        SnippetService::new("sshd-enroll-at-login", &args),
        records.join(SSH_USER),
    )
}

fn wrong_password_then_phone(shown: &[Shown]) -> Option<Vec<u8>> {
    match shown.last()? {
        Shown::HiddenPrompt(p) if p == "Password: " => Some(b"not-the-password".to_vec()),
        _ => phone_user(shown),
    }
}

fn password_then_phone(shown: &[Shown]) -> Option<Vec<u8>> {
    match shown.last()? {
        Shown::HiddenPrompt(p) if p == "Password: " => Some(SSH_PASSWORD.as_bytes().to_vec()),
        _ => phone_user(shown),
    }
}

#[test]
fn enroll_at_login_snippet_offers_no_enrollment_after_a_wrong_password() {
    let (service, record) = enroll_at_login_service();
    let transcript = service.respond(wrong_password_then_phone);
    assert_eq!(transcript.status, AUTH_ERR, "{transcript:?}");
    assert_eq!(transcript.prompts(), ["Password: "], "stack ends at the password");
    assert!(
        transcript.messages().is_empty(),
        "no QR code or key: {transcript:?}"
    );
    assert!(!record.exists(), "nothing enrolled");
    std::fs::remove_dir_all(record.parent().unwrap()).unwrap();
}

#[test]
fn enroll_at_login_snippet_enrolls_after_the_right_password() {
    let (service, record) = enroll_at_login_service();
    settle_in_step(5);
    let transcript = service.respond(password_then_phone);
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert_eq!(transcript.prompts()[0], "Password: ");
    assert!(record.exists(), "record written in the root-owned store");
    std::fs::remove_dir_all(record.parent().unwrap()).unwrap();
}
