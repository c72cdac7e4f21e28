//! The benchmark is not timed in CI, but it must keep working: a tiny run of the real
//! `pam-bench` binary against every peer, checking that each scenario behaved as
//! expected (a right code accepted, a replay and a wrong code refused).

use std::process::Command;

#[test]
fn a_tiny_benchmark_run_measures_every_peer_without_unexpected_results() {
    testkit::ensure_test_user();
    let bench = testkit::build_dir().join("pam-bench");
    assert!(
        bench.exists(),
        "{} is missing: run `cargo build --workspace` first",
        bench.display()
    );
    let work = tempfile::Builder::new()
        .prefix("pam-bench")
        .tempdir_in("/var/tmp")
        .expect("work dir");
    let module = testkit::module(testkit::ModuleBuild::Workspace);
    let run = |extra: &[&str]| {
        Command::new(&bench)
            .arg("--module")
            .arg(&module)
            .arg("--work")
            .arg(work.path())
            .args([
                "--users",
                "2",
                "--sizes",
                "2",
                "--threads",
                "1",
                "--repeat",
                "3",
                "--cycles",
                "20",
            ])
            .args(extra)
            .output()
            .expect("run pam-bench")
    };
    let out = run(&[]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pam-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for peer in ["pam_permit", "pam_totp", "pam_google_authenticator", "pam_oath"] {
        assert!(report.contains(peer), "no {peer} in the report:\n{report}");
    }
    for scenario in ["correct code", "replayed code", "wrong code", "unenrolled user"] {
        assert!(report.contains(scenario), "no {scenario} row:\n{report}");
    }
    assert!(
        !report.contains("unexpected"),
        "a login ended unexpectedly:\n{report}"
    );
    assert!(report.contains("open fds"), "no leak check:\n{report}");
    assert!(
        report.contains("Does timing reveal enrollment?") && report.contains("| unknown |"),
        "no enrollment timing:\n{report}"
    );
    let cleanup = run(&["--cleanup"]);
    assert!(cleanup.status.success());
}
