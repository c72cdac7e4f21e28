//! Secrets at rest: a `pg_dump` of the database (what a stolen backup holds) contains
//! no secret, neither base32 nor raw, no recovery code and not the at-rest key; the
//! ciphertext is there, and the database still checks codes with it.

use std::process::Command;

use testkit::postgres::{Cluster, DATABASE};
use testkit::product::{Algorithm, Record, SecretKey, admin, now_rfc3339};
use testkit::{SECRET, oathtool_at};
use zeroize::Zeroizing;

use crate::schema::{db_now, host_client, verify};

#[test]
fn a_dump_of_the_database_holds_no_secret_no_recovery_code_and_not_the_key() {
    let cluster = Cluster::start();
    let secret = SecretKey::from_base32(SECRET).unwrap();
    let raw = secret.as_bytes().to_vec();
    let record = Record::new(secret, Algorithm::Sha1, 6, 30, now_rfc3339());
    let codes: Vec<Zeroizing<String>> = ["0k3m5n7p9qrs", "1t5v7w9x2yz0"]
        .into_iter()
        .map(|c| Zeroizing::new(c.to_owned()))
        .collect();
    let plain = admin::Codes::Plain {
        epoch: 5,
        codes: &codes,
        scratch: false,
    };
    admin::write_enrollment(&mut cluster.admin(), "alice", &record, plain, None).unwrap();

    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_dump"])
        .args(["-h", cluster.socket_dir().to_str().unwrap()])
        .args(["-p", &cluster.port.to_string(), "-U", "postgres", DATABASE])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.contains("COPY pam_totp.enrollments"),
        "the table is in the dump"
    );
    assert!(dump.contains("alice"), "its row is in the dump");
    let key = std::fs::read_to_string(cluster.at_rest_key_path()).unwrap();
    let hex: String = raw.iter().fold(String::new(), |mut hex, b| {
        use std::fmt::Write;
        let _ = write!(hex, "{b:02x}");
        hex
    });
    for (what, needle) in [
        ("the base32 secret", SECRET.to_owned()),
        ("the base32 secret, lower case", SECRET.to_lowercase()),
        ("the raw secret as bytea hex", hex),
        ("the raw secret", String::from_utf8_lossy(&raw).into_owned()),
        ("a recovery code", codes[0].to_string()),
        ("a recovery code", codes[1].to_string()),
        ("the at-rest key", key.trim().to_owned()),
    ] {
        assert!(!dump.contains(&needle), "{what} is in the dump");
    }
    // What is there still works.
    let (mut host, _dir) = host_client(&cluster, "host_a");
    testkit::settle_in_step(3);
    let now = u64::try_from(db_now(&mut host)).unwrap();
    assert_eq!(
        verify(&mut host, "alice", &oathtool_at(SECRET, now), false).verdict,
        "accepted"
    );
}

#[test]
fn without_the_at_rest_key_nothing_is_enrolled_and_no_code_is_checked() {
    let cluster = Cluster::start();
    testkit::postgres::enroll(&cluster, "alice", SECRET);
    let (mut host, _dir) = host_client(&cluster, "host_a");
    std::fs::remove_file(cluster.at_rest_key_path()).unwrap();
    let err =
        crate::schema::try_verify(&mut host, Some("alice"), Some("123456"), Some(false), None).unwrap_err();
    assert!(err.to_string().contains("at-rest key"), "{err}");
    let record = Record::new(
        SecretKey::generate().unwrap(),
        Algorithm::Sha1,
        6,
        30,
        now_rfc3339(),
    );
    let err =
        admin::write_enrollment(&mut cluster.admin(), "bob", &record, admin::Codes::None, None).unwrap_err();
    assert!(err.to_string().contains("at-rest key"), "{err}");
}
