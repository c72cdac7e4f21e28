//! `totp-enroll remove --user NAME` (also `reset`): the admin deletes an enrollment,
//! e.g. when phone and recovery codes are both lost, so the user can enroll afresh.

use pam_totp::config::Config;
use pam_totp::state::{LoginState, StateDir, StateError};

use crate::caller::Target;
use crate::error::{CliError, CliResult};
use crate::{audit, store};

/// Removes the record, and clears failures, lock-out and recovery-code burns from the
/// login state; the last used time step stays, so replay protection survives even if
/// the same secret is provisioned again.
pub fn run(config: &Config, target: &Target) -> CliResult<()> {
    if !target.caller_is_root {
        return Err(CliError::Refused(
            "remove is for root only; to replace your own enrollment, run totp-enroll --force".to_owned(),
        ));
    }
    let location = store::location(config, target)?;
    let existed = location
        .exists()
        .map_err(|e| CliError::Refused(format!("{}: {e}", location.path.display())))?;
    location
        .remove()
        .map_err(|e| CliError::Refused(format!("cannot remove {}: {e}", location.path.display())))?;
    if config.state_dir.exists() {
        let dir = StateDir::open(&config.state_dir).map_err(store::state_error)?;
        if dir.peek(&target.account.name).is_ok_and(|state| state.is_some()) {
            let mut locked = match dir.lock(&target.account.name) {
                Err(StateError::Corrupt) => {
                    dir.remove(&target.account.name).map_err(store::state_error)?;
                    dir.lock(&target.account.name).map_err(store::state_error)?
                }
                other => other.map_err(store::state_error)?,
            };
            let last_step = locked.state().last_step;
            locked
                .save(LoginState {
                    last_step,
                    ..LoginState::default()
                })
                .map_err(store::state_error)?;
        }
    }
    if !existed {
        return Err(CliError::Refused(format!(
            "{} was not enrolled ({}); nothing to remove",
            target.account.name,
            location.path.display()
        )));
    }
    audit::record(&format!(
        "user={} enrollment removed by {} record={}",
        target.account.name,
        target.caller_name,
        location.path.display()
    ));
    println!(
        "{}'s enrollment is removed. They can enroll again with totp-enroll.",
        target.account.name
    );
    Ok(())
}
