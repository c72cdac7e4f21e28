//! `step_up_seconds`: sudo (or any `pam_totp` check) inside a session whose login passed
//! a code passes without a new code for a while.
//!
//! A session is known by its kernel audit session id (`/proc/self/sessionid`), which
//! `pam_loginuid` sets when the session opens and which no process can change or
//! choose afterwards; 4294967295 means unset (no `pam_loginuid`, some containers), and
//! an unset id is never believed.
//!
//! How the session learns that its login passed a code: sshd runs the auth stack in
//! another process than the session stack, so the auth side hands a one-time random
//! ticket to the session side through the PAM environment ([`TICKET_ENV`]) and keeps
//! its hash in the store; the session hook takes the ticket from the PAM environment
//! (and removes it there, so the user's shell never sees it), redeems it once, and
//! records its audit session id as verified. A guessed or replayed ticket redeems
//! nothing.

use pam_totp_config::Config;

use crate::ports::{Conversation, Logger, Login, LoginStore, Priority, Stores};
use crate::proven::{AuditSession, Ticket};

/// The PAM environment variable that carries the ticket from auth to session.
pub const TICKET_ENV: &str = "PAM_TOTP_TICKET";
/// How long a ticket waits for its session to open.
const TICKET_SECONDS: u64 = 300;

/// A Unix time as log lines show it.
#[must_use]
pub fn utc(unix: u64) -> String {
    pam_totp_config::clock::rfc3339(unix)
}

/// Before a prompt: whether this process's audit session was verified for this user
/// and still is. Logged when it was; a store error is logged and means a prompt.
#[must_use]
pub fn verified(
    config: &Config,
    login: &Login<'_>,
    session: Option<AuditSession>,
    store: &dyn LoginStore,
    log: &dyn Logger,
) -> bool {
    if config.shortcuts().step_up_seconds == 0 {
        return false;
    }
    let Some(session) = session else {
        if config.debug {
            log.log(
                Priority::Debug,
                &format!(
                    "no audit session id (pam_loginuid): asking for a code; {}",
                    login.who()
                ),
            );
        }
        return false;
    };
    let Some(shortcuts) = store.shortcuts() else {
        return false;
    };
    match shortcuts.verified_session(config, login.user, session, login.now) {
        Ok(Some(until)) => {
            log.log(
                Priority::Info,
                &format!(
                    "second factor passed in verified session {} until {}; {}",
                    session.id(),
                    utc(until),
                    login.who()
                ),
            );
            true
        }
        Ok(None) => false,
        Err(e) => {
            log.log(
                Priority::Err,
                &format!(
                    "cannot read verified sessions, asking for a code: {e}; {}",
                    login.who()
                ),
            );
            false
        }
    }
}

/// After a right code: a ticket for the session this login opens, in the store and in
/// the PAM environment. Only a login program, whose process is in no audit session yet
/// (sshd, login), opens a session to verify; a check from inside a session (sudo)
/// leaves none. A failure only costs a prompt at sudo: logged, the login stands.
pub fn after_code(
    config: &Config,
    login: &Login<'_>,
    caller_session: Option<AuditSession>,
    store: &dyn LoginStore,
    conv: &mut dyn Conversation,
    log: &dyn Logger,
) {
    if config.shortcuts().step_up_seconds == 0 || caller_session.is_some() {
        return;
    }
    let Some(shortcuts) = store.shortcuts() else {
        return;
    };
    let Ok(ticket) = Ticket::new() else {
        log.log(
            Priority::Err,
            &format!("no randomness for a session ticket; {}", login.who()),
        );
        return;
    };
    let until = login.now.saturating_add(TICKET_SECONDS);
    if let Err(e) = shortcuts.expect_session(config, login.user, &ticket, until, login.now) {
        log.log(
            Priority::Err,
            &format!("cannot record a session ticket: {e}; {}", login.who()),
        );
        return;
    }
    if conv.set_env(TICKET_ENV, ticket.as_str()).is_err() {
        log.log(
            Priority::Err,
            &format!("cannot set {TICKET_ENV}; {}", login.who()),
        );
    }
}

/// What the session hooks are given by the PAM boundary.
pub struct SessionEvent<'a> {
    pub user: &'a str,
    pub args: &'a [String],
    pub now: u64,
    /// This process's audit session, after `pam_loginuid` (above in the stack) set it.
    pub session: Option<AuditSession>,
}

/// `pam_sm_open_session`: redeems the ticket the login left (taken out of the PAM
/// environment by the caller) and records the audit session as verified. Never fails
/// the session: without a ticket or a session id, sudo asks for a code, as always.
pub fn open_session(event: &SessionEvent<'_>, ticket: Option<&str>, stores: Stores<'_>, log: &dyn Logger) {
    let Some((config, shortcuts)) = shortcuts_of(event, stores, log) else {
        return;
    };
    let Some(ticket) = ticket.and_then(Ticket::parse) else {
        return;
    };
    let Some(session) = event.session else {
        log.log(
            Priority::Notice,
            &format!(
                "no audit session id (add pam_loginuid.so above pam_totp.so in the session stack): \
                 sudo will ask for a code; user={}",
                crate::ports::client_field(event.user)
            ),
        );
        return;
    };
    let until = event.now.saturating_add(config.shortcuts().step_up_seconds);
    match shortcuts.open_session(&config, event.user, &ticket, session, until, event.now) {
        Ok(true) => log.log(
            Priority::Info,
            &format!(
                "session {} verified until {}; user={}",
                session.id(),
                utc(until),
                crate::ports::client_field(event.user)
            ),
        ),
        Ok(false) => log.log(
            Priority::Notice,
            &format!(
                "session ticket unknown or expired; user={}",
                crate::ports::client_field(event.user)
            ),
        ),
        Err(e) => log.log(
            Priority::Err,
            &format!(
                "cannot record the verified session: {e}; user={}",
                crate::ports::client_field(event.user)
            ),
        ),
    }
}

/// `pam_sm_close_session`: the session is no longer verified.
pub fn close_session(event: &SessionEvent<'_>, stores: Stores<'_>, log: &dyn Logger) {
    let Some((config, shortcuts)) = shortcuts_of(event, stores, log) else {
        return;
    };
    let Some(session) = event.session else {
        return;
    };
    if let Err(e) = shortcuts.close_session(&config, event.user, session, event.now) {
        log.log(
            Priority::Err,
            &format!(
                "cannot forget the verified session: {e}; user={}",
                crate::ports::client_field(event.user)
            ),
        );
    }
}

/// Whether this module's session hooks belong to `pam_totp_db.so`: a module without the
/// database store (`pam_totp.so`) whose config says `store = "postgres"` with
/// `step_up_seconds`, as its login was handed over.
#[must_use]
pub fn hands_over_sessions(args: &[String], stores: Stores<'_>) -> bool {
    stores.postgres.is_none()
        && matches!(
            Config::from_module_args(args),
            Ok(config) if config.store == pam_totp_config::Store::Postgres
                && config.shortcuts().step_up_seconds > 0
        )
}

fn shortcuts_of<'s>(
    event: &SessionEvent<'_>,
    stores: Stores<'s>,
    log: &dyn Logger,
) -> Option<(Config, &'s dyn crate::ports::Shortcuts)> {
    let config = match Config::from_module_args(event.args) {
        Ok(config) => config,
        Err(e) => {
            log.log(Priority::Err, &format!("configuration error: {e}"));
            return None;
        }
    };
    if config.shortcuts().step_up_seconds == 0 {
        return None;
    }
    let shortcuts = stores.get(config.store)?.shortcuts()?;
    Some((config, shortcuts))
}
