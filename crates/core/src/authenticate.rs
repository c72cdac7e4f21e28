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
//! 4. the store's verdict ([`crate::ports::Session::judge`]), durably recorded before
//!    answering: the file store re-checks the lock-out, verifies the code and writes
//!    the outcome under the user's exclusive state lock; the database store sends the
//!    answer to the database, which does the same in one transaction.

use std::fmt;

use pam_totp_config::{Config, Store};

use crate::ports::{
    Accounts, Conversation, Found, Judged, Logger, Login, LoginStore, Missing, NOT_ALLOWED, NoRecord,
    Outcome, Priority, Proofs, Settled, Stores, UNAVAILABLE_MESSAGE,
};
use crate::{clock_hint, failed_report, forward_pass, login_enroll, remember, rollout, self_enroll, step_up};

/// Runs one authentication with the store the config names, among `stores`, with
/// nothing proven before (every enrolled user is asked for a code).
pub fn authenticate(
    login: &Login<'_>,
    stores: Stores<'_>,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) -> Outcome {
    authenticate_with(login, &Proofs::default(), stores, conv, log)
}

/// [`authenticate`], where `proofs` may stand in for a code (`remember_key_seconds`,
/// `step_up_seconds`).
pub fn authenticate_with(
    login: &Login<'_>,
    proofs: &Proofs,
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
    if config.debug && config.store == Store::Postgres {
        log.log(
            Priority::Debug,
            "store = \"postgres\": the database's policy decides lock-outs, the window and \
             the code format; this host's max_failures, lockout_*, lockout_exempt, window, \
             algorithm and period are not used (digits only splits a forward_pass answer)",
        );
    }
    if let Some(why) = rollout::exemption(&config.rollout(), stores.accounts, login.user) {
        log.log(
            Priority::Notice,
            &format!("second factor not required ({why}); {}", login.who()),
        );
        return Outcome::Ignore;
    }
    clock_hint::warn_host_clock(store, &config, log);

    let opened = match store.open(&config, login) {
        Ok(Found::Enrolled(opened)) => opened,
        Ok(Found::Missing(missing)) => {
            return without_enrollment(login, &config, store, stores.accounts, conv, log, missing);
        }
        Err(e) => return system_error(login, conv, log, &e),
    };
    // A locked-out user is told to wait and not prompted.
    if opened.locked_until > login.now {
        return refuse_locked_out(login, &config, conv, log, opened.locked_until);
    }
    // forward_pass needs the answer for the password: no shortcut there.
    if !config.forward_pass
        && (remember::remembered(&config, login, &proofs.ssh_keys, store, log)
            || step_up::verified(&config, login, proofs.audit_session, store, log))
    {
        return Outcome::Success;
    }

    let reply = match conv.ask_hidden(forward_pass::prompt(config.prompt_settings())) {
        Ok(reply) => reply.unwrap_or_default(),
        Err(e) => {
            log.log(Priority::Notice, &format!("{e}; {}", login.who()));
            return Outcome::ConversationFailed;
        }
    };
    let reply = if config.forward_pass {
        match forward_pass::hand_on(conv, &reply, opened.digits) {
            Ok(code) => code,
            Err(_) => return system_error(login, conv, log, &"cannot set PAM_AUTHTOK for forward_pass"),
        }
    } else {
        reply
    };
    let judged = opened.session.judge(&config, login, &reply);
    drop(reply);
    match judged {
        Ok(Judged::Settled(settled)) => {
            clock_hint::tell(login, &settled, conv, log);
            failed_report::tell(&settled, login.now, conv);
            let outcome = report(login, &config, &settled, log);
            if outcome == Outcome::Success {
                remember::after_code(&config, login, &proofs.ssh_keys, store, log);
                step_up::after_code(&config, login, proofs.audit_session, store, conv, log);
            }
            self_enroll::after_success(login, &config, store, stores.accounts, outcome, conv, log)
        }
        Ok(Judged::LockedOut(until)) => refuse_locked_out(login, &config, conv, log, until),
        Err(e) => system_error(login, conv, log, &e),
    }
}

/// A user the store found no enrollment for, by why.
fn without_enrollment(
    login: &Login<'_>,
    config: &Config,
    store: &dyn LoginStore,
    accounts: &dyn Accounts,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
    missing: Missing,
) -> Outcome {
    match missing {
        Missing::Unknown => refuse_after_prompt(login, config, store, conv, log, "unknown user"),
        Missing::NotEnrolled(proof) => not_enrolled(login, config, store, accounts, conv, log, &proof),
        Missing::MarkedForEnrollment => {
            match self_enroll::marked(login, config, store, accounts, conv, log) {
                Some(outcome) => outcome,
                None => refuse_after_prompt(
                    login,
                    config,
                    store,
                    conv,
                    log,
                    "reset by an admin, enroll_at_login is off",
                ),
            }
        }
        // Never a way in (nullok, grace period, enrollment at login): refused after the
        // prompt, as anyone without a way in is.
        Missing::NotAllowed => refuse_after_prompt(login, config, store, conv, log, NOT_ALLOWED),
        Missing::Unproven(message) => {
            log.log(Priority::Err, &format!("{message}; {}", login.who()));
            refuse_after_prompt(login, config, store, conv, log, "record directory missing")
        }
        Missing::Unusable(message) => {
            log.log(Priority::Err, &format!("{message}; {}", login.who()));
            conv.show_error(UNAVAILABLE_MESSAGE);
            Outcome::SystemError
        }
    }
}

