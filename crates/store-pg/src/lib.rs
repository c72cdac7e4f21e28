//! `pam_totp_store_pg`, `store = "postgres"`: records and login state shared by many
//! hosts in PostgreSQL.
//!
//! - [`pg_store`]: the login's [`LoginStore`](pam_totp_core::ports::LoginStore);
//! - [`conninfo`]: the `postgres = "..."` string, split into what we handle (TLS,
//!   credentials) and what tokio-postgres handles;
//! - [`client`]: a synchronous connection with a hard deadline on every call;
//! - [`migrate`]: the versioned schema (`migrations/*.sql`), applied idempotently;
//! - [`login`]: what a host may do, through the schema's SECURITY DEFINER functions,
//!   one named user at a time: look up (enrolled here? locked out?) and have the
//!   database judge an answer;
//! - [`self_enroll`]: what a host writes for enrollment at login and "change your
//!   OTP", decided by the database (migration 0006);
//! - [`admin`]: what the admin role (the schema owner) does directly on the tables:
//!   write, remove, unlock, list, realms, policy (used by `totp-enroll`);
//! - [`check_settings`]: the `postgres` string as the config holds it.
//!
//! Replay protection and lock-outs hold across hosts because every change is one
//! conditional UPDATE computed from the row itself; see `migrations/0001_initial.sql`,
//! `0002_used_until_and_console.sql` (replay protection as a Unix time, console counters)
//! and `0003_checked_in_the_database.sql` (the database checks the codes; realms, policy,
//! secrets encrypted at rest).

#![forbid(unsafe_code)]

pub mod admin;
pub mod client;
pub mod conninfo;
pub mod login;
pub mod migrate;
pub mod pg_store;
pub mod self_enroll;
mod shortcuts;
mod tls;

use std::fmt;
use std::io;
use std::time::Duration;

pub use client::Client;
pub use conninfo::ConnInfo;
pub use migrate::migrate;
pub use pg_store::{PgAdmin, PgStore};
pub use tls::TlsError;

use pam_totp_config::{DatabaseSettings, Store};
use pam_totp_store_file::seal::SealError;

