//! `totp-enroll unlock --user NAME`: the admin's way out of a lock-out.

use pam_totp_config::Config;

use crate::audit;
use crate::caller::Target;
use crate::error::{CliError, CliResult};
use crate::store::Backend;

/// Clears the failure count and any lock-out, keeping the replay-protection step.
pub fn run(config: &Config, backend: &mut Backend, target: &Target) -> CliResult<()> {
    if !target.caller_is_root {
        return Err(CliError::NotAllowed(
            "unlock is for root only; ask your administrator, or wait for the lock-out to end".to_owned(),
        ));
    }
    let failures = backend.place(config, target)?.unlock(&target.account.name)?;
    audit::record(&format!(
        "user={} unlocked by {} (had {failures} failures)",
        target.account.name, target.caller_name
    ));
    println!(
        "{} is unlocked ({failures} failed attempts cleared).",
        target.account.name
    );
    Ok(())
}
