//! A throwaway PostgreSQL cluster for one test: `initdb` (as the `postgres` system user,
//! since initdb refuses root) in a temporary directory, listening on 127.0.0.1 on a free
//! port and on a unix socket in that directory, fsync on. Host logins (TCP) need a
//! password (scram-sha-256); local superuser access over the socket is trusted, for
//! the test's own setup. Stopped and removed on drop.
//!
//! Needs the Debian `postgresql` package (PostgreSQL 15: `.ci/run` installs it).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::product::{Client, ConnInfo, db};

use crate::netns::NetHost;

/// The deadline the outage tests give the module (`postgres_timeout_ms`).
pub const OUTAGE_TIMEOUT_MS: u64 = 1000;
/// A login makes at most two connections and two statements, each with the deadline;
/// against a stopped or silent server the first step already fails.
pub const OUTAGE_LIMIT: Duration = Duration::from_millis(2 * OUTAGE_TIMEOUT_MS + 1000);

/// The outage tests' host config: the short deadline. (No lock-out getting in the way is
/// the database's policy: [`set_policy`].)
#[must_use]
pub fn outage_policy() -> String {
    format!("postgres_timeout_ms = {OUTAGE_TIMEOUT_MS}\n")
}

const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The database every test uses, owned by [`ADMIN`].
pub const DATABASE: &str = "totp";
/// The admin role: runs the migrations, owns the schema, writes records.
pub const ADMIN: &str = "totp_admin";

pub struct Cluster {
    dir: tempfile::TempDir,
    pub port: u16,
    /// `listen_addresses`: 127.0.0.1, and the server side of any [`NetHost`] links.
    listen: String,
}

fn as_postgres(program: &str, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(Path::new(BIN).join(program))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program} as postgres: {e}"))
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("address").port()
}

impl Cluster {
    /// A new cluster, started, with [`DATABASE`] and [`ADMIN`] and the schema migrated.
    #[must_use]
    pub fn start() -> Cluster {
        Cluster::start_listening(&[])
    }

