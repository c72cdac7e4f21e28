//! Enrollment at first login (`enroll_at_login = true`, off by default).
//!
//! A user without a record who has passed the modules above this one (the password or
//! the key) is shown a new secret as a QR code, its key in groups of four and its
//! `otpauth://` URI, through the PAM conversation (`PAM_TEXT_INFO` lines, which sshd
//! shows with the next keyboard-interactive prompt); then asked for the code the app
//! shows. Only a code that verifies makes a record, written as root into the
//! root-owned store (config validation refuses this setting with records in homes: the
//! module never writes into a home directory). Recovery codes are made at the same
//! time and shown once.
//!
//! The trust trade-off: whoever holds the first factor first binds the second. That
//! is why it is opt-in, and why it is logged as an enrollment.
//!
//! The QR code is drawn without colour escapes (ssh clients print escapes as text):
//! light modules as blocks, which reads correctly on the usual dark-background
//! terminal; the key and the URI are there for every other case.

#![forbid(unsafe_code)]

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};
use zeroize::Zeroizing;

use crate::account::Account;
use crate::authenticate::{Conversation, Logger, Login, Outcome, Priority, UNAVAILABLE_MESSAGE};
use crate::config::Config;
use crate::record::Record;
use crate::record_store::RecordLocation;
use crate::recovery::{ISSUED_CODES, RecoveryCode};
use crate::secret::SecretKey;
use crate::state::{LoginState, StateDir};
use crate::template::StoreKind;
use crate::uri;
use crate::verify::{self, TypedCode, Verdict};

/// Bytes of a new secret: 160 bits, as `totp-enroll` makes them.
const NEW_SECRET_BYTES: usize = 20;
/// Bytes of salt per recovery-code hash.
const SALT_BYTES: usize = 16;
/// Codes the user may get wrong before the enrollment is abandoned.
const ATTEMPTS: u32 = 3;

