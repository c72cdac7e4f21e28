//! TLS to the database with rustls (ring): `verify-full` checks the chain and the
//! name, `verify-ca` the chain only, a server of another CA is refused, and a client
//! certificate can replace the password.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use pam_client::{SUCCESS, SYSTEM_ERR};
use testkit::postgres::{Cluster, DATABASE, Pki, enroll};
use testkit::product::{DbError, db};
use testkit::{Fixture, SECRET, oathtool, settle_in_step};

/// Copies `pki`'s `names` into the root-only `dir`, as an admin would install them.
fn install(pki: &Pki, dir: &Path, names: &[&str]) {
    for name in names {
        let to = dir.join(name);
        std::fs::copy(pki.path(name), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn connect(settings: &str) -> Result<db::Client, DbError> {
    let info: db::ConnInfo = settings.parse().map_err(DbError::Settings)?;
    db::client::connect(&info, Duration::from_secs(5))
}

struct Setup {
    cluster: Cluster,
    pki: Pki,
    /// Root-only directory with the CA, the other CA, the client pair and a passfile.
    files: tempfile::TempDir,
}

fn setup() -> Setup {
    let cluster = Cluster::start();
    let pki = Pki::new("host_cert");
    cluster.enable_tls(&pki, "host_cert");
    cluster.add_host_role("host_pw", "pw-secret");
    let files = tempfile::tempdir().unwrap();
    install(
        &pki,
        files.path(),
        &["ca.pem", "other-ca.pem", "client.pem", "client.key"],
    );
    std::fs::write(files.path().join("pgpass"), "pw-secret\n").unwrap();
    std::fs::set_permissions(
        files.path().join("pgpass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    Setup { cluster, pki, files }
}

impl Setup {
    fn settings(&self, host: &str, mode: &str, ca: &str, auth: &str) -> String {
        let f = |name: &str| self.files.path().join(name).display().to_string();
        let auth = match auth {
            "password" => format!("user=host_pw passfile={}", f("pgpass")),
            _ => format!(
                "user=host_cert sslcert={} sslkey={}",
                f("client.pem"),
                f("client.key")
            ),
        };
        format!(
            "{host} port={} dbname={DATABASE} sslmode={mode} sslrootcert={} {auth}",
            self.cluster.port,
            f(ca)
        )
    }
}

fn is_tls(client: &mut db::Client) -> bool {
    let rows = client
        .query(
            "ask",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    rows[0].get(0)
}

#[test]
fn verify_full_checks_the_name_and_verify_ca_only_the_chain() {
    let s = setup();
    // The certificate is for db.test: right name (reached at 127.0.0.1), TLS in use.
    let named = s.settings(
        "host=db.test hostaddr=127.0.0.1",
        "verify-full",
        "ca.pem",
        "password",
    );
    assert!(is_tls(&mut connect(&named).unwrap()));
    // The same server by address: not the certificate's name.
    let by_address = s.settings("host=127.0.0.1", "verify-full", "ca.pem", "password");
    let err = connect(&by_address).expect_err("a name mismatch");
    println!("verify-full by address: {err}");
    assert!(matches!(err, DbError::Connect(_)), "{err}");
    for chain_only in ["verify-ca", "require"] {
        let settings = s.settings("host=127.0.0.1", chain_only, "ca.pem", "password");
        assert!(is_tls(&mut connect(&settings).unwrap()), "{chain_only}");
    }
}

#[test]
fn a_server_signed_by_another_ca_is_refused_in_every_mode() {
    let s = setup();
    for mode in ["verify-full", "verify-ca"] {
        let settings = s.settings(
            "host=db.test hostaddr=127.0.0.1",
            mode,
            "other-ca.pem",
            "password",
        );
        let err = connect(&settings).expect_err("another CA");
        println!("{mode} with another CA: {err}");
        assert!(matches!(err, DbError::Connect(_)), "{err}");
    }
}

#[test]
fn a_client_certificate_logs_the_host_in_without_a_password() {
    let s = setup();
    let settings = s.settings("host=db.test hostaddr=127.0.0.1", "verify-full", "ca.pem", "cert");
    assert!(is_tls(&mut connect(&settings).unwrap()));
    // And a login through libpam with it.
    enroll(&s.cluster, testkit::TEST_USER, SECRET);
    let host = Fixture::new("", "");
    install(&s.pki, host.dir.path(), &["ca.pem", "client.pem", "client.key"]);
    let d = |name: &str| host.path(name).display().to_string();
    host.write_config(&format!(
        "store = \"postgres\"\npostgres = \"host=db.test hostaddr=127.0.0.1 port={} dbname={DATABASE} user=host_cert sslrootcert={} sslcert={} sslkey={}\"\n",
        s.cluster.port,
        d("ca.pem"),
        d("client.pem"),
        d("client.key")
    ));
    settle_in_step(3);
    assert_eq!(host.login(&oathtool(SECRET, 0)).status, SUCCESS);
    // A client key others can read is refused, as a host key would be.
    std::fs::set_permissions(host.path("client.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(host.login(&oathtool(SECRET, 1)).status, SYSTEM_ERR);
}