    /// [`Cluster::start`], listening on `addresses` too (which must exist already).
    #[must_use]
    pub fn start_listening(addresses: &[&str]) -> Cluster {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "PostgreSQL 15 is not installed (apt-get install postgresql)"
        );
        let dir = tempfile::Builder::new()
            .prefix("pam_totp-pg")
            .tempdir()
            .expect("tempdir");
        let postgres = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("the postgres system user (Debian's postgresql package creates it)");
        nix::unistd::chown(dir.path(), Some(postgres.uid), Some(postgres.gid)).expect("chown");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let mut cluster = Cluster {
            dir,
            port: free_port(),
            listen: std::iter::once("127.0.0.1")
                .chain(addresses.iter().copied())
                .collect::<Vec<_>>()
                .join(","),
        };
        let data = cluster.data();
        check(
            "initdb",
            &as_postgres(
                "initdb",
                &[
                    "-D",
                    data.to_str().expect("utf-8"),
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--username=postgres",
                    "--no-instructions",
                ],
            ),
        );
        // A free port can be taken by someone else before the server binds it: try a few.
        for tries in 1.. {
            let started = cluster.pg_ctl_start();
            if started.status.success() {
                break;
            }
            if tries == 5 || !cluster.log().contains("could not bind") {
                check("pg_ctl start", &started);
            }
            cluster.port = free_port();
        }
        // Two calls: CREATE DATABASE may not share a (multi-statement) transaction.
        cluster.superuser_sql(&format!("CREATE ROLE {ADMIN} LOGIN CREATEROLE"));
        cluster.superuser_sql(&format!("CREATE DATABASE {DATABASE} OWNER {ADMIN}"));
        cluster.install_at_rest_key();
        let mut admin = cluster.admin();
        db::migrate(&mut admin).expect("migrate");
        cluster
    }

    /// The key the database encrypts secrets under (schema version 3), as the guide
    /// says: a random file in the data directory that only the server reads, and
    /// `pg_read_file` granted to the admin role, in the database.
    fn install_at_rest_key(&self) {
        let mut random = [0u8; 32];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").expect("urandom"),
            &mut random,
        )
        .expect("random");
        let hex: String = random.iter().fold(String::new(), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        });
        let path = self.data().join("pam_totp_secret.key");
        std::fs::write(&path, format!("{hex}\n")).expect("write the at-rest key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let postgres = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("the postgres system user");
        nix::unistd::chown(&path, Some(postgres.uid), Some(postgres.gid)).expect("chown");
        self.superuser_sql_in(
            DATABASE,
            &format!("GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO {ADMIN}"),
        );
    }

    /// The at-rest key file (for the test that a dump holds no secret).
    #[must_use]
    pub fn at_rest_key_path(&self) -> PathBuf {
        self.data().join("pam_totp_secret.key")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The unix socket directory.
    #[must_use]
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn resume(&self) {
        check("pg_ctl start", &self.pg_ctl_start());
    }

    fn pg_ctl_start(&self) -> Output {
        let options = format!(
            "-c listen_addresses={} -p {} -k {} -c fsync=on -c max_connections=200 -c log_connections=on",
            self.listen,
            self.port,
            self.socket_dir().display()
        );
        let log = self.dir.path().join("server.log");
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("utf-8"),
                "-l",
                log.to_str().expect("utf-8"),
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
    }

    /// Stops the server (fast shutdown: connections are closed, data is kept).
    pub fn stop(&self) {
        check(
            "pg_ctl stop",
            &as_postgres(
                "pg_ctl",
                &[
                    "-D",
                    self.data().to_str().expect("utf-8"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
            ),
        );
    }

    /// The postmaster's pid (first line of postmaster.pid), if it is running.
    fn running_pid(&self) -> Option<nix::unistd::Pid> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next().and_then(|l| l.trim().parse().ok())?;
        Some(nix::unistd::Pid::from_raw(pid))
    }

    #[must_use]
    pub fn pid(&self) -> nix::unistd::Pid {
        self.running_pid().expect("the server is not running")
    }

    /// SIGSTOPs the postmaster: it still accepts TCP connections (the kernel does) but
    /// never answers, the way a hung or partitioned server looks to a client.
    pub fn freeze(&self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
    }

    pub fn thaw(&self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    }

    /// Runs SQL as the superuser over the unix socket (psql-free: through our client).
    pub fn superuser_sql(&self, sql: &str) {
        self.superuser_sql_in("postgres", sql);
    }

    /// [`Cluster::superuser_sql`] in database `dbname`.
    pub fn superuser_sql_in(&self, dbname: &str, sql: &str) {
        let mut client = self.connect_local("postgres", dbname, Duration::from_secs(10));
        client.batch_execute("test setup", sql).expect("superuser SQL");
    }

    fn connect_local(&self, user: &str, dbname: &str, timeout: Duration) -> Client {
        let info: ConnInfo = format!(
            "host={} port={} user={user} dbname={dbname} sslmode=disable",
            self.socket_dir().display(),
            self.port
        )
        .parse()
        .expect("conninfo");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match db::client::connect(&info, timeout) {
                Ok(client) => return client,
                Err(e) if Instant::now() > deadline => panic!("connect as {user}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// A connection as [`ADMIN`] to [`DATABASE`].
    #[must_use]
    pub fn admin(&self) -> Client {
        self.admin_with_timeout(Duration::from_secs(10))
    }

    /// The same, with another per-call deadline.
    #[must_use]
    pub fn admin_with_timeout(&self, timeout: Duration) -> Client {
        self.connect_local(ADMIN, DATABASE, timeout)
    }

    /// Creates host login role `role` with `password`, member of `pam_totp_host`.
    pub fn add_host_role(&self, role: &str, password: &str) {
        self.superuser_sql(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}';"));
        db::admin::grant_host(&mut self.admin(), role).expect("grant pam_totp_host");
    }

    /// [`Cluster::add_host_role`] with the password `<role>-password`, written to a
    /// root-only passfile `dir/pgpass`, whose path it returns.
    #[must_use]
    pub fn add_host_role_with_passfile(&self, role: &str, dir: &Path) -> PathBuf {
        let password = format!("{role}-password");
        self.add_host_role(role, &password);
        write_passfile(dir, &password)
    }

    /// The `postgres = "..."` string for a host role, over TCP with a password file.
    #[must_use]
    pub fn conninfo(&self, role: &str, passfile: &Path) -> String {
        format!(
            "host=127.0.0.1 port={} dbname={DATABASE} user={role} sslmode=disable passfile={}",
            self.port,
            passfile.display()
        )
    }

    /// The server's log so far (for failing tests).
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A frozen server would not stop.
        if let Some(pid) = self.running_pid() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        }
        let _ = as_postgres(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

/// A "host": a PAM service directory whose config says `store = "postgres"`, logging in
/// as its own database role (member of `pam_totp_host`) with a password file.
pub struct PgHost {
    pub fixture: crate::Fixture,
    /// The host's own network namespace, when it has one: its logins run there.
    pub network: Option<NetHost>,
}

impl PgHost {
    /// A host role `role` on `cluster`, with `extra` config lines; on 127.0.0.1.
    #[must_use]
    pub fn new(cluster: &Cluster, role: &str, extra: &str) -> PgHost {
        let (fixture, passfile) = host_fixture(cluster, role);
        fixture.write_config(&format!(
            "store = \"postgres\"\npostgres = \"{}\"\n{extra}",
            cluster.conninfo(role, &passfile)
        ));
        PgHost {
            fixture,
            network: None,
        }
    }

    /// A host role `role` logging in from `network` (see [`Cluster::serve_network_hosts`]),
    /// over TLS checked against `pki`'s CA with the server's name (`verify-full`).
    #[must_use]
    pub fn on_network(cluster: &Cluster, role: &str, extra: &str, pki: &Pki, network: NetHost) -> PgHost {
        let (fixture, passfile) = host_fixture(cluster, role);
        let ca = fixture.path("db-ca.pem");
        std::fs::copy(pki.path("ca.pem"), &ca).expect("copy the CA");
        fixture.write_config(&format!(
            "store = \"postgres\"\npostgres = \"host=db.test hostaddr={} port={} dbname={DATABASE} \
             user={role} sslmode=verify-full sslrootcert={} passfile={}\"\n{extra}",
            network.server_addr,
            cluster.port,
            ca.display(),
            passfile.display()
        ));
        PgHost {
            fixture,
            network: Some(network),
        }
    }
}

/// `dir/pgpass`, root-only, holding `password` (libpq's passfile, which the module
/// refuses unless it is private); its path.
#[must_use]
pub fn write_passfile(dir: &Path, password: &str) -> PathBuf {
    let passfile = dir.join("pgpass");
    std::fs::write(&passfile, format!("{password}\n")).expect("passfile");
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    passfile
}

/// A fixture for host role `role` (made on `cluster`), and the root-only passfile in it
/// that holds the role's password.
fn host_fixture(cluster: &Cluster, role: &str) -> (crate::Fixture, PathBuf) {
    let fixture = crate::Fixture::new("", "");
    let passfile = cluster.add_host_role_with_passfile(role, fixture.dir.path());
    (fixture, passfile)
}

/// Enrolls `user` with `secret` in the database, as the admin would.
pub fn enroll(cluster: &Cluster, user: &str, secret: &str) {
    use crate::product::{Algorithm, Record, SecretKey};
    let record = Record::new(
        SecretKey::from_base32(secret).expect("secret"),
        Algorithm::Sha1,
        6,
        30,
        crate::product::now_rfc3339(),
    );
    db::admin::put_record(&mut cluster.admin(), user, &record.to_toml()).expect("put record");
}

/// `user`'s state in the database.
#[must_use]
pub fn state(cluster: &Cluster, user: &str) -> crate::product::LoginState {
    db::admin::read_state(&mut cluster.admin(), user)
        .expect("read state")
        .unwrap_or_default()
}

/// Changes the database's lock-out policy and window (`totp-enroll db policy`), as the
/// admin: with `store = "postgres"` the hosts' config keys for them are not used.
pub fn set_policy(cluster: &Cluster, change: impl FnOnce(&mut db::admin::Policy)) {
    let mut admin = cluster.admin();
    let mut policy = db::admin::read_policy(&mut admin).expect("read the policy");
    change(&mut policy);
    db::admin::write_policy(&mut admin, &policy).expect("write the policy");
}

/// Certificates for the TLS tests, made with the `openssl` command: a CA, a server
/// certificate for the name `db.test` (not for 127.0.0.1), and a client certificate
/// whose CN is a role name; and a second CA that signed nothing of ours.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

/// libfaketime, preloaded with `FAKETIME` set. Not the `faketime` wrapper: it refuses to
/// run when /dev/shm holds a semaphore named after its pid, and libfaketime leaves those
/// behind (a process that execs never unlinks its own), so a reused pid failed the wrapper.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// Runs `openssl` an hour in the past (libfaketime), so that the certificates are
/// already valid on a host whose clock runs behind (the two-host tests set the hosts'
/// clocks 10 minutes apart).
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", "-1h")
        .output()
        .expect("openssl is not installed");
    check(&format!("openssl {args:?}"), &out);
}

impl Pki {
    #[must_use]
    pub fn new(client_role: &str) -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        for ca in ["ca", "other-ca"] {
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            let (key, pem, subject) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=pam_totp test {ca}"),
            );
            args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subject]);
            openssl(d, &args);
        }
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:db.test\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("ext");
        std::fs::write(
            d.join("client.ext"),
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("ext");
        let client_subject = format!("/CN={client_role}");
        for (name, subject) in [("server", "/CN=db.test"), ("client", client_subject.as_str())] {
            let mut args = vec!["req"];
            args.extend(ec);
            let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
            args.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
            openssl(d, &args);
            let (pem, ext) = (format!("{name}.pem"), format!("{name}.ext"));
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        Pki { dir }
    }

    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Cluster {
    /// Turns TLS on (server certificate for `db.test`, client certificates of `pki`'s CA
    /// accepted) and lets `cert_role` log in with a client certificate alone.
    pub fn enable_tls(&self, pki: &Pki, cert_role: &str) {
        self.serve_tls(pki, &format!("hostssl all {cert_role} 127.0.0.1/32 cert"));
        self.superuser_sql(&format!("CREATE ROLE {cert_role} LOGIN"));
        db::admin::grant_host(&mut self.admin(), cert_role).expect("grant");
        self.reload();
    }

    /// Turns TLS on and lets roles with a password in from [`NetHost`]s (10.0.0.0/8),
    /// over TLS only.
    pub fn serve_network_hosts(&self, pki: &Pki) {
        self.serve_tls(pki, "hostssl all all 10.0.0.0/8 scram-sha-256");
        self.reload();
    }

    /// Installs `pki`'s server certificate, turns `ssl` on, and puts `hba_line` first.
    fn serve_tls(&self, pki: &Pki, hba_line: &str) {
        let postgres = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .expect("postgres user");
        for name in ["server.pem", "server.key", "ca.pem"] {
            let to = self.data().join(name);
            std::fs::copy(pki.path(name), &to).expect("copy certificate");
            nix::unistd::chown(&to, Some(postgres.uid), Some(postgres.gid)).expect("chown");
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let conf = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str(
            "ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\n",
        );
        std::fs::write(&conf, text).expect("postgresql.conf");
        let hba = self.data().join("pg_hba.conf");
        let text = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        std::fs::write(&hba, format!("{hba_line}\n{text}")).expect("pg_hba.conf");
    }

    fn reload(&self) {
        check(
            "pg_ctl reload",
            &as_postgres("pg_ctl", &["-D", self.data().to_str().expect("utf-8"), "reload"]),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
