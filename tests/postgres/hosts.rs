//! Many hosts, one enrollment: two "hosts" are two separate processes (this test binary
//! run again as `host_process`), each with its own PAM service, config, database role
//! and network namespace (`testkit/src/netns.rs`: a veth link to the server, TLS with
//! `verify-full` over it), sharing one PostgreSQL database.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pam_client::{AUTH_ERR, Login, SUCCESS};
use testkit::netns::NetHost;
use testkit::postgres::{Cluster, PgHost, Pki, enroll, state};
use testkit::{SECRET, TEST_USER, oathtool, settle_in_step, wrong_code};

const CONFDIR: &str = "PAM_TOTP_HOST_CONFDIR";
const CODES: &str = "PAM_TOTP_HOST_CODES";
const START_AT_MS: &str = "PAM_TOTP_HOST_START_AT_MS";

fn unix_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// Not a test of its own: the body of a host process. Logs in once per code of
/// `PAM_TOTP_HOST_CODES`, all at once (one thread each) from the instant
/// `PAM_TOTP_HOST_START_AT_MS`, and prints `status N` per login.
#[test]
fn host_process() {
    let Ok(confdir) = std::env::var(CONFDIR) else {
        return;
    };
    let codes = std::env::var(CODES).unwrap();
    let start_at: u128 = std::env::var(START_AT_MS).unwrap().parse().unwrap();
    let wait = start_at.saturating_sub(unix_ms());
    std::thread::sleep(Duration::from_millis(u64::try_from(wait).unwrap()));
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

/// Starts a host process logging in with `codes` from `start_at_ms`.
fn spawn_host(host: &PgHost, codes: &[String], start_at_ms: u128) -> std::process::Child {
    let exe = std::env::current_exe().unwrap();
    let mut command = match &host.network {
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
        .env(CONFDIR, host.fixture.dir.path())
        .env(CODES, codes.join(","))
        .env(START_AT_MS, start_at_ms.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn statuses(child: std::process::Child) -> Vec<i32> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "host process failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("status "))
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Logs in on `host` in a process of its own, now.
fn login_on(host: &PgHost, codes: &[String]) -> Vec<i32> {
    statuses(spawn_host(host, codes, 0))
}

/// A database with `TEST_USER` enrolled, and two hosts with their own networks and
/// roles (`host_a`, `host_b`) and the config lines `policy`.
fn two_hosts(policy: &str) -> (Cluster, PgHost, PgHost) {
    let (net_a, net_b) = (NetHost::new(), NetHost::new());
    let cluster = Cluster::start_listening(&[&net_a.server_addr, &net_b.server_addr]);
    let pki = Pki::new("unused");
    cluster.serve_network_hosts(&pki);
    enroll(&cluster, TEST_USER, SECRET);
    let a = PgHost::on_network(&cluster, "host_a", policy, &pki, net_a);
    let b = PgHost::on_network(&cluster, "host_b", policy, &pki, net_b);
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
        let server = &host.network.as_ref().unwrap().server_addr;
        let peer = format!("host={}2 ", server.strip_suffix('1').unwrap());
        assert!(log.contains(&peer), "no connection from {peer}: {log}");
    }
}

#[test]
fn failures_on_host_a_and_host_b_add_up_to_one_lock_out() {
    let policy = "max_failures = 4\nlockout_seconds = 600\nlockout_max_seconds = 600\n";
    let (cluster, a, b) = two_hosts(policy);
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
    let refused = a.fixture.login(&right);
    assert_eq!(refused.status, AUTH_ERR);
    assert!(
        refused.prompts().is_empty(),
        "a locked-out user is not prompted: {refused:?}"
    );
    assert_eq!(login_on(&b, &[right]), [AUTH_ERR]);
    assert_eq!(state(&cluster, TEST_USER).used_until, 0, "no code was accepted");
}

/// 25 logins on each of two hosts, all with the one code of this step, started at
/// once: (successes, refusals), and the cluster to look at afterwards.
fn fifty_logins_with_one_code(policy: &str) -> ((usize, usize), Cluster) {
    let (cluster, a, b) = two_hosts(policy);
    settle_in_step(12);
    let code = vec![oathtool(SECRET, 0); 25];
    let start_at = unix_ms() + 1500;
    let on_a = spawn_host(&a, &code, start_at);
    let on_b = spawn_host(&b, &code, start_at);
    let all: Vec<i32> = statuses(on_a).into_iter().chain(statuses(on_b)).collect();
    assert_eq!(all.len(), 50);
    let successes = all.iter().filter(|s| **s == SUCCESS).count();
    let refused = all.iter().filter(|s| **s == AUTH_ERR).count();
    println!(
        "50 concurrent logins ({}): {successes} success, {refused} refused",
        policy.trim()
    );
    ((successes, refused), cluster)
}

#[test]
fn fifty_concurrent_logins_with_one_valid_code_across_two_hosts_give_exactly_one_success() {
    // Enough allowed failures that every attempt reaches the verdict: the accepting
    // UPDATE alone must let only one through. A long deadline: 100 connections at once
    // on a busy 2-core CI machine must not turn a refusal into a timeout.
    let (verdicts, cluster) = fifty_logins_with_one_code("max_failures = 100\npostgres_timeout_ms = 20000\n");
    assert_eq!(verdicts, (1, 49));
    let after = state(&cluster, TEST_USER);
    assert_eq!(after.used_until, (testkit::now() / 30 + 1) * 30);
    // Each refused attempt was counted (those after the success; those before it were
    // cleared by it): never more than the 49 refusals.
    assert!(after.failures <= 49, "{after:?}");
}

#[test]
fn fifty_concurrent_logins_under_the_default_lock_out_still_give_exactly_one_success() {
    // max_failures = 5: the attempts charged before the winner can lock the user out;
    // those refused unchecked and the winner's success must still add up to one.
    let (verdicts, _cluster) = fifty_logins_with_one_code("postgres_timeout_ms = 20000\n");
    assert_eq!(verdicts, (1, 49));
}
