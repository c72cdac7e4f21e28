//! `pam-bench`: times the same logins through real libpam for pam_totp and the modules
//! sysadmins use today, in one run, and prints the table BENCHMARKS.md records.
//!
//! Run as root on a quiet machine: `make bench` (or see `pam-bench --help`). It creates
//! system users `ptbench000`... and `ptbench-none`, and a work directory; `--cleanup`
//! removes both.

#![forbid(unsafe_code)]

mod floor;
mod peers;
mod report;
mod run;
mod stats;
mod syslog_sink;
mod users;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use peers::{ALL, Peer};
use run::{Expect, Harness, Samples};
use stats::Summary;

const HELP: &str = "\
pam-bench: pam_totp vs pam_google_authenticator, pam_oath and pam_permit, same logins

Options (defaults in brackets):
  --module PATH     the pam_totp module to time [target/release/libpam_totp.so]
  --work DIR        work directory, on the disk that holds /var/lib [/var/lib/pam-bench]
  --users N         login users per store [200]
  --sizes LIST      enrolled users per store [10,10000,100000]
  --threads LIST    concurrent logins, measured on the middle store [1,2,8]
  --repeat N        samples for the wrong-code and unenrolled scenarios [300]
  --cycles N        load/unload cycles for the leak check [100000]
  --period S        TOTP step of every peer (pam_oath accepts only 30 or 60) [30]
  --out FILE        also write the report to FILE
  --cleanup         remove the benchmark's users and work directory, then exit
  --cycles-of SVC   only run --cycles logins of the unenrolled user (or $PAM_BENCH_USER)
                    against service SVC (permit, totp, google, oath) of the last run's
                    setup, with a wrong code: for profilers
  --correct-of SVC  the same with right codes: --cycles logins of the --users login users
                    in turn, each at most once per time step (waits for a fresh step)
  --enrollment-only only pam_totp's \"does timing reveal enrollment\" scenario (--repeat
                    wrong codes each for an enrolled, an unenrolled and an unknown user):
                    a short run
";

pub struct Options {
    pub module: PathBuf,
    pub work: PathBuf,
    users: usize,
    pub sizes: Vec<usize>,
    threads: Vec<usize>,
    repeat: usize,
    cycles: usize,
    period: u64,
    out: Option<PathBuf>,
    cleanup: bool,
    memory_of: Option<String>,
    cycles_of: Option<String>,
    correct_of: Option<String>,
    enrollment_only: bool,
}

fn parse_list(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|n| n.trim().parse().map_err(|_| format!("not a number: {n}")))
        .collect()
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        module: PathBuf::from("target/release/libpam_totp.so"),
        work: PathBuf::from("/var/lib/pam-bench"),
        users: 200,
        sizes: vec![10, 10_000, 100_000],
        threads: vec![1, 2, 8],
        repeat: 300,
        cycles: 100_000,
        period: 30,
        out: None,
        cleanup: false,
        memory_of: None,
        cycles_of: None,
        correct_of: None,
        enrollment_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|_| format!("not a number: {v}"));
        match arg.as_str() {
            "--module" => options.module = PathBuf::from(value()?),
            "--work" => options.work = PathBuf::from(value()?),
            "--users" => options.users = number(value()?)?,
            "--sizes" => options.sizes = parse_list(&value()?)?,
            "--threads" => options.threads = parse_list(&value()?)?,
            "--repeat" => options.repeat = number(value()?)?,
            "--cycles" => options.cycles = number(value()?)?,
            "--period" => options.period = value()?.parse().map_err(|_| "bad --period".to_owned())?,
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "--cleanup" => options.cleanup = true,
            "--memory-of" => options.memory_of = Some(value()?),
            "--cycles-of" => options.cycles_of = Some(value()?),
            "--correct-of" => options.correct_of = Some(value()?),
            "--enrollment-only" => options.enrollment_only = true,
            "--help" | "-h" => return Err(HELP.to_owned()),
            other => return Err(format!("unknown option {other}\n\n{HELP}")),
        }
    }
    options.module = std::fs::canonicalize(&options.module).map_err(|e| {
        format!(
            "{}: {e} (build it: cargo build --release)",
            options.module.display()
        )
    })?;
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let confdir = options.work.join("pam.d");
    if let Some(peer) = &options.memory_of {
        // Child mode: measure one peer's memory in a fresh process.
        let peer = ALL
            .iter()
            .find(|p| p.service() == peer)
            .copied()
            .unwrap_or(Peer::Permit);
        println!("{}", floor::memory_added(&confdir, peer, &users::name(0)));
        return ExitCode::SUCCESS;
    }
    let _syslog = syslog_sink::start();
    if let Some(service) = &options.cycles_of {
        let Some(peer) = ALL.iter().find(|p| p.service() == service).copied() else {
            eprintln!("unknown service {service}");
            return ExitCode::from(2);
        };
        let user = std::env::var("PAM_BENCH_USER").unwrap_or_else(|_| users::UNENROLLED.to_owned());
        let leak = floor::load_unload_cycles(&confdir, peer, &user, options.cycles);
        println!("{leak:?}");
        return ExitCode::SUCCESS;
    }
    if let Some(service) = &options.correct_of {
        let Some(peer) = ALL.iter().find(|p| p.service() == service).copied() else {
            eprintln!("unknown service {service}");
            return ExitCode::from(2);
        };
        let harness = Harness::new(confdir, options.period);
        let users: Vec<String> = (0..options.users.max(1)).map(users::name).collect();
        let mut samples = Samples::default();
        while samples.times.len() < options.cycles {
            harness.wait_for_fresh_step();
            let n = (options.cycles - samples.times.len()).min(users.len());
            samples.merge(harness.correct_once(peer, &users[..n]));
        }
        let faults = samples.faults_per_login().unwrap_or(0.0);
        match Summary::of(samples.times, samples.unexpected) {
            Some(s) => println!(
                "{} right codes: median {}, {} refused, {faults:.1} minor faults per login",
                s.samples,
                stats::micros(s.median),
                s.unexpected
            ),
            None => println!("no logins"),
        }
        return ExitCode::SUCCESS;
    }
    if options.cleanup {
        users::remove(options.users);
        let _ = std::fs::remove_dir_all(&options.work);
        return ExitCode::SUCCESS;
    }
    if options.enrollment_only {
        return match enrollment_only(&options, &confdir) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("pam-bench: {message}");
                ExitCode::from(1)
            }
        };
    }
    match bench(&options, &confdir) {
        Ok(report) => {
            println!("{report}");
            if let Some(out) = &options.out
                && let Err(e) = std::fs::write(out, &report)
            {
                eprintln!("cannot write {}: {e}", out.display());
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("pam-bench: {message}");
            ExitCode::from(1)
        }
    }
}

