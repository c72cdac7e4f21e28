//! Realms, as syslog shows them: a host checks codes only for the users of its realms;
//! anyone else is refused and logged as not allowed here, never let through as not
//! enrolled (`nullok`).

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::namespace::in_private_namespace;
use testkit::postgres::{Cluster, PgHost, enroll, state};
use testkit::product::admin;
use testkit::{SECRET, TEST_USER, oathtool, settle_in_step};

/// A host role `role` on `cluster` that checks codes for realm `realm` only.
fn host_of_realm(cluster: &Cluster, role: &str, realm: &str, config: &str) -> PgHost {
    let host = PgHost::new(cluster, role, config);
    let mut client = cluster.admin();
    admin::grant_host_realms(&mut client, role, &[realm.to_owned()]).unwrap();
    admin::revoke_host_realms(&mut client, role, &[admin::DEFAULT_REALM.to_owned()]).unwrap();
    host
}

#[test]
fn a_host_of_realm_p1_refuses_a_user_of_realm_p2_with_a_right_code_and_nullok_and_says_why() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    let unenrolled = "pamtotp-p2-new";
    let _account = testkit::users::ensure_user(unenrolled);
    let mut client = cluster.admin();
    admin::set_user_realms(&mut client, TEST_USER, &["p2".to_owned()]).unwrap();
    admin::set_user_realms(&mut client, unenrolled, &["p2".to_owned()]).unwrap();
    in_private_namespace(|ns| {
        let p1 = host_of_realm(&cluster, "host_p1", "p1", "nullok = true\n");
        let p2 = host_of_realm(&cluster, "host_p2", "p2", "nullok = true\n");
        settle_in_step(5);
        let code = oathtool(SECRET, 0);
        let refused = p1.fixture.login(&code);
        assert_eq!(refused.status, AUTH_ERR, "{refused:?}");
        assert_eq!(
            refused.prompts(),
            ["Verification code: "],
            "asked as anyone refused is"
        );
        // Not enrolled, but of p2: nullok does not pass them on p1.
        let not_enrolled = p1.fixture.login_as(unenrolled, &[b"123456"]);
        assert_eq!(not_enrolled.status, AUTH_ERR, "{not_enrolled:?}");
        let lines = ns.syslog();
        for user in [TEST_USER, unenrolled] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains(&format!("authentication failure; user={user} "))
                        && l.contains("reason=user not allowed on this host (realm)")),
                "{user}: {lines:#?}"
            );
        }
        assert!(lines.iter().all(|l| !l.contains(&code)), "{lines:#?}");
        assert_eq!(state(&cluster, TEST_USER).failures, 0, "nothing counted on p1");
        // The code was right: p2's host takes it.
        assert_eq!(p2.fixture.login(&code).status, SUCCESS);
        // And on p2 the unenrolled user is passed by nullok, as usual.
        let ignored = p2.fixture.login_as(unenrolled, &[]);
        assert!(ignored.prompts().is_empty(), "{ignored:?}");
    });
}
