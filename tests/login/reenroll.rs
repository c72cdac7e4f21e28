//! Re-enrolling with other parameters (period, digits, algorithm) through the real
//! `totp-enroll` and real libpam, file store: replay protection is kept as a Unix time,
//! so it survives the change and costs at most one period, never a permanent lock-out
//! (issue #14: a step number kept in units of the old period refused every code).

use testkit::{Fixture, Params, reenroll_keeps_replay_protection_without_locking_out};

const TEN: Params = Params {
    period: 10,
    ..Params::DEFAULT
};

#[test]
fn a_period_of_10_then_30_keeps_replay_protection_and_lets_the_user_in() {
    let fixture = Fixture::new("", "");
    reenroll_keeps_replay_protection_without_locking_out(&fixture, &fixture, TEN, Params::DEFAULT);
}

#[test]
fn a_period_of_30_then_10_keeps_replay_protection_and_lets_the_user_in() {
    let fixture = Fixture::new("", "");
    reenroll_keeps_replay_protection_without_locking_out(&fixture, &fixture, Params::DEFAULT, TEN);
}

#[test]
fn other_digits_keep_replay_protection_and_let_the_user_in() {
    let fixture = Fixture::new("", "");
    let eight = Params {
        digits: 8,
        ..Params::DEFAULT
    };
    reenroll_keeps_replay_protection_without_locking_out(&fixture, &fixture, Params::DEFAULT, eight);
}

#[test]
fn another_algorithm_keeps_replay_protection_and_lets_the_user_in() {
    let fixture = Fixture::new("", "");
    let sha256 = Params {
        algorithm: "sha256",
        ..Params::DEFAULT
    };
    reenroll_keeps_replay_protection_without_locking_out(&fixture, &fixture, Params::DEFAULT, sha256);
}

/// A state file as the previous version wrote it (`PTS1`: two 64-byte slots holding the
/// last accepted step), with `last_step` in the newer slot.
fn previous_versions_state(last_step: u64) -> Vec<u8> {
    let slot = |seq: u64, step: u64| {
        let mut slot = vec![0u8; 64];
        slot[..4].copy_from_slice(b"PTS1");
        for (i, field) in [seq, step, 0, 0, 0, 0, 0].iter().enumerate() {
            slot[4 + i * 8..12 + i * 8].copy_from_slice(&field.to_le_bytes());
        }
        let crc = crc32fast::hash(&slot[..60]);
        slot[60..].copy_from_slice(&crc.to_le_bytes());
        slot
    };
    [slot(8, last_step), slot(7, last_step - 1)].concat()
}

#[test]
fn a_state_file_of_the_previous_version_keeps_its_used_step() {
    use std::os::unix::fs::PermissionsExt;
    let fixture = Fixture::new("", "");
    fixture.provision(testkit::SECRET);
    testkit::settle_in_step(3);
    let used = testkit::now() / 30;
    let dir = fixture.state_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = dir.join(format!("{}.state", testkit::TEST_USER));
    std::fs::write(&file, previous_versions_state(used)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let code = testkit::oathtool(testkit::SECRET, 0);
    assert_eq!(
        fixture.login(&code).status,
        pam_client::AUTH_ERR,
        "its used step is a replay"
    );
    let next = testkit::oathtool(testkit::SECRET, 1);
    assert_eq!(fixture.login(&next).status, pam_client::SUCCESS);
    assert_eq!(fixture.login(&next).status, pam_client::AUTH_ERR);
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        256,
        "written in the new format"
    );
    assert_eq!(fixture.state().used_until, (used + 2) * 30);
}
