//! Concurrent logins and writers killed mid-update: the state and the record are never
//! lost, torn or double-spent, and nothing a dead process left behind blocks a login.

use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::product::Record;
use testkit::product::SecretKey;
use testkit::{Fixture, SECRET, TEST_USER, enroll_bin, oathtool, settle_in_step, wrong_code};

const THREADS: usize = 50;

/// Runs `login` on [`THREADS`] threads released at once; returns their statuses.
fn all_at_once(login: impl Fn() -> i32 + Sync) -> Vec<i32> {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    login()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("login thread"))
            .collect()
    })
}

#[test]
fn fifty_simultaneous_logins_with_one_valid_code_give_exactly_one_success() {
    let fixture = Fixture::new("max_failures = 1000", "");
    fixture.provision(SECRET);
    settle_in_step(10);
    let code = oathtool(SECRET, 0);
    let statuses = all_at_once(|| fixture.login(&code).status);
    let successes = statuses.iter().filter(|s| **s == SUCCESS).count();
    assert_eq!(successes, 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == SUCCESS || *s == AUTH_ERR),
        "{statuses:?}"
    );
    let state = fixture.state();
    assert_eq!(state.used_until, (testkit::now() / 30 + 1) * 30);
    assert_eq!(state.failures, 49, "every replay is a counted failure");
}

#[test]
fn fifty_simultaneous_wrong_codes_raise_the_failure_count_by_fifty() {
    let fixture = Fixture::new("max_failures = 1000", "");
    fixture.provision(SECRET);
    settle_in_step(10);
    let wrong = wrong_code(SECRET);
    let statuses = all_at_once(|| fixture.login(&wrong).status);
    assert!(statuses.iter().all(|s| *s == AUTH_ERR), "{statuses:?}");
    assert_eq!(fixture.state().failures, 50);
}

#[test]
fn fifty_parallel_guesses_cannot_outrun_the_lockout() {
    // Every session passes the first look at the lock-out before anyone has failed;
    // the re-check under the state lock still stops all but the first five guesses.
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(10);
    let wrong = wrong_code(SECRET);
    let statuses = all_at_once(|| fixture.login(&wrong).status);
    assert!(statuses.iter().all(|s| *s == AUTH_ERR), "{statuses:?}");
    let state = fixture.state();
    assert_eq!(state.failures, 5, "only five guesses were checked");
    assert!(state.locked_until > testkit::now());
}

/// A small pseudo-random sequence for kill delays (no need for a dependency).
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u64::from(d.subsec_nanos()) | 1);
        eprintln!("jitter seed {seed}");
        Jitter(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

const OTHER_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

#[test]
fn an_enrollment_killed_at_any_point_leaves_the_old_or_the_new_record() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    let secrets = [SECRET, OTHER_SECRET];
    let keys = secrets.map(|s| SecretKey::from_base32(s).expect("secret"));
    let mut jitter = Jitter::new();
    let mut finished = 0;
    for round in 0..60 {
        let secret = secrets[round % 2];
        let mut child = Command::new(enroll_bin())
            .arg("--config")
            .arg(fixture.config_path())
            .args(["--user", TEST_USER, "--secret", secret, "--no-confirm", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn totp-enroll");
        std::thread::sleep(Duration::from_micros(jitter.below(6000)));
        let _ = child.kill();
        if child.wait().expect("wait").success() {
            finished += 1;
        }
        let text = std::fs::read_to_string(fixture.record_path()).expect("the record is never missing");
        let record = Record::parse(&text).unwrap_or_else(|e| panic!("round {round}: torn record: {e}"));
        assert!(
            keys.contains(&record.secret),
            "round {round}: neither old nor new"
        );
    }
    eprintln!("{finished} of 60 enrollments finished before the kill");

    // What the killed writers left behind blocks neither an enrollment nor a login.
    let planted = fixture.record_path().with_file_name(format!(
        ".{}.tmp.4000000",
        fixture.record_path().file_name().expect("name").to_string_lossy()
    ));
    std::fs::write(&planted, "a stale temporary").expect("plant a stale temporary");
    let out = fixture.enroll(&["--user", TEST_USER, "--secret", SECRET, "--no-confirm", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
    // Killed writers' temporaries hold secrets that may since have been replaced: the
    // next successful enrollment removes them.
    assert_eq!(stale_temporaries(&fixture), Vec::<String>::new());
}

/// Temporaries of this fixture's record (`.NAME.tmp.PID`) in the user's home.
fn stale_temporaries(fixture: &Fixture) -> Vec<String> {
    let record = fixture.record_path();
    let prefix = format!(".{}.tmp.", record.file_name().expect("name").to_string_lossy());
    let home = record.parent().expect("home");
    std::fs::read_dir(home)
        .expect("home")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

/// The child process of [`a_login_killed_at_any_point_leaves_a_readable_state`]: wrong
/// codes in a loop until killed. Does nothing unless started by that test.
#[test]
#[ignore = "helper process, started by the kill test"]
fn login_worker_process() {
    let confdir = std::env::var_os("PAM_TOTP_WORKER_CONFDIR").expect("started by the kill test");
    let confdir = std::path::PathBuf::from(confdir);
    for _ in 0..100_000 {
        let login = pam_client::Login {
            confdir: &confdir,
            service: "totp",
            user: TEST_USER,
            rhost: None,
        };
        let _ = pam_client::authenticate(&login, &[b"000000"]);
    }
}

#[test]
fn a_login_killed_at_any_point_leaves_a_readable_state() {
    let fixture = Fixture::new("max_failures = 1000000", "");
    fixture.provision(SECRET);
    let exe = std::env::current_exe().expect("test binary");
    let mut jitter = Jitter::new();
    let mut previous = 0;
    for round in 0..40 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "races::login_worker_process",
                "--ignored",
                "--test-threads=1",
            ])
            .env("PAM_TOTP_WORKER_CONFDIR", fixture.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker");
        std::thread::sleep(Duration::from_millis(10 + jitter.below(40)));
        child.kill().expect("kill worker");
        child.wait().expect("wait");
        // The lock died with the worker, and whatever it was writing, one slot is whole.
        let state = testkit::product::StateDir::open(&fixture.state_dir())
            .and_then(|dir| dir.lock(TEST_USER))
            .unwrap_or_else(|e| panic!("round {round}: state unusable after a kill: {e}"))
            .state();
        assert!(state.failures >= previous, "round {round}: failures went back");
        previous = state.failures;
    }
    assert!(previous > 0, "the workers never got to log in");
    eprintln!("{previous} failed logins recorded across 40 killed workers");
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}
