//! Timing logins: one `pam_start_confdir` → `pam_authenticate` → `pam_end` each, so the
//! module is loaded and unloaded every time, as sshd does for every connection.

use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pam_client::{Login, SUCCESS};

use crate::peers::{Peer, SECRET};

/// What one scenario expects of a peer that checks codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Success,
    Failure,
}

/// Timings of one scenario, and how many logins did not end as the scenario expects
/// (a right code refused, a replay accepted): those are timed too, and reported.
#[derive(Debug, Default)]
pub struct Samples {
    pub times: Vec<Duration>,
    pub unexpected: usize,
    /// Minor page faults of all these logins, counted on the thread that ran each.
    pub minor_faults: u64,
}

impl Samples {
    fn add(&mut self, timed: Timed, as_expected: bool) {
        self.times.push(timed.took);
        self.minor_faults += timed.minor_faults;
        self.unexpected += usize::from(!as_expected);
    }

    pub fn merge(&mut self, other: Samples) {
        self.times.extend(other.times);
        self.unexpected += other.unexpected;
        self.minor_faults += other.minor_faults;
    }

    /// Mean minor page faults per login.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn faults_per_login(&self) -> Option<f64> {
        (!self.times.is_empty()).then(|| self.minor_faults as f64 / self.times.len() as f64)
    }
}

/// One timed login.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub took: Duration,
    pub status: i32,
    /// Minor page faults taken by this thread during the login (module mapping,
    /// relocation, copy-on-write, heap growth): they do not depend on the machine's load.
    pub minor_faults: u64,
}

/// Minor page faults of the calling thread so far.
#[must_use]
pub fn thread_minor_faults() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(0, |u| u64::try_from(u.minor_page_faults()).unwrap_or(0))
}

pub struct Harness {
    pub confdir: PathBuf,
    pub period: u64,
    totp: totp_rs::Totp,
}

impl Harness {
    #[must_use]
    pub fn new(confdir: PathBuf, period: u64) -> Harness {
        let totp = totp_rs::Builder::new()
            .with_secret(SECRET.to_vec())
            .with_step_duration(period)
            .build_noncompliant();
        Harness {
            confdir,
            period,
            totp,
        }
    }

    /// The code for now.
    #[must_use]
    pub fn code_now(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.totp.generate(now).to_string()
    }

    /// A code that is wrong now.
    #[must_use]
    pub fn wrong_code(&self) -> String {
        let right: u32 = self.code_now().parse().unwrap_or(0);
        format!("{:06}", (right + 1) % 1_000_000)
    }

    /// Sleeps until a new time step has just begun, so every user's last step is older.
    pub fn wait_for_fresh_step(&self) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let into = now.as_millis() % u128::from(self.period * 1000);
        let wait = u64::try_from(u128::from(self.period * 1000) - into).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(wait + 20));
    }

    /// One timed login.
    #[must_use]
    pub fn login(&self, peer: Peer, user: &str, code: &str) -> Timed {
        let login = Login {
            confdir: &self.confdir,
            service: peer.service(),
            user,
            rhost: None,
        };
        let faults = thread_minor_faults();
        let start = Instant::now();
        let transcript = pam_client::authenticate(&login, &[code.as_bytes()]);
        let took = start.elapsed();
        Timed {
            took,
            status: transcript.status,
            minor_faults: thread_minor_faults().saturating_sub(faults),
        }
    }

    fn as_expected(peer: Peer, expect: Expect, status: i32) -> bool {
        match (peer.checks_codes(), expect) {
            (false, _) | (true, Expect::Success) => status == SUCCESS,
            (true, Expect::Failure) => status != SUCCESS,
        }
    }

    /// Every user logs in once with the code of the moment, then replays it at once;
    /// users are split over `threads` starting together. Returns (correct, replayed).
    #[must_use]
    pub fn correct_and_replay(&self, peer: Peer, users: &[String], threads: usize) -> (Samples, Samples) {
        let chunk = users.len().div_ceil(threads.max(1)).max(1);
        let barrier = Barrier::new(users.chunks(chunk).count());
        let results: Vec<(Samples, Samples)> = std::thread::scope(|scope| {
            let handles: Vec<_> = users
                .chunks(chunk)
                .map(|mine| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        let (mut correct, mut replayed) = (Samples::default(), Samples::default());
                        for user in mine {
                            let code = self.code_now();
                            let timed = self.login(peer, user, &code);
                            correct.add(timed, Self::as_expected(peer, Expect::Success, timed.status));
                            let timed = self.login(peer, user, &code);
                            replayed.add(timed, Self::as_expected(peer, Expect::Failure, timed.status));
                        }
                        (correct, replayed)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut all = (Samples::default(), Samples::default());
        for (correct, replayed) in results {
            all.0.merge(correct);
            all.1.merge(replayed);
        }
        all
    }

    /// One login of each of `users` with the code of the moment, expected to succeed.
    #[must_use]
    pub fn correct_once(&self, peer: Peer, users: &[String]) -> Samples {
        let mut samples = Samples::default();
        for user in users {
            let timed = self.login(peer, user, &self.code_now());
            samples.add(timed, Self::as_expected(peer, Expect::Success, timed.status));
        }
        samples
    }

    /// `count` logins of `user` with `code`, each expected to end as `expect`.
    #[must_use]
    pub fn repeated(&self, peer: Peer, user: &str, code: &str, count: usize, expect: Expect) -> Samples {
        let mut samples = Samples::default();
        for _ in 0..count {
            let timed = self.login(peer, user, code);
            samples.add(timed, Self::as_expected(peer, expect, timed.status));
        }
        samples
    }
}
