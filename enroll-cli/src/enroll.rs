//! Enrollment: the default action of `totp-enroll`.
//!
//! Order matters: every check that can refuse (privilege, store kind, an existing
//! record, the proof of the current enrollment for `--force`) runs before a secret is
//! made or shown, and the record is written only once a code from the app verifies,
//! so a half-done enrollment never replaces a good one: the old secret and the old
//! recovery codes work until the new record is in place.

use std::time::{SystemTime, UNIX_EPOCH};

use crypto_box::aead::OsRng;
use pam_totp_config::algorithm::Algorithm;
use pam_totp_config::{CodeParameters, Config};
use pam_totp_core::record::Record;
use pam_totp_core::secret::SecretKey;
use pam_totp_core::verify::{self, TypedCode, Verdict};
use pam_totp_os::trusted_file;
use pam_totp_store_file::seal::PublicHostKey;
use pam_totp_store_file::state::LoginState;

use crate::caller::Target;
use crate::cli::EnrollArgs;
use crate::error::{CliError, CliResult};
use crate::store::{self, Backend};
use crate::{audit, codes, proof, qr, terminal, uri};

/// Attempts at typing the confirmation code before giving up.
const CONFIRM_ATTEMPTS: u32 = 3;
/// RFC 4226 section 4, R6: the shared secret is at least 128 bits.
const MIN_SECRET_BITS: usize = 128;

pub fn run(config: &Config, backend: &mut Backend, target: &Target, args: &EnrollArgs) -> CliResult<()> {
    if args.no_confirm && !target.caller_is_root {
        return Err(CliError::NotAllowed(
            "--no-confirm is for root only; leave it out and type the code your app shows".to_owned(),
        ));
    }
    let (issuer, account) = uri::labels(
        &config.codes(),
        &target.account.name,
        &pam_totp_os::account::host_name(),
    );
    let mut place = backend.place(config, target)?;
    let exists = place.exists()?;
    if exists && !args.force {
        return Err(already_enrolled(target, &place.describe()));
    }
    // Until when the codes typed here (the proof, the confirmation) are used up.
    let mut used_until = 0;
    if exists && !target.caller_is_root {
        let current = store::read_existing(config, &mut place, target)?;
        used_until = if current.secret_known {
            proof::ask(&config.codes(), &target.account.name, &current.record, true)?
        } else {
            proof::ask_recovery_only(&config.codes(), &target.account.name, &current.record)?
        };
    }

    // With `seal = true` the secret is sealed to the host's public key (world-readable,
    // so an ordinary user can enroll); checked before any secret is made or shown.
    let sealing = if config.seal {
        Some(PublicHostKey::read(&config.host_public_key).map_err(CliError::SealSetting)?)
    } else {
        None
    };

    let secret = match &args.secret {
        Some(text) => given_secret(text)?,
        None => new_secret()?,
    };
    let algorithm = args.algorithm.map_or(config.algorithm, Algorithm::from);
    let digits = args.digits.unwrap_or(config.digits);
    let period = args.period.unwrap_or(config.period);
    warn_if_not_microsoft_compatible(algorithm, digits, period);
    let record = Record::new(
        secret,
        algorithm,
        digits,
        period,
        pam_totp_config::clock::now_rfc3339(),
    );

    let uri = uri::key_uri(&record, &issuer, &account);
    write_images(&uri, args)?;
    if !args.no_confirm {
        show(&record, &uri, args.no_qr);
        used_until = used_until.max(confirm(&config.codes(), &record)?);
    }
    // The record carries it (the module refuses those steps); root also burns it in the
    // login state, as a login would.
    let (record, recovery_codes) = codes::new_set(record.with_confirmed_until(used_until))?;
    let sealed = match &sealing {
        Some(public) => Some(
            public
                .seal(&mut OsRng, &target.account.name, &record.secret)
                .map_err(|e| CliError::NothingChanged(e.into()))?,
        ),
        None => None,
    };
    place.offer_codes(&recovery_codes);
    if args.force {
        place.write(&record, sealed.as_deref())?;
    } else if !place.write_new(&record, sealed.as_deref())? {
        // Enrolled meanwhile (another admin, another host): theirs stays.
        return Err(already_enrolled(target, &place.describe()));
    }
    if target.caller_is_root && used_until != 0 {
        let burnt = LoginState {
            used_until,
            ..LoginState::default()
        };
        place.carry_state(&burnt)?;
    }
    let action = if exists { "re-enrolled" } else { "enrolled" };
    let sealed_to = sealing
        .as_ref()
        .map(|public| format!(" sealed_to={}", public.id()))
        .unwrap_or_default();
    audit::record(&format!(
        "user={} {action} by {} record={}{sealed_to}",
        target.account.name,
        target.caller_name,
        place.describe()
    ));
    println!(
        "{} is {action}. The module will ask for a code at the next login.",
        target.account.name
    );
    codes::show(&recovery_codes);
    Ok(())
}

fn already_enrolled(target: &Target, place: &str) -> CliError {
    CliError::Refused(format!(
        "{} is already enrolled ({place}). To replace the enrollment (a new phone), run again with --force.",
        target.account.name
    ))
}

