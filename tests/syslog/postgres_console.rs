//! The syslog line of a console attempt with `store = "postgres"`: the same
//! ` channel=console` as the file store's, so an admin reading syslog tells an attack
//! on the console counters from one on the shared ones whichever store checks codes.

use pam_client::AUTH_ERR;
use testkit::namespace::in_private_namespace;
use testkit::postgres::{Cluster, PgHost, enroll, set_policy, state};
use testkit::{SECRET, TEST_USER, wrong_code};

#[test]
fn an_exempt_accounts_console_failure_logs_channel_console_and_a_remote_one_does_not() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    set_policy(&cluster, |policy| {
        policy.lockout_exempt = vec![TEST_USER.to_owned()];
    });
    in_private_namespace(|ns| {
        let host = PgHost::new(&cluster, "host_a", "");
        let at_console = host
            .fixture
            .login_on(TEST_USER, None, "tty1", &wrong_code(SECRET));
        assert_eq!(at_console.status, AUTH_ERR);
        // The database charged the console's own counters: the line says so.
        assert_eq!(state(&cluster, TEST_USER).console_failures, 1);
        let console_lines = ns.lines_with(&["authentication failure", "reason=invalid code"]);
        assert!(
            console_lines.iter().all(|l| l.ends_with(" channel=console")),
            "{console_lines:#?}"
        );

        let remote = host
            .fixture
            .login_on(TEST_USER, Some("192.0.2.7"), "ssh", &wrong_code(SECRET));
        assert_eq!(remote.status, AUTH_ERR);
        assert_eq!(state(&cluster, TEST_USER).failures, 1);
        let remote_lines = ns.lines_with(&["authentication failure", "rhost=192.0.2.7"]);
        assert!(
            remote_lines.iter().all(|l| !l.contains("channel=console")),
            "{remote_lines:#?}"
        );
    });
}
