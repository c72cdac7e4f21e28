//! One login, from module arguments to a verdict, in safe Rust.
//!
//! The PAM handle is reached only through the [`Conversation`] and [`Logger`] traits,
//! which `ffi` implements over libpam; tests can drive this without libpam at all.
//!
//! Order of work, and why:
//! 1. config and user; a user without a record is still prompted (no enumeration); in
//!    the slim build, `store = "postgres"` stops here (`Outcome::Delegate`);
//! 2. a short look at the state: a locked-out user is told to wait and not prompted;
//! 3. the prompt, with no lock held (a slow typist must not block other logins);
//! 4. under the user's exclusive state lock: re-check the lock-out, verify the code,
//!    and durably record the outcome (step used, or one more failure) before answering.

#![forbid(unsafe_code)]

use std::fmt;

use zeroize::Zeroizing;

use crate::config::Config;
use crate::forward_pass;
use crate::login_store::{self, Begun, Decision, Missing, Session};
use crate::record::Record;
use crate::record_store::NoRecord;
use crate::recovery::{self, Answer, RecoveryVerdict};
use crate::state::LoginState;
use crate::verify::{self, Verdict};
use crate::{decoy, login_enroll, rollout, scratch};

/// What the user is told when the module cannot work for a reason only the admin can fix.
pub const UNAVAILABLE_MESSAGE: &str =
    "The second factor cannot be checked right now; please contact your system administrator.";

/// How the module talks to the user.
pub trait Conversation {
    /// Asks with echo off; `Ok(None)` when the application returned no answer.
    ///
    /// # Errors
    /// The conversation failed (the client went away).
    fn ask_hidden(&mut self, prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError>;
    /// Shows an error line to the user; failures to show it are ignored.
    fn show_error(&mut self, text: &str);
    /// Shows an information line (`PAM_TEXT_INFO`); failures to show it are ignored.
    /// The default shows nothing (for conversations that cannot).
    fn show_info(&mut self, _text: &str) {}
    /// Hands `password` on to the next module as `PAM_AUTHTOK` (`forward_pass`).
    ///
    /// # Errors
    /// The item could not be set (by default: not supported).
    fn set_authtok(&mut self, _password: &[u8]) -> Result<(), ConversationError> {
        Err(ConversationError)
    }
}

/// The conversation could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationError;

impl fmt::Display for ConversationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("conversation failed")
    }
}

/// Syslog priorities the module uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

/// Where the module's lines for the admin go (`pam_syslog` in production).
pub trait Logger {
    fn log(&self, priority: Priority, message: &str);
}

/// The PAM-visible result of one login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Right code: `PAM_SUCCESS`.
    Success,
    /// Wrong, replayed or missing code, not enrolled, locked out: `PAM_AUTH_ERR`.
    Denied,
    /// Not enrolled and `nullok`: `PAM_IGNORE`.
    Ignore,
    /// The client went away mid-conversation: `PAM_CONV_ERR`.
    ConversationFailed,
    /// Config, store or state unusable; fail closed: `PAM_SYSTEM_ERR`.
    SystemError,
    /// `store = "postgres"` in the slim build (no feature `postgres`): nothing was asked
    /// or decided; the caller hands the whole login to `pam_totp_db.so`, the full build
    /// installed beside this module, which reads the config again and decides everything.
    #[cfg(not(feature = "postgres"))]
    Delegate,
}

/// Who is logging in and from where, as PAM reported it.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    pub user: &'a str,
    pub rhost: Option<&'a str>,
    pub args: &'a [String],
    /// Unix time of the attempt.
    pub now: u64,
}

impl Login<'_> {
    /// `user=NAME rhost=HOST`, the way Linux-PAM modules name a login in syslog.
    pub(crate) fn who(&self) -> String {
        format!(
            "user={} rhost={}",
            client_field(self.user),
            client_field(self.rhost.unwrap_or(""))
        )
    }
}

/// Longest client-supplied field written into a log line, in characters.
pub const MAX_LOGGED_FIELD: usize = 64;

/// What the client sent (user name, remote host, ...), made fit for one syslog line:
/// control characters shown as `?`, and cut at [`MAX_LOGGED_FIELD`] characters with a
/// marker, so that a client cannot flood the log or forge a line.
#[must_use]
pub fn client_field(text: &str) -> String {
    let mut field: String = text
        .chars()
        .take(MAX_LOGGED_FIELD)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_LOGGED_FIELD).is_some() {
        field.push_str("...[cut]");
    }
    field
}

