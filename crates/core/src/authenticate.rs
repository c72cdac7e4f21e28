//! One login, from module arguments to a verdict, in safe Rust.
//!
//! The PAM handle is reached only through the [`Conversation`] and [`Logger`] ports,
//! which `pam_totp_pam` implements over libpam, and the record and state only through
//! a [`LoginStore`]: tests can drive this without libpam or files at all.
//!
//! Order of work, and why:
//! 1. config and user; a user without a record is still prompted (no enumeration); in
//!    a module without the configured store stops here (`Outcome::HandOver`);
//! 2. a short look at the state: a locked-out user is told to wait and not prompted;
//! 3. the prompt, with no lock held (a slow typist must not block other logins);
//! 4. under the user's exclusive state lock: re-check the lock-out, verify the code,
//!    and durably record the outcome (step used, or one more failure) before answering.

use std::fmt;

use pam_totp_config::Config;

use crate::answer::{self, Answer};
use crate::lockout;
use crate::login_state::{Channel, LoginState};
use crate::ports::{
    Accounts, Begun, Conversation, Decision, Failure, Found, Logger, Login, LoginStore, Missing, NoRecord,
    Outcome, Priority, Session, Stores, UNAVAILABLE_MESSAGE,
};
use crate::record::Record;
use crate::recovery::{self, RecoveryVerdict};
use crate::verify::{self, Verdict};
use crate::{decoy, forward_pass, login_enroll, rollout};

