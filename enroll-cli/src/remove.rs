//! `totp-enroll remove --user NAME` and `reset`: the admin deletes an enrollment, e.g.
//! when phone and recovery codes are both lost, so the user can enroll afresh; with the
//! database, `reset` also marks the user to enroll at their next login.

use pam_totp_config::Config;

use crate::audit;
use crate::caller::Target;
use crate::database;
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

/// `reset` with store = "postgres": the enrollment goes at once (the old secret stops
/// working) and the user is marked to enroll at their next login, in one transaction.
pub fn reset_in_database(config: &Config, target: &Target, conninfo: Option<&str>) -> CliResult<()> {
    database::require_root(target)?;
    let mut client = database::connect(config, conninfo)?;
    let removed =
        pam_totp_store_pg::admin::reset(&mut client, &target.account.name).map_err(database::failed)?;
    audit::record(&format!(
        "user={} enrollment reset by {} record=postgres:{} (was enrolled: {removed})",
        target.account.name, target.caller_name, target.account.name
    ));
    let before = if removed {
        "'s enrollment is removed (the old secret no longer works)"
    } else {
        " was not enrolled"
    };
    println!(
        "{}{before}; they enroll again at their next login on a host with enroll_at_login = true.",
        target.account.name
    );
    Ok(())
}
