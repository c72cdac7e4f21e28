//! A frozen database server, as syslog shows it: the login fails closed within the
//! deadline and the admin reads `database unavailable:` with the reason.

use std::time::{Duration, Instant};

use pam_client::{SUCCESS, SYSTEM_ERR};
use testkit::namespace::in_private_namespace;
use testkit::postgres::{Cluster, OUTAGE_LIMIT, OUTAGE_TIMEOUT_MS, PgHost, enroll, outage_policy};
use testkit::{SECRET, TEST_USER, oathtool, settle_in_step};

#[test]
fn a_frozen_server_fails_the_login_within_the_timeout_and_says_so_in_syslog() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    in_private_namespace(|ns| {
        let host = PgHost::new(&cluster, "host_a", &outage_policy());
        // SIGSTOP: the kernel still accepts the TCP connection; nothing ever answers.
        cluster.freeze();
        let started = Instant::now();
        let t = host.fixture.login(&oathtool(SECRET, 0));
        let took = started.elapsed();
        cluster.thaw();
        println!("login against a frozen server: {took:?}");
        assert_eq!(t.status, SYSTEM_ERR);
        assert!(t.prompts().is_empty());
        assert!(
            took >= Duration::from_millis(OUTAGE_TIMEOUT_MS - 50) && took < OUTAGE_LIMIT,
            "{took:?}"
        );
        let lines = ns.syslog();
        assert!(
            lines.iter().any(
                |l| l.contains("database unavailable: no answer in time (connect)")
                    && l.contains(&format!("user={TEST_USER}"))
            ),
            "{lines:#?}"
        );
        assert!(lines.iter().all(|l| !l.contains("host_a-password")), "{lines:#?}");
        settle_in_step(3);
        assert_eq!(host.fixture.login(&oathtool(SECRET, 0)).status, SUCCESS, "thawed");
    });
}
