//! The command's side of record and state access: the checks and messages every
//! subcommand shares.

use std::path::Path;

use pam_totp::config::Config;
use pam_totp::record::Record;
use pam_totp::record_store::{RecordLocation, StoreError};
use pam_totp::state::{LoginState, StateDir, StateError};
use pam_totp::template::StoreKind;

use crate::caller::Target;
use crate::error::{CliError, CliResult};

/// Where the target's record is; a system store is refused to a non-root caller.
pub fn location(config: &Config, target: &Target) -> CliResult<RecordLocation> {
    let location = RecordLocation::for_account(config, target.account.clone())
        .map_err(|e| CliError::Usage(format!("{e} (in {})", config.secret_path)))?;
    if location.kind == StoreKind::System && !target.caller_is_root {
        return Err(CliError::Refused(format!(
            "Enrollment records on this host are kept by the administrator in {}.\n\
             Ask your administrator (as root: totp-enroll ... --user {}).",
            location.path.display(),
            target.account.name
        )));
    }
    Ok(location)
}

/// The target's record, which must exist and be usable.
pub fn read_existing(location: &RecordLocation, target: &Target) -> CliResult<Record> {
    location.read().map_err(|e| match e {
        StoreError::NotFound => CliError::Refused(format!(
            "{} is not enrolled ({}); run totp-enroll first",
            target.account.name,
            location.path.display()
        )),
        other => CliError::Refused(format!(
            "cannot use {}: {other}; re-enroll with --force, or ask root to remove it",
            location.path.display()
        )),
    })
}

/// Writes `record` atomically.
pub fn write(location: &RecordLocation, record: &Record) -> CliResult<()> {
    location.write(record).map_err(|e| {
        CliError::Refused(format!(
            "cannot write {}: {e}; nothing was changed",
            location.path.display()
        ))
    })
}

/// The login state of `user` as the module last left it; `None` if the user never
/// logged in (or the state directory does not exist yet). Root only.
pub fn peek_state(state_dir: &Path, user: &str) -> CliResult<Option<LoginState>> {
    if !state_dir.exists() {
        return Ok(None);
    }
    let dir = StateDir::open(state_dir).map_err(state_error)?;
    dir.peek(user).map_err(state_error)
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(state_error)`
pub fn state_error(e: StateError) -> CliError {
    CliError::Refused(e.to_string())
}