/// One scenario's summary for each peer.
type PerPeer = Vec<(Peer, Summary)>;

/// One row of the login table: a scenario's summary for each peer.
struct Row {
    pub scenario: &'static str,
    pub size: usize,
    pub threads: usize,
    pub by_peer: PerPeer,
}

impl Row {
    pub fn median(&self, peer: Peer) -> Option<Duration> {
        self.by_peer
            .iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, s)| s.median)
    }
}

/// The users, the confdir and every peer's service file.
fn set_up(options: &Options, confdir: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    users::ensure(options.users)?;
    std::fs::create_dir_all(confdir).map_err(io)?;
    // libpam logs a complaint at every start when the confdir has no `other` service.
    std::fs::write(confdir.join("other"), "auth required pam_deny.so\n").map_err(io)?;
    for peer in ALL {
        peer.write_service(confdir, &options.work, &options.module)
            .map_err(io)?;
    }
    Ok(())
}

/// A wrong code for an enrolled, an unenrolled and an unknown user of pam_totp, one of
/// each in turn, so that a change in the machine's load hits the three alike.
fn enrollment_hidden(
    harness: &Harness,
    enrolled: &str,
    repeat: usize,
) -> Result<Vec<(&'static str, Summary)>, String> {
    if nix::unistd::User::from_name(users::UNKNOWN)
        .ok()
        .flatten()
        .is_some()
    {
        return Err(format!("{} must not be a user", users::UNKNOWN));
    }
    let cases = [
        ("enrolled", enrolled),
        ("unenrolled", users::UNENROLLED),
        ("unknown", users::UNKNOWN),
    ];
    let mut samples: Vec<Samples> = cases.iter().map(|_| Samples::default()).collect();
    for _ in 0..repeat {
        let code = harness.wrong_code();
        for ((_, user), samples) in cases.iter().zip(&mut samples) {
            samples.merge(harness.repeated(Peer::Totp, user, &code, 1, Expect::Failure));
        }
    }
    cases
        .iter()
        .zip(samples)
        .map(|((case, _), samples)| summarise(Peer::Totp, samples).map(|s| (*case, s)))
        .collect()
}

/// `--enrollment-only`: the smallest store and that one scenario.
fn enrollment_only(options: &Options, confdir: &Path) -> Result<String, String> {
    set_up(options, confdir)?;
    let size = options.sizes.first().copied().unwrap_or(10).max(1);
    let enrolled: Vec<String> = (0..options.users.min(size).max(1)).map(users::name).collect();
    Peer::Totp
        .populate(&options.work, &enrolled, options.period)
        .map_err(|e| e.to_string())?;
    let harness = Harness::new(confdir.to_owned(), options.period);
    eprintln!("store {size}: wrong codes of an enrolled, an unenrolled and an unknown user");
    let cases = enrollment_hidden(&harness, &enrolled[0], options.repeat)?;
    Ok(report::enrollment(size, &cases))
}

