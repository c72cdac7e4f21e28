//! Enrollment at login on a store that checks the confirming code itself (the
//! database: `host_enroll`, migration 0006), and "change your OTP" (`host_reenroll`).
//!
//! The same conversation as [`crate::login_enroll`] (QR code, key, URI, a code, the
//! recovery codes), but the host writes nothing itself: it sends the new secret, the
//! code the user typed and the plaintext recovery codes, and the store decides (an
//! enrollment of someone else's realm, a replacement, or a wrong code are refused
//! there). The code is checked here first, so that a typo is caught before the store
//! spends its single chance (a re-enrollment ticket is single use).

use pam_totp_config::{Config, clock};

use crate::login_enroll::{self, ATTEMPTS, enrolled_meanwhile, enrollment_failed};
use crate::ports::{
    Accounts, CheckedEnrollment, Conversation, Logger, Login, LoginStore, NewSecret, Outcome, Priority,
    StoreFailure, UNAVAILABLE_MESSAGE, Written,
};
use crate::record::Record;
use crate::recovery;
use crate::secret::SecretKey;
use crate::verify::{self, TypedCode, Verdict};

/// A first enrollment at login (`enroll_at_login`). `None` when the user skipped it
/// (only in the grace period and only if not `marked` by an admin's reset).
pub fn enroll(
    login: &Login<'_>,
    config: &Config,
    store: &dyn CheckedEnrollment,
    accounts: &dyn Accounts,
    grace: bool,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Option<Outcome> {
    let skip_until = grace.then_some(config.enforce_after.as_str());
    let (record, code) = match ask(login, config, accounts, skip_until, conv, log) {
        Asked::Confirmed(record, code) => (record, code),
        Asked::Skipped => return None,
        Asked::Done(outcome) => return Some(outcome),
    };
    Some(write(login, &record, &code, false, conv, log, |new| {
        store.enroll(config, login, new)
    }))
}

/// A user an admin reset ("new phone"): enrolled now where `enroll_at_login` is on
/// (no skipping, grace period or not); `None` elsewhere, for the caller to refuse after
/// a prompt like anyone without a way in (never let through by `nullok` or the grace
/// period: the admin asked for a new second factor, not for none).
pub fn marked(
    login: &Login<'_>,
    config: &Config,
    store: &dyn LoginStore,
    accounts: &dyn Accounts,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Option<Outcome> {
    let checked = store.checked_enrollment().filter(|_| config.enroll_at_login)?;
    Some(enroll(login, config, checked, accounts, false, conv, log).unwrap_or(Outcome::Denied))
}

/// After the store's verdict: on success, with `enroll_at_login` on a store that checks
/// enrollments itself, the change of secret the user asked for, if any.
pub fn after_success(
    login: &Login<'_>,
    config: &Config,
    store: &dyn LoginStore,
    accounts: &dyn Accounts,
    outcome: Outcome,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Outcome {
    if outcome != Outcome::Success || !config.enroll_at_login {
        return outcome;
    }
    store
        .checked_enrollment()
        .and_then(|checked| change_if_requested(login, config, checked, accounts, conv, log))
        .unwrap_or(outcome)
}

/// After an accepted answer: the change the user asked for, if any. `None`: nothing
/// asked, the login goes on as it was; `Some`: the outcome of the login.
pub fn change_if_requested(
    login: &Login<'_>,
    config: &Config,
    store: &dyn CheckedEnrollment,
    accounts: &dyn Accounts,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Option<Outcome> {
    let replacement = match store.change_requested(config, login) {
        Ok(Some(replacement)) => replacement,
        Ok(None) => return None,
        Err(e) => {
            // The login itself was accepted: the change waits for another login.
            log.log(
                Priority::Err,
                &format!("change of the second factor impossible: {e}; {}", login.who()),
            );
            conv.show_error("Your code was accepted, but the change you asked for is not possible now.");
            return None;
        }
    };
    conv.show_info(
        "You asked to change your second factor: your current one stays until you confirm the new one.",
    );
    let (record, code) = match ask(login, config, accounts, None, conv, log) {
        Asked::Confirmed(record, code) => (record, code),
        Asked::Skipped => return None,
        Asked::Done(Outcome::Denied) => {
            conv.show_error("Your second factor was not changed; the old one still works.");
            return Some(Outcome::Success);
        }
        Asked::Done(outcome) => return Some(outcome),
    };
    Some(write(login, &record, &code, true, conv, log, |new| {
        replacement.replace(config, login, new)
    }))
}

enum Asked {
    Confirmed(Record, zeroize::Zeroizing<String>),
    Skipped,
    Done(Outcome),
}

/// Shows a new secret and asks for its code, checked here, up to [`ATTEMPTS`] times.
fn ask(
    login: &Login<'_>,
    config: &Config,
    accounts: &dyn Accounts,
    skip_until: Option<&str>,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Asked {
    let Ok(secret) = SecretKey::generate() else {
        log.log(
            Priority::Err,
            &format!(
                "enrollment at login impossible: no randomness from the OS; {}",
                login.who()
            ),
        );
        conv.show_error(UNAVAILABLE_MESSAGE);
        return Asked::Done(Outcome::SystemError);
    };
    let codes = config.codes();
    let record = Record::new(
        secret,
        codes.algorithm,
        codes.digits,
        codes.period,
        clock::rfc3339(login.now),
    );
    login_enroll::show_secret(&codes, login.user, &accounts.host_name(), &record, conv);
    let prompt = match skip_until {
        Some(until) => format!("Code shown by your app (or press Enter to skip until {until}): "),
        None => "Code shown by your app: ".to_owned(),
    };
    for attempt in 1..=ATTEMPTS {
        let reply = match conv.ask_hidden(&prompt) {
            Ok(reply) => zeroize::Zeroizing::new(reply.unwrap_or_default()),
            Err(e) => {
                log.log(Priority::Notice, &format!("{e}; {}", login.who()));
                return Asked::Done(Outcome::ConversationFailed);
            }
        };
        if skip_until.is_some() && reply.iter().all(u8::is_ascii_whitespace) {
            log.log(
                Priority::Notice,
                &format!("enrollment at login skipped; {}", login.who()),
            );
            return Asked::Skipped;
        }
        let matches = TypedCode::parse(&reply, record.digits).is_some_and(|code| {
            matches!(
                verify::check(&record, &code, login.now, codes.window, 0),
                Verdict::Accepted { .. }
            )
        });
        if matches {
            let digits: String = reply
                .iter()
                .filter(|b| b.is_ascii_digit())
                .map(|b| char::from(*b))
                .collect();
            return Asked::Confirmed(record, zeroize::Zeroizing::new(digits));
        }
        if attempt < ATTEMPTS {
            conv.show_error("That code does not match; check the phone's clock and type the current code.");
        }
    }
    conv.show_error("The code did not match.");
    log.log(
        Priority::Notice,
        &format!(
            "authentication failure; {} reason=enrollment at login: code did not match",
            login.who()
        ),
    );
    Asked::Done(Outcome::Denied)
}

/// Makes the recovery codes, has the store write (a first enrollment, or `replacing`
/// one), and tells the user.
fn write(
    login: &Login<'_>,
    record: &Record,
    code: &str,
    replacing: bool,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    store: impl FnOnce(&NewSecret<'_>) -> Result<Written, StoreFailure>,
) -> Outcome {
    let recovery_codes = match recovery::new_codes() {
        Ok(codes) => codes,
        Err(e) => return enrollment_failed(login, conv, log, &format!("cannot make recovery codes: {e}")),
    };
    let new = NewSecret {
        record,
        code,
        recovery_codes: &recovery_codes,
    };
    let refused = |conv: &mut dyn Conversation, shown: &str, reason: &str| {
        conv.show_error(shown);
        log.log(
            Priority::Notice,
            &format!("authentication failure; {} reason={reason}", login.who()),
        );
        Outcome::Denied
    };
    match store(&new) {
        Ok(Written::Enrolled) => {}
        Ok(Written::AlreadyEnrolled) => return enrolled_meanwhile(login, conv, log),
        Ok(Written::CodeRefused) => {
            return refused(
                conv,
                "The code did not match the database's clock; nothing was changed.",
                "enrollment at login: the database refused the code",
            );
        }
        Ok(Written::Refused) => {
            return refused(
                conv,
                "This change is not allowed; nothing was changed.",
                "enrollment refused by the database",
            );
        }
        Err(e) => return enrollment_failed(login, conv, log, &e.to_string()),
    }
    let (logged, shown) = if replacing {
        (
            "second factor changed at the user's request",
            "Your second factor is changed: the old secret and recovery codes no longer work.",
        )
    } else {
        (
            "enrolled at login",
            "You are enrolled: from now on this host asks for the code your app shows.",
        )
    };
    log.log(
        Priority::Notice,
        &format!(
            "{logged}; {} record=postgres recovery_codes={}",
            login.who(),
            recovery_codes.len()
        ),
    );
    conv.show_info(shown);
    if login_enroll::show_recovery_codes(&recovery_codes, conv).is_err() {
        return Outcome::ConversationFailed;
    }
    log.log(
        Priority::Info,
        &format!("authentication success; {}", login.who()),
    );
    Outcome::Success
}
