//! Real SSH logins end to end: OpenSSH's `sshd` (a child of the test, in its own
//! namespaces, see `support/sshd.rs`) with the shipped `pam.d/` snippets and the freshly
//! built module, and a real `ssh` client answering keyboard-interactive prompts on a pty,
//! with codes from `oathtool`.

use testkit::sshd::{SSH_PASSWORD, Scenario, Sshd};
use testkit::{SECRET, oathtool, settle_in_step, wrong_code};

const PASSWORD_PROMPT: &str = "Password: ";
const CODE_PROMPT: &str = "Verification code: ";

#[test]
fn password_and_right_code_log_in_over_ssh() {
    let server = Sshd::start(Scenario::PasswordAndCode, "");
    server.provision(SECRET);
    settle_in_step(5);
    let session = server.ssh_password(&[SSH_PASSWORD, &oathtool(SECRET, 0)], "echo logged-in-$USER");
    assert!(
        session.logged_in_and_printed("logged-in-pamtotp-ssh"),
        "{session:?}\n{}",
        server.log()
    );
    assert_eq!(session.prompts, [PASSWORD_PROMPT, CODE_PROMPT]);
}

#[test]
fn password_and_wrong_code_are_refused_over_ssh() {
    let server = Sshd::start(Scenario::PasswordAndCode, "");
    server.provision(SECRET);
    settle_in_step(5);
    let session = server.ssh_password(&[SSH_PASSWORD, &wrong_code(SECRET)], "echo logged-in");
    assert!(session.refused(), "{session:?}");
    assert!(!session.output.contains("logged-in"));
}

#[test]
fn wrong_password_is_refused_and_the_prompts_do_not_tell_which_was_wrong() {
    let server = Sshd::start(Scenario::PasswordAndCode, "");
    server.provision(SECRET);
    settle_in_step(10);
    let wrong_password = server.ssh_password(&["not-the-password", &oathtool(SECRET, 0)], "echo logged-in");
    assert!(wrong_password.refused(), "{wrong_password:?}");
    assert_eq!(
        wrong_password.prompts,
        [PASSWORD_PROMPT, CODE_PROMPT],
        "a wrong password must still lead to the code prompt"
    );
    let wrong_code = server.ssh_password(&[SSH_PASSWORD, &wrong_code(SECRET)], "echo logged-in");
    assert!(wrong_code.refused(), "{wrong_code:?}");
    assert_eq!(wrong_password.prompts, wrong_code.prompts);
    assert_eq!(
        wrong_password.output, wrong_code.output,
        "what the client sees must be the same whichever factor was wrong"
    );
}

#[test]
fn a_code_reused_in_a_second_ssh_session_is_refused() {
    let server = Sshd::start(Scenario::PasswordAndCode, "");
    server.provision(SECRET);
    settle_in_step(15);
    let code = oathtool(SECRET, 0);
    let first = server.ssh_password(&[SSH_PASSWORD, &code], "echo first");
    assert!(first.logged_in_and_printed("first"), "{first:?}");
    let second = server.ssh_password(&[SSH_PASSWORD, &code], "echo second");
    assert!(second.refused(), "the same code twice in one step: {second:?}");
    assert_eq!(second.prompts, [PASSWORD_PROMPT, CODE_PROMPT]);
}

#[test]
fn unenrolled_user_is_asked_for_a_code_and_refused_over_ssh() {
    let server = Sshd::start(Scenario::PasswordAndCode, "");
    let session = server.ssh_password(&[SSH_PASSWORD, "123456"], "echo logged-in");
    assert!(session.refused(), "{session:?}");
    assert_eq!(
        session.prompts,
        [PASSWORD_PROMPT, CODE_PROMPT],
        "prompted like an enrolled user"
    );
}

#[test]
fn unenrolled_user_logs_in_with_the_password_alone_with_nullok() {
    let server = Sshd::start(Scenario::PasswordAndCode, "nullok");
    let session = server.ssh_password(&[SSH_PASSWORD], "echo logged-in-without-code");
    assert!(
        session.logged_in_and_printed("logged-in-without-code"),
        "{session:?}"
    );
    assert_eq!(session.prompts, [PASSWORD_PROMPT]);
    let wrong = server.ssh_password(&["not-the-password"], "echo logged-in");
    assert!(wrong.refused(), "nullok must not skip the password: {wrong:?}");
}

#[test]
fn enrolled_user_still_needs_the_code_with_nullok() {
    let server = Sshd::start(Scenario::PasswordAndCode, "nullok");
    server.provision(SECRET);
    settle_in_step(5);
    let session = server.ssh_password(&[SSH_PASSWORD, &wrong_code(SECRET)], "echo logged-in");
    assert!(session.refused(), "{session:?}");
    assert_eq!(session.prompts, [PASSWORD_PROMPT, CODE_PROMPT]);
}

#[test]
fn public_key_and_right_code_log_in_over_ssh() {
    let server = Sshd::start(Scenario::PublicKeyAndCode, "");
    server.provision(SECRET);
    settle_in_step(5);
    let session = server.ssh_key(&[&oathtool(SECRET, 0)], "echo key-and-code");
    assert!(
        session.logged_in_and_printed("key-and-code"),
        "{session:?}\n{}",
        server.log()
    );
    assert_eq!(session.prompts, [CODE_PROMPT], "no password with a key");
}

