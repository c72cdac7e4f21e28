//! The shipped `pam.d/sudo` snippet, stacked as written (`pam_unix`, then the built
//! module) and run through real libpam the way sudo runs it.

// Test fixtures: a failed setup step should stop the test loudly.
#![allow(clippy::unwrap_used)]

#[path = "support/sshd.rs"]
mod sshd;
mod support;

use pam_client::{AUTH_ERR, Login, SUCCESS};
use sshd::{SSH_PASSWORD, SSH_USER, ensure_ssh_user, repo_dir, service_from_snippet};
use support::{SECRET, build_dir, enroll_bin, oathtool, settle_in_step, wrong_code};

/// A PAM directory whose `sudo` service is the shipped snippet.
struct SudoService {
    dir: tempfile::TempDir,
    secret_path: String,
}

impl SudoService {
    fn new(module_args: &str) -> SudoService {
        ensure_ssh_user();
        let dir = tempfile::Builder::new()
            .prefix("pam_totp-sudo")
            .tempdir()
            .unwrap();
        let tag = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        let service = SudoService {
            secret_path: format!("~/.pam_totp-{tag}"),
            dir,
        };
        let module = service.dir.path().join("pam_totp.so");
        std::fs::copy(build_dir().join("libpam_totp.so"), &module).unwrap();
        let config = service.dir.path().join("pam_totp.toml");
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
            service.dir.path().join("sudo"),
            service_from_snippet(&repo_dir().join("pam.d/sudo"), module_line.trim_end()),
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

    fn login(&self, password: &str, code: &str) -> pam_client::Transcript {
        let login = Login {
            confdir: self.dir.path(),
            service: "sudo",
            user: SSH_USER,
            rhost: None,
        };
        pam_client::authenticate(&login, &[password.as_bytes(), code.as_bytes()])
    }
}

impl Drop for SudoService {
    fn drop(&mut self) {
        if let Ok(Some(user)) = nix::unistd::User::from_name(SSH_USER) {
            let _ = std::fs::remove_file(user.dir.join(self.secret_path.trim_start_matches("~/")));
        }
    }
}

#[test]
fn sudo_snippet_asks_password_then_code_and_accepts_both_right() {
    let sudo = SudoService::new("");
    sudo.provision();
    settle_in_step(3);
    let transcript = sudo.login(SSH_PASSWORD, &oathtool(SECRET, 0));
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert_eq!(transcript.prompts(), ["Password: ", "Verification code: "]);
}

#[test]
fn sudo_snippet_refuses_either_factor_wrong_with_the_same_prompts() {
    let sudo = SudoService::new("");
    sudo.provision();
    settle_in_step(8);
    let wrong_password = sudo.login("not-the-password", &oathtool(SECRET, 0));
    let wrong_code = sudo.login(SSH_PASSWORD, &wrong_code(SECRET));
    assert_eq!(wrong_password.status, AUTH_ERR, "{wrong_password:?}");
    assert_eq!(wrong_code.status, AUTH_ERR, "{wrong_code:?}");
    assert_eq!(wrong_password.shown, wrong_code.shown);
}

#[test]
fn sudo_snippet_with_nullok_lets_an_unenrolled_user_in_with_the_password_alone() {
    let sudo = SudoService::new("nullok");
    let transcript = sudo.login(SSH_PASSWORD, "");
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert_eq!(transcript.prompts(), ["Password: "]);
    assert_eq!(sudo.login("not-the-password", "").status, AUTH_ERR);
}
