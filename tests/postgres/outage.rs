//! The database gone or silent: every login fails closed within the deadline, with the
//! "cannot be checked" message to the user and `database unavailable:` in syslog; sshd
//! is never held. After the server is back, logins work and nothing was lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pam_client::{AUTH_ERR, SUCCESS, SYSTEM_ERR};
use testkit::postgres::{
    Cluster, OUTAGE_LIMIT, OUTAGE_TIMEOUT_MS, PgHost, enroll, outage_policy, set_policy, state,
};
use testkit::product::DbError;
use testkit::{SECRET, TEST_USER, oathtool, settle_in_step, wrong_code};

#[test]
fn logins_during_an_outage_fail_closed_in_time_and_after_a_restart_nothing_is_lost() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    // No lock-out getting in the way of the run of wrong codes.
    set_policy(&cluster, |policy| policy.max_failures = 1000);
    let host = PgHost::new(&cluster, "host_a", &outage_policy());
    settle_in_step(20);
    let code = oathtool(SECRET, 0);
    assert_eq!(host.fixture.login(&code).status, SUCCESS);
    let before = state(&cluster, TEST_USER);

    // A run of logins with a wrong code, while the server is stopped and started again.
    let stop = AtomicBool::new(false);
    let results: Vec<(i32, Duration, Vec<String>)> = std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            let mut results = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let t = host.fixture.login(&wrong_code(SECRET));
                let messages = t.messages().into_iter().map(str::to_owned).collect();
                results.push((t.status, started.elapsed(), messages));
            }
            results
        });
        std::thread::sleep(Duration::from_millis(500));
        cluster.stop();
        std::thread::sleep(Duration::from_secs(3));
        cluster.resume();
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::Relaxed);
        run.join().unwrap()
    });
    let refused = results.iter().filter(|r| r.0 == AUTH_ERR).count();
    let unavailable: Vec<_> = results.iter().filter(|r| r.0 == SYSTEM_ERR).collect();
    println!(
        "{} logins: {refused} refused, {} failed closed (slowest {:?})",
        results.len(),
        unavailable.len(),
        unavailable.iter().map(|r| r.1).max()
    );
    assert!(!unavailable.is_empty(), "no login ran during the outage");
    for (status, took, messages) in &results {
        assert!(*status == AUTH_ERR || *status == SYSTEM_ERR, "status {status}");
        assert!(*took < OUTAGE_LIMIT, "a login took {took:?}");
        if *status == SYSTEM_ERR {
            assert!(
                messages.iter().any(|m| m.contains("cannot be checked right now")),
                "{messages:?}"
            );
        }
    }
    assert!(
        results.last().is_some_and(|r| r.0 == AUTH_ERR),
        "logins work again"
    );

    // Nothing lost: the record, the used step (its code is still a replay), and every
    // counted failure (a login cut off mid-way may or may not have been counted).
    let after = state(&cluster, TEST_USER);
    assert_eq!(after.used_until, before.used_until);
    let failures = usize::try_from(after.failures).unwrap();
    assert!(
        failures >= refused && failures <= refused + unavailable.len(),
        "{after:?}"
    );
    assert_eq!(host.fixture.login(&code).status, AUTH_ERR, "still a replay");
    assert_eq!(host.fixture.login(&oathtool(SECRET, 1)).status, SUCCESS);
}

#[test]
fn a_silent_connection_cannot_hold_a_statement_past_the_deadline() {
    let cluster = Cluster::start();
    let mut client = cluster.admin_with_timeout(Duration::from_millis(OUTAGE_TIMEOUT_MS));
    let rows = client.query("ask", "SELECT pg_backend_pid()", &[]).unwrap();
    let backend = nix::unistd::Pid::from_raw(rows[0].get::<_, i32>(0));
    // Only this connection's server process stops: its socket stays open and silent.
    nix::sys::signal::kill(backend, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let started = Instant::now();
    let result = client.query("ask again", "SELECT 1", &[]);
    let took = started.elapsed();
    nix::sys::signal::kill(backend, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(matches!(result, Err(DbError::Timeout { .. })), "{result:?}");
    assert!(took < client.timeout() + Duration::from_secs(1), "{took:?}");
}

#[test]
fn a_row_held_by_another_transaction_times_out_on_the_server_and_fails_closed() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    let host = PgHost::new(&cluster, "host_a", &outage_policy());
    assert_eq!(host.fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
    let mut blocker = cluster.admin();
    blocker
        .batch_execute(
            "hold the row",
            &format!("BEGIN; SELECT * FROM pam_totp.login_state WHERE user_name = '{TEST_USER}' FOR UPDATE"),
        )
        .unwrap();
    let started = Instant::now();
    let t = host.fixture.login(&oathtool(SECRET, 0));
    let took = started.elapsed();
    drop(blocker);
    assert_eq!(t.status, SYSTEM_ERR, "{t:?}");
    assert!(took < OUTAGE_LIMIT, "{took:?}");
    assert_eq!(
        state(&cluster, TEST_USER).failures,
        1,
        "the blocked attempt was not counted"
    );
}
