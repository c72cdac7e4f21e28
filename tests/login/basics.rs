//! A login through real libpam with the built module, codes from `oathtool`, and
//! records written by the built `totp-enroll`.

use pam_client::{AUTH_ERR, PERM_DENIED, SUCCESS};
use testkit::{Fixture, SECRET, TEST_USER, oathtool, settle_in_step, wrong_code};

#[test]
fn enrolled_user_logs_in_with_the_current_code() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(3);
    let transcript = fixture.login(&oathtool(SECRET, 0));
    assert_eq!(transcript.status, SUCCESS, "{transcript:?}");
    assert_eq!(transcript.prompts(), ["Verification code: "]);
}

#[test]
fn the_same_code_is_refused_the_second_time() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(3);
    let code = oathtool(SECRET, 0);
    assert_eq!(fixture.login(&code).status, SUCCESS);
    assert_eq!(
        fixture.login(&code).status,
        AUTH_ERR,
        "a replayed code must be refused"
    );
}

#[test]
fn a_wrong_code_is_refused() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(3);
    assert_eq!(fixture.login(&wrong_code(SECRET)).status, AUTH_ERR);
    assert_eq!(fixture.login("").status, AUTH_ERR);
    assert_eq!(fixture.login("not a code").status, AUTH_ERR);
}

#[test]
fn unenrolled_user_is_prompted_and_refused() {
    let fixture = Fixture::new("", "");
    let transcript = fixture.login("123456");
    assert_eq!(transcript.status, AUTH_ERR);
    assert_eq!(
        transcript.prompts(),
        ["Verification code: "],
        "prompted like an enrolled user"
    );
}

#[test]
fn unknown_user_is_prompted_and_refused() {
    let fixture = Fixture::new("", "");
    let transcript = fixture.login_as("no-such-user-pamtotp", &[b"123456"]);
    assert_eq!(transcript.status, AUTH_ERR);
    assert_eq!(transcript.prompts(), ["Verification code: "]);
}

#[test]
fn unenrolled_user_is_ignored_with_nullok() {
    let fixture = Fixture::new("", "nullok");
    let transcript = fixture.login("123456");
    // PAM_IGNORE from the only module leaves the stack without a verdict: libpam denies.
    assert_eq!(transcript.status, PERM_DENIED);
    assert!(
        transcript.prompts().is_empty(),
        "nullok does not prompt: {transcript:?}"
    );
}

#[test]
fn neighbouring_steps_pass_with_window_1_and_fail_with_window_0() {
    for offset in [-1, 1] {
        let wide = Fixture::new("window = 1", "");
        wide.provision(SECRET);
        settle_in_step(3);
        assert_eq!(
            wide.login(&oathtool(SECRET, offset)).status,
            SUCCESS,
            "offset {offset}, window 1"
        );

        let narrow = Fixture::new("window = 1", "window=0");
        narrow.provision(SECRET);
        settle_in_step(3);
        assert_eq!(
            narrow.login(&oathtool(SECRET, offset)).status,
            AUTH_ERR,
            "offset {offset}, window 0"
        );
        assert_eq!(
            narrow.login(&oathtool(SECRET, 0)).status,
            SUCCESS,
            "current step, window 0"
        );
    }
}

#[test]
fn an_eighty_bit_imported_secret_works() {
    let fixture = Fixture::new("", "");
    let secret = "JBSWY3DPEHPK3PXP";
    fixture.provision(secret);
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(secret, 0)).status, SUCCESS);
}

#[test]
fn a_bad_config_fails_closed() {
    let fixture = Fixture::new("windw = 1", "");
    let transcript = fixture.login("123456");
    assert_eq!(transcript.status, pam_client::SYSTEM_ERR);
    assert!(transcript.prompts().is_empty());
    let fixture = Fixture::new("", "no_such_argument");
    assert_eq!(fixture.login("123456").status, pam_client::SYSTEM_ERR);
}

#[test]
fn enrollment_record_is_private_to_the_user() {
    use std::os::unix::fs::MetadataExt;
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    let meta = std::fs::metadata(fixture.record_path()).expect("record written");
    let user = nix::unistd::User::from_name(TEST_USER)
        .ok()
        .flatten()
        .expect("test user");
    assert_eq!(meta.uid(), user.uid.as_raw());
    assert_eq!(meta.mode() & 0o777, 0o600);
}
