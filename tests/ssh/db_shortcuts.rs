//! Remembered keys and sudo in a verified session with `store = "postgres"`, through a
//! real sshd and ssh client with keys and real sudo, the module `pam_totp_db.so` as the
//! host role `host_a` of a real cluster: the database keeps both, for that host role.

use std::time::{Duration, Instant};

use testkit::postgres::Cluster;
use testkit::sshd::{SSH_USER, Scenario, Sshd};
use testkit::{ModuleBuild, SECRET, module, oathtool, settle_in_step, wrong_code};

use crate::shortcuts::{CODE_PROMPT, write_sudo_check};

fn rows(cluster: &Cluster, sql: &str) -> Vec<String> {
    cluster
        .admin()
        .query("rows", sql, &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[test]
fn on_the_database_the_same_key_passes_and_sudo_skips_the_code_in_the_verified_session() {
    keys_and_sessions_on_the_database(false);
}

/// As the packages install it: the pam.d lines name the slim `pam_totp.so`, which hands
/// the login and both session hooks to `pam_totp_db.so` beside it.
#[test]
fn through_the_slim_module_the_session_hooks_reach_the_database_too() {
    keys_and_sessions_on_the_database(true);
}

fn keys_and_sessions_on_the_database(slim: bool) {
    let _home = crate::no_change_request();
    let cluster = Cluster::start();
    testkit::postgres::enroll(&cluster, SSH_USER, SECRET);
    let server = Sshd::start(
        Scenario::PublicKeyStepUp,
        "step_up_seconds=300 remember_key_seconds=300",
    );
    crate::use_database(&server, &cluster, "host_a");
    if slim {
        std::fs::copy(server.path("pam_totp.so"), server.path("pam_totp_db.so")).unwrap();
        std::fs::copy(module(ModuleBuild::FileStore), server.path("pam_totp.so")).unwrap();
    }
    write_sudo_check();
    settle_in_step(10);

    // A right code: sudo in this session asks only the password.
    let verified = server.ssh_key(&[&oathtool(SECRET, 0)], "sh sudo-check.sh");
    assert_eq!(
        verified.prompts,
        [CODE_PROMPT],
        "{verified:?}\n{}\n{}",
        server.log(),
        cluster.log()
    );
    assert!(
        verified.output.contains("sudo-exit-0"),
        "{verified:?}\n{}",
        server.log()
    );
    assert_eq!(
        rows(
            &cluster,
            "SELECT user_name || ' ' || host_role FROM pam_totp.remembered_keys"
        ),
        [format!("{SSH_USER} host_a")]
    );

    // The same key again: no prompt; that session passed no code, so sudo asks for one.
    let again = server.ssh_key(&[], "sh sudo-check.sh");
    assert!(again.prompts.is_empty(), "{again:?}\n{}", server.log());
    assert!(again.output.contains("Verification code"), "{again:?}");
    assert!(again.output.contains("sudo-exit-1"), "{again:?}");

    // Another authorized key: asked (and a wrong code refused).
    let other = server.ssh_with_key(&server.other_key(), &[&wrong_code(SECRET)], "echo other");
    assert!(other.refused(), "{other:?}");
    assert_eq!(other.prompts, [CODE_PROMPT]);

    // Logout forgot the verified session (close_session reached the database).
    let deadline = Instant::now() + Duration::from_secs(20);
    let sessions = || rows(&cluster, "SELECT user_name FROM pam_totp.verified_sessions");
    while !sessions().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(sessions(), Vec::<String>::new(), "{}", server.log());
}