/// Runs the enrollment for a known user without a record. `None` when the user chose
/// to skip it (possible only during the grace period): the caller then applies the
/// grace rules.
pub fn run(
    login: &Login<'_>,
    config: &Config,
    grace: bool,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Option<Outcome> {
    let fail = |conv: &mut dyn Conversation, message: &str| {
        log.log(
            Priority::Err,
            &format!("enrollment at login impossible: {message}; {}", login.who()),
        );
        conv.show_error(UNAVAILABLE_MESSAGE);
        Some(Outcome::SystemError)
    };
    let account = match Account::lookup(login.user) {
        Ok(account) => account,
        Err(e) => return fail(conv, &e.to_string()),
    };
    let location = match RecordLocation::for_account(config, account) {
        Ok(location) if location.kind == StoreKind::System => location,
        Ok(_) => return fail(conv, "records are in homes"),
        Err(e) => return fail(conv, &e.to_string()),
    };
    // Before any secret is shown: the store must be there to take the record.
    match location.exists() {
        Ok(false) if location.path.parent().is_some_and(std::path::Path::is_dir) => {}
        Ok(false) => {
            return fail(
                conv,
                &format!(
                    "the record directory of {} does not exist (create it: root-owned, mode 0700)",
                    location.path.display()
                ),
            );
        }
        Ok(true) => return fail(conv, "a record appeared meanwhile"),
        Err(e) => return fail(conv, &e.to_string()),
    }
    let Some(secret) = random(NEW_SECRET_BYTES).and_then(|b| SecretKey::from_bytes(b.to_vec()).ok()) else {
        return fail(conv, "no randomness from the OS");
    };
    let created = rfc3339_utc(login.now);
    let record = Record::new(secret, config.algorithm, config.digits, config.period, created);

    show_secret(config, login.user, &record, conv);
    let prompt = if grace {
        format!(
            "Code shown by your app (or press Enter to skip until {}): ",
            config.enforce_after
        )
    } else {
        "Code shown by your app: ".to_owned()
    };
    let mut step = None;
    for attempt in 1..=ATTEMPTS {
        let reply = match conv.ask_hidden(&prompt) {
            Ok(reply) => reply.unwrap_or_default(),
            Err(e) => {
                log.log(Priority::Notice, &format!("{e}; {}", login.who()));
                return Some(Outcome::ConversationFailed);
            }
        };
        if grace && reply.iter().all(u8::is_ascii_whitespace) {
            log.log(
                Priority::Notice,
                &format!("enrollment at login skipped; {}", login.who()),
            );
            return None;
        }
        let verdict = TypedCode::parse(&reply, record.digits).map_or(Verdict::Invalid, |code| {
            verify::check(&record, &code, login.now, config.window, 0)
        });
        drop(reply);
        if let Verdict::Accepted { step: accepted } = verdict {
            step = Some(accepted);
            break;
        }
        if attempt < ATTEMPTS {
            conv.show_error("That code does not match; check the phone's clock and type the current code.");
        }
    }
    let Some(step) = step else {
        conv.show_error("The code did not match; you are not enrolled.");
        log.log(
            Priority::Notice,
            &format!(
                "authentication failure; {} reason=enrollment at login: code did not match",
                login.who()
            ),
        );
        return Some(Outcome::Denied);
    };
    Some(save(login, config, &location, record, step, conv, log))
}

/// Under the user's state lock: make the recovery codes, write the record (unless a
/// concurrent login enrolled first), and record the step used, so the enrollment code
/// cannot be replayed.
fn save(
    login: &Login<'_>,
    config: &Config,
    location: &RecordLocation,
    record: Record,
    step: u64,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Outcome {
    let system_error = |conv: &mut dyn Conversation, message: &str| {
        log.log(
            Priority::Err,
            &format!("enrollment at login failed: {message}; {}", login.who()),
        );
        conv.show_error(UNAVAILABLE_MESSAGE);
        Outcome::SystemError
    };
    let state_dir = match StateDir::open(&config.state_dir) {
        Ok(dir) => dir,
        Err(e) => return system_error(conv, &e.to_string()),
    };
    let mut locked = match state_dir.lock(login.user) {
        Ok(locked) => locked,
        Err(e) => return system_error(conv, &e.to_string()),
    };
    match location.exists() {
        Ok(false) => {}
        Ok(true) => {
            conv.show_error("You were enrolled by another login meanwhile; log in again with its code.");
            log.log(
                Priority::Notice,
                &format!(
                    "authentication failure; {} reason=enrolled concurrently",
                    login.who()
                ),
            );
            return Outcome::Denied;
        }
        Err(e) => return system_error(conv, &e.to_string()),
    }
    let Some((record, codes)) = with_recovery_codes(record) else {
        return system_error(conv, "cannot make recovery codes");
    };
    if let Err(e) = location.write(&record) {
        return system_error(conv, &format!("cannot write {}: {e}", location.path.display()));
    }
    let after = LoginState {
        last_step: step,
        failures: 0,
        locked_until: 0,
        last_success: login.now,
        recovery_epoch: record.recovery_epoch,
        recovery_used: 0,
    };
    if let Err(e) = locked.save(after) {
        return system_error(conv, &e.to_string());
    }
    drop(locked);
    log.log(
        Priority::Notice,
        &format!(
            "enrolled at login; {} record={} recovery_codes={}",
            login.who(),
            location.path.display(),
            codes.len()
        ),
    );
    conv.show_info("You are enrolled: from now on this host asks for the code your app shows.");
    conv.show_info(
        "Recovery codes: each one works once, typed in place of a code, if your phone is lost. \
         Write them down now; they are not shown again:",
    );
    for (n, code) in codes.iter().enumerate() {
        conv.show_info(&format!("  {:>2}. {}", n + 1, code.display().as_str()));
    }
    // A prompt, so that sshd shows the codes now rather than after the login.
    if conv
        .ask_hidden("Press Enter once you have written the recovery codes down: ")
        .is_err()
    {
        return Outcome::ConversationFailed;
    }
    log.log(
        Priority::Info,
        &format!("authentication success; {}", login.who()),
    );
    Outcome::Success
}

/// The QR code, the key in groups of four, and the URI, as information lines.
fn show_secret(config: &Config, user: &str, record: &Record, conv: &mut dyn Conversation) {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    let issuer = if config.issuer.is_empty() {
        host.replace(':', "-")
    } else {
        config.issuer.clone()
    };
    let account = format!("{user}@{host}").replace(':', "-");
    let uri = uri::key_uri(record, &issuer, &account);
    conv.show_info(
        "This host now requires a second factor. Scan this QR code with your \
         authenticator app (Microsoft Authenticator, or similar):",
    );
    if let Some(lines) = qr_lines(&uri) {
        for line in lines {
            conv.show_info(&line);
        }
    }
    let key = record.secret.to_base32();
    let grouped: Zeroizing<String> = Zeroizing::new(
        key.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    );
    conv.show_info(&format!(
        "Or add it by hand (time based, {} digits, {} s): {}",
        record.digits,
        record.period,
        grouped.as_str()
    ));
    conv.show_info(&format!("URI: {}", uri.as_str()));
}

/// The QR code of `data` as lines of Unicode half blocks, light modules drawn (right
/// for a dark-background terminal), with the quiet zone; `None` if it does not fit.
#[must_use]
pub fn qr_lines(data: &str) -> Option<Vec<String>> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::L).ok()?;
    let drawn = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    Some(drawn.lines().map(str::to_owned).collect())
}

/// `record` with a fresh set of recovery codes, and the codes to show once.
fn with_recovery_codes(record: Record) -> Option<(Record, Vec<RecoveryCode>)> {
    let mut codes = Vec::with_capacity(ISSUED_CODES);
    let mut hashes = Vec::with_capacity(ISSUED_CODES);
    for index in 0..ISSUED_CODES {
        let code = RecoveryCode::from_random(index, &random(16)?).ok()?;
        hashes.push(code.hash(&random(SALT_BYTES)?).ok()?);
        codes.push(code);
    }
    let mut epoch = [0u8; 8];
    epoch.copy_from_slice(&random(8)?);
    let epoch = u64::from_le_bytes(epoch).max(1);
    Some((record.with_recovery(epoch, hashes), codes))
}

fn random(len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes)
}

/// RFC 3339 UTC seconds (`2026-11-25T10:00:00Z`) for the record's `created` field.
fn rfc3339_utc(now: u64) -> String {
    let (days, rest) = (now / 86_400, now % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_is_rfc3339_utc() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_799_971_200 + 3661), "2027-01-15T01:01:01Z");
        assert_eq!(rfc3339_utc(1_709_164_800), "2024-02-29T00:00:00Z");
    }

    #[test]
    fn the_qr_code_is_plain_text_with_a_quiet_zone() {
        let lines = qr_lines("otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(lines.iter().all(|l| !l.contains('\x1b')), "no escapes");
        let width = lines[0].chars().count();
        assert!(width >= 29 + 8, "{width}");
        assert_eq!(lines.len(), width.div_ceil(2));
        // Light modules are drawn: the quiet zone's first row is all full blocks.
        assert!(lines[0].chars().all(|c| c == '█'), "{}", lines[0]);
    }
}