fn bench(options: &Options, confdir: &Path) -> Result<String, String> {
    let io = |e: std::io::Error| e.to_string();
    set_up(options, confdir)?;
    let harness = Harness::new(confdir.to_owned(), options.period);

    let durable =
        Summary::of(floor::pwrite_fdatasync(&options.work, 500).map_err(io)?, 0).ok_or("no samples")?;
    let rewrite =
        Summary::of(floor::rewrite_rename(&options.work, 200).map_err(io)?, 0).ok_or("no samples")?;

    let mut rows = Vec::new();
    let mut enrollment = Vec::new();
    let middle = options.sizes.get(options.sizes.len() / 2).copied().unwrap_or(0);
    for &size in &options.sizes {
        let logins: Vec<String> = (0..options.users.min(size)).map(users::name).collect();
        let mut enrolled = logins.clone();
        enrolled.extend((logins.len()..size).map(|i| format!("filler{i:06}")));
        for peer in ALL {
            peer.populate(&options.work, &enrolled, options.period)
                .map_err(io)?;
        }
        let thread_counts: &[usize] = if size == middle { &options.threads } else { &[1] };
        for &threads in thread_counts {
            eprintln!("store {size}, {threads} thread(s): correct and replayed codes");
            let (correct, replayed) = correct_rounds(&harness, &logins, threads, options.users)?;
            rows.push(Row {
                scenario: "correct code",
                size,
                threads,
                by_peer: correct,
            });
            rows.push(Row {
                scenario: "replayed code",
                size,
                threads,
                by_peer: replayed,
            });
        }
        if size == options.sizes.first().copied().unwrap_or(0) {
            eprintln!("store {size}: wrong codes of an enrolled, an unenrolled and an unknown user");
            enrollment = enrollment_hidden(&harness, &logins[0], options.repeat)?;
        }
        eprintln!("store {size}: wrong codes, unenrolled user");
        let mut wrong = Vec::new();
        let mut unenrolled = Vec::new();
        for peer in ALL {
            let samples = harness.repeated(
                peer,
                &logins[0],
                &harness.wrong_code(),
                options.repeat,
                Expect::Failure,
            );
            wrong.push((peer, summarise(peer, samples)?));
            let samples =
                harness.repeated(peer, users::UNENROLLED, "123456", options.repeat, Expect::Failure);
            unenrolled.push((peer, summarise(peer, samples)?));
        }
        rows.push(Row {
            scenario: "wrong code",
            size,
            threads: 1,
            by_peer: wrong,
        });
        rows.push(Row {
            scenario: "unenrolled user",
            size,
            threads: 1,
            by_peer: unenrolled,
        });
    }

    eprintln!("memory and load/unload cycles");
    let memory: Vec<(Peer, String)> = ALL.iter().map(|&p| (p, memory_in_child(options, p))).collect();
    let leak = floor::load_unload_cycles(confdir, Peer::Totp, users::UNENROLLED, options.cycles);

    let mut report = report::render(options, &rows, durable, rewrite, &memory, &leak);
    report.push_str(&report::enrollment(
        options.sizes.first().copied().unwrap_or(0),
        &enrollment,
    ));
    Ok(report)
}

/// Summarises a peer's samples; all of them unexpected means a misconfigured peer.
fn summarise(peer: Peer, samples: Samples) -> Result<Summary, String> {
    if samples.unexpected == samples.times.len() {
        return Err(format!(
            "{}: every login ended unexpectedly; is it configured?",
            peer.name()
        ));
    }
    let faults = samples.faults_per_login();
    let mut summary =
        Summary::of(samples.times, samples.unexpected).ok_or_else(|| "no samples".to_owned())?;
    summary.faults = faults;
    Ok(summary)
}

/// Rounds of one login (and one replay) per user per fresh step, until `target` samples.
fn correct_rounds(
    harness: &Harness,
    logins: &[String],
    threads: usize,
    target: usize,
) -> Result<(PerPeer, PerPeer), String> {
    let rounds = target.div_ceil(logins.len().max(1)).clamp(1, 4);
    let mut correct: Vec<(Peer, Samples)> = ALL.iter().map(|&p| (p, Samples::default())).collect();
    let mut replayed: Vec<(Peer, Samples)> = ALL.iter().map(|&p| (p, Samples::default())).collect();
    for round in 0..rounds {
        harness.wait_for_fresh_step();
        // Alternate the order so no peer always runs first in a step.
        for i in 0..ALL.len() {
            let index = if round % 2 == 0 { i } else { ALL.len() - 1 - i };
            let (c, r) = harness.correct_and_replay(ALL[index], logins, threads);
            correct[index].1.merge(c);
            replayed[index].1.merge(r);
        }
    }
    let summarise_all = |v: Vec<(Peer, Samples)>| -> Result<PerPeer, String> {
        v.into_iter()
            .map(|(p, s)| summarise(p, s).map(|s| (p, s)))
            .collect()
    };
    Ok((summarise_all(correct)?, summarise_all(replayed)?))
}

fn memory_in_child(options: &Options, peer: Peer) -> String {
    let output = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .arg("--module")
            .arg(&options.module)
            .arg("--work")
            .arg(&options.work)
            .args(["--memory-of", peer.service()])
            .output()
    });
    match output {
        Ok(out) => format!("{} KiB", String::from_utf8_lossy(&out.stdout).trim()),
        Err(e) => format!("unmeasured ({e})"),
    }
}