/// Why the database could not be used. Never holds a password or a record.
#[derive(Debug)]
pub enum DbError {
    /// `store = "postgres"` without a usable `postgres` string.
    Settings(conninfo::ConnInfoError),
    /// A passfile, key or certificate file is unsafe or unreadable.
    Credential(SealError),
    /// The TLS configuration could not be built.
    Tls(tls::TlsError),
    /// A host name did not resolve.
    Resolve { host: String, source: io::Error },
    /// A host name resolved to no address.
    NoAddress { host: String },
    /// The async runtime could not be made (out of memory, no epoll).
    Runtime(io::Error),
    /// Connecting, TLS or authentication failed.
    Connect(tokio_postgres::Error),
    /// No answer within the timeout.
    Timeout { action: &'static str },
    /// A statement failed.
    Query {
        action: &'static str,
        source: tokio_postgres::Error,
    },
    /// The connection was closed already.
    Closed,
    /// The database's schema is newer than this build's migrations.
    NewerSchema { found: i32, supported: i32 },
    /// A statement that always returns a row returned none (not migrated?).
    NoResultRow { action: &'static str },
    /// A host role name that is not a plain lower-case identifier.
    BadHostRole,
    /// A host function answered a value this build does not know (a newer schema?).
    UnknownAnswer { action: &'static str },
    /// The config does not say `store = "postgres"`.
    NotPostgres,
    /// A user name that cannot be a user's.
    BadUser,
    /// A realm name outside [`admin::REALM_RULE`].
    BadRealm,
    /// A record (text of schema version 1/2, or given to the admin side) that cannot be
    /// written as an enrollment.
    BadRecord {
        user: String,
        source: pam_totp_core::record::RecordError,
    },
    /// A sealed record of schema version 1/2 that the given host keys cannot open.
    Sealed { user: String, source: SealError },
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Settings(e) => e.fmt(f),
            DbError::Credential(e) => e.fmt(f),
            DbError::Tls(e) => write!(f, "database TLS: {e}"),
            DbError::Resolve { host, source } => write!(f, "cannot resolve database host {host}: {source}"),
            DbError::NoAddress { host } => write!(f, "cannot resolve database host {host}: no address"),
            DbError::Runtime(e) => write!(f, "cannot start the database client: {e}"),
            DbError::Connect(e) => write!(f, "cannot connect: {}", describe(e)),
            DbError::Timeout { action } => write!(f, "no answer in time ({action})"),
            DbError::Query { action, source } => write!(f, "cannot {action}: {}", describe(source)),
            DbError::Closed => f.write_str("connection closed"),
            DbError::NewerSchema { found, supported } => write!(
                f,
                "database schema: the database is at version {found}, newer than this build's \
                 {supported}; upgrade pam_totp"
            ),
            DbError::NoResultRow { action } => write!(f, "database schema: {action}: no result row"),
            DbError::BadHostRole => f.write_str(HOST_ROLE_RULE),
            DbError::UnknownAnswer { action } => write!(f, "database schema: {action}: unknown answer"),
            DbError::NotPostgres => f.write_str("database schema: store is not \"postgres\""),
            DbError::BadUser => f.write_str("user name is not acceptable"),
            DbError::BadRealm => f.write_str(admin::REALM_RULE),
            DbError::BadRecord { user, source } => write!(f, "the record of {user}: {source}"),
            DbError::Sealed { user, source } => write!(
                f,
                "the record of {user} is sealed to a host key and cannot be opened: {source}; \
                 run the command on a host that holds the key (config host_key, retired_keys); \
                 nothing was changed"
            ),
        }
    }
}

/// What a host role name must be (`db grant-host`).
pub const HOST_ROLE_RULE: &str = "host role names must be lower-case letters, digits and _";

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DbError::Settings(e) => Some(e),
            DbError::Credential(e) => Some(e),
            DbError::Tls(e) => Some(e),
            DbError::Runtime(e) | DbError::Resolve { source: e, .. } => Some(e),
            DbError::Connect(e) | DbError::Query { source: e, .. } => Some(e),
            DbError::BadRecord { source, .. } => Some(source),
            DbError::Sealed { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// tokio-postgres's Display hides the cause of I/O errors ("error connecting to server").
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl DbError {
    /// Whether the server refused for lack of privilege (SQLSTATE 42501).
    #[must_use]
    pub fn is_permission_denied(&self) -> bool {
        let (DbError::Query { source, .. } | DbError::Connect(source)) = self else {
            return false;
        };
        source.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    }
}

/// The per-call deadline from `postgres_timeout_ms` (of a `&Config` or its
/// [`DatabaseSettings`]).
#[must_use]
pub fn timeout<'a>(settings: impl Into<DatabaseSettings<'a>>) -> Duration {
    Duration::from_millis(settings.into().timeout_ms)
}

/// Connects as the database section says (`store = "postgres"`, `postgres`,
/// `postgres_timeout_ms`).
///
/// # Errors
/// The store is not postgres, the string is unusable, or connecting failed.
pub fn connect<'a>(settings: impl Into<DatabaseSettings<'a>>) -> Result<Client, DbError> {
    let settings = settings.into();
    if settings.store != Store::Postgres {
        return Err(DbError::NotPostgres);
    }
    let info: ConnInfo = settings.postgres.parse().map_err(DbError::Settings)?;
    client::connect(&info, timeout(settings))
}

/// Checks the `postgres` string of a config with `store = "postgres"` (the config crate
/// reads it as text; its syntax is this crate's).
///
/// # Errors
/// The string is unusable (missing, `password=`, plaintext to another host, ...).
pub fn check_settings<'a>(settings: impl Into<DatabaseSettings<'a>>) -> Result<(), conninfo::ConnInfoError> {
    settings.into().postgres.parse::<ConnInfo>().map(drop)
}

/// Unix times and steps are u64 in Rust, bigint in the database; none comes near 2^63,
/// and anything that would is clamped rather than wrapped.
pub(crate) fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// `recovery_epoch` and `recovery_used` are bit patterns, stored as the same 64 bits.
pub(crate) fn bits_to_db(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

pub(crate) fn bits_from_db(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_patterns_round_trip_through_bigint() {
        for value in [0, 1, u64::MAX, 1 << 63, 0xdead_beef_0000_0001] {
            assert_eq!(bits_from_db(bits_to_db(value)), value);
        }
        assert_eq!(to_db(u64::MAX), i64::MAX);
        assert_eq!(from_db(-5), 0);
    }
}
