//! Many hosts, one enrollment: two "hosts" are two separate processes (this test binary
//! run again as `host_process`), each with its own PAM service, config, database role,
//! network namespace (`testkit/src/netns.rs`: a veth link to the server, TLS with
//! `verify-full` over it) and clock: host A's runs 5 minutes ahead and host B's 5
//! minutes behind (libfaketime), 10 minutes apart, and the database's clock decides.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pam_client::{AUTH_ERR, Login, SUCCESS};
use testkit::netns::NetHost;
use testkit::postgres::{Cluster, LIBFAKETIME, PgHost, Pki, enroll, set_policy, state};
use testkit::{Fixture, SECRET, TEST_USER, oathtool, settle_in_step, wrong_code};

const CONFDIR: &str = "PAM_TOTP_HOST_CONFDIR";
const CODES: &str = "PAM_TOTP_HOST_CODES";
const START_AT_MS: &str = "PAM_TOTP_HOST_START_AT_MS";
const CLOCK_OFFSET: &str = "PAM_TOTP_HOST_CLOCK_OFFSET";
const FILE_CONFDIR: &str = "PAM_TOTP_HOST_FILE_CONFDIR";
const REAL_CODE: &str = "PAM_TOTP_HOST_REAL_CODE";

/// Host A's clock runs this many seconds ahead of the real one, host B's as many behind.
const SKEW: i64 = 300;

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// Not a test of its own: the body of a host process. First, with the file store
/// (`PAM_TOTP_HOST_FILE_CONFDIR`), logs in with a code of the real time, which this
/// process's clock (moved by libfaketime) must refuse: `clock-check N`. Then logs in once
/// per code of `PAM_TOTP_HOST_CODES`, all at once (one thread each) from the real
/// instant `PAM_TOTP_HOST_START_AT_MS`, and prints `status N` per login.
#[test]
fn host_process() {
    let Ok(confdir) = std::env::var(CONFDIR) else {
        return;
    };
    let codes = std::env::var(CODES).unwrap();
    let offset_ms = i128::from(std::env::var(CLOCK_OFFSET).unwrap().parse::<i64>().unwrap()) * 1000;
    let file_confdir = std::env::var(FILE_CONFDIR).unwrap();
    let real_code = std::env::var(REAL_CODE).unwrap();
    let file_store = Login {
        confdir: Path::new(&file_confdir),
        service: "totp",
        user: TEST_USER,
        rhost: Some("192.0.2.7"),
    };
    let checked = pam_client::authenticate(&file_store, &[real_code.as_bytes()]);
    println!("\nclock-check {}", checked.status);
    // The start, on this process's clock.
    let start_at: i128 = std::env::var(START_AT_MS).unwrap().parse::<i128>().unwrap() + offset_ms;
    let wait = u64::try_from((start_at - i128::try_from(unix_ms()).unwrap()).max(0)).unwrap();
    std::thread::sleep(Duration::from_millis(wait));
    let statuses: Vec<i32> = std::thread::scope(|scope| {
        let logins: Vec<_> = codes
            .split(',')
            .map(|code| {
                let confdir = Path::new(&confdir);
                scope.spawn(move || {
                    let login = Login {
                        confdir,
                        service: "totp",
                        user: TEST_USER,
                        rhost: Some("192.0.2.7"),
                    };
                    pam_client::authenticate(&login, &[code.as_bytes()])
                })
            })
            .collect();
        logins.into_iter().map(|h| h.join().unwrap().status).collect()
    });
    for status in statuses {
        // On a line of its own: the test harness may have left "test host_process ... ".
        println!("\nstatus {status}");
    }
}

/// A host of the test: its database fixture and network, and its clock's offset from
/// the real one (seconds).
struct Host {
    pg: PgHost,
    clock_offset: i64,
    /// A file-store setup with `TEST_USER` enrolled, for the clock check.
    file_store: Fixture,
}

