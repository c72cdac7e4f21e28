//! `totp-enroll unlock --user NAME`: the admin's way out of a lock-out.

use pam_totp::config::Config;
use pam_totp::state::{LoginState, StateDir, StateError};

use crate::audit;
use crate::caller::Target;
use crate::error::{CliError, CliResult};

/// Clears the failure count and any lock-out, keeping the replay-protection step. A
/// corrupt state file is replaced by a fresh one.
pub fn run(config: &Config, target: &Target) -> CliResult<()> {
    if !target.caller_is_root {
        return Err(CliError::Refused(
            "unlock is for root only; ask your administrator, or wait for the lock-out to end".to_owned(),
        ));
    }
    let refused = |e: StateError| CliError::Refused(e.to_string());
    let dir = StateDir::open(&config.state_dir).map_err(refused)?;
    let mut locked = match dir.lock(&target.account.name) {
        Err(StateError::Corrupt) => {
            eprintln!(
                "totp-enroll: the state file of {} was corrupt; starting it afresh",
                target.account.name
            );
            dir.remove(&target.account.name).map_err(refused)?;
            dir.lock(&target.account.name).map_err(refused)?
        }
        other => other.map_err(refused)?,
    };
    let before = locked.state();
    locked
        .save(LoginState {
            failures: 0,
            locked_until: 0,
            ..before
        })
        .map_err(|e| CliError::Refused(e.to_string()))?;
    audit::record(&format!(
        "user={} unlocked by {} (had {} failures)",
        target.account.name, target.caller_name, before.failures
    ));
    println!(
        "{} is unlocked ({} failed attempts cleared).",
        target.account.name, before.failures
    );
    Ok(())
}