#[test]
fn public_key_and_wrong_code_are_refused_over_ssh() {
    let server = Sshd::start(Scenario::PublicKeyAndCode, "");
    server.provision(SECRET);
    settle_in_step(5);
    let session = server.ssh_key(&[&wrong_code(SECRET)], "echo logged-in");
    assert!(session.refused(), "{session:?}");
    assert_eq!(session.prompts, [CODE_PROMPT]);
}

#[test]
fn without_the_key_there_is_no_code_prompt() {
    let server = Sshd::start(Scenario::PublicKeyAndCode, "");
    server.provision(SECRET);
    let session = server.ssh_password(&[&oathtool(SECRET, 0)], "echo logged-in");
    assert!(session.refused(), "{session:?}");
    assert!(session.prompts.is_empty(), "{session:?}");
}

#[test]
fn the_server_and_its_sessions_are_gone_after_a_failed_test() {
    use std::sync::mpsc;
    let (tx, rx) = mpsc::channel();
    let failed = std::thread::spawn(move || {
        let server = Sshd::start(Scenario::PasswordAndCode, "");
        server.provision(SECRET);
        let mut pids = server.server_pids();
        pids.extend(server.unshare_pid());
        tx.send((
            server.port,
            pids,
            server.dir.path().to_owned(),
            server.record_path(),
        ))
        .unwrap();
        panic!("a test failing while its sshd runs");
    })
    .join();
    assert!(failed.is_err(), "the thread was meant to panic");
    let (port, pids, dir, record) = rx.recv().unwrap();
    assert!(pids.len() >= 2, "unshare and sshd were running: {pids:?}");
    for pid in &pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            status.is_empty() || status.contains("State:\tZ"),
            "pid {pid} still runs"
        );
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts connections"
    );
    assert!(!dir.exists(), "{} was left behind", dir.display());
    assert!(!record.exists(), "{} was left behind", record.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.display().to_string()),
        "a mount of ours is visible outside the namespace"
    );
}

const ONE_PROMPT: &str = "Password & verification code: ";

#[test]
fn forward_pass_logs_in_with_password_and_code_in_one_answer_by_the_password_method() {
    let server = Sshd::start(Scenario::OnePrompt, "");
    server.provision(SECRET);
    settle_in_step(5);
    let answer = format!("{SSH_PASSWORD}{}", oathtool(SECRET, 0));
    let session = server.ssh_password_method(&answer, "echo one-prompt");
    assert!(
        session.logged_in_and_printed("one-prompt"),
        "{session:?}\n{}",
        server.log()
    );
    assert_eq!(session.prompts.len(), 1, "{session:?}");
    assert!(session.prompts[0].ends_with("'s password: "), "{session:?}");
}

#[test]
fn forward_pass_over_keyboard_interactive_shows_one_prompt() {
    let server = Sshd::start(Scenario::OnePrompt, "");
    server.provision(SECRET);
    settle_in_step(5);
    let answer = format!("{SSH_PASSWORD}{}", oathtool(SECRET, 0));
    let session = server.ssh_password(&[&answer], "echo one-prompt-kbd");
    assert!(session.logged_in_and_printed("one-prompt-kbd"), "{session:?}");
    assert_eq!(session.prompts, [ONE_PROMPT]);
}

#[test]
fn forward_pass_refuses_a_wrong_password_or_a_wrong_code() {
    let server = Sshd::start(Scenario::OnePrompt, "");
    server.provision(SECRET);
    settle_in_step(10);
    let wrong_password = format!("not-the-password{}", oathtool(SECRET, 0));
    let wrong_code = format!("{SSH_PASSWORD}{}", wrong_code(SECRET));
    let by_password = server.ssh_password_method(&wrong_password, "echo logged-in");
    assert!(by_password.refused(), "{by_password:?}");
    let by_code = server.ssh_password_method(&wrong_code, "echo logged-in");
    assert!(by_code.refused(), "{by_code:?}");
    assert_eq!(by_password.prompts, by_code.prompts);
    assert_eq!(by_password.output, by_code.output);
    let kbd = server.ssh_password(&[&wrong_code], "echo logged-in");
    assert!(kbd.refused(), "{kbd:?}");
    assert_eq!(kbd.prompts, [ONE_PROMPT]);
}

#[test]
fn public_key_alone_lets_an_unenrolled_user_in_with_nullok() {
    let server = Sshd::start(Scenario::PublicKeyAndCode, "nullok");
    let session = server.ssh_key(&[], "echo key-alone");
    assert!(session.logged_in_and_printed("key-alone"), "{session:?}");
    assert!(session.prompts.is_empty(), "{session:?}");
}

#[test]
fn public_key_and_nullok_still_ask_an_enrolled_user_for_the_code() {
    let server = Sshd::start(Scenario::PublicKeyAndCode, "nullok");
    server.provision(SECRET);
    settle_in_step(5);
    let session = server.ssh_key(&[&wrong_code(SECRET)], "echo logged-in");
    assert!(session.refused(), "{session:?}");
    assert_eq!(session.prompts, [CODE_PROMPT]);
}
