//! The command's side of `store = "postgres"`: who may use it, how it connects, and the
//! one admin statement `pam_totp::db::admin` does not have yet (carrying a login state
//! into the database on import).

use pam_totp::config::{Config, Store};
use pam_totp::db::{self, Client, ConnInfo, DbError};
use pam_totp::state::LoginState;

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
        .map_err(|e| CliError::Usage(format!("{source}: {e}")))?;
    db::client::connect(&info, db::timeout(config)).map_err(failed)
}

/// A database error as the command reports it (exit 1: the database refused or failed).
#[allow(clippy::needless_pass_by_value)] // used as `map_err(failed)`
pub fn failed(e: DbError) -> CliError {
    let hint = if e.is_permission_denied() {
        " (the command needs the admin role, the schema's owner: see --database)"
    } else {
        ""
    };
    CliError::Refused(format!("database: {e}{hint}"))
}

/// Carries `state`'s replay protection and burnt recovery codes into `user`'s database
/// state (never moving them back): an imported record must not make a used code or a
/// burnt recovery code good again. Failures and lock-outs are not carried.
pub fn carry_state(client: &mut Client, user: &str, state: &LoginState) -> CliResult<()> {
    let last_step = i64::try_from(state.last_step).unwrap_or(i64::MAX);
    let epoch = i64::from_ne_bytes(state.recovery_epoch.to_ne_bytes());
    let burnt = i64::from_ne_bytes(state.recovery_used.to_ne_bytes());
    client
        .execute(
            "carry the login state",
            "INSERT INTO pam_totp.login_state AS s (user_name, last_step, recovery_epoch, recovery_used)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_name) DO UPDATE SET
                 last_step = greatest(s.last_step, EXCLUDED.last_step),
                 recovery_used = CASE WHEN s.recovery_epoch = EXCLUDED.recovery_epoch
                                      THEN s.recovery_used | EXCLUDED.recovery_used
                                      WHEN EXCLUDED.recovery_epoch = 0 THEN s.recovery_used
                                      ELSE EXCLUDED.recovery_used END,
                 recovery_epoch = CASE WHEN EXCLUDED.recovery_epoch = 0 THEN s.recovery_epoch
                                       ELSE EXCLUDED.recovery_epoch END",
            &[&user, &last_step, &epoch, &burnt],
        )
        .map_err(failed)?;
    Ok(())
}
