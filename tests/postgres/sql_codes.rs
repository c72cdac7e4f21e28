//! The codes the database computes (`pam_totp.hotp`, pgcrypto's `hmac()` with RFC 4226
//! dynamic truncation) against `oathtool` and the RFCs' test vectors, and a code the
//! database accepts through `pam_totp.host_verify` for each algorithm and length.

use testkit::Params;
use testkit::postgres::Cluster;
use testkit::product::{Algorithm, Client, Record, SecretKey, admin, now_rfc3339};

use crate::schema::{host_client, verify};

fn hotp(client: &mut Client, secret: &[u8], counter: u64, algorithm: &str, digits: i32) -> String {
    let rows = client
        .query(
            "hotp",
            "SELECT pam_totp.hotp($1, $2, $3, $4)",
            &[&secret, &i64::try_from(counter).unwrap(), &algorithm, &digits],
        )
        .expect("hotp");
    rows[0].get(0)
}

const SEED_SHA1: &[u8] = b"12345678901234567890";
const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

#[test]
fn the_sql_hotp_gives_the_rfc_4226_and_6238_test_vectors() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    // RFC 4226 appendix D: HMAC-SHA1, counters 0-9.
    let rfc4226 = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
    ];
    for (counter, expected) in rfc4226.iter().enumerate() {
        assert_eq!(
            hotp(&mut admin, SEED_SHA1, counter as u64, "SHA1", 6),
            *expected,
            "counter {counter}"
        );
    }
    // RFC 6238 appendix B: 8 digits, 30 s steps.
    let rfc6238: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ];
    for (time, sha1, sha256, sha512) in rfc6238 {
        assert_eq!(
            hotp(&mut admin, SEED_SHA1, time / 30, "SHA1", 8),
            sha1,
            "SHA1 at {time}"
        );
        assert_eq!(
            hotp(&mut admin, SEED_SHA256, time / 30, "SHA256", 8),
            sha256,
            "SHA256 at {time}"
        );
        assert_eq!(
            hotp(&mut admin, SEED_SHA512, time / 30, "SHA512", 8),
            sha512,
            "SHA512 at {time}"
        );
    }
}

#[test]
fn the_sql_hotp_agrees_with_oathtool_for_every_algorithm_and_length() {
    let cluster = Cluster::start();
    let mut admin = cluster.admin();
    let secret = SecretKey::generate().unwrap();
    let base32 = secret.to_base32();
    for algorithm in ["sha1", "sha256", "sha512"] {
        for digits in [6u8, 7, 8] {
            for period in [30u64, 60] {
                let params = Params {
                    algorithm,
                    digits,
                    period,
                };
                for time in [0, 59, 1_234_567_890, testkit::now(), 4_102_444_800] {
                    assert_eq!(
                        hotp(
                            &mut admin,
                            secret.as_bytes(),
                            time / period,
                            &algorithm.to_uppercase(),
                            i32::from(digits)
                        ),
                        params.code_at(&base32, time),
                        "{params:?} at {time}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_database_accepts_oathtools_code_now_for_every_algorithm_and_length() {
    let cluster = Cluster::start();
    let (mut host, _dir) = host_client(&cluster, "host_a");
    let mut users = Vec::new();
    for (algorithm, name) in [
        (Algorithm::Sha1, "sha1"),
        (Algorithm::Sha256, "sha256"),
        (Algorithm::Sha512, "sha512"),
    ] {
        for digits in [6u8, 7, 8] {
            let secret = SecretKey::generate().unwrap();
            let base32 = secret.to_base32().to_string();
            let user = format!("u_{name}_{digits}");
            let record = Record::new(secret, algorithm, digits, 30, now_rfc3339());
            admin::write_enrollment(&mut cluster.admin(), &user, &record, admin::Codes::None, None).unwrap();
            users.push((user, base32, name, digits));
        }
    }
    testkit::settle_in_step(3);
    for (user, base32, algorithm, digits) in &users {
        let params = Params {
            algorithm,
            digits: *digits,
            period: 30,
        };
        let code = params.code_at(base32, testkit::now());
        assert_eq!(
            verify(&mut host, user, &code, false).verdict,
            "accepted",
            "{params:?}"
        );
        assert_eq!(
            verify(&mut host, user, &code, false).verdict,
            "replayed_code",
            "{params:?}"
        );
        let short = &code[1..];
        assert_eq!(
            verify(&mut host, user, short, false).verdict,
            "malformed_code",
            "{params:?}"
        );
    }
}
