//! Hostile or broken input through real libpam: typed codes, user names and configs.
//! Each gives its documented result, never a panic, a hang or a changed record.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pam_client::{AUTH_ERR, SUCCESS, SYSTEM_ERR};
use testkit::{Fixture, SECRET, TEST_USER, oathtool, settle_in_step};

#[test]
fn malformed_codes_are_refused_and_counted_as_failures() {
    // Room for every case before a lock-out.
    let fixture = Fixture::new("max_failures = 20", "");
    fixture.provision(SECRET);
    let record = std::fs::read(fixture.record_path()).expect("record");
    settle_in_step(5);
    let right = oathtool(SECRET, 0);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("letters", b"abcdef".to_vec()),
        ("a letter among digits", format!("{}x", &right[..5]).into_bytes()),
        ("only spaces", b"      ".to_vec()),
        ("five digits", right.as_bytes()[..5].to_vec()),
        ("seven digits", format!("{right}0").into_bytes()),
        ("nine digits", format!("{right}000").into_bytes()),
        ("10 kB of digits", right.repeat(1700).into_bytes()),
        ("10 kB of junk", vec![b'\x7f'; 10_240]),
        ("empty", Vec::new()),
        (
            "NUL inside",
            format!("{}\0{}", &right[..3], &right[3..]).into_bytes(),
        ),
        ("not UTF-8", vec![0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa]),
        ("signed", format!("+{}", &right[1..]).into_bytes()),
        ("control characters", format!("{right}\x1b[2J").into_bytes()),
    ];
    for (i, (what, reply)) in cases.iter().enumerate() {
        let transcript = fixture.login_as(TEST_USER, &[reply]);
        assert_eq!(transcript.status, AUTH_ERR, "{what}: {transcript:?}");
        assert_eq!(
            fixture.state().failures as usize,
            i + 1,
            "{what} counts as a failure"
        );
    }
    assert_eq!(std::fs::read(fixture.record_path()).expect("record"), record);
    // The right code, typed the way apps show it, still works afterwards.
    let spaced = format!("{} {}", &right[..3], &right[3..]);
    assert_eq!(fixture.login(&spaced).status, SUCCESS);
}

#[test]
fn path_like_and_overlong_user_names_are_refused_without_touching_files() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    settle_in_step(3);
    let code = oathtool(SECRET, 0);
    let long = "a".repeat(300);
    let traversal = format!("../../../../home/{TEST_USER}");
    for user in [
        "a/b",
        "..",
        "../root",
        traversal.as_str(),
        "/etc/passwd",
        long.as_str(),
        "-rf",
        "evil\nline",
        " ",
    ] {
        let transcript = fixture.login_as(user, &[code.as_bytes()]);
        assert_eq!(transcript.status, AUTH_ERR, "{user:?}: {transcript:?}");
        assert_eq!(transcript.prompts(), ["Verification code: "], "{user:?}");
    }
    let state_files: Vec<_> = std::fs::read_dir(fixture.state_dir())
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name())
                // The hourly clock warning's marker, on a host whose clock is not synchronised.
                .filter(|name| name != ".clock-warned")
                .collect()
        })
        .unwrap_or_default();
    // Their answers were written, as an enrolled user's are, to the one decoy file.
    assert_eq!(state_files, [".decoy"], "no state for refused names");
    assert_eq!(fixture.login(&code).status, SUCCESS, "the code was not consumed");
}

#[test]
fn bad_config_files_fail_closed_without_a_prompt() {
    let cases = [
        "windw = 1",
        "window = -1",
        "window = \"wide\"",
        "window = 11",
        "digits = 12",
        "period = 0",
        "max_failures = 0",
        "max_failures = -5",
        "lockout_seconds = 0",
        "lockout_seconds = 100\nlockout_max_seconds = 10",
        "lockout_exempt = \"root\"",
        "lockout_exempt = [1, 2]",
        "algorithm = \"MD5\"",
        "nullok = \"yes\"",
        "[section]\nkey = 1",
        "\u{1}\u{2}\u{3}[[[",
    ];
    for config in cases {
        let fixture = Fixture::new(config, "");
        let transcript = fixture.login("123456");
        assert_eq!(transcript.status, SYSTEM_ERR, "{config:?}: {transcript:?}");
        assert!(transcript.prompts().is_empty(), "{config:?}");
        assert_eq!(
            transcript.messages(),
            [testkit::product::UNAVAILABLE_MESSAGE],
            "{config:?}"
        );
    }
}

#[test]
fn unusable_config_files_fail_closed() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    let huge = format!("# {}\n", "x".repeat(70_000));
    std::fs::write(fixture.config_path(), huge).expect("write");
    assert_eq!(fixture.login("123456").status, SYSTEM_ERR, "oversized config");
    std::fs::write(fixture.config_path(), [0xff, 0xfe, 0x00, 0x01]).expect("write");
    assert_eq!(fixture.login("123456").status, SYSTEM_ERR, "binary config");
    std::fs::remove_file(fixture.config_path()).expect("rm");
    std::fs::create_dir(fixture.config_path()).expect("mkdir");
    assert_eq!(fixture.login("123456").status, SYSTEM_ERR, "directory as config");
    std::fs::remove_dir(fixture.config_path()).expect("rmdir");
    std::fs::write(fixture.config_path(), "").expect("write");
    std::fs::set_permissions(fixture.config_path(), Permissions::from_mode(0o666)).expect("chmod");
    assert_eq!(
        fixture.login("123456").status,
        SYSTEM_ERR,
        "world-writable config"
    );
    std::fs::set_permissions(fixture.config_path(), Permissions::from_mode(0o644)).expect("chmod");
    let user = testkit::test_user();
    std::os::unix::fs::chown(fixture.config_path(), Some(user.uid.as_raw()), None).expect("chown");
    assert_eq!(
        fixture.login("123456").status,
        SYSTEM_ERR,
        "config owned by a user"
    );
    std::fs::remove_file(fixture.config_path()).expect("rm");
    nix::unistd::mkfifo(
        &fixture.config_path(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let transcript = fixture.login_within("123456", Duration::from_secs(10));
    assert_eq!(transcript.status, SYSTEM_ERR, "FIFO as config");
}

#[test]
fn bad_module_arguments_fail_closed() {
    for args in [
        "window=abc",
        "max_failures=-5",
        "digits=99",
        "nosuchflag",
        "state_dir=relative/path",
        "secret=~bob/x",
        "secret=${SHELL}/x",
    ] {
        let fixture = Fixture::new("", args);
        let transcript = fixture.login("123456");
        assert_eq!(transcript.status, SYSTEM_ERR, "{args}: {transcript:?}");
        assert!(transcript.prompts().is_empty(), "{args}");
    }
}
