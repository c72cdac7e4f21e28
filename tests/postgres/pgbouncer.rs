//! Busy hosts: a host-local PgBouncer (packaging/pgbouncer/, docs/guide.md) between the
//! module and the database. The shipped config, with the test's paths, runs a real
//! `pgbouncer` as `postgres` (it refuses root) on a unix socket only; the module logs in
//! to it as `root` (peer authentication), and PgBouncer logs in to the cluster as the
//! host role over TLS (`verify-full` against the site's CA and the name `db.test`),
//! keeping its connections between logins.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pam_client::{AUTH_ERR, SUCCESS, SYSTEM_ERR};
use testkit::postgres::{Cluster, DATABASE, Pki, enroll};
use testkit::product::db;
use testkit::{Fixture, SECRET, TEST_USER, oathtool, settle_in_step, wrong_code};

const HOST_ROLE: &str = "host_pw";
const HOST_PASSWORD: &str = "pw-secret";

/// A running PgBouncer; stopped on drop.
struct Bouncer {
    dir: tempfile::TempDir,
    process: Child,
}

impl Bouncer {
    /// PgBouncer in front of `cluster`, trusting `ca` (a file of `pki`) for the server.
    fn start(cluster: &Cluster, pki: &Pki, ca: &str) -> Bouncer {
        let dir = tempfile::Builder::new()
            .prefix("pam_totp-pgbouncer")
            .tempdir()
            .unwrap();
        let d = dir.path();
        // Reachable by anyone (so that a non-root client meets peer authentication,
        // not a closed directory); the secrets in it are PgBouncer's alone.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let shipped = testkit::repo_dir().join("packaging/pgbouncer");
        let ini = std::fs::read_to_string(shipped.join("pgbouncer.ini")).unwrap();
        let at = |name: &str| d.join(name).display().to_string();
        let ini: Vec<String> = ini
            .lines()
            .map(|line| {
                let set = |key: &str| line.starts_with(&format!("{key} ="));
                if set("totp") {
                    format!(
                        "totp = host=db.test port={} dbname={DATABASE} user={HOST_ROLE}",
                        cluster.port
                    )
                } else if set("unix_socket_dir") {
                    format!("unix_socket_dir = {}", d.display())
                } else if set("logfile") {
                    format!("logfile = {}", at("pgbouncer.log"))
                } else if set("pidfile") {
                    format!("pidfile = {}", at("pgbouncer.pid"))
                } else {
                    line.replace("/etc/pgbouncer/", &format!("{}/", d.display()))
                }
            })
            .collect();
        std::fs::write(d.join("pgbouncer.ini"), ini.join("\n")).unwrap();
        std::fs::copy(shipped.join("pam_totp_hba.conf"), d.join("pam_totp_hba.conf")).unwrap();
        std::fs::write(
            d.join("pam_totp_userlist.txt"),
            format!("\"{HOST_ROLE}\" \"{HOST_PASSWORD}\"\n\"root\" \"\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(
            d.join("pam_totp_userlist.txt"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::copy(pki.path(ca), d.join("db-ca.pem")).unwrap();
        // The server's name, for this PgBouncer only: its own mount namespace gets an
        // /etc/hosts that knows db.test (the test's /etc/hosts is the machine's).
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        std::fs::write(d.join("hosts"), format!("{hosts}\n127.0.0.1 db.test\n")).unwrap();
        std::fs::set_permissions(d.join("hosts"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(d)
            .status()
            .unwrap();
        assert!(status.success());
        let process = Command::new("unshare")
            .args(["--mount", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" /etc/hosts && \
                 exec setpriv --reuid=postgres --regid=postgres --clear-groups pgbouncer \"$2\"",
            )
            .args(["sh", &at("hosts"), &at("pgbouncer.ini")])
            // Its log is in the file (shown when a test fails), not on the test's output.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer is not installed (apt-get install pgbouncer)");
        let bouncer = Bouncer { dir, process };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !bouncer.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "PgBouncer did not start:\n{}",
                bouncer.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join(".s.PGSQL.6432")
    }

    /// The module's `postgres = "..."`: the unix socket, as root, no TLS (it never
    /// leaves the machine).
    fn conninfo(&self) -> String {
        format!(
            "host={} port=6432 dbname={DATABASE} user=root sslmode=disable",
            self.dir.path().display()
        )
    }

    /// A host (PAM service) whose config points the module at this PgBouncer.
    fn host(&self) -> Fixture {
        let host = Fixture::new("", "");
        host.write_config(&format!(
            "store = \"postgres\"\npostgres = \"{}\"\n",
            self.conninfo()
        ));
        host
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// psql run as OS user `os_user`, connecting as database user `user`.
    fn psql_as(&self, os_user: &str, user: &str) -> (bool, String) {
        let out = Command::new("runuser")
            .args([
                "-u",
                os_user,
                "--",
                "psql",
                "-X",
                "-A",
                "-t",
                "-c",
                "SELECT session_user",
            ])
            .arg(format!(
                "host={} port=6432 dbname={DATABASE} user={user}",
                self.dir.path().display()
            ))
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A TLS cluster with the password role the shipped config names, and a user enrolled.
fn tls_cluster() -> (Cluster, Pki) {
    let cluster = Cluster::start();
    let pki = Pki::new("host_cert");
    cluster.enable_tls(&pki, "host_cert");
    cluster.add_host_role(HOST_ROLE, HOST_PASSWORD);
    enroll(&cluster, TEST_USER, SECRET);
    (cluster, pki)
}

fn server_logins(cluster: &Cluster, role: &str) -> usize {
    cluster
        .log()
        .matches(&format!("connection authorized: user={role} "))
        .count()
}

#[test]
fn logins_through_a_local_pgbouncer_use_its_pooled_tls_connections_and_replay_is_still_refused_and_without_it_fail_closed()
 {
    let (cluster, pki) = tls_cluster();
    let bouncer = Bouncer::start(&cluster, &pki, "ca.pem");
    let host = bouncer.host();
    // The server sees the host's role, over TLS, whoever the local client was.
    let info: db::ConnInfo = bouncer.conninfo().parse().unwrap();
    let mut client = db::client::connect(&info, Duration::from_secs(5)).unwrap();
    let rows = client
        .query(
            "ask",
            "SELECT session_user::text, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), HOST_ROLE);
    assert!(rows[0].get::<_, bool>(1), "PgBouncer to the server is TLS");
    drop(client);

    settle_in_step(5);
    let wrong = host.login(&wrong_code(SECRET));
    assert_eq!(wrong.status, AUTH_ERR, "{wrong:?}\n{}", bouncer.log());
    let code = oathtool(SECRET, 0);
    let first = host.login(&code);
    assert_eq!(
        first.status,
        SUCCESS,
        "{first:?}\n{}\n{}",
        bouncer.log(),
        cluster.log()
    );
    let replay = host.login(&code);
    assert_eq!(replay.status, AUTH_ERR, "{replay:?}");
    // Three logins, up to six client connections, and one more above: PgBouncer kept
    // its server connection (session pooling) instead of one backend per connection.
    assert_eq!(server_logins(&cluster, HOST_ROLE), 1, "{}", cluster.log());
    // PgBouncer stopped: the next login fails closed, as with the database down.
    drop(bouncer);
    let down = host.login(&oathtool(SECRET, 1));
    assert_eq!(down.status, SYSTEM_ERR, "{down:?}");
}

#[test]
fn only_root_may_use_the_local_pgbouncer() {
    let (cluster, pki) = tls_cluster();
    let bouncer = Bouncer::start(&cluster, &pki, "ca.pem");
    let (ok, said) = bouncer.psql_as("root", "root");
    assert!(ok, "{said}\n{}", bouncer.log());
    assert_eq!(said.trim(), HOST_ROLE);
    // Another local user, claiming root (peer credentials say otherwise), the host
    // role, or itself: refused by PgBouncer before any server connection.
    let (ok, said) = bouncer.psql_as("nobody", "root");
    assert!(!ok);
    assert!(said.contains("unix socket login rejected"), "{said}");
    for user in [HOST_ROLE, "nobody"] {
        let (ok, said) = bouncer.psql_as("nobody", user);
        assert!(!ok, "{user}");
        assert!(said.contains("login rejected"), "{user}: {said}");
    }
}

#[test]
fn a_database_server_the_site_ca_did_not_sign_fails_logins_closed() {
    let (cluster, pki) = tls_cluster();
    let bouncer = Bouncer::start(&cluster, &pki, "other-ca.pem");
    let host = bouncer.host();
    settle_in_step(3);
    let refused = host.login(&oathtool(SECRET, 0));
    assert_eq!(refused.status, SYSTEM_ERR, "{refused:?}");
    assert_eq!(server_logins(&cluster, HOST_ROLE), 0, "{}", cluster.log());
}

#[test]
fn the_shipped_config_listens_on_no_tcp_port_and_pools_per_session() {
    let ini = std::fs::read_to_string(testkit::repo_dir().join("packaging/pgbouncer/pgbouncer.ini")).unwrap();
    let value = |key: &str| {
        ini.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} =")))
            .map_or_else(|| panic!("{key} is not set"), str::trim)
    };
    assert_eq!(value("listen_addr"), "");
    assert_eq!(value("auth_type"), "hba");
    assert_eq!(value("pool_mode"), "session");
    assert_eq!(value("server_tls_sslmode"), "verify-full");
    let hba =
        std::fs::read_to_string(testkit::repo_dir().join("packaging/pgbouncer/pam_totp_hba.conf")).unwrap();
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(rules, ["local totp root peer"]);
}