/// The verdict the store durably recorded, in syslog, as the PAM outcome.
fn report(login: &Login<'_>, config: &Config, settled: &Settled, log: &dyn Logger) -> Outcome {
    let Some(reason) = settled.failure else {
        if let Some(left) = settled.recovery_left {
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
    let at_console = if settled.console { " channel=console" } else { "" };
    let failures = settled
        .failures
        .map(|n| format!(" failures={n}"))
        .unwrap_or_default();
    log.log(
        Priority::Notice,
        &format!(
            "authentication failure; {} reason={reason}{failures}{at_console}",
            login.who(),
        ),
    );
    if settled.locked_until > login.now && settled.locked_until_before <= login.now {
        let length = shown_lockout(config, settled.locked_until - login.now);
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
        && let Some(outcome) = match store.checked_enrollment() {
            Some(checked) => self_enroll::enroll(login, config, checked, accounts, grace, conv, log),
            None => login_enroll::run(login, config, store, accounts, grace, conv, log),
        }
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
    let decoy = match store.decoy(config, login) {
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
    if let Err(e) = decoy.spend(config, login, &code) {
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
    let longest = longest_lockout(config);
    if remaining <= longest {
        format!("{remaining} s")
    } else {
        format!("more than {longest} s")
    }
}

/// The longest lock-out shown as it is: the config's for the file store; with the
/// database, whose policy is not in this host's config, a bound no policy should reach.
fn longest_lockout(config: &Config) -> u64 {
    const DATABASE_LONGEST: u64 = 30 * 24 * 3600;
    match config.store {
        Store::File => config.lockout_max_seconds,
        Store::Postgres => DATABASE_LONGEST,
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
    if remaining <= longest_lockout(config) {
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
    use crate::login_state::Channel;
    use crate::ports::ConversationError;
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

    /// A store whose every user is outside the host's realms.
    struct OtherRealm;

    struct Spent;

    impl crate::ports::Decoy for Spent {
        fn spend(
            self: Box<Self>,
            _: &Config,
            _: &Login<'_>,
            _: &[u8],
        ) -> Result<(), crate::ports::StoreFailure> {
            Ok(())
        }
    }

    impl LoginStore for OtherRealm {
        fn open(&self, _: &Config, _: &Login<'_>) -> Result<Found, crate::ports::StoreFailure> {
            Ok(Found::Missing(Missing::NotAllowed))
        }
        fn decoy(
            &self,
            _: &Config,
            _: &Login<'_>,
        ) -> Result<Box<dyn crate::ports::Decoy>, crate::ports::StoreFailure> {
            Ok(Box::new(Spent))
        }
        fn enrollment(
            &self,
            _: &Config,
            _: pam_totp_os::account::Account,
        ) -> Result<Box<dyn crate::ports::Enrollment>, crate::ports::StoreFailure> {
            panic!("a user of another realm is never enrolled at login")
        }
    }

    /// Answers every prompt with a code.
    struct Typing(usize);

    impl Conversation for Typing {
        fn ask_hidden(&mut self, _: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
            self.0 += 1;
            Ok(Some(Zeroizing::new(b"123456".to_vec())))
        }
        fn show_error(&mut self, _: &str) {}
    }

    #[test]
    fn a_user_outside_the_hosts_realms_is_refused_even_with_nullok_and_a_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pam_totp.toml");
        std::fs::write(
            &path,
            "store = \"postgres\"\npostgres = \"host=/run/postgresql\"\nnullok = true\n\
             enforce_after = \"2999-01-01\"\n",
        )
        .unwrap();
        let args = [format!("config={}", path.display())];
        let login = Login {
            user: "alice",
            rhost: Some("192.0.2.7"),
            tty: None,
            args: &args,
            now: 1_000_000,
        };
        let lines = Lines::default();
        let mut typing = Typing(0);
        let accounts = crate::ports::scripted::ScriptedAccounts {
            users: vec![("alice", 1000, vec![1000])],
            groups: Vec::new(),
        };
        let stores = Stores {
            file: &OtherRealm,
            postgres: Some(&OtherRealm),
            accounts: &accounts,
        };
        assert_eq!(authenticate(&login, stores, &mut typing, &lines), Outcome::Denied);
        assert_eq!(typing.0, 1, "prompted, as anyone refused is");
        let logged = lines.0.borrow().join("\n");
        assert!(
            logged.contains("authentication failure; user=alice rhost=192.0.2.7 reason=user not allowed on this host (realm)"),
            "{logged}"
        );
        assert!(!logged.contains("enforce_after"), "{logged}");
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
