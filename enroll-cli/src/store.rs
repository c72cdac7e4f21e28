//! The command's side of record and state access: the checks and messages every
//! subcommand shares.

use std::path::Path;

use pam_totp::config::Config;
use pam_totp::record::{Record, StoredRecord};
use pam_totp::record_store::{RecordLocation, StoreError};
use pam_totp::seal;
use pam_totp::secret::SecretKey;
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

/// An existing record as the command can change it: with its secret, and the sealed
/// box to keep when the record is sealed to the host key.
pub struct Existing {
    pub record: Record,
    pub sealed_secret: Option<String>,
    /// False for a sealed record read by a user: `record.secret` is then a random
    /// stand-in (never written: the record keeps its box), and only its recovery codes
    /// can be checked.
    pub secret_known: bool,
}

/// The target's record, which must exist and be usable. A sealed record can only be
/// opened by root (the host's private key is root's).
pub fn read_existing(config: &Config, location: &RecordLocation, target: &Target) -> CliResult<Existing> {
    match location.read_stored() {
        Ok(StoredRecord::Plain(record)) => Ok(Existing {
            record,
            sealed_secret: None,
            secret_known: true,
        }),
        Ok(StoredRecord::Sealed(sealed)) if target.caller_is_root => {
            let record = seal::open_record(config, &target.account.name, &sealed).map_err(|e| {
                CliError::Refused(format!(
                    "cannot open the sealed record {}: {e}",
                    location.path.display()
                ))
            })?;
            Ok(Existing {
                record,
                sealed_secret: Some(sealed.sealed_secret().to_owned()),
                secret_known: true,
            })
        }
        Ok(StoredRecord::Sealed(sealed)) => {
            let mut stand_in = vec![0u8; 20];
            getrandom::fill(&mut stand_in)
                .map_err(|e| CliError::Refused(format!("no randomness from the OS: {e}")))?;
            let stand_in = SecretKey::from_bytes(stand_in).map_err(|e| CliError::Refused(e.to_string()))?;
            Ok(Existing {
                record: sealed.open(stand_in),
                sealed_secret: Some(sealed.sealed_secret().to_owned()),
                secret_known: false,
            })
        }
        Err(StoreError::NotFound) => Err(CliError::Refused(format!(
            "{} is not enrolled ({}); run totp-enroll first",
            target.account.name,
            location.path.display()
        ))),
        Err(other) => Err(CliError::Refused(format!(
            "cannot use {}: {other}; re-enroll with --force, or ask root to remove it",
            location.path.display()
        ))),
    }
}

/// Writes `record` atomically (sealed with the same box if it was sealed).
pub fn write(location: &RecordLocation, record: &Record, sealed_secret: Option<&str>) -> CliResult<()> {
    let written = match sealed_secret {
        Some(sealed) => location.write_sealed(record, sealed),
        None => location.write(record),
    };
    written.map_err(|e| {
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
