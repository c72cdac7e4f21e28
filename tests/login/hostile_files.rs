//! Files the module touches as root, made hostile by the user who owns the home
//! directory (or by a crash): each is refused, nothing else is read or changed, and no
//! login hangs.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use pam_client::{SUCCESS, SYSTEM_ERR, Transcript};
use testkit::{Fixture, RemoveOnDrop, SECRET, oathtool, settle_in_step, test_user};

const LIMIT: Duration = Duration::from_secs(10);

/// Content, owner, mode and modification time: what "unchanged" means for a file.
fn snapshot(path: &Path) -> (Vec<u8>, u32, u32, i64, i64) {
    let meta = fs::symlink_metadata(path).expect("stat");
    let bytes = if meta.is_file() {
        fs::read(path).expect("read")
    } else {
        Vec::new()
    };
    (bytes, meta.uid(), meta.mode(), meta.mtime(), meta.mtime_nsec())
}

/// The record as totp-enroll wrote it, for planting elsewhere.
fn good_record_text() -> Vec<u8> {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    fs::read(fixture.record_path()).expect("record")
}

/// A login with the right code, which must be refused as `PAM_SYSTEM_ERR` (the record
/// cannot be used) without a prompt and within [`LIMIT`].
fn assert_refused(fixture: &Fixture, what: &str) -> Transcript {
    settle_in_step(3);
    let transcript = fixture.login_within(&oathtool(SECRET, 0), LIMIT);
    assert_eq!(transcript.status, SYSTEM_ERR, "{what}: {transcript:?}");
    assert!(transcript.prompts().is_empty(), "{what}: {transcript:?}");
    transcript
}

