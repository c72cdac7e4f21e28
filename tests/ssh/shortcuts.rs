//! Fewer codes without weaker logins, through a real sshd and ssh client with keys and
//! real sudo: `remember_key_seconds` (the key sshd verified, for a while) and
//! `step_up_seconds` (sudo inside a session whose login passed a code).

use std::time::{Duration, Instant};

use testkit::sshd::{SSH_PASSWORD, SSH_USER, Scenario, Session, Sshd};
use testkit::{SECRET, oathtool, settle_in_step, wrong_code};

pub const CODE_PROMPT: &str = "Verification code: ";
const PASSWORD_PROMPT: &str = "Password: ";

fn logged_in_without_prompt(session: &Session, printed: &str) -> bool {
    session.logged_in_and_printed(printed) && session.prompts.is_empty()
}

/// `ssh-keygen -lf`'s SHA256 fingerprint of a public key file.
fn fingerprint(public_key: &std::path::Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public_key)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn the_same_key_passes_without_a_code_for_a_while_and_another_key_is_asked() {
    let server = Sshd::start(Scenario::PublicKeyAndCode, "remember_key_seconds=20");
    server.provision(SECRET);
    settle_in_step(8);
    let start = Instant::now();
    let first = server.ssh_key(&[&oathtool(SECRET, 0)], "echo first");
    assert!(
        first.logged_in_and_printed("first"),
        "{first:?}\n{}",
        server.log()
    );
    assert_eq!(first.prompts, [CODE_PROMPT]);
    // What was remembered is the fingerprint of the key sshd verified, nothing else.
    let remembered = std::fs::read_to_string(server.path("state/.remembered-keys")).unwrap();
    let mut client_pub = server.client_key();
    client_pub.set_extension("pub");
    assert_eq!(
        remembered.split_whitespace().take(2).collect::<Vec<_>>(),
        [SSH_USER, fingerprint(&client_pub).as_str()],
        "{remembered}"
    );

    let again = server.ssh_key(&[], "echo again");
    assert!(
        logged_in_without_prompt(&again, "again"),
        "{again:?}\n{}",
        server.log()
    );

    // Another authorized key: the key is good, the code is asked (and a wrong one refused).
    let other = server.ssh_with_key(&server.other_key(), &[&wrong_code(SECRET)], "echo other");
    assert!(other.refused(), "{other:?}");
    assert_eq!(other.prompts, [CODE_PROMPT]);

    // A client naming the remembered key itself (sent as SSH_AUTH_INFO_0, which this
    // server accepts from clients) while proving another key: asked.
    let public_key = std::fs::read_to_string(&client_pub).unwrap();
    let named = format!(
        "publickey {}",
        public_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let other_key = server.other_key().display().to_string();
    let set_env = format!("SetEnv=SSH_AUTH_INFO_0=\"{named}\"");
    let forged = server.ssh(
        &[
            "-i",
            &other_key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PreferredAuthentications=publickey,keyboard-interactive",
            "-o",
            &set_env,
        ],
        &[&wrong_code(SECRET)],
        "echo forged",
    );
    assert!(forged.refused(), "{forged:?}");
    assert_eq!(forged.prompts, [CODE_PROMPT]);

    // After the time: asked again.
    std::thread::sleep(Duration::from_secs(21).saturating_sub(start.elapsed()));
    let late = server.ssh_key(&[&wrong_code(SECRET)], "echo late");
    assert!(late.refused(), "{late:?}");
    assert_eq!(late.prompts, [CODE_PROMPT]);
}

#[test]
fn a_password_login_is_always_asked_for_a_code_with_remember_key_seconds() {
    let server = Sshd::start(Scenario::PasswordAndCode, "remember_key_seconds=600");
    server.provision(SECRET);
    settle_in_step(8);
    let first = server.ssh_password(&[SSH_PASSWORD, &oathtool(SECRET, 0)], "echo first");
    assert!(first.logged_in_and_printed("first"), "{first:?}");
    let second = server.ssh_password(&[SSH_PASSWORD, &wrong_code(SECRET)], "echo second");
    assert!(second.refused(), "{second:?}");
    assert_eq!(second.prompts, [PASSWORD_PROMPT, CODE_PROMPT]);
}

/// Writes `~/sudo-check.sh` of [`SSH_USER`]: sudo with the password on stdin and
/// nothing for a code; prints `sudo-exit-N [what sudo showed]`, with `:` turned into
/// `_` so that the ssh driver sees no prompt.
pub fn write_sudo_check() -> std::path::PathBuf {
    let home = nix::unistd::User::from_name(SSH_USER).unwrap().unwrap().dir;
    let script = home.join("sudo-check.sh");
    std::fs::write(
        &script,
        format!(
            "out=$(echo '{SSH_PASSWORD}' | sudo -S -k true 2>&1)\n\
             echo \"sudo-exit-$? [$out]\" | tr ':\\n' '_ '\n\
             echo\n"
        ),
    )
    .unwrap();
    home
}

#[test]
fn sudo_skips_the_code_only_in_a_verified_session_until_logout() {
    let server = Sshd::start(
        Scenario::PublicKeyStepUp,
        "step_up_seconds=300 remember_key_seconds=300",
    );
    server.provision(SECRET);
    let home = write_sudo_check();
    let late = home.join("sudo-after-logout");
    let _ = std::fs::remove_file(&late);
    settle_in_step(10);
    // Session 1 passed a code: sudo asks only the password. A process of the session
    // outlives the logout and tries sudo again after it.
    let command = "echo ticket-[$PAM_TOTP_TICKET]; sh sudo-check.sh; \
                   setsid sh -c 'sleep 5; sh sudo-check.sh > sudo-after-logout' \
                   </dev/null >/dev/null 2>&1 &";
    let verified = server.ssh_key(&[&oathtool(SECRET, 0)], command);
    assert_eq!(verified.prompts, [CODE_PROMPT], "{verified:?}\n{}", server.log());
    assert!(
        verified.output.contains("sudo-exit-0"),
        "{verified:?}\n{}",
        server.log()
    );
    assert!(!verified.output.contains("Verification code"), "{verified:?}");
    // The session hook took the ticket out of the PAM environment: the shell has none.
    assert!(verified.output.contains("ticket-[]"), "{verified:?}");

    // Session 2 passed by the remembered key, without a code: sudo asks for one.
    let unverified = server.ssh_key(&[], "sh sudo-check.sh");
    assert!(unverified.prompts.is_empty(), "{unverified:?}");
    assert!(unverified.output.contains("Verification code"), "{unverified:?}");
    assert!(unverified.output.contains("sudo-exit-1"), "{unverified:?}");

    // After session 1's logout, its lingering process is asked for a code.
    let deadline = Instant::now() + Duration::from_secs(30);
    let read_late = || {
        std::fs::read_to_string(&late)
            .ok()
            .filter(|text| text.contains("sudo-exit"))
    };
    let mut text = read_late();
    while text.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        text = read_late();
    }
    let text = text.unwrap_or_default();
    assert!(text.contains("Verification code"), "{text}\n{}", server.log());
    assert!(text.contains("sudo-exit-1"), "{text}");
}