/// Runs one authentication with the store the config names, among `stores`.
pub fn authenticate(
    login: &Login<'_>,
    stores: Stores<'_>,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Outcome {
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
    let Some(store) = stores.get(config.store) else {
        return Outcome::HandOver;
    };
    if let Err(e) = store.check_config(&config) {
        log.log(
            Priority::Err,
            &format!("configuration error, refusing all logins: {e}"),
        );
        conv.show_error(UNAVAILABLE_MESSAGE);
        return Outcome::SystemError;
    }
    if let Some(why) = rollout::exemption(&config.rollout(), stores.accounts, login.user) {
        log.log(
            Priority::Notice,
            &format!("second factor not required ({why}); {}", login.who()),
        );
        return Outcome::Ignore;
    }

    let opened = match store.open(&config, login.user) {
        Ok(Found::Enrolled(opened)) => opened,
        Ok(Found::Missing(Missing::Unknown)) => {
            return refuse_after_prompt(login, &config, store, conv, log, "unknown user");
        }
        Ok(Found::Missing(Missing::NotEnrolled(proof))) => {
            return not_enrolled(login, &config, store, stores.accounts, conv, log, &proof);
        }
        Ok(Found::Missing(Missing::Unproven(message))) => {
            log.log(Priority::Err, &format!("{message}; {}", login.who()));
            return refuse_after_prompt(login, &config, store, conv, log, "record directory missing");
        }
        Ok(Found::Missing(Missing::Unusable(message))) => {
            log.log(Priority::Err, &format!("{message}; {}", login.who()));
            conv.show_error(UNAVAILABLE_MESSAGE);
            return Outcome::SystemError;
        }
        Err(e) => return system_error(login, conv, log, &e),
    };
    // A locked-out user is told to wait and not prompted.
    let (_, locked_until) = opened.state.counters(login.channel(&config));
    if locked_until > login.now {
        return refuse_locked_out(login, &config, conv, log, locked_until);
    }
    let (record, session) = (opened.record, opened.session);

    let reply = match conv.ask_hidden(forward_pass::prompt(config.prompt_settings())) {
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
    session: Box<dyn Session>,
    record: &Record,
    answer: &Answer,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Outcome {
    let channel = login.channel(config);
    let pending = match session.begin(config, login.user, login.now, channel) {
        Ok(Begun::Open(pending)) => pending,
        Ok(Begun::LockedOut(until)) => return refuse_locked_out(login, config, conv, log, until),
        Err(e) => return system_error(login, conv, log, &e),
    };
    // A state of the previous version is converted here, where the period is known.
    let floor = pending
        .state()
        .replay_floor(record.period, login.now, config.window);
    let before = LoginState {
        used_until: floor,
        legacy_step: 0,
        ..pending.state()
    };
    // The record may say which step its enrollment was confirmed with (a user's
    // `totp-enroll` cannot write the root-only state): that code is used up too.
    let used_until = floor.max(record.confirmed_until);
    let failure = |reason| {
        (
            Decision::Fail(reason),
            lockout::record_failure(&config.lockout(), before, login.now, channel),
        )
    };
    // Recovery codes left after this login, when one was used.
    let mut recovery_left = None;
    // What the answer means (decided here only), and the file store's state for it.
    let (decision, file_after) = match answer {
        Answer::Code(code) => match verify::check(record, code, login.now, config.window, used_until) {
            Verdict::Accepted { step } => {
                let ends = verify::step_end(step, record.period);
                let after = LoginState {
                    used_until: ends,
                    last_success: login.now,
                    ..before.with_counters(channel, 0, 0)
                };
                let starts = step.saturating_mul(record.period);
                (Decision::Step { starts, ends }, after)
            }
            Verdict::Replayed => failure(Failure::ReplayedCode),
            Verdict::Invalid => failure(Failure::InvalidCode),
        },
        Answer::Recovery(_) | Answer::Scratch(_) => match answer::check_answer(record, answer, &before) {
            RecoveryVerdict::Accepted { used, remaining } => {
                recovery_left = Some(remaining);
                let after = LoginState {
                    last_success: login.now,
                    recovery_epoch: record.recovery_epoch,
                    recovery_used: used,
                    ..before.with_counters(channel, 0, 0)
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
            RecoveryVerdict::AlreadyUsed => failure(Failure::RecoveryCodeAlreadyUsed),
            RecoveryVerdict::Invalid => failure(Failure::InvalidRecoveryCode),
        },
        Answer::Malformed => failure(Failure::MalformedCode),
    };
    let settled = match pending.apply(login.user, login.now, decision, file_after, channel) {
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
    let (failures, locked_until) = settled.after.counters(channel);
    let at_console = if channel == Channel::Console {
        " channel=console"
    } else {
        ""
    };
    log.log(
        Priority::Notice,
        &format!(
            "authentication failure; {} reason={reason} failures={failures}{at_console}",
            login.who(),
        ),
    );
    if locked_until > login.now && settled.locked_until_before <= login.now {
        let length = shown_lockout(config, locked_until - login.now);
        log.log(
            Priority::Warning,
            &format!(
                "too many failed attempts; {} locked for {length}{at_console}",
                login.who()
            ),
        );
    }
    Outcome::Denied
}

/// A known user proven to have no record: enrollment on the spot (`enroll_at_login`),
/// the grace period before `enforce_after`, `nullok`, or else a refusal after a prompt.
fn not_enrolled(
    login: &Login<'_>,
    config: &Config,
    store: &dyn LoginStore,
    accounts: &dyn Accounts,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    _proof: &NoRecord,
) -> Outcome {
    let grace = rollout::in_grace_period(&config.rollout(), login.now);
    if config.enroll_at_login
        && let Some(outcome) = login_enroll::run(login, config, store, accounts, grace, conv, log)
    {
        return outcome;
    }
    if grace {
        conv.show_info(&rollout::grace_message(&config.rollout()));
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
    refuse_after_prompt(login, config, store, conv, log, "not enrolled")
}

/// Prompts, checks and writes as for an enrolled user's wrong answer ([`decoy`]), so a
/// caller can tell who is enrolled neither from the prompts nor from the time; refuses.
fn refuse_after_prompt(
    login: &Login<'_>,
    config: &Config,
    store: &dyn LoginStore,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    reason: &str,
) -> Outcome {
    let decoy = match store.decoy(config) {
        Ok(decoy) => decoy,
        Err(e) => return system_error(login, conv, log, &e),
    };
    let Ok(reply) = conv.ask_hidden(forward_pass::prompt(config.prompt_settings())) else {
        return Outcome::ConversationFailed;
    };
    let reply = reply.unwrap_or_default();
    let code = if config.forward_pass {
        // The next module checks the password as for anyone: same prompts, same answer.
        forward_pass::hand_on(conv, &reply, config.digits).unwrap_or_default()
    } else {
        reply
    };
    if let Err(e) = decoy::spend(decoy, config, &code, login.now) {
        return system_error(login, conv, log, &e);
    }
    log.log(
        Priority::Notice,
        &format!("authentication failure; {} reason={reason}", login.who()),
    );
    Outcome::Denied
}

/// A lock-out's remaining length as shown to the user and in syslog: never more than
/// the longest this config makes (a damaged state, or one an older config left, can
/// hold any time up to 2^64 - 1).
fn shown_lockout(config: &Config, remaining: u64) -> String {
    if remaining <= config.lockout_max_seconds {
        format!("{remaining} s")
    } else {
        format!("more than {} s", config.lockout_max_seconds)
    }
}

fn refuse_locked_out(
    login: &Login<'_>,
    config: &Config,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    until: u64,
) -> Outcome {
    let remaining = until.saturating_sub(login.now);
    if remaining <= config.lockout_max_seconds {
        let minutes = remaining.div_ceil(60).max(1);
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        conv.show_error(&format!(
            "Too many failed attempts; try again in {minutes} {unit}."
        ));
    } else {
        conv.show_error("Too many failed attempts; try again later.");
    }
    log.log(
        Priority::Notice,
        &format!(
            "authentication refused; {} reason=locked out, {} left",
            login.who(),
            shown_lockout(config, remaining)
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
    use crate::ports::{ConversationError, StoreFailure};
    use crate::ports::{MAX_LOGGED_FIELD, client_field};
    use zeroize::Zeroizing;

    fn policy() -> Config {
        Config {
            max_failures: 3,
            lockout_seconds: 30,
            lockout_max_seconds: 100,
            ..Config::default()
        }
    }

    fn login_from<'a>(user: &'a str, rhost: Option<&'a str>, tty: Option<&'a str>) -> Login<'a> {
        Login {
            user,
            rhost,
            tty,
            args: &[],
            now: 1000,
        }
    }

    #[test]
    fn only_an_exempt_account_at_a_local_console_has_the_console_counters() {
        let config = Config {
            lockout_exempt: vec!["root".to_owned()],
            ..policy()
        };
        for tty in ["tty1", "/dev/tty63", "console", "/dev/console", "ttyS0", "hvc0"] {
            assert_eq!(
                login_from("root", None, Some(tty)).channel(&config),
                Channel::Console,
                "{tty}"
            );
            assert_eq!(
                login_from("root", Some(""), Some(tty)).channel(&config),
                Channel::Console,
                "{tty}"
            );
            // A remote host, or an account that is not exempt: the shared counters.
            assert_eq!(
                login_from("root", Some("192.0.2.7"), Some(tty)).channel(&config),
                Channel::Shared
            );
            assert_eq!(
                login_from("alice", None, Some(tty)).channel(&config),
                Channel::Shared
            );
        }
        // su/sudo in any session (pts), ssh's "ssh" tty, no tty, lookalikes: not the console.
        for tty in [
            None,
            Some("pts/0"),
            Some("/dev/pts/3"),
            Some("ssh"),
            Some("tty"),
            Some("ttyx1"),
            Some("tty1/../pts/0"),
        ] {
            assert_eq!(
                login_from("root", None, tty).channel(&config),
                Channel::Shared,
                "{tty:?}"
            );
        }
    }

    /// Remembers what the user was shown.
    #[derive(Default)]
    struct Shown(Vec<String>);

    impl Conversation for Shown {
        fn ask_hidden(&mut self, _: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
            Ok(None)
        }
        fn show_error(&mut self, text: &str) {
            self.0.push(text.to_owned());
        }
    }

    #[test]
    fn a_lock_out_near_the_end_of_time_is_never_shown_as_an_absurd_number() {
        let login = login_from("alice", None, None);
        let lines = Lines::default();
        let mut shown = Shown::default();
        refuse_locked_out(&login, &policy(), &mut shown, &lines, u64::MAX);
        assert_eq!(shown.0, ["Too many failed attempts; try again later."]);
        let logged = lines.0.borrow().join("\n");
        assert!(
            logged.contains("reason=locked out, more than 100 s left"),
            "{logged}"
        );
        assert!(!logged.contains(&(u64::MAX - 1000).to_string()), "{logged}");
        // Within the cap: the real length, in minutes.
        let mut shown = Shown::default();
        refuse_locked_out(&login, &policy(), &mut shown, &lines, 1090);
        assert_eq!(shown.0, ["Too many failed attempts; try again in 2 minutes."]);
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

    /// A store's state in memory: what the flow writes through [`Pending::apply`].
    #[derive(Clone, Default)]
    struct Memory(std::rc::Rc<std::cell::Cell<LoginState>>);

    impl Session for Memory {
        fn begin(self: Box<Self>, _: &Config, _: &str, _: u64, _: Channel) -> Result<Begun, StoreFailure> {
            Ok(Begun::Open(self))
        }
    }

    impl crate::ports::Pending for Memory {
        fn state(&self) -> LoginState {
            self.0.get()
        }
        fn apply(
            self: Box<Self>,
            _: &str,
            _: u64,
            decision: Decision,
            file_after: LoginState,
            channel: Channel,
        ) -> Result<crate::ports::Settled, StoreFailure> {
            let (_, locked_until_before) = self.0.get().counters(channel);
            self.0.set(file_after);
            Ok(crate::ports::Settled {
                failure: match decision {
                    Decision::Fail(reason) => Some(reason),
                    Decision::Step { .. } | Decision::Recovery { .. } => None,
                },
                after: file_after,
                locked_until_before,
            })
        }
    }

    #[test]
    fn a_recovery_code_is_burnt_and_logged_with_the_count_left_never_the_code() {
        use crate::recovery::RecoveryCode;
        let memory = Memory::default();
        let codes: Vec<RecoveryCode> = (0..3)
            .map(|i| RecoveryCode::from_random(i, &[9; 11]).unwrap())
            .collect();
        let hashes = codes
            .iter()
            .map(|c| c.hash(b"saltsaltsaltsalt").unwrap())
            .collect();
        let record = Record::new(
            crate::secret::SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap(),
            pam_totp_config::algorithm::Algorithm::Sha1,
            6,
            30,
            String::new(),
        )
        .with_recovery(77, hashes);
        let login = Login {
            user: "alice",
            rhost: None,
            tty: None,
            args: &[],
            now: 1_000_000,
        };
        let typed = codes[1].display();
        let answer = Answer::parse(typed.as_bytes(), &record);
        let lines = Lines::default();
        let outcome = settle(
            &login,
            &policy(),
            Box::new(memory.clone()),
            &record,
            &answer,
            &mut Silent,
            &lines,
        );
        assert_eq!(outcome, Outcome::Success);
        let state = memory.0.get();
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
            Box::new(memory.clone()),
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
            tty: None,
            args: &[],
            now: 0,
        };
        assert!(login.who().len() < 200, "{}", login.who());
    }
}
