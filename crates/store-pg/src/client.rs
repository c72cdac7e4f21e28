//! A synchronous database connection with a hard deadline on every call.
//!
//! tokio-postgres runs on a current-thread runtime owned by the [`Client`]: it starts no
//! thread, and host names are resolved here, on the caller's thread, before connecting,
//! so tokio's blocking pool (a thread) is never used. Each call (connecting included:
//! TCP, TLS, start-up, authentication) runs under `tokio::time::timeout`, so a server
//! that accepted the connection and then went silent (stopped, partitioned) cannot hold
//! a login past the timeout. The server is also told `statement_timeout` (and
//! `lock_timeout`), so it abandons a statement we abandoned. Dropping the client closes the connection and
//! the runtime before the call that made it returns.

use std::future::Future;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use zeroize::Zeroizing;

use crate::DbError;
use crate::conninfo::ConnInfo;
use crate::tls;
use pam_totp_store_file::seal::{KeyKind, read_key_file};

/// One open connection. Not shared between logins: one login opens, uses and drops one.
pub struct Client {
    // An Option so that Drop can close the client before waiting for the connection task.
    session: Option<tokio_postgres::Client>,
    connection: Option<JoinHandle<()>>,
    runtime: Runtime,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "db::Client(timeout {:?})", self.timeout)
    }
}

/// Opens a connection as `info` says, every step within `timeout`.
///
/// # Errors
/// Unsafe credential files, DNS failure, refused or timed-out connection, TLS or
/// authentication failure.
pub fn connect(info: &ConnInfo, timeout: Duration) -> Result<Client, DbError> {
    let mut pg = info.pg.clone();
    if let Some(passfile) = &info.passfile {
        let text = read_key_file(KeyKind::DbSecret, passfile).map_err(DbError::Credential)?;
        let password = Zeroizing::new(text.lines().next().unwrap_or("").as_bytes().to_vec());
        pg.password(password.as_slice());
    }
    pg.connect_timeout(timeout);
    // So that the database's admin sees whose connections these are.
    if pg.get_application_name().is_none() {
        pg.application_name("pam_totp");
    }
    resolve_here(&mut pg)?;
    let tls = tls::client_config(info)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(DbError::Runtime)?;
    let connecting = async {
        match tls {
            None => {
                let (client, connection) = pg.connect(NoTls).await?;
                Ok((client, spawn_connection(connection)))
            }
            Some(config) => {
                let make = tokio_postgres_rustls::MakeRustlsConnect::new(config);
                let (client, connection) = pg.connect(make).await?;
                Ok((client, spawn_connection(connection)))
            }
        }
    };
    let (client, connection) =
        match runtime.block_on(async { tokio::time::timeout(timeout, connecting).await }) {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(DbError::Connect(e)),
            Err(_) => return Err(DbError::Timeout { action: "connect" }),
        };
    let mut client = Client {
        session: Some(client),
        connection: Some(connection),
        runtime,
        timeout,
    };
    // Told with SET, not the `options` start-up parameter, which a pooler in between
    // (PgBouncer, docs/guide.md) refuses; one round trip, in the session it pools.
    let millis = timeout.as_millis();
    client.batch_execute(
        "set the server-side deadline",
        &format!("SET statement_timeout = {millis}; SET lock_timeout = {millis}"),
    )?;
    Ok(client)
}

fn spawn_connection<F>(connection: F) -> JoinHandle<()>
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    // Errors surface on the client's next call; the task only drives the socket.
    tokio::spawn(async move {
        let _ = connection.await;
    })
}

/// Names become addresses on this thread (tokio would use a pool thread), and go in as
/// `hostaddr`, so the name itself is still what the certificate is checked against.
fn resolve_here(pg: &mut tokio_postgres::Config) -> Result<(), DbError> {
    if !pg.get_hostaddrs().is_empty() {
        return Ok(());
    }
    let hosts = pg.get_hosts().to_vec();
    if hosts.iter().any(|h| matches!(h, Host::Unix(_))) {
        return Ok(());
    }
    let ports = pg.get_ports().to_vec();
    for (i, host) in hosts.iter().enumerate() {
        let Host::Tcp(name) = host else { continue };
        let address = if let Ok(ip) = name.parse::<IpAddr>() {
            ip
        } else {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|source| DbError::Resolve {
                    host: name.clone(),
                    source,
                })?
                .next()
                .ok_or_else(|| DbError::NoAddress { host: name.clone() })?
                .ip()
        };
        pg.hostaddr(address);
    }
    Ok(())
}

impl Client {
    fn run<T>(
        &self,
        action: &'static str,
        call: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DbError> {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, call).await })
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(DbError::Query { action, source }),
            Err(_) => Err(DbError::Timeout { action }),
        }
    }

    fn inner(&self) -> Result<&tokio_postgres::Client, DbError> {
        self.session.as_ref().ok_or(DbError::Closed)
    }

    /// Runs one statement; the number of rows it changed.
    ///
    /// # Errors
    /// The statement failed or timed out.
    pub fn execute(
        &mut self,
        action: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, DbError> {
        let client = self.inner()?;
        self.run(action, client.execute(sql, params))
    }

    /// Runs one query; its rows.
    ///
    /// # Errors
    /// The query failed or timed out.
    pub fn query(
        &mut self,
        action: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, DbError> {
        let client = self.inner()?;
        self.run(action, client.query(sql, params))
    }

    /// Runs statements separated by `;` with no parameters (migrations, BEGIN/COMMIT).
    ///
    /// # Errors
    /// A statement failed or the batch timed out.
    pub fn batch_execute(&mut self, action: &'static str, sql: &str) -> Result<(), DbError> {
        let client = self.inner()?;
        self.run(action, client.batch_execute(sql))
    }

    /// The per-call deadline.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // (Timers must be made inside the runtime: hence every `async` block around them.)
        // Dropping the client asks the connection task to send Terminate and close;
        // give it a moment to do so cleanly, then the runtime (and any task) goes.
        drop(self.session.take());
        if let Some(task) = self.connection.take() {
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_millis(200), task).await });
        }
    }
}