/// Runs one authentication.
pub fn authenticate(login: &Login<'_>, conv: &mut dyn Conversation, log: &dyn Logger) -> Outcome {
    let config = match Config::from_module_args(login.args) {
        Ok(config) => config,
        Err(e) => {
            log.log(
                Priority::Err,
                &format!("configuration error, refusing all logins: {e}"),
            );
            conv.show_error(UNAVAILABLE_MESSAGE);
            return Outcome::SystemError;
        }
    };
    #[cfg(not(feature = "postgres"))]
    if config.store == crate::config::Store::Postgres {
        return Outcome::Delegate;
    }
    if let Some(why) = rollout::exemption(&config, login.user) {
        log.log(
            Priority::Notice,
            &format!("second factor not required ({why}); {}", login.who()),
        );
        return Outcome::Ignore;
    }

    let opened = match login_store::open(&config, login.user) {
        Ok(Ok(opened)) => opened,
        Ok(Err(Missing::Unknown)) => return refuse_after_prompt(login, &config, conv, log, "unknown user"),
        Ok(Err(Missing::NotEnrolled(proof))) => return not_enrolled(login, &config, conv, log, &proof),
        Ok(Err(Missing::Unproven(message))) => {
            log.log(Priority::Err, &format!("{message}; {}", login.who()));
            return refuse_after_prompt(login, &config, conv, log, "record directory missing");
        }
        Ok(Err(Missing::Unusable(message))) => {
            log.log(Priority::Err, &format!("{message}; {}", login.who()));
            conv.show_error(UNAVAILABLE_MESSAGE);
            return Outcome::SystemError;
        }
        Err(e) => return system_error(login, conv, log, &e),
    };
    // A locked-out user is told to wait and not prompted.
    if !config.is_lockout_exempt(login.user) && opened.state.locked_until > login.now {
        return refuse_locked_out(login, conv, log, opened.state.locked_until);
    }
    let (record, session) = (opened.record, opened.session);

    let reply = match conv.ask_hidden(forward_pass::prompt(&config)) {
        Ok(reply) => reply.unwrap_or_default(),
        Err(e) => {
            log.log(Priority::Notice, &format!("{e}; {}", login.who()));
            return Outcome::ConversationFailed;
        }
    };
    let reply = if config.forward_pass {
        match forward_pass::hand_on(conv, &reply, record.digits) {
            Ok(code) => code,
            Err(_) => return system_error(login, conv, log, &"cannot set PAM_AUTHTOK for forward_pass"),
        }
    } else {
        reply
    };
    let answer = Answer::parse(&reply, &record);
    drop(reply);
    settle(login, &config, session, &record, &answer, conv, log)
}

