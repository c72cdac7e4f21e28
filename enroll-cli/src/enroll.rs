//! Enrollment: the default action of `totp-enroll`.
//!
//! Order matters: every check that can refuse (privilege, store kind, an existing
//! record) runs before a secret is made or shown, and the record is written only once
//! a code from the app verifies, so a half-done enrollment never replaces a good one.

use std::time::{SystemTime, UNIX_EPOCH};

use crypto_box::aead::OsRng;
use pam_totp::config::Config;
use pam_totp::record::Record;
use pam_totp::record_store::RecordLocation;
use pam_totp::seal::PublicHostKey;
use pam_totp::secret::SecretKey;
use pam_totp::template::StoreKind;
use pam_totp::verify::{self, TypedCode, Verdict};
use zeroize::Zeroizing;

use crate::caller::Target;
use crate::cli::EnrollArgs;
use crate::error::{CliError, CliResult};
use crate::{audit, qr, terminal, uri};

/// Bytes of a new secret: 160 bits, RFC 4226's recommendation.
const NEW_SECRET_BYTES: usize = 20;
/// Attempts at typing the confirmation code before giving up.
const CONFIRM_ATTEMPTS: u32 = 3;

pub fn run(config: &Config, target: &Target, args: &EnrollArgs) -> CliResult<()> {
    if args.no_confirm && !target.caller_is_root {
        return Err(CliError::Refused("--no-confirm is for root only".to_owned()));
    }
    let location = RecordLocation::for_account(config, target.account.clone())
        .map_err(|e| CliError::Usage(format!("{e} (in {})", config.secret_path)))?;
    if location.kind == StoreKind::System && !target.caller_is_root {
        return Err(CliError::Refused(format!(
            "Enrollment records on this host are kept by the administrator in {}.\n\
             Ask your administrator to enroll you (as root: totp-enroll --user {}).",
            location.path.display(),
            target.account.name
        )));
    }
    let exists = location
        .exists()
        .map_err(|e| CliError::Refused(format!("{}: {e}", location.path.display())))?;
    if exists && !args.force {
        return Err(CliError::Refused(format!(
            "{} is already enrolled ({}). To replace the enrollment (a new phone), run again with --force.",
            target.account.name,
            location.path.display()
        )));
    }

    // With `seal = true` the secret is sealed to the host's public key (world-readable,
    // so an ordinary user can enroll); checked before any secret is made or shown.
    let sealing = if config.seal {
        Some(
            PublicHostKey::read(&config.host_public_key)
                .map_err(|e| CliError::Usage(format!("seal = true, but {e}")))?,
        )
    } else {
        None
    };

    let secret = match &args.secret {
        Some(text) => SecretKey::from_base32(text).map_err(|e| CliError::Usage(format!("--secret: {e}")))?,
        None => new_secret()?,
    };
    let record = Record::new(
        secret,
        config.algorithm,
        config.digits,
        config.period,
        now_rfc3339(),
    );

    if !args.no_confirm {
        show(config, target, &record, args.no_qr);
        confirm(config, &record)?;
    }
    let written = match &sealing {
        Some(public) => {
            let sealed = public
                .seal(&mut OsRng, &target.account.name, &record.secret)
                .map_err(|e| CliError::Refused(format!("{e}; nothing was changed")))?;
            location.write_sealed(&record, &sealed)
        }
        None => location.write(&record),
    };
    written.map_err(|e| {
        CliError::Refused(format!(
            "cannot write {}: {e}; nothing was changed",
            location.path.display()
        ))
    })?;
    let action = if exists { "re-enrolled" } else { "enrolled" };
    let sealed_to = sealing
        .as_ref()
        .map(|public| format!(" sealed_to={}", public.id()))
        .unwrap_or_default();
    audit::record(&format!(
        "user={} {action} by {} record={}{sealed_to}",
        target.account.name,
        target.caller_name,
        location.path.display()
    ));
    println!(
        "{} is {action}. The module will ask for a code at the next login.",
        target.account.name
    );
    Ok(())
}

fn new_secret() -> CliResult<SecretKey> {
    let mut bytes = vec![0u8; NEW_SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| CliError::Refused(format!("no randomness from the OS: {e}")))?;
    SecretKey::from_bytes(bytes).map_err(|e| CliError::Refused(e.to_string()))
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Issuer from the config, else the host name; account is `user@host`.
fn labels(config: &Config, user: &str) -> (String, String) {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    let issuer = if config.issuer.is_empty() {
        host.replace(':', "-")
    } else {
        config.issuer.clone()
    };
    (issuer, format!("{user}@{host}").replace(':', "-"))
}

fn show(config: &Config, target: &Target, record: &Record, no_qr: bool) {
    let (issuer, account) = labels(config, &target.account.name);
    let uri = uri::key_uri(record, &issuer, &account);
    println!("Scan this QR code with your authenticator app (Microsoft Authenticator, or similar):\n");
    if !no_qr {
        match qr::terminal_lines(&uri) {
            Some(lines) => {
                for line in lines {
                    println!("{line}");
                }
            }
            None => println!("(The QR code cannot be drawn; use the key below.)"),
        }
    }
    println!(
        "\nOr enter this key by hand (time based, {} digits, {} s):",
        record.digits, record.period
    );
    println!("  {}", grouped(&record.secret.to_base32()).as_str());
    println!("URI: {}\n", uri.as_str());
}

/// `ABCD EFGH ...`: easier to copy by hand.
fn grouped(text: &str) -> Zeroizing<String> {
    let chars: Zeroizing<Vec<char>> = Zeroizing::new(text.chars().collect());
    Zeroizing::new(
        chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn confirm(config: &Config, record: &Record) -> CliResult<()> {
    for attempt in 1..=CONFIRM_ATTEMPTS {
        let reply = terminal::ask("Enter the code your app shows now: ")
            .map_err(|e| CliError::Refused(format!("cannot read the code: {e}")))?
            .ok_or_else(|| CliError::Refused("no code entered; nothing was changed".to_owned()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let verdict = TypedCode::parse(&reply, record.digits).map_or(Verdict::Invalid, |code| {
            verify::check(record, &code, now, config.window, 0)
        });
        if let Verdict::Accepted { .. } = verdict {
            return Ok(());
        }
        if attempt < CONFIRM_ATTEMPTS {
            eprintln!("That code does not match. Check the phone's clock and try the current code.");
        }
    }
    Err(CliError::Refused(
        "the code did not match; nothing was changed".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_shown_in_groups_of_four() {
        assert_eq!(grouped("JBSWY3DPEHPK3PXP").as_str(), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(grouped("ABCDEF").as_str(), "ABCD EF");
    }
}
