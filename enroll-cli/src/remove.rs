//! `totp-enroll remove --user NAME` (also `reset`): the admin deletes an enrollment,
//! e.g. when phone and recovery codes are both lost, so the user can enroll afresh.

use pam_totp_config::Config;

use crate::audit;
use crate::caller::Target;
use crate::error::{CliError, CliResult};
use crate::store::Backend;

/// Removes the record, and clears failures, lock-out and recovery-code burns from the
/// login state (see [`crate::store::Place::remove`] for what each store keeps).
pub fn run(config: &Config, backend: &mut Backend, target: &Target) -> CliResult<()> {
    if !target.caller_is_root {
        return Err(CliError::NotAllowed(
            "remove is for root only; to replace your own enrollment, run totp-enroll --force".to_owned(),
        ));
    }
    let mut place = backend.place(config, target)?;
    if !place.remove()? {
        return Err(CliError::Refused(format!(
            "{} was not enrolled ({}); nothing to remove",
            target.account.name,
            place.describe()
        )));
    }
    audit::record(&format!(
        "user={} enrollment removed by {} record={}",
        target.account.name,
        target.caller_name,
        place.describe()
    ));
    println!(
        "{}'s enrollment is removed. They can enroll again with totp-enroll.",
        target.account.name
    );
    Ok(())
}