/// Starts a host process logging in with `codes` from `start_at_ms` (real time), its
/// clock moved by `host.clock_offset` seconds.
fn spawn_host(host: &Host, codes: &[String], start_at_ms: u128) -> std::process::Child {
    let exe = std::env::current_exe().unwrap();
    let mut command = match &host.pg.network {
        Some(network) => network.command(&exe),
        None => Command::new(exe),
    };
    command
        .args([
            "--exact",
            "hosts::host_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CONFDIR, host.pg.fixture.dir.path())
        .env(CODES, codes.join(","))
        .env(START_AT_MS, start_at_ms.to_string())
        .env(CLOCK_OFFSET, host.clock_offset.to_string())
        .env(FILE_CONFDIR, host.file_store.dir.path())
        .env(REAL_CODE, oathtool(SECRET, 0))
        // `ip netns exec` runs under it too, harmlessly.
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", format!("{:+}", host.clock_offset))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The logins' statuses, after checking that the process's clock was not the real one
/// (a right code of the real time refused by the file store).
fn statuses(child: std::process::Child) -> Vec<i32> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "host process failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let field = |prefix: &str| -> Vec<i32> {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|s| s.parse().unwrap())
            .collect()
    };
    assert_eq!(
        field("clock-check "),
        [AUTH_ERR],
        "the host process's clock did not move: {stdout}"
    );
    field("status ")
}

/// Logs in on `host` in a process of its own, now.
fn login_on(host: &Host, codes: &[String]) -> Vec<i32> {
    statuses(spawn_host(host, codes, 0))
}

/// A database with `TEST_USER` enrolled, and two hosts with their own networks, roles
/// (`host_a`, `host_b`), the config lines `config`, and clocks: A's `SKEW` seconds
/// ahead, B's as many behind.
fn two_hosts(config: &str) -> (Cluster, Host, Host) {
    let (net_a, net_b) = (NetHost::new(), NetHost::new());
    let cluster = Cluster::start_listening(&[&net_a.server_addr, &net_b.server_addr]);
    let pki = Pki::new("unused");
    cluster.serve_network_hosts(&pki);
    enroll(&cluster, TEST_USER, SECRET);
    let host = |role, network, clock_offset| {
        let file_store = Fixture::new("", "");
        file_store.provision(SECRET);
        Host {
            pg: PgHost::on_network(&cluster, role, config, &pki, network),
            clock_offset,
            file_store,
        }
    };
    let a = host("host_a", net_a, SKEW);
    let b = host("host_b", net_b, -SKEW);
    (cluster, a, b)
}

#[test]
fn a_code_accepted_on_host_a_is_refused_on_host_b() {
    let (cluster, a, b) = two_hosts("");
    settle_in_step(5);
    let code = oathtool(SECRET, 0);
    assert_eq!(login_on(&a, std::slice::from_ref(&code)), [SUCCESS]);
    assert_eq!(login_on(&b, &[code]), [AUTH_ERR], "the code was used on host A");
    // The next step's code is still good on B.
    assert_eq!(login_on(&b, &[oathtool(SECRET, 1)]), [SUCCESS]);
    // The logins came over each host's own link, not the loopback.
    let log = cluster.log();
    for host in [&a, &b] {
        let server = &host.pg.network.as_ref().unwrap().server_addr;
        let peer = format!("host={}2 ", server.strip_suffix('1').unwrap());
        assert!(log.contains(&peer), "no connection from {peer}: {log}");
    }
}

#[test]
fn failures_on_host_a_and_host_b_add_up_to_one_lock_out() {
    let (cluster, a, b) = two_hosts("");
    set_policy(&cluster, |policy| {
        policy.max_failures = 4;
        policy.lockout_seconds = 600;
        policy.lockout_max_seconds = 600;
    });
    settle_in_step(8);
    let wrong = wrong_code(SECRET);
    assert_eq!(
        login_on(&a, &[wrong.clone(), wrong.clone()]),
        [AUTH_ERR, AUTH_ERR]
    );
    assert_eq!(
        state(&cluster, TEST_USER).locked_until,
        0,
        "two failures: not yet"
    );
    assert_eq!(login_on(&b, &[wrong.clone(), wrong]), [AUTH_ERR, AUTH_ERR]);
    let locked = state(&cluster, TEST_USER);
    assert_eq!(locked.failures, 4);
    assert!(locked.locked_until >= testkit::now() + 590, "{locked:?}");
    // Locked out on both hosts, even with the right code.
    let right = oathtool(SECRET, 0);
    let refused = a.pg.fixture.login(&right);
    assert_eq!(refused.status, AUTH_ERR);
    assert!(
        refused.prompts().is_empty(),
        "a locked-out user is not prompted: {refused:?}"
    );
    assert_eq!(login_on(&b, &[right]), [AUTH_ERR]);
    assert_eq!(state(&cluster, TEST_USER).used_until, 0, "no code was accepted");
}

/// 25 logins on each of two hosts, all with the one code of this step, started at
/// once, under the database's policy allowing `max_failures` (none: the default):
/// (successes, refusals), and the cluster to look at afterwards.
fn fifty_logins_with_one_code(max_failures: Option<u32>) -> ((usize, usize), Cluster) {
    // A long deadline: 100 connections at once on a busy 2-core CI machine must not
    // turn a refusal into a timeout.
    let (cluster, a, b) = two_hosts("postgres_timeout_ms = 20000\n");
    if let Some(max_failures) = max_failures {
        set_policy(&cluster, |policy| policy.max_failures = max_failures);
    }
    settle_in_step(12);
    let code = vec![oathtool(SECRET, 0); 25];
    let start_at = unix_ms() + 1500;
    let on_a = spawn_host(&a, &code, start_at);
    let on_b = spawn_host(&b, &code, start_at);
    let all: Vec<i32> = statuses(on_a).into_iter().chain(statuses(on_b)).collect();
    assert_eq!(all.len(), 50);
    let successes = all.iter().filter(|s| **s == SUCCESS).count();
    let refused = all.iter().filter(|s| **s == AUTH_ERR).count();
    println!("50 concurrent logins (max_failures {max_failures:?}): {successes} success, {refused} refused");
    ((successes, refused), cluster)
}

#[test]
fn fifty_concurrent_logins_with_one_valid_code_across_two_hosts_give_exactly_one_success() {
    // Enough allowed failures that every attempt reaches the verdict: the accepting
    // UPDATE alone must let only one through.
    let (verdicts, cluster) = fifty_logins_with_one_code(Some(100));
    assert_eq!(verdicts, (1, 49));
    let after = state(&cluster, TEST_USER);
    assert_eq!(after.used_until, (testkit::now() / 30 + 1) * 30);
    // Each refused attempt was counted (those after the success; those before it were
    // cleared by it): never more than the 49 refusals.
    assert!(after.failures <= 49, "{after:?}");
}

#[test]
fn fifty_concurrent_logins_under_the_default_lock_out_still_give_exactly_one_success() {
    // The database's default max_failures = 5: the replays after the winner lock the
    // user out; those refused unchecked and the winner's success still add up to one.
    let (verdicts, _cluster) = fifty_logins_with_one_code(None);
    assert_eq!(verdicts, (1, 49));
}
