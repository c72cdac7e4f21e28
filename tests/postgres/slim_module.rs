//! The two installed modules: `pam_totp.so` (crate `pam_totp`: the file store only)
//! carries no database client, logs in from the file store on its own, and hands a
//! `store = "postgres"` login to `pam_totp_db.so` (crate `pam_totp_db`: both stores)
//! beside it, or fails closed when that file is missing or unsafe.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use pam_client::{AUTH_ERR, SUCCESS, SYSTEM_ERR, Transcript};
use testkit::postgres::{Cluster, PgHost, enroll};
use testkit::{Fixture, ModuleBuild, SECRET, TEST_USER, module, oathtool, settle_in_step};

/// `pam_totp.so` as the workspace build makes it.
fn slim_build() -> PathBuf {
    module(ModuleBuild::FileStore)
}

fn full_build() -> PathBuf {
    module(ModuleBuild::Workspace)
}

/// Puts the slim build in the fixture as its `pam_totp.so`.
fn use_slim(fixture: &Fixture) {
    std::fs::copy(slim_build(), fixture.path("pam_totp.so")).expect("install the slim build");
}

fn contains(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The database client's crates, as their names appear in a build that holds them
/// (panic locations, type names, debug info). Not "postgres" alone: the slim build
/// knows the config key.
const DATABASE_CLIENT: [&str; 5] = ["tokio", "rustls", "tokio_postgres", "postgres_protocol", "webpki"];

#[test]
fn the_slim_build_holds_none_of_the_database_client() {
    let slim = std::fs::read(slim_build()).unwrap();
    let full = std::fs::read(full_build()).unwrap();
    assert!(
        slim.len() * 3 < full.len() * 2,
        "slim {} bytes, full {} bytes",
        slim.len(),
        full.len()
    );
    for name in DATABASE_CLIENT {
        assert!(!contains(&slim, name), "the slim build holds {name:?}");
        assert!(contains(&full, name), "the search above would find {name:?}");
    }
}

#[test]
fn the_slim_build_logs_in_from_the_file_store_and_refuses_a_replay() {
    let fixture = Fixture::new("", "");
    use_slim(&fixture);
    fixture.provision(SECRET);
    settle_in_step(3);
    let code = oathtool(SECRET, 0);
    let first = fixture.login(&code);
    assert_eq!(first.status, SUCCESS, "{first:?}");
    assert_eq!(first.prompts(), ["Verification code: "]);
    assert!(
        !fixture.path("pam_totp_db.so").exists(),
        "no database module needed"
    );
    let again = fixture.login(&code);
    assert_eq!(again.status, AUTH_ERR, "{again:?}");
}

#[test]
fn the_slim_build_hands_a_postgres_login_to_pam_totp_db_beside_it() {
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    let host = PgHost::new(&cluster, "host_a", "");
    use_slim(&host.fixture);
    std::fs::copy(full_build(), host.fixture.path("pam_totp_db.so")).unwrap();
    settle_in_step(3);
    let code = oathtool(SECRET, 0);
    let first = host.fixture.login(&code);
    assert_eq!(first.status, SUCCESS, "{first:?}\n{}", cluster.log());
    assert_eq!(first.prompts(), ["Verification code: "]);
    let again = host.fixture.login(&code);
    assert_eq!(again.status, AUTH_ERR, "{again:?}");
    assert_eq!(again.prompts(), ["Verification code: "]);
    assert_eq!(
        testkit::postgres::state(&cluster, TEST_USER).used_until,
        (testkit::now() / 30 + 1) * 30
    );
    // Named through a symlink, as Debian names libraries: its safe target is used (a
    // refused file would fail closed unprompted; the full module prompts and denies).
    let sibling = host.fixture.path("pam_totp_db.so");
    std::fs::rename(&sibling, host.fixture.path("pam_totp_db.so.0")).unwrap();
    std::os::unix::fs::symlink("pam_totp_db.so.0", &sibling).unwrap();
    let wrong = host.fixture.login(&testkit::wrong_code(SECRET));
    assert_eq!(wrong.status, AUTH_ERR, "{wrong:?}");
    assert_eq!(wrong.prompts(), ["Verification code: "]);
}

/// A `store = "postgres"` fixture on the slim build; the delegation fails before any
/// connection, so no server is needed.
fn postgres_fixture() -> Fixture {
    let fixture = Fixture::new(
        "store = \"postgres\"\n\
         postgres = \"host=127.0.0.1 port=1 user=h dbname=totp sslmode=disable passfile=/nonexistent\"\n",
        "",
    );
    use_slim(&fixture);
    fixture
}

fn assert_fails_closed_unprompted(transcript: &Transcript) {
    assert_eq!(transcript.status, SYSTEM_ERR, "{transcript:?}");
    assert!(transcript.prompts().is_empty(), "{transcript:?}");
    assert!(
        transcript
            .messages()
            .iter()
            .any(|m| m.contains("cannot be checked right now")),
        "{transcript:?}"
    );
}

#[test]
fn without_a_safe_pam_totp_db_beside_it_a_postgres_login_fails_closed() {
    let fixture = postgres_fixture();
    // Missing.
    assert_fails_closed_unprompted(&fixture.login(&oathtool(SECRET, 0)));
    // Writable by the group.
    let sibling = fixture.path("pam_totp_db.so");
    std::fs::copy(full_build(), &sibling).unwrap();
    std::fs::set_permissions(&sibling, std::fs::Permissions::from_mode(0o664)).unwrap();
    assert_fails_closed_unprompted(&fixture.login(&oathtool(SECRET, 0)));
    // Not a shared object.
    std::fs::remove_file(&sibling).unwrap();
    std::fs::write(&sibling, "not a module\n").unwrap();
    std::fs::set_permissions(&sibling, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_fails_closed_unprompted(&fixture.login(&oathtool(SECRET, 0)));
    // The slim build again (a packaging mistake): refused, not handed on for ever.
    std::fs::remove_file(&sibling).unwrap();
    std::fs::copy(slim_build(), &sibling).unwrap();
    assert_fails_closed_unprompted(&fixture.login(&oathtool(SECRET, 0)));
}
