//! Recovery codes on the command's side: making a set, showing it, and
//! `totp-enroll recovery-codes` (a fresh set after proving a current code).

use pam_totp::config::Config;
use pam_totp::record::Record;
use pam_totp::recovery::{ISSUED_CODES, RecoveryCode};
use zeroize::Zeroizing;

use crate::caller::Target;
use crate::error::{CliError, CliResult};
use crate::{audit, proof, store};

/// Bytes of salt per hash (argon2's recommendation: 16).
const SALT_BYTES: usize = 16;

fn random(len: usize) -> CliResult<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut bytes).map_err(|e| CliError::Refused(format!("no randomness from the OS: {e}")))?;
    Ok(bytes)
}

/// `record` with a new set of [`ISSUED_CODES`] codes (new epoch: the old codes die
/// with the old set), and the codes to show once.
pub fn new_set(record: Record) -> CliResult<(Record, Vec<RecoveryCode>)> {
    let mut codes = Vec::with_capacity(ISSUED_CODES);
    let mut hashes = Vec::with_capacity(ISSUED_CODES);
    for index in 0..ISSUED_CODES {
        let code =
            RecoveryCode::from_random(index, &random(16)?).map_err(|e| CliError::Refused(e.to_string()))?;
        hashes.push(
            code.hash(&random(SALT_BYTES)?)
                .map_err(|e| CliError::Refused(e.to_string()))?,
        );
        codes.push(code);
    }
    let epoch_bytes = random(8)?;
    let mut epoch = [0u8; 8];
    epoch.copy_from_slice(&epoch_bytes);
    // Never 0 (the epoch of a state that has seen no set).
    let epoch = u64::from_le_bytes(epoch).max(1);
    Ok((record.with_recovery(epoch, hashes), codes))
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
pub fn run(config: &Config, target: &Target) -> CliResult<()> {
    let location = store::location(config, target)?;
    let existing = store::read_existing(config, &location, target)?;
    if !existing.secret_known {
        return Err(CliError::Refused(format!(
            "{}'s secret is sealed to the host key, so no code from the app can be checked \
             here; ask your administrator (as root: totp-enroll recovery-codes --user {})",
            target.account.name, target.account.name
        )));
    }
    if !target.caller_is_root {
        proof::ask(config, &target.account.name, &existing.record, false)?;
    }
    let (record, codes) = new_set(existing.record)?;
    store::write(&location, &record, existing.sealed_secret.as_deref())?;
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