fn new_secret() -> CliResult<SecretKey> {
    SecretKey::generate().map_err(|e| CliError::failed("no randomness from the OS", e))
}

/// `--secret`: shorter than RFC 4226's 128 bits is accepted with a warning, as old
/// google-authenticator secrets (80 bits) still have to move over.
fn given_secret(text: &str) -> CliResult<SecretKey> {
    let secret = SecretKey::from_base32(text).map_err(|e| CliError::BadOption {
        option: "--secret".to_owned(),
        cause: e.into(),
    })?;
    if secret.bits() < MIN_SECRET_BITS {
        eprintln!(
            "totp-enroll: warning: secret has {} bits, fewer than the {MIN_SECRET_BITS} RFC 4226 \
             asks for; accepted",
            secret.bits()
        );
    }
    Ok(secret)
}

/// Anything but SHA1 / 6 digits / 30 s is chosen on purpose (a flag or the config),
/// and still deserves a warning: many users' phones will show wrong codes.
fn warn_if_not_microsoft_compatible(algorithm: Algorithm, digits: u8, period: u64) {
    if algorithm != Algorithm::Sha1 || digits != 6 || period != 30 {
        eprintln!(
            "totp-enroll: warning: {algorithm}, {digits} digits, {period} s: Microsoft Authenticator \
             honours only SHA1, 6 digits and 30 s, and shows wrong codes for anything else. \
             Use an app that supports these parameters, or drop --algorithm/--digits/--period."
        );
    }
}

fn write_images(uri: &str, args: &EnrollArgs) -> CliResult<()> {
    let failed = |path: &std::path::Path, e: std::io::Error| {
        CliError::Refused(if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{}; nothing was changed", trusted_file::exists_message(path))
        } else {
            format!(
                "cannot write the QR code to {}: {e}; nothing was changed",
                path.display()
            )
        })
    };
    if let Some(path) = &args.qr_png {
        qr::write_png(uri, path).map_err(|e| failed(path, e))?;
        println!(
            "QR code written to {} (it holds the secret: delete it after use).",
            path.display()
        );
    }
    if let Some(path) = &args.qr_svg {
        qr::write_svg(uri, path).map_err(|e| failed(path, e))?;
        println!(
            "QR code written to {} (it holds the secret: delete it after use).",
            path.display()
        );
    }
    Ok(())
}

/// The key and URI first, then the QR code right above the prompt: on a small terminal
/// the lines before it scroll away, never the code's top.
fn show(record: &Record, uri: &str, no_qr: bool) {
    let qr = if no_qr { None } else { Some(terminal_qr(uri)) };
    if let Some(Err(why)) = &qr {
        println!("{why}");
    }
    println!(
        "Enter this key by hand (time based, {} digits, {} s):",
        record.digits, record.period
    );
    println!("  {}", uri::grouped(&record.secret.to_base32()).as_str());
    println!("URI: {uri}\n");
    if let Some(Ok(lines)) = qr {
        println!("Or scan this QR code with your app (Microsoft Authenticator, or similar):");
        for line in lines {
            println!("{line}");
        }
    }
}

/// The QR code's lines, or why it is not drawn: it must fit the terminal's width, and
/// its height with the prompt line below it.
fn terminal_qr(uri: &str) -> Result<Vec<String>, String> {
    const ELSE: &str = "Enlarge the window (or make the font smaller) and run again, use --qr-png FILE,\n\
                        or enter the key below by hand.";
    let lines = qr::terminal_lines(uri).ok_or("(The QR code cannot be drawn; use the key below.)")?;
    let width = qr::columns(&lines);
    let height = lines.len() + 1;
    match (terminal::columns(), terminal::rows()) {
        (Some(columns), _) if columns < width => Err(format!(
            "The terminal is {columns} columns wide, too narrow for the QR code ({width} columns).\n{ELSE}"
        )),
        (_, Some(rows)) if rows < height => Err(format!(
            "The terminal has {rows} lines, too few for the QR code and the prompt ({height} lines).\n{ELSE}"
        )),
        _ => Ok(lines),
    }
}

/// Asks for a code of the new `record`; returns when its step ends.
fn confirm(codes: &CodeParameters<'_>, record: &Record) -> CliResult<u64> {
    for attempt in 1..=CONFIRM_ATTEMPTS {
        let reply = terminal::ask("Enter the code your app shows now: ")
            .map_err(|e| CliError::failed("cannot read the code", e))?
            .ok_or_else(|| CliError::WrongCode("no code entered; nothing was changed".to_owned()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let verdict = TypedCode::parse(&reply, record.digits).map_or(Verdict::Invalid, |code| {
            verify::check(record, &code, now, codes.window, 0)
        });
        if let Verdict::Accepted { step } = verdict {
            return Ok(verify::step_end(step, record.period));
        }
        if attempt < CONFIRM_ATTEMPTS {
            eprintln!("That code does not match. Check the phone's clock and try the current code.");
        }
    }
    Err(CliError::WrongCode(
        "the code did not match; nothing was changed".to_owned(),
    ))
}
