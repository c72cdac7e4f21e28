//! The command's side of `store = "postgres"`: who may use it and how it connects.

use pam_totp_config::{Config, Store};
use pam_totp_store_pg::{self as db, Client, ConnInfo, DbError};

use crate::caller::Target;
use crate::error::{CliError, CliResult};

/// Whether records and login state are in the database.
#[must_use]
pub fn in_use(config: &Config) -> bool {
    config.store == Store::Postgres
}

/// The database credentials (passfile, client key) are root-only files, and the admin
/// role may change anyone's record: a user gets told who enrolls them instead of a
/// permission error about a file they never heard of.
pub fn require_root(target: &Target) -> CliResult<()> {
    if target.caller_is_root {
        return Ok(());
    }
    Err(CliError::Usage(
        "enrollments on this site are kept in a shared database (store = \"postgres\"), \
         which only root can change: enrollment is done by an administrator (as root: \
         totp-enroll --user NAME). Ask your administrator."
            .to_owned(),
    ))
}

/// Connects with `database` (`--database`) or else the config's `postgres` string.
pub fn connect(config: &Config, database: Option<&str>) -> CliResult<Client> {
    let (text, source) = match database {
        Some(text) => (text, "--database"),
        None => (config.postgres.as_str(), "the config's postgres"),
    };
    if text.trim().is_empty() {
        return Err(CliError::Usage(
            "no database named: set store = \"postgres\" and postgres = \"...\" in the config, \
             or give --database CONNINFO"
                .to_owned(),
        ));
    }
    let info: ConnInfo = text
        .parse()
        .map_err(|e: db::conninfo::ConnInfoError| CliError::BadOption {
            option: source.to_owned(),
            cause: e.into(),
        })?;
    db::client::connect(&info, db::timeout(config)).map_err(failed)
}

/// A database error as the command reports it (exit 1: the database refused or failed).
#[allow(clippy::needless_pass_by_value)] // used as `map_err(failed)`
pub fn failed(e: DbError) -> CliError {
    CliError::Database(e)
}
