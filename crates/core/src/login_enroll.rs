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

use pam_totp_config::{CodeParameters, Config, clock};

use crate::login_state::LoginState;
use crate::ports::{
    Accounts, Conversation, Enrollment, Logger, Login, LoginStore, Outcome, Priority, UNAVAILABLE_MESSAGE,
};
use crate::record::Record;
use crate::recovery::RecoveryCode;
use crate::secret::SecretKey;
use crate::verify::{self, TypedCode, Verdict};
use crate::{qr, recovery, uri};

/// Codes the user may get wrong before the enrollment is abandoned.
pub(crate) const ATTEMPTS: u32 = 3;

/// Runs the enrollment for a known user without a record. `None` when the user chose
/// to skip it (possible only during the grace period): the caller then applies the
/// grace rules.
pub fn run(
    login: &Login<'_>,
    config: &Config,
    store: &dyn LoginStore,
    accounts: &dyn Accounts,
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
    let account = match accounts.user(login.user) {
        Ok(account) => account,
        Err(e) => return fail(conv, &e.to_string()),
    };
    let location = match store.enrollment(config, account) {
        Ok(location) => location,
        Err(e) => return fail(conv, &e.to_string()),
    };
    // Before any secret is shown: the store must be there to take the record.
    match location.exists() {
        Ok(false) => {}
        Ok(true) => return fail(conv, "a record appeared meanwhile"),
        Err(e) => return fail(conv, &e.to_string()),
    }
    let Ok(secret) = SecretKey::generate() else {
        return fail(conv, "no randomness from the OS");
    };
    let created = clock::rfc3339(login.now);
    let codes = config.codes();
    let record = Record::new(secret, codes.algorithm, codes.digits, codes.period, created);

    show_secret(&codes, login.user, &accounts.host_name(), &record, conv);
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
            verify::check(&record, &code, login.now, codes.window, 0)
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
    Some(save(login, location.as_ref(), record, step, conv, log))
}

/// Under the user's state lock: make the recovery codes, write the record (unless a
/// concurrent login enrolled first), and record the step used, so the enrollment code
/// cannot be replayed.
fn save(
    login: &Login<'_>,
    location: &dyn Enrollment,
    record: Record,
    step: u64,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Outcome {
    let mut locked = match location.lock(login.user) {
        Ok(locked) => locked,
        Err(e) => return enrollment_failed(login, conv, log, &e.to_string()),
    };
    match location.exists() {
        Ok(false) => {}
        Ok(true) => return enrolled_meanwhile(login, conv, log),
        Err(e) => return enrollment_failed(login, conv, log, &e.to_string()),
    }
    let (record, codes) = match recovery::new_set(record) {
        Ok(set) => set,
        Err(e) => return enrollment_failed(login, conv, log, &format!("cannot make recovery codes: {e}")),
    };
    if let Err(e) = location.write(&record) {
        return enrollment_failed(login, conv, log, &e.to_string());
    }
    let after = LoginState {
        used_until: verify::step_end(step, record.period),
        last_success: login.now,
        recovery_epoch: record.recovery_epoch,
        ..LoginState::default()
    };
    if let Err(e) = locked.save(after) {
        return enrollment_failed(login, conv, log, &e.to_string());
    }
    drop(locked);
    log.log(
        Priority::Notice,
        &format!(
            "enrolled at login; {} record={} recovery_codes={}",
            login.who(),
            location.place(),
            codes.len()
        ),
    );
    conv.show_info("You are enrolled: from now on this host asks for the code your app shows.");
    if show_recovery_codes(&codes, conv).is_err() {
        return Outcome::ConversationFailed;
    }
    log.log(
        Priority::Info,
        &format!("authentication success; {}", login.who()),
    );
    Outcome::Success
}

/// Enrollment at login could not be finished: the cause logged for the admin, the user
/// told only that the service is unavailable.
pub(crate) fn enrollment_failed(
    login: &Login<'_>,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    message: &str,
) -> Outcome {
    log.log(
        Priority::Err,
        &format!("enrollment at login failed: {message}; {}", login.who()),
    );
    conv.show_error(UNAVAILABLE_MESSAGE);
    Outcome::SystemError
}

/// Another login enrolled the user while this one showed the QR code: this one's
/// secret is not written.
pub(crate) fn enrolled_meanwhile(
    login: &Login<'_>,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Outcome {
    conv.show_error("You were enrolled by another login meanwhile; log in again with its code.");
    log.log(
        Priority::Notice,
        &format!(
            "authentication failure; {} reason=enrolled concurrently",
            login.who()
        ),
    );
    Outcome::Denied
}

/// The new recovery codes, shown once, then a prompt so that sshd shows them now rather
/// than after the login. `Err`: the conversation failed.
pub(crate) fn show_recovery_codes(codes: &[RecoveryCode], conv: &mut dyn Conversation) -> Result<(), ()> {
    conv.show_info(
        "Recovery codes: each one works once, typed in place of a code, if your phone is lost. \
         Write them down now; they are not shown again:",
    );
    for (n, code) in codes.iter().enumerate() {
        conv.show_info(&format!("  {:>2}. {}", n + 1, code.display().as_str()));
    }
    conv.ask_hidden("Press Enter once you have written the recovery codes down: ")
        .map(drop)
        .map_err(drop)
}

/// The QR code, the key in groups of four, and the URI, as information lines.
pub(crate) fn show_secret(
    codes: &CodeParameters<'_>,
    user: &str,
    host: &str,
    record: &Record,
    conv: &mut dyn Conversation,
) {
    let (issuer, account) = uri::labels(codes, user, host);
    let uri = uri::key_uri(record, &issuer, &account);
    conv.show_info(
        "This host now requires a second factor. Scan this QR code with your \
         authenticator app (Microsoft Authenticator, or similar):",
    );
    if let Some(lines) = qr::half_blocks(&uri, qr::Drawn::LightModules) {
        for line in lines {
            conv.show_info(&line);
        }
    }
    conv.show_info(&format!(
        "Or add it by hand (time based, {} digits, {} s): {}",
        record.digits,
        record.period,
        uri::grouped(&record.secret.to_base32()).as_str()
    ));
    conv.show_info(&format!("URI: {}", uri.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_plain_text_with_a_quiet_zone() {
        let lines = qr::half_blocks(
            "otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP",
            qr::Drawn::LightModules,
        )
        .unwrap();
        assert!(lines.iter().all(|l| !l.contains('\x1b')), "no escapes");
        let width = lines[0].chars().count();
        assert!(width >= 29 + 8, "{width}");
        assert_eq!(lines.len(), width.div_ceil(2));
        // Light modules are drawn: the quiet zone's first row is all full blocks.
        assert!(lines[0].chars().all(|c| c == '█'), "{}", lines[0]);
    }
}
