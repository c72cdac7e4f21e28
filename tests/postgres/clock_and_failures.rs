//! Clock trouble explained and failed attempts shown, with `store = "postgres"`: the
//! database checks the code with its own clock and returns the offset and the report
//! from `host_verify` (migration 0004); the host shows them as the file store does.

use pam_client::{AUTH_ERR, SUCCESS, Shown, Transcript};
use testkit::postgres::{Cluster, PgHost, enroll, state};
use testkit::{SECRET, TEST_USER, oathtool, settle_in_step, wrong_code};

fn shown(transcript: &Transcript, error: bool) -> Vec<&str> {
    transcript
        .shown
        .iter()
        .filter_map(|s| match s {
            Shown::Error(text) if error => Some(text.as_str()),
            Shown::Info(text) if !error => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_code_minutes_off_is_refused_counted_and_explained_with_the_databases_clock() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    let host = PgHost::new(&cluster, "host_a", "");
    settle_in_step(3);
    // Behind first: a step behind the window holds no later hint.
    let behind = host.fixture.login(&oathtool(SECRET, -10));
    assert_eq!(behind.status, AUTH_ERR, "{behind:?}\n{}", cluster.log());
    assert!(
        shown(&behind, true)
            .iter()
            .any(|m| m.contains("about 5 minutes behind")),
        "{behind:?}"
    );
    let ahead = host.fixture.login(&oathtool(SECRET, 6));
    assert_eq!(ahead.status, AUTH_ERR, "{ahead:?}");
    assert_eq!(
        shown(&ahead, true),
        [
            "Your code is for a time about 3 minutes ahead of this server's clock: \
          set your phone's time to automatic."
        ]
    );
    let far = host.fixture.login(&oathtool(SECRET, 22));
    assert_eq!(far.status, AUTH_ERR);
    assert!(shown(&far, true).is_empty(), "{far:?}");
    let saved = state(&cluster, TEST_USER);
    assert_eq!((saved.failures, saved.clock_offset), (3, 180));
}

#[test]
fn a_user_without_a_database_enrollment_is_never_told_about_clocks() {
    let cluster = Cluster::start();
    enroll(&cluster, "someone-else", SECRET);
    let host = PgHost::new(&cluster, "host_a", "");
    settle_in_step(3);
    let refused = host.fixture.login(&oathtool(SECRET, 6));
    assert_eq!(refused.status, AUTH_ERR);
    assert!(shown(&refused, true).is_empty(), "{refused:?}");
    assert!(shown(&refused, false).is_empty(), "{refused:?}");
}

#[test]
fn failed_codes_are_shown_once_at_the_next_good_login_from_the_database() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    let host = PgHost::new(&cluster, "host_a", "");
    settle_in_step(5);
    for rhost in ["192.0.2.7", "198.51.100.9"] {
        let refused = host
            .fixture
            .login_on(TEST_USER, Some(rhost), "ssh", &wrong_code(SECRET));
        assert_eq!(refused.status, AUTH_ERR);
    }
    let last = state(&cluster, TEST_USER).last_failure;
    let good = host.fixture.login(&oathtool(SECRET, 0));
    assert_eq!(good.status, SUCCESS, "{good:?}\n{}", cluster.log());
    assert_eq!(
        shown(&good, false),
        [format!(
            "2 failed verification codes since your last login, the last from 198.51.100.9 at {:02}:{:02} UTC.",
            last % 86_400 / 3600,
            last % 3600 / 60
        )]
    );
    let next = host.fixture.login(&oathtool(SECRET, 1));
    assert_eq!(next.status, SUCCESS, "{next:?}");
    assert!(shown(&next, false).is_empty(), "{next:?}");
}
