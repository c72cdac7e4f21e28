//! `totp-enroll --force` run by a user on a database host ("change your OTP"): the
//! command cannot reach the database (its credentials are root's), so it leaves the
//! request in the user's home, as the user; the next login on a host with
//! `enroll_at_login` sees it and, after the user's current code, shows a new secret.
//! The request alone changes nothing: the database replaces the enrollment only for the
//! host that just accepted a current code of this user, once (migration 0006).

use std::io::ErrorKind;

use pam_totp_store_pg::self_enroll::CHANGE_REQUEST_FILE;

use crate::caller::Target;
use crate::error::{CliError, CliResult};

/// Records (or renews) the request.
pub fn run(target: &Target) -> CliResult<()> {
    let path = target.account.home.join(CHANGE_REQUEST_FILE);
    // A new file, so its time is now's: a request older than the enrollment is ignored.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::failed(format!("cannot replace {}", path.display()), e)),
    }
    pam_totp_os::trusted_file::create(None, &path, 0o600)
        .map_err(|e| CliError::failed(format!("cannot write {}", path.display()), e))?;
    println!(
        "Your request is recorded ({}). At your next login on a host that offers it, type \
         your current code as usual: you are then shown a new QR code, and the old secret \
         keeps working until you confirm the new one.",
        path.display()
    );
    Ok(())
}