/// Replaces the fixture's record with `text`, owned by the user, with `mode`.
fn plant(fixture: &Fixture, text: &[u8], mode: u32) {
    let path = fixture.record_path();
    let _ = fs::remove_file(&path);
    fs::write(&path, text).expect("write record");
    let user = test_user();
    std::os::unix::fs::chown(&path, Some(user.uid.as_raw()), Some(user.gid.as_raw())).expect("chown");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_record_symlinked_to_etc_shadow_is_refused_and_shadow_untouched() {
    let fixture = Fixture::new("", "");
    let before = snapshot(Path::new("/etc/shadow"));
    symlink("/etc/shadow", fixture.record_path()).expect("symlink");
    assert_refused(&fixture, "symlink to /etc/shadow");
    assert_eq!(snapshot(Path::new("/etc/shadow")), before);
}

#[test]
fn a_fifo_as_record_is_refused_without_hanging() {
    let fixture = Fixture::new("", "");
    nix::unistd::mkfifo(
        &fixture.record_path(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let user = test_user();
    std::os::unix::fs::chown(fixture.record_path(), Some(user.uid.as_raw()), None).expect("chown");
    assert_refused(&fixture, "FIFO");
}

#[test]
fn a_directory_as_record_is_refused() {
    let fixture = Fixture::new("", "");
    fs::create_dir(fixture.record_path()).expect("mkdir");
    assert_refused(&fixture, "directory");
}

#[test]
fn a_hard_link_to_a_root_owned_record_is_refused() {
    let fixture = Fixture::new("", "");
    let target = fixture.record_path().with_extension("root-owned");
    let _cleanup = RemoveOnDrop(target.clone());
    fs::write(&target, good_record_text()).expect("write");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::hard_link(&target, fixture.record_path()).expect("link");
    assert_refused(&fixture, "hard link to a root-owned file");
}

#[test]
fn group_or_world_readable_records_are_refused() {
    let fixture = Fixture::new("", "");
    let text = good_record_text();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
        plant(&fixture, &text, mode);
        let before = snapshot(&fixture.record_path());
        assert_refused(&fixture, &format!("mode {mode:o}"));
        assert_eq!(snapshot(&fixture.record_path()), before, "mode {mode:o}");
    }
    plant(&fixture, &text, 0o600);
    settle_in_step(3);
    assert_eq!(
        fixture.login(&oathtool(SECRET, 0)).status,
        SUCCESS,
        "the same record with mode 0600 works"
    );
}

#[test]
fn a_record_owned_by_someone_else_is_refused() {
    let fixture = Fixture::new("", "");
    plant(&fixture, &good_record_text(), 0o600);
    for owner in [0, 65534] {
        std::os::unix::fs::chown(fixture.record_path(), Some(owner), None).expect("chown");
        assert_refused(&fixture, &format!("owner {owner}"));
    }
}

#[test]
fn oversized_binary_truncated_and_future_records_are_refused_unchanged() {
    let fixture = Fixture::new("", "");
    let good = good_record_text();
    let mut oversized = good.clone();
    oversized.extend(std::iter::repeat_n(b"# padding\n", 2000).flatten());
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let future = String::from_utf8(good.clone())
        .expect("utf-8")
        .replace("version = 1", "version = 2")
        .into_bytes();
    let cases: [(&str, &[u8]); 6] = [
        ("oversized", &oversized),
        ("binary", &binary),
        ("truncated", &good[..good.len() / 2]),
        ("version 2", &future),
        ("empty", b""),
        ("NUL bytes", &[0u8; 100]),
    ];
    for (what, text) in cases {
        plant(&fixture, text, 0o600);
        let before = snapshot(&fixture.record_path());
        assert_refused(&fixture, what);
        assert_eq!(snapshot(&fixture.record_path()), before, "{what}");
    }
}

/// oath-toolkit's CVE-2024-47191 class: a symlink in the user's home leads root to a
/// place the user cannot reach. Read with the user's rights, it stays out of reach.
#[test]
fn a_symlinked_directory_cannot_make_root_read_where_the_user_cannot() {
    let fixture = Fixture::new("", "");
    let user = test_user();
    let private = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(private.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
    let planted = private.path().join("record");
    fs::write(&planted, good_record_text()).expect("write");
    std::os::unix::fs::chown(&planted, Some(user.uid.as_raw()), Some(user.gid.as_raw())).expect("chown");
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o600)).expect("chmod");
    let link = fixture.record_path().with_extension("dir");
    let _cleanup = RemoveOnDrop(link.clone());
    symlink(private.path(), &link).expect("symlink");
    let name = link.file_name().expect("name").to_string_lossy().into_owned();
    fixture.set_args(&format!("secret=~/{name}/record"));

    let refused = assert_refused(&fixture, "symlinked directory to a root-only place");
    drop(refused);

    // Control: once the user could reach it too, the same record works, so the refusal
    // above came from the user's rights and not from anything else.
    fs::set_permissions(private.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    settle_in_step(3);
    assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
}

#[test]
fn an_unsafe_state_directory_is_refused() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    let state = fixture.state_dir();
    let user = test_user();

    fs::set_permissions(&state, fs::Permissions::from_mode(0o770)).expect("chmod");
    assert_refused(&fixture, "group-writable state directory");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o707)).expect("chmod");
    assert_refused(&fixture, "world-writable state directory");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).expect("chmod");
    std::os::unix::fs::chown(&state, Some(user.uid.as_raw()), None).expect("chown");
    assert_refused(&fixture, "state directory owned by the user");
    fs::remove_dir(&state).expect("rmdir");

    let elsewhere = tempfile::tempdir().expect("tempdir");
    symlink(elsewhere.path(), &state).expect("symlink");
    assert_refused(&fixture, "symlinked state directory");
}

