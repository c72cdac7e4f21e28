//! `totp-enroll db migrate` from schema version 2 (records as TOML text, one sealed to
//! the host key) to version 3 (columns the database checks codes with): without the key
//! nothing changes; with it, the same users' codes from the same secrets are accepted by
//! the database, a code used just before migrating is refused after, and argon2 recovery
//! codes the database cannot check are dropped with a word to the admin.

use testkit::postgres::{ADMIN, Cluster, DATABASE};
use testkit::product::{Algorithm, Record, SecretKey, admin, db, new_set, now_rfc3339};
use testkit::{Fixture, SECRET, TEST_USER, oathtool_at, settle_in_step, show};

use crate::schema::{db_now, lookup, verify};

const ALICE_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// The cluster's database put back to version 2, with `host_old` a host as version 2
/// made them (a member of `pam_totp_host`).
fn version_2(cluster: &Cluster) {
    cluster.superuser_sql("CREATE ROLE host_old LOGIN PASSWORD 'host-secret'");
    cluster
        .admin()
        .batch_execute(
            "back to version 2",
            &format!(
                "DROP SCHEMA pam_totp CASCADE; DROP SCHEMA pam_totp_crypto CASCADE;
                 CREATE SCHEMA pam_totp;
                 CREATE TABLE pam_totp.schema_migrations (version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now());
                 INSERT INTO pam_totp.schema_migrations (version) VALUES (1), (2);
                 {}\n{}\nGRANT pam_totp_host TO host_old;",
                db::migrate::MIGRATIONS[0].1,
                db::migrate::MIGRATIONS[1].1
            ),
        )
        .unwrap();
}

fn store_record(cluster: &Cluster, user: &str, text: &str, used_until: u64) {
    let mut admin = cluster.admin();
    admin
        .execute(
            "a version 2 record",
            "INSERT INTO pam_totp.records (user_name, record) VALUES ($1, $2)",
            &[&user, &text],
        )
        .unwrap();
    admin
        .execute(
            "a version 2 state",
            "INSERT INTO pam_totp.login_state (user_name, used_until) VALUES ($1, $2)",
            &[&user, &i64::try_from(used_until).unwrap()],
        )
        .unwrap();
}

fn admin_config(cluster: &Cluster, host_key: &str) -> String {
    format!(
        "store = \"postgres\"\npostgres = \"host={} port={} user={ADMIN} dbname={DATABASE} \
         sslmode=disable\"\nhost_key = \"{host_key}\"\n",
        cluster.socket_dir().display(),
        cluster.port
    )
}

#[test]
#[allow(clippy::too_many_lines)] // one migration, end to end
fn db_migrate_moves_version_2_records_to_columns_and_the_database_accepts_the_same_codes() {
    let cluster = Cluster::start();
    version_2(&cluster);
    // Sealed the usual way: totp-enroll keygen and an enrollment into a record file.
    let maker = Fixture::new("", "");
    let (key, public) = (maker.path("host.key"), maker.path("host.pub"));
    maker.write_config(&format!(
        "seal = true\nhost_key = \"{}\"\nhost_public_key = \"{}\"\n",
        key.display(),
        public.display()
    ));
    assert!(maker.enroll(&["keygen"]).status.success());
    maker.provision(SECRET);
    let sealed = std::fs::read_to_string(maker.record_path()).unwrap();
    assert!(
        sealed.contains("sealed_secret") && !sealed.contains(SECRET),
        "{sealed}"
    );
    // A plain record with argon2 recovery codes, whose current code was just used.
    let (alice, _codes) = new_set(Record::new(
        SecretKey::from_base32(ALICE_SECRET).unwrap(),
        Algorithm::Sha1,
        6,
        30,
        now_rfc3339(),
    ))
    .unwrap();
    settle_in_step(10);
    let now = testkit::now();
    let used_code = oathtool_at(ALICE_SECRET, now);
    store_record(&cluster, "alice", &alice.to_toml(), (now / 30 + 1) * 30);
    store_record(&cluster, TEST_USER, &sealed, 0);

    // Without the key: refused, and nothing changed.
    let keyless = Fixture::new("", "");
    keyless.write_config(&admin_config(&cluster, "/nonexistent/pam_totp.key"));
    let refused = keyless.enroll(&["db", "migrate"]);
    assert_eq!(refused.status.code(), Some(1), "{}", show(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(TEST_USER) && stderr.contains("sealed"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(
        db::migrate::applied_versions(&mut cluster.admin()).unwrap(),
        vec![1, 2]
    );
    let kept = cluster
        .admin()
        .query("records", "SELECT count(*) FROM pam_totp.records", &[])
        .unwrap();
    assert_eq!(kept[0].get::<_, i64>(0), 2);

    // With it.
    let keyed = Fixture::new("", "");
    keyed.write_config(&admin_config(&cluster, key.to_str().unwrap()));
    let out = keyed.enroll(&["db", "migrate"]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Moved 2 enrollments"), "{stdout}");
    assert!(
        stdout.contains("alice: the recovery") && stdout.contains("recovery-codes --user alice"),
        "{stdout}"
    );
    assert_eq!(
        db::migrate::applied_versions(&mut cluster.admin()).unwrap(),
        db::migrate::MIGRATIONS
            .iter()
            .map(|(version, _)| *version)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        admin::read_info(&mut cluster.admin(), "alice")
            .unwrap()
            .unwrap()
            .recovery_codes,
        0
    );

    // host_old was a host before: it is granted `default`, where every moved user is.
    let passfile = testkit::postgres::write_passfile(keyed.dir.path(), "host-secret");
    let config = testkit::product::Config {
        store: testkit::product::Store::Postgres,
        postgres: cluster.conninfo("host_old", &passfile),
        ..testkit::product::Config::default()
    };
    let mut host = db::connect(&config).unwrap();
    assert_eq!(lookup(&mut host, TEST_USER, false).0, "enrolled");
    let db_time = u64::try_from(db_now(&mut host)).unwrap();
    assert_eq!(
        verify(&mut host, TEST_USER, &oathtool_at(SECRET, db_time), false).verdict,
        "accepted",
        "the sealed record's secret, opened by the command"
    );
    assert_eq!(
        verify(&mut host, "alice", &used_code, false).verdict,
        "replayed_code",
        "a code used just before migrating"
    );
    assert_eq!(
        verify(
            &mut host,
            "alice",
            &oathtool_at(ALICE_SECRET, db_time + 30),
            false
        )
        .verdict,
        "accepted"
    );
}