/// The verdict: with the store held (file locked, or the attempt charged in the
/// database), check the answer against the state, and durably record the result.
fn settle(
    login: &Login<'_>,
    config: &Config,
    session: Session,
    record: &Record,
    answer: &Answer,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Outcome {
    let exempt = config.is_lockout_exempt(login.user);
    let pending = match session.begin(config, login.user, login.now) {
        Ok(Begun::Open(pending)) => pending,
        Ok(Begun::LockedOut(until)) => return refuse_locked_out(login, conv, log, until),
        Err(e) => return system_error(login, conv, log, &e),
    };
    let before = pending.state();
    let failure = |reason| {
        (
            Decision::Fail(reason),
            record_failure(config, before, login.now, exempt),
        )
    };
    // Recovery codes left after this login, when one was used.
    let mut recovery_left = None;
    // What the answer means (decided here only), and the file store's state for it.
    let (decision, file_after) = match answer {
        Answer::Code(code) => match verify::check(record, code, login.now, config.window, before.last_step) {
            Verdict::Accepted { step } => {
                let after = LoginState {
                    last_step: step,
                    failures: 0,
                    locked_until: 0,
                    last_success: login.now,
                    ..before
                };
                (Decision::Step(step), after)
            }
            Verdict::Replayed => failure("replayed code"),
            Verdict::Invalid => failure("invalid code"),
        },
        Answer::Recovery(_) | Answer::Scratch(_) => match scratch::check_answer(record, answer, &before) {
            RecoveryVerdict::Accepted { used, remaining } => {
                recovery_left = Some(remaining);
                let after = LoginState {
                    failures: 0,
                    locked_until: 0,
                    last_success: login.now,
                    recovery_epoch: record.recovery_epoch,
                    recovery_used: used,
                    ..before
                };
                // The one bit this code adds (the database burns just that bit).
                let bit = used & !recovery::used_mask(record, &before);
                let decision = Decision::Recovery {
                    epoch: record.recovery_epoch,
                    count: record.recovery.len(),
                    index: usize::try_from(bit.trailing_zeros()).unwrap_or(usize::MAX),
                };
                (decision, after)
            }
            RecoveryVerdict::AlreadyUsed => failure("recovery code already used"),
            RecoveryVerdict::Invalid => failure("invalid recovery code"),
        },
        Answer::Malformed => failure("malformed code"),
    };
    let settled = match pending.apply(login.user, login.now, decision, file_after, exempt) {
        Ok(settled) => settled,
        Err(e) => return system_error(login, conv, log, &e),
    };

    let Some(reason) = settled.failure else {
        if let Some(left) = recovery_left {
            // Worth the admin's attention: the phone may be lost.
            log.log(
                Priority::Warning,
                &format!("recovery code used; {left} remaining; {}", login.who()),
            );
        }
        log.log(
            Priority::Info,
            &format!("authentication success; {}", login.who()),
        );
        return Outcome::Success;
    };
    let after = settled.after;
    log.log(
        Priority::Notice,
        &format!(
            "authentication failure; {} reason={reason} failures={}",
            login.who(),
            after.failures
        ),
    );
    if after.locked_until > login.now && settled.locked_until_before <= login.now {
        let length = after.locked_until - login.now;
        log.log(
            Priority::Warning,
            &format!("too many failed attempts; {} locked for {length} s", login.who()),
        );
    }
    Outcome::Denied
}

/// A known user proven to have no record: enrollment on the spot (`enroll_at_login`),
/// the grace period before `enforce_after`, `nullok`, or else a refusal after a prompt.
fn not_enrolled(
    login: &Login<'_>,
    config: &Config,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    _proof: &NoRecord,
) -> Outcome {
    let grace = rollout::in_grace_period(config, login.now);
    if config.enroll_at_login
        && let Some(outcome) = login_enroll::run(login, config, grace, conv, log)
    {
        return outcome;
    }
    if grace {
        conv.show_info(&rollout::grace_message(config));
        log.log(
            Priority::Notice,
            &format!(
                "not enrolled, let through until enforce_after={}; {}",
                config.enforce_after,
                login.who()
            ),
        );
        return Outcome::Ignore;
    }
    if config.nullok {
        if config.debug {
            log.log(
                Priority::Debug,
                &format!("no enrollment record, nullok; {}", login.who()),
            );
        }
        return Outcome::Ignore;
    }
    refuse_after_prompt(login, config, conv, log, "not enrolled")
}

/// Counts one more failure and starts or lengthens a lock-out once there are enough.
fn record_failure(config: &Config, before: LoginState, now: u64, exempt: bool) -> LoginState {
    let failures = before.failures.saturating_add(1);
    let locked_until = if exempt || failures < config.max_failures {
        before.locked_until
    } else {
        let doublings = (failures - config.max_failures).min(32);
        let length = config
            .lockout_seconds
            .saturating_mul(1u64 << doublings)
            .min(config.lockout_max_seconds);
        now.saturating_add(length)
    };
    LoginState {
        failures,
        locked_until,
        ..before
    }
}

/// Prompts, checks and writes as for an enrolled user's wrong answer ([`decoy`]), so a
/// caller can tell who is enrolled neither from the prompts nor from the time; refuses.
fn refuse_after_prompt(
    login: &Login<'_>,
    config: &Config,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    reason: &str,
) -> Outcome {
    let decoy = match decoy::open(config) {
        Ok(decoy) => decoy,
        Err(e) => return system_error(login, conv, log, &e),
    };
    let Ok(reply) = conv.ask_hidden(forward_pass::prompt(config)) else {
        return Outcome::ConversationFailed;
    };
    let reply = reply.unwrap_or_default();
    let code = if config.forward_pass {
        // The next module checks the password as for anyone: same prompts, same answer.
        forward_pass::hand_on(conv, &reply, config.digits).unwrap_or_default()
    } else {
        reply
    };
    if let Err(e) = decoy.spend(config, &code, login.now) {
        return system_error(login, conv, log, &e);
    }
    log.log(
        Priority::Notice,
        &format!("authentication failure; {} reason={reason}", login.who()),
    );
    Outcome::Denied
}

fn refuse_locked_out(
    login: &Login<'_>,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    until: u64,
) -> Outcome {
    let minutes = until.saturating_sub(login.now).div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    conv.show_error(&format!(
        "Too many failed attempts; try again in {minutes} {unit}."
    ));
    log.log(
        Priority::Notice,
        &format!(
            "authentication refused; {} reason=locked out for {} more s",
            login.who(),
            until - login.now
        ),
    );
    Outcome::Denied
}

fn system_error(
    login: &Login<'_>,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    e: &dyn fmt::Display,
) -> Outcome {
    log.log(Priority::Err, &format!("{e}; {}", login.who()));
    conv.show_error(UNAVAILABLE_MESSAGE);
    Outcome::SystemError
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Config {
        Config {
            max_failures: 3,
            lockout_seconds: 30,
            lockout_max_seconds: 100,
            ..Config::default()
        }
    }

    use crate::state::StateDir;

    #[test]
    fn lockout_starts_at_max_failures_and_doubles_up_to_the_cap() {
        let mut state = LoginState::default();
        let mut lengths = Vec::new();
        for _ in 0..6 {
            state = record_failure(&policy(), state, 1000, false);
            lengths.push(state.locked_until.saturating_sub(1000));
        }
        assert_eq!(lengths, [0, 0, 30, 60, 100, 100]);
        assert_eq!(state.failures, 6);
    }

    #[test]
    fn exempt_users_are_counted_but_never_locked() {
        let mut state = LoginState::default();
        for _ in 0..10 {
            state = record_failure(&policy(), state, 1000, true);
        }
        assert_eq!((state.failures, state.locked_until), (10, 0));
    }

    /// Remembers what would go to syslog.
    #[derive(Default)]
    struct Lines(std::cell::RefCell<Vec<String>>);

    impl Logger for Lines {
        fn log(&self, _: Priority, message: &str) {
            self.0.borrow_mut().push(message.to_owned());
        }
    }

    struct Silent;

    impl Conversation for Silent {
        fn ask_hidden(&mut self, _: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
            Ok(None)
        }
        fn show_error(&mut self, _: &str) {}
    }

    #[test]
    fn a_recovery_code_is_burnt_and_logged_with_the_count_left_never_the_code() {
        use crate::recovery::RecoveryCode;
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(tmp.path()).unwrap();
        let codes: Vec<RecoveryCode> = (0..3)
            .map(|i| RecoveryCode::from_random(i, &[9; 11]).unwrap())
            .collect();
        let hashes = codes
            .iter()
            .map(|c| c.hash(b"saltsaltsaltsalt").unwrap())
            .collect();
        let record = Record::new(
            crate::secret::SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap(),
            crate::algorithm::Algorithm::Sha1,
            6,
            30,
            String::new(),
        )
        .with_recovery(77, hashes);
        let login = Login {
            user: "alice",
            rhost: None,
            args: &[],
            now: 1_000_000,
        };
        let typed = codes[1].display();
        let answer = Answer::parse(typed.as_bytes(), &record);
        let lines = Lines::default();
        let outcome = settle(
            &login,
            &policy(),
            Session::File(dir.lock("alice").unwrap().unlock().unwrap()),
            &record,
            &answer,
            &mut Silent,
            &lines,
        );
        assert_eq!(outcome, Outcome::Success);
        let state = dir.peek("alice").unwrap().unwrap();
        assert_eq!((state.recovery_epoch, state.recovery_used), (77, 0b10));
        let logged = lines.0.borrow().join("\n");
        assert!(
            logged.contains("recovery code used; 2 remaining; user=alice"),
            "{logged}"
        );
        assert!(!logged.contains(&typed[5..]), "{logged}");

        let again = settle(
            &login,
            &policy(),
            Session::File(dir.lock("alice").unwrap().unlock().unwrap()),
            &record,
            &answer,
            &mut Silent,
            &lines,
        );
        assert_eq!(again, Outcome::Denied);
        let logged = lines.0.borrow().join("\n");
        assert!(
            logged.contains("reason=recovery code already used failures=1"),
            "{logged}"
        );
    }

    #[test]
    fn client_fields_are_cut_and_cleaned_for_the_log() {
        assert_eq!(client_field("alice"), "alice");
        assert_eq!(client_field("a\nb\u{1b}c"), "a?b?c");
        let exact = "é".repeat(MAX_LOGGED_FIELD);
        assert_eq!(client_field(&exact), exact);
        let long = format!("{exact}x");
        assert_eq!(client_field(&long), format!("{exact}...[cut]"));
        let login = Login {
            user: &"u".repeat(10_000),
            rhost: Some(&"h".repeat(10_000)),
            args: &[],
            now: 0,
        };
        assert!(login.who().len() < 200, "{}", login.who());
    }

    #[test]
    fn failure_counts_saturate_instead_of_overflowing() {
        let state = LoginState {
            failures: u32::MAX,
            ..LoginState::default()
        };
        let after = record_failure(&policy(), state, u64::MAX - 5, false);
        assert_eq!((after.failures, after.locked_until), (u32::MAX, u64::MAX));
    }
}
