//! `make demo` as a newcomer sees it: enroll by "scanning" (oathtool plays the phone),
//! log in over ssh with the printed password and a code, press Ctrl-C, and nothing of
//! the demo is left on the machine.

use std::process::Command;

#[test]
fn the_demo_logs_in_over_ssh_and_cleans_up_on_ctrl_c() {
    let repo = testkit::repo_dir();
    // Fails with a clear message when the build is missing.
    let _ = testkit::enroll_bin();
    let out = Command::new("timeout")
        .args(["--kill-after=5", "150", "expect", "-f"])
        .arg(repo.join("testkit/scripts/demo.exp"))
        .arg(repo.join("scripts/demo.sh"))
        .env("PAMTOTP_DEMO_BUILD_DIR", testkit::build_dir())
        .output()
        .expect("run expect");
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "expect failed ({:?}):\n{transcript}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(transcript.contains("#### LOGGED IN"), "{transcript}");
    assert!(transcript.contains("#### CLEANED UP"), "{transcript}");
    assert!(transcript.contains("#### DEMO EXIT 0"), "{transcript}");
    assert!(
        nix::unistd::User::from_name("pamtotp-demo")
            .ok()
            .flatten()
            .is_none(),
        "the demo user was left behind"
    );
    let tmp = transcript
        .split("(log: ")
        .nth(1)
        .and_then(|rest| rest.split("/sshd.log").next())
        .expect("the demo names its temporary directory");
    assert!(!std::path::Path::new(tmp).exists(), "{tmp} was left behind");
    let port: u16 = transcript
        .split("ssh -p ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("the demo prints its port");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the demo's sshd still listens on {port}"
    );
}
