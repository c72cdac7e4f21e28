//! Clock trouble explained (a code right for a time near the window is refused, counted
//! and explained; never for a user without an enrollment) and failed attempts shown at
//! the next good login, through real libpam with `oathtool`'s codes.

use pam_client::{AUTH_ERR, SUCCESS, Shown, Transcript};
use testkit::{Fixture, SECRET, TEST_USER, oathtool, settle_in_step, wrong_code};

fn errors(transcript: &Transcript) -> Vec<&str> {
    transcript
        .shown
        .iter()
        .filter_map(|s| match s {
            Shown::Error(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn infos(transcript: &Transcript) -> Vec<&str> {
    transcript
        .shown
        .iter()
        .filter_map(|s| match s {
            Shown::Info(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// `HH:MM` (UTC) of a Unix time.
fn utc_minute(unix: u64) -> String {
    format!("{:02}:{:02}", unix % 86_400 / 3600, unix % 3600 / 60)
}

#[test]
fn a_code_minutes_ahead_or_behind_is_refused_counted_and_explained() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(3);
    // Behind first: a step behind the window never comes back, so it holds no later hint.
    let behind = fixture.login(&oathtool(SECRET, -10));
    assert_eq!(behind.status, AUTH_ERR, "{behind:?}");
    assert_eq!(
        errors(&behind),
        [
            "Your code is for a time about 5 minutes behind this server's clock: \
          set your phone's time to automatic."
        ]
    );
    let state = fixture.state();
    assert_eq!((state.failures, state.clock_offset), (1, -300));

    let ahead = fixture.login(&oathtool(SECRET, 6));
    assert_eq!(ahead.status, AUTH_ERR, "{ahead:?}");
    assert_eq!(
        errors(&ahead),
        [
            "Your code is for a time about 3 minutes ahead of this server's clock: \
          set your phone's time to automatic."
        ]
    );
    let state = fixture.state();
    assert_eq!((state.failures, state.clock_offset), (2, 180));

    // `totp-enroll status` shows the last offset, the failures since the last login,
    // and what the kernel says of this host's clock.
    let out = fixture.enroll(&["status", "--user", TEST_USER, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(status["last_clock_offset"], 180, "{status}");
    assert_eq!(status["failures_since_login"], 2, "{status}");
    let expected = if testkit::product::clock_watch::host_unsynchronised() {
        "not synchronised"
    } else {
        "synchronised"
    };
    assert_eq!(status["host_clock"], expected, "{status}");
    let human = fixture.enroll(&["status", "--user", TEST_USER]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("the last refused code was for a time 180s ahead of the clock that checked it"),
        "{text}"
    );
    assert_eq!(
        text.contains("host clock:      NOT synchronised (adjtimex)"),
        testkit::product::clock_watch::host_unsynchronised(),
        "{text}"
    );
}

#[test]
fn a_code_eleven_minutes_off_or_simply_wrong_is_just_refused() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(3);
    for code in [oathtool(SECRET, 22), oathtool(SECRET, -22), wrong_code(SECRET)] {
        let transcript = fixture.login(&code);
        assert_eq!(transcript.status, AUTH_ERR);
        assert!(errors(&transcript).is_empty(), "{transcript:?}");
    }
    assert_eq!(fixture.state().failures, 3);
    assert_eq!(fixture.state().clock_offset, 0);
}

#[test]
fn a_user_without_an_enrollment_is_never_told_about_clocks() {
    let fixture = Fixture::new("", "");
    settle_in_step(3);
    // The test user has no record; the code is right for the secret others use.
    for user in [TEST_USER, "no-such-user-pamtotp"] {
        for offset in [6, -10] {
            let transcript = fixture.login_as(user, &[oathtool(SECRET, offset).as_bytes()]);
            assert_eq!(transcript.status, AUTH_ERR);
            assert_eq!(transcript.prompts(), ["Verification code: "]);
            assert!(errors(&transcript).is_empty(), "{user}: {transcript:?}");
            assert!(infos(&transcript).is_empty(), "{user}: {transcript:?}");
        }
    }
}

#[test]
fn failed_codes_are_shown_once_at_the_next_good_login() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(5);
    for rhost in ["192.0.2.7", "198.51.100.9"] {
        let refused = fixture.login_on(TEST_USER, Some(rhost), "ssh", &wrong_code(SECRET));
        assert_eq!(refused.status, AUTH_ERR);
        assert!(infos(&refused).is_empty(), "{refused:?}");
    }
    let last = fixture.state().last_failure;
    let good = fixture.login_on(TEST_USER, Some("203.0.113.5"), "ssh", &oathtool(SECRET, 0));
    assert_eq!(good.status, SUCCESS, "{good:?}");
    assert_eq!(
        infos(&good),
        [format!(
            "2 failed verification codes since your last login, the last from 198.51.100.9 at {} UTC.",
            utc_minute(last)
        )]
    );
    // The next step's code: a good login with no failure since shows nothing.
    let next = fixture.login(&oathtool(SECRET, 1));
    assert_eq!(next.status, SUCCESS, "{next:?}");
    assert!(infos(&next).is_empty(), "{next:?}");
}

#[test]
fn an_admin_unlock_clears_the_lock_out_but_not_the_report() {
    let fixture = Fixture::new("max_failures = 1", "");
    fixture.provision(SECRET);
    settle_in_step(5);
    let refused = fixture.login_on(TEST_USER, None, "pts/3", &wrong_code(SECRET));
    assert_eq!(refused.status, AUTH_ERR);
    let out = fixture.enroll(&["unlock", "--user", TEST_USER]);
    assert!(out.status.success(), "{}", testkit::show(&out));
    let good = fixture.login(&oathtool(SECRET, 0));
    assert_eq!(good.status, SUCCESS, "{good:?}");
    let shown = infos(&good);
    assert_eq!(shown.len(), 1, "{good:?}");
    assert!(
        shown[0].starts_with("1 failed verification code since your last login, the last from pts/3 at "),
        "{good:?}"
    );
}

#[test]
fn the_code_a_hint_was_given_for_is_never_accepted_and_no_second_hint_comes_meanwhile() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(3);
    // A guesser told "a minute ahead" ...
    let hinted = oathtool(SECRET, 2);
    let told = fixture.login(&hinted);
    assert_eq!(told.status, AUTH_ERR);
    assert_eq!(errors(&told).len(), 1, "{told:?}");
    // ... is told nothing about another code while that step may still come,
    let again = fixture.login(&oathtool(SECRET, 6));
    assert_eq!(again.status, AUTH_ERR);
    assert!(errors(&again).is_empty(), "{again:?}");
    // and the hinted code is refused once its step is in the window (a wider window
    // here, rather than a minute's wait).
    fixture.write_config("window = 2");
    assert_eq!(fixture.login(&hinted).status, AUTH_ERR, "a burnt step");
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}
