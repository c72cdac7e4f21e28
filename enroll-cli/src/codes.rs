//! Recovery codes on the command's side: making a set, showing it, and
//! `totp-enroll recovery-codes` (a fresh set after proving a current code).

use pam_totp_config::Config;
use pam_totp_core::record::Record;
use pam_totp_core::recovery::{self, RecoveryCode};

use crate::caller::Target;
use crate::error::{CliError, CliResult};
use crate::store::{self, Backend};
use crate::{audit, proof};

/// `record` with a new set of codes, and the codes to show once.
pub fn new_set(record: Record) -> CliResult<(Record, Vec<RecoveryCode>)> {
    recovery::new_set(record).map_err(|e| CliError::failed("cannot make recovery codes", e))
}

/// Prints the codes, grouped for reading aloud, with what to do with them.
pub fn show(codes: &[RecoveryCode]) {
    println!("\nRecovery codes: each one works once, typed in place of a code, if your phone is lost.");
    println!("Keep them somewhere safe (on paper or in a password manager); they are not shown again.\n");
    for (n, code) in codes.iter().enumerate() {
        println!("  {:>2}. {}", n + 1, code.display().as_str());
    }
    println!("\nA new set (which cancels these) comes from `totp-enroll recovery-codes`.");
}

/// `totp-enroll recovery-codes`.
pub fn run(config: &Config, backend: &mut Backend, target: &Target) -> CliResult<()> {
    let mut place = backend.place(config, target)?;
    let existing = store::read_existing(config, &mut place, target)?;
    if !existing.secret_known {
        return Err(CliError::Refused(format!(
            "{}'s secret is sealed to the host key, so no code from the app can be checked \
             here; ask your administrator (as root: totp-enroll recovery-codes --user {})",
            target.account.name, target.account.name
        )));
    }
    let proved_until = if target.caller_is_root {
        0
    } else {
        proof::ask(&config.codes(), &target.account.name, &existing.record, false)?
    };
    // The same secret: the code that proved it must not log in again.
    let (record, codes) = new_set(existing.record.with_confirmed_until(proved_until))?;
    // A new epoch: burns recorded in the login state for the old set stop counting.
    place.offer_codes(&codes);
    place.write(&record, existing.sealed_secret.as_deref())?;
    audit::record(&format!(
        "user={} new recovery codes issued by {}",
        target.account.name, target.caller_name
    ));
    println!(
        "{} has {} new recovery codes; the old ones no longer work.",
        target.account.name,
        codes.len()
    );
    show(&codes);
    Ok(())
}