#[test]
fn hostile_state_files_are_refused_and_their_targets_untouched() {
    let fixture = Fixture::new("", "");
    fixture.provision(SECRET);
    let dir = fixture.state_dir();
    let file = dir.join(format!("{}.state", testkit::TEST_USER));

    let shadow = snapshot(Path::new("/etc/shadow"));
    symlink("/etc/shadow", &file).expect("symlink");
    assert_refused(&fixture, "state file symlinked to /etc/shadow");
    assert_eq!(snapshot(Path::new("/etc/shadow")), shadow);
    fs::remove_file(&file).expect("rm");

    let target = dir.join("elsewhere");
    fs::write(&target, [0u8; 128]).expect("write");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::hard_link(&target, &file).expect("link");
    assert_refused(&fixture, "hard-linked state file");
    fs::remove_file(&file).expect("rm");

    for (what, bytes, mode) in [
        ("corrupt", vec![0x5a; 128], 0o600),
        ("wrong size", vec![0; 50], 0o600),
        ("world readable", Vec::new(), 0o644),
    ] {
        fs::write(&file, &bytes).expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).expect("chmod");
        let before = snapshot(&file);
        assert_refused(&fixture, what);
        assert_eq!(snapshot(&file), before, "{what}");
        fs::remove_file(&file).expect("rm");
    }

    nix::unistd::mkfifo(&file, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    assert_refused(&fixture, "FIFO state file");
}

#[test]
fn a_system_store_must_be_root_only() {
    let fixture = Fixture::new("", "");
    let store = fixture.path("store");
    fs::create_dir(&store).expect("mkdir");
    fs::set_permissions(&store, fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = format!(
        "secret_path = \"{}/${{USER}}\"\nstate_dir = \"{}\"\n",
        store.display(),
        fixture.state_dir().display()
    );
    fs::write(fixture.config_path(), config).expect("config");
    fixture.provision(SECRET);
    settle_in_step(3);
    assert_eq!(
        fixture.login(&oathtool(SECRET, 0)).status,
        SUCCESS,
        "a root-only store works"
    );

    let record = store.join(testkit::TEST_USER);
    let user = test_user();
    std::os::unix::fs::chown(&record, Some(user.uid.as_raw()), None).expect("chown");
    assert_refused(&fixture, "a user-owned record in a system store");
    std::os::unix::fs::chown(&record, Some(0), None).expect("chown");

    for mode in [0o775, 0o757] {
        fs::set_permissions(&store, fs::Permissions::from_mode(mode)).expect("chmod");
        assert_refused(&fixture, &format!("system store mode {mode:o}"));
    }
    fs::set_permissions(&store, fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::chown(&store, Some(user.uid.as_raw()), None).expect("chown");
    assert_refused(&fixture, "a system store owned by a user");
}

/// The group the next test gives [`testkit::TEST_USER`] as a supplementary group.
const TEST_GROUP: &str = "pamtotp-grp";

#[test]
fn the_users_supplementary_groups_count_when_reading_the_record() {
    let fixture = Fixture::new("", "");
    let user = test_user();
    let group = testkit::users::add_to_group(testkit::TEST_USER, TEST_GROUP);

    // A directory only root and members of the group may enter.
    let shared = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::chown(shared.path(), Some(0), Some(group.gid.as_raw())).expect("chown");
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o750)).expect("chmod");
    let planted = shared.path().join("record");
    fs::write(&planted, good_record_text()).expect("write");
    std::os::unix::fs::chown(&planted, Some(user.uid.as_raw()), Some(user.gid.as_raw())).expect("chown");
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o600)).expect("chmod");
    let link = fixture.record_path().with_extension("grp");
    let _cleanup = RemoveOnDrop(link.clone());
    symlink(shared.path(), &link).expect("symlink");
    let name = link.file_name().expect("name").to_string_lossy().into_owned();
    fixture.set_args(&format!("secret=~/{name}/record"));

    settle_in_step(3);
    assert_eq!(
        fixture.login(&oathtool(SECRET, 0)).status,
        SUCCESS,
        "the user may enter through a supplementary group, so the module may too"
    );
    // Control: for a group the user is not in, the same place is out of reach.
    std::os::unix::fs::chown(shared.path(), Some(0), Some(0)).expect("chown");
    assert_refused(&fixture, "a directory of a group the user is not in");
}
