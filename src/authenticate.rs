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
use crate::state::{Channel, LoginState};
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
    /// `PAM_TTY`: `tty1`, `/dev/console`, `pts/0`, `ssh`, ... (not always a device).
    pub tty: Option<&'a str>,
    pub args: &'a [String],
    /// Unix time of the attempt.
    pub now: u64,
}

impl Login<'_> {
    /// Whether the attempt comes from the local console: no remote host, and a terminal
    /// that is a console device (`console`, `ttyN`, `ttySN`, `hvcN`, with or without
    /// `/dev/`). A pseudo-terminal (`pts/N`) is not: `su` or `sudo` in a session opened
    /// from anywhere uses one.
    pub(crate) fn at_local_console(&self) -> bool {
        if self.rhost.is_some_and(|rhost| !rhost.is_empty()) {
            return false;
        }
        let Some(tty) = self.tty else {
            return false;
        };
        let name = tty.strip_prefix("/dev/").unwrap_or(tty);
        let numbered = |prefix: &str| {
            name.strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()))
        };
        name == "console" || numbered("tty") || numbered("ttyS") || numbered("hvc")
    }

    /// The counters this attempt is charged to: an exempt account at the local console
    /// has its own, so that a remote attacker cannot lock it out there.
    pub(crate) fn channel(&self, config: &Config) -> Channel {
        if config.is_lockout_exempt(self.user) && self.at_local_console() {
            Channel::Console
        } else {
            Channel::Shared
        }
    }

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
    let (_, locked_until) = opened.state.counters(login.channel(&config));
    if locked_until > login.now {
        return refuse_locked_out(login, &config, conv, log, locked_until);
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
            record_failure(config, before, login.now, channel),
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
            Verdict::Replayed => failure("replayed code"),
            Verdict::Invalid => failure("invalid code"),
        },
        Answer::Recovery(_) | Answer::Scratch(_) => match scratch::check_answer(record, answer, &before) {
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
            RecoveryVerdict::AlreadyUsed => failure("recovery code already used"),
            RecoveryVerdict::Invalid => failure("invalid recovery code"),
        },
        Answer::Malformed => failure("malformed code"),
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

/// Counts one more failure on `channel`'s counters, and starts or lengthens its
/// lock-out once there are enough. Every account is limited so, exempt ones included.
fn record_failure(config: &Config, before: LoginState, now: u64, channel: Channel) -> LoginState {
    let (failures, locked_until) = before.counters(channel);
    let failures = failures.saturating_add(1);
    let locked_until = if failures < config.max_failures {
        locked_until
    } else {
        let doublings = (failures - config.max_failures).min(32);
        let length = config
            .lockout_seconds
            .saturating_mul(1u64 << doublings)
            .min(config.lockout_max_seconds);
        now.saturating_add(length)
    };
    before.with_counters(channel, failures, locked_until)
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
            state = record_failure(&policy(), state, 1000, Channel::Shared);
            lengths.push(state.locked_until.saturating_sub(1000));
        }
        assert_eq!(lengths, [0, 0, 30, 60, 100, 100]);
        assert_eq!(state.failures, 6);
    }

    #[test]
    fn console_failures_lock_the_console_alone_with_the_same_rule() {
        let mut state = LoginState::default();
        let mut lengths = Vec::new();
        for _ in 0..6 {
            state = record_failure(&policy(), state, 1000, Channel::Console);
            lengths.push(state.console_locked_until.saturating_sub(1000));
        }
        assert_eq!(lengths, [0, 0, 30, 60, 100, 100]);
        assert_eq!(state.console_failures, 6);
        assert_eq!(
            (state.failures, state.locked_until),
            (0, 0),
            "the shared counters are untouched"
        );
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
            tty: None,
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
        let after = record_failure(&policy(), state, u64::MAX - 5, Channel::Shared);
        assert_eq!((after.failures, after.locked_until), (u32::MAX, u64::MAX));
    }
}
