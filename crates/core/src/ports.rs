//! The ports of a login: what the flow ([`crate::authenticate`]) needs from the world,
//! as traits the other crates implement. `pam_totp_pam` implements [`Conversation`] and
//! [`Logger`] over libpam; `pam_totp_store_file` and `pam_totp_store_pg` implement
//! [`LoginStore`] (what a login needs) and [`AdminStore`] (what `totp-enroll` needs);
//! `pam_totp_store_file` implements [`Accounts`] over the host's passwd and group
//! databases. The [`Account`] values they exchange are `pam_totp_os`'s plain data.
//!
//! How each store makes the verdict safe against concurrent logins:
//! - files: the user's state file is locked (`flock`) from re-reading it to the durable
//!   write of the outcome;
//! - database: the store never sees a record; `host_verify` checks the answer inside
//!   the database, in one transaction that charges the attempt, and accepts a step only
//!   through a conditional UPDATE that moves `used_until` forward (or burns a
//!   recovery code), which exactly one login on any host can win.

use std::error::Error;
use std::fmt;

use zeroize::Zeroizing;

use nix::unistd::Gid;
use pam_totp_config::{Config, Store};
use pam_totp_os::account::{Account, AccountError};

use crate::login_state::{Channel, FailureSource, LoginState};
use crate::proven::{AuditSession, KeyFingerprint, Ticket};
use crate::record::{Record, StoredRecord};
use crate::recovery::RecoveryCode;

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
    /// Sets `name=value` in the PAM environment (`step_up_seconds`' ticket for the
    /// session hook).
    ///
    /// # Errors
    /// The variable could not be set (by default: not supported).
    fn set_env(&mut self, _name: &str, _value: &str) -> Result<(), ConversationError> {
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

/// The host's users and groups, as the flow asks about them (rollout's exemptions,
/// `enroll_at_login`'s account), and its name (a new enrollment's labels).
pub trait Accounts {
    /// Looks a user up by name.
    ///
    /// # Errors
    /// An unacceptable name, an unknown user, or a failed lookup.
    fn user(&self, name: &str) -> Result<Account, AccountError>;
    /// The groups `account` is a member of, its primary group included.
    ///
    /// # Errors
    /// The group database could not be asked.
    fn groups_of(&self, account: &Account) -> Result<Vec<Gid>, AccountError>;
    /// The id of the group named `name`; `None` if there is no such group.
    ///
    /// # Errors
    /// The group database could not be asked.
    fn group_id(&self, name: &str) -> Result<Option<Gid>, AccountError>;
    /// This host's name, for the labels of a new enrollment's app entry.
    fn host_name(&self) -> String;
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
    /// The config names a store this module was not built with (`store = "postgres"` in
    /// `pam_totp.so`): nothing was asked or decided; the caller hands the whole login to
    /// `pam_totp_db.so`, installed beside it, which reads the config again.
    HandOver,
}

/// What others proved about this login before the module ran: the public keys sshd
/// verified (`SSH_AUTH_INFO_0` of the `sshd` service's PAM environment), and the
/// kernel audit session of the calling process.
#[derive(Debug, Clone, Default)]
pub struct Proofs {
    pub ssh_keys: Vec<KeyFingerprint>,
    pub audit_session: Option<AuditSession>,
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
    #[must_use]
    pub fn at_local_console(&self) -> bool {
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
    #[must_use]
    pub fn channel(&self, config: &Config) -> Channel {
        if config.is_lockout_exempt(self.user) && self.at_local_console() {
            Channel::Console
        } else {
            Channel::Shared
        }
    }

    /// `user=NAME rhost=HOST`, the way Linux-PAM modules name a login in syslog.
    #[must_use]
    pub fn who(&self) -> String {
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

/// A store could not be used; the login fails closed. Displays as the store's own
/// message (the log line names the cause), and keeps that cause as its source.
#[derive(Debug)]
pub struct StoreFailure(Box<dyn Error + Send + Sync>);

impl StoreFailure {
    /// Wraps a store's error.
    pub fn new(cause: impl Into<Box<dyn Error + Send + Sync>>) -> StoreFailure {
        StoreFailure(cause.into())
    }

    /// A store's error with the sentence the admin reads (which names the place),
    /// keeping the error as its source.
    pub fn described(message: String, cause: impl Into<Box<dyn Error + Send + Sync>>) -> StoreFailure {
        StoreFailure(Box::new(Described {
            message,
            cause: cause.into(),
        }))
    }
}

impl fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for StoreFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// [`StoreFailure::described`]'s error.
#[derive(Debug)]
struct Described {
    message: String,
    cause: Box<dyn Error + Send + Sync>,
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for Described {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.cause.as_ref())
    }
}

/// Proof that a user has no record: made only by a store that looked (the record's
/// trusted directory holds no such file, or the database has no row).
#[derive(Debug)]
pub struct NoRecord(());

impl NoRecord {
    /// The store looked and found no record. For stores only: the flow lets such a user
    /// through (`nullok`, grace period) on this proof alone.
    #[must_use]
    pub fn proven_by_store() -> NoRecord {
        NoRecord(())
    }
}

/// Why no usable record was found.
#[derive(Debug)]
pub enum Missing {
    Unknown,
    /// Proven: the record's directory is there, trusted, and holds none.
    NotEnrolled(NoRecord),
    /// The database store: not enrolled, and reset by an admin (`totp-enroll reset`):
    /// enrolled at this login with `enroll_at_login`, else refused; never let through
    /// by `nullok` or the grace period.
    MarkedForEnrollment,
    /// The database store: the user is in none of this host's realms, enrolled or not.
    /// Refused, and never let through as not enrolled.
    NotAllowed,
    /// The user's home (or record directory in it) is not there, e.g. not mounted yet:
    /// enrollment cannot be told, so the login is refused. Its text is for syslog.
    Unproven(StoreFailure),
    /// A problem only the admin can fix; its text is for syslog.
    Unusable(StoreFailure),
}

impl Missing {
    /// A failed passwd lookup: an unknown (or impossible) name is an unknown user; any
    /// other failure only the admin can fix.
    #[must_use]
    pub fn from_lookup(e: &AccountError) -> Missing {
        match e {
            AccountError::Unknown | AccountError::InvalidName => Missing::Unknown,
            other @ AccountError::Lookup(_) => Missing::Unusable(StoreFailure::new(other.clone())),
        }
    }
}

/// What [`LoginStore::open`] found.
pub enum Found {
    Enrolled(Opened),
    Missing(Missing),
}

/// An enrolled user, as the store saw them before the prompt.
pub struct Opened {
    /// Unix time until which this login's counters are locked out (0: not locked).
    pub locked_until: u64,
    /// The length of a code: with `forward_pass`, the code is the answer's last `digits`
    /// characters.
    pub digits: u8,
    pub session: Box<dyn Session>,
}

/// One login's store across the prompt (a state file kept open, unlocked; or nothing,
/// for the database, which holds no connection while a user types).
pub trait Session {
    /// The verdict on `reply`, durably recorded before it is returned: the file store
    /// locks the state file, re-reads it and checks the answer here
    /// ([`crate::local_verdict`]); the database store sends the answer to the database,
    /// which checks it.
    ///
    /// # Errors
    /// The store is unusable: nothing was accepted.
    fn judge(
        self: Box<Self>,
        config: &Config,
        login: &Login<'_>,
        reply: &[u8],
    ) -> Result<Judged, StoreFailure>;
}

/// What [`Session::judge`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// Locked out until this Unix time: the answer was not checked.
    LockedOut(u64),
    Settled(Settled),
}

/// Why an answer failed, as the log line says it (`reason=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    ReplayedCode,
    InvalidCode,
    RecoveryCodeAlreadyUsed,
    InvalidRecoveryCode,
    MalformedCode,
    /// The database holds no enrollment (any more: removed since the prompt).
    NotEnrolled,
    /// The user is in none of this host's realms (the database store).
    NotAllowed,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::ReplayedCode => "replayed code",
            Failure::InvalidCode => "invalid code",
            Failure::RecoveryCodeAlreadyUsed => "recovery code already used",
            Failure::InvalidRecoveryCode => "invalid recovery code",
            Failure::MalformedCode => "malformed code",
            Failure::NotEnrolled => "not enrolled",
            Failure::NotAllowed => NOT_ALLOWED,
        })
    }
}

/// The log's reason for a user outside the host's realms.
pub const NOT_ALLOWED: &str = "user not allowed on this host (realm)";

/// What was durably recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// `None`: accepted. Else the reason of the failure.
    pub failure: Option<Failure>,
    /// The failures counted after this attempt (`None`: none was counted, e.g. an
    /// answer the host refused as malformed without asking the database).
    pub failures: Option<u32>,
    /// The lock-out after this attempt (0: none).
    pub locked_until: u64,
    /// The lock-out before this attempt (a new lock-out is logged once).
    pub locked_until_before: u64,
    /// Recovery codes left after a login with one.
    pub recovery_left: Option<usize>,
    /// The attempt was counted on the console's own counters (`lockout_exempt`); with
    /// the database, which does not say, an attempt the host sent as a console one.
    pub console: bool,
    /// A refused code was right for a time this many seconds from the verdict's clock
    /// (positive: ahead), outside the window (shown by `clock_hint`).
    pub clock_offset: Option<i64>,
    /// An accepted answer ended these failed attempts (shown by `failed_report`).
    pub failed_since: Option<FailedReport>,
}

/// The failed attempts a success ends, as the store kept them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedReport {
    pub count: u32,
    /// Unix time of the last one.
    pub last_at: u64,
    /// Its `PAM_RHOST`, else its tty (may be empty).
    pub source: FailureSource,
}

impl FailedReport {
    /// The report a success after `before` shows; `None` if there were no failures.
    #[must_use]
    pub fn since(before: &LoginState) -> Option<FailedReport> {
        (before.failures_since_success > 0).then_some(FailedReport {
            count: before.failures_since_success,
            last_at: before.last_failure,
            source: before.last_failure_source,
        })
    }
}

/// What an unknown, unenrolled or not allowed user's answer costs, so that the time
/// does not tell them from an enrolled user's wrong answer ([`crate::decoy`]).
pub trait Decoy {
    /// Spends on `reply` what an enrolled user's verdict would; the answer is refused
    /// whatever it was.
    ///
    /// # Errors
    /// The store is unusable (an enrolled user's login would fail too).
    fn spend(self: Box<Self>, config: &Config, login: &Login<'_>, reply: &[u8]) -> Result<(), StoreFailure>;
}

/// The one durable write the file store's decoy spends ([`crate::decoy::spend`]).
pub trait DecoyWrite {
    /// # Errors
    /// The durable write failed.
    fn write(self: Box<Self>) -> Result<(), StoreFailure>;
}

/// Where `enroll_at_login` puts a new record, checked to be a root-owned store.
pub trait Enrollment {
    /// The record's place, for the log line.
    fn place(&self) -> String;
    /// Whether a record is there (by now).
    ///
    /// # Errors
    /// The store is unusable.
    fn exists(&self) -> Result<bool, StoreFailure>;
    /// Takes the user's state lock, held until the returned guard is dropped.
    ///
    /// # Errors
    /// The state is unusable.
    fn lock(&self, user: &str) -> Result<Box<dyn EnrollmentLock>, StoreFailure>;
    /// Writes the record.
    ///
    /// # Errors
    /// The write failed (the message names the place).
    fn write(&self, record: &Record) -> Result<(), StoreFailure>;
}

/// A user's state, locked for an enrollment at login.
pub trait EnrollmentLock {
    /// Durably writes the state the enrollment leaves (its step used up).
    ///
    /// # Errors
    /// The write failed.
    fn save(&mut self, state: LoginState) -> Result<(), StoreFailure>;
}

/// What a login needs from a store: implemented by the file store and the database.
pub trait LoginStore {
    /// Checks the store's own settings in `config`, right after it is loaded: an
    /// unusable value refuses every login, as a bad config does.
    ///
    /// # Errors
    /// The message names the key and the problem.
    fn check_config(&self, _config: &Config) -> Result<(), StoreFailure> {
        Ok(())
    }
    /// Whether this login should warn that the host's clock is not synchronised (the
    /// store keeps the "at most once an hour"; by default never).
    fn host_clock_warning_due(&self, _config: &Config) -> bool {
        false
    }
    /// Finds whether `login`'s user is enrolled (and allowed on this host), whether
    /// locked out on this login's counters, and holds what the verdict needs.
    ///
    /// # Errors
    /// The state or the database is unusable.
    fn open(&self, config: &Config, login: &Login<'_>) -> Result<Found, StoreFailure>;
    /// What an unknown, unenrolled or not allowed user's answer costs (taken before the
    /// prompt, as an enrolled user's state is).
    ///
    /// # Errors
    /// The store is unusable (an enrolled user's login would fail too).
    fn decoy(&self, config: &Config, login: &Login<'_>) -> Result<Box<dyn Decoy>, StoreFailure>;
    /// Where `enroll_at_login` writes `account`'s record.
    ///
    /// # Errors
    /// The store takes no enrollment at login (records in homes, the database), or is
    /// unusable.
    fn enrollment(&self, config: &Config, account: Account) -> Result<Box<dyn Enrollment>, StoreFailure>;
    /// A store that checks an enrollment's confirming code itself (the database): it
    /// takes `enroll_at_login` through [`crate::self_enroll`] instead of [`Self::enrollment`].
    fn checked_enrollment(&self) -> Option<&dyn CheckedEnrollment> {
        None
    }
    /// Where this store keeps remembered keys and verified sessions; `None`: it keeps
    /// none, and every login is asked for a code.
    fn shortcuts(&self) -> Option<&dyn Shortcuts> {
        None
    }
}

/// A new secret for the store to write, confirmed by `code` (digits only).
pub struct NewSecret<'a> {
    pub record: &'a Record,
    pub code: &'a str,
    pub recovery_codes: &'a [RecoveryCode],
}

/// What the store made of a [`NewSecret`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Enrolled,
    /// An enrollment exists (a concurrent login won): nothing changed.
    AlreadyEnrolled,
    /// The store's own check of the code (its clock) refused it.
    CodeRefused,
    /// Not a user the store lets this host enroll (another realm; for a replacement:
    /// no valid ticket).
    Refused,
}

/// A store that writes enrollments made at login after checking their code itself.
pub trait CheckedEnrollment {
    /// A first enrollment of `login`'s user.
    ///
    /// # Errors
    /// The store is unusable.
    fn enroll(
        &self,
        config: &Config,
        login: &Login<'_>,
        new: &NewSecret<'_>,
    ) -> Result<Written, StoreFailure>;
    /// Right after an accepted answer: whether the user asked to change their secret
    /// (`totp-enroll --force`), and if so the store's permission to
    /// replace it (a single-use ticket); `None` otherwise.
    ///
    /// # Errors
    /// The store is unusable.
    fn change_requested(
        &self,
        config: &Config,
        login: &Login<'_>,
    ) -> Result<Option<Box<dyn Replacement>>, StoreFailure>;
}

/// The permission to replace one user's enrollment, once.
pub trait Replacement {
    /// Replaces the enrollment.
    ///
    /// # Errors
    /// The store is unusable.
    fn replace(
        self: Box<Self>,
        config: &Config,
        login: &Login<'_>,
        new: &NewSecret<'_>,
    ) -> Result<Written, StoreFailure>;
}

/// What an earlier right code stands in for, kept in the root-owned state
/// (`remember_key_seconds`: [`crate::remember`]; `step_up_seconds`: [`crate::step_up`]).
/// Every entry has an end time; an entry whose end has passed is never believed.
pub trait Shortcuts {
    /// One of `keys` remembered for `user` and its end, if any ends after `now`.
    ///
    /// # Errors
    /// The store is unusable (the caller asks for a code).
    fn remembered_key(
        &self,
        config: &Config,
        user: &str,
        keys: &[KeyFingerprint],
        now: u64,
    ) -> Result<Option<(KeyFingerprint, u64)>, StoreFailure>;
    /// Remembers `keys` for `user` until `until`.
    ///
    /// # Errors
    /// The store is unusable.
    fn remember_keys(
        &self,
        config: &Config,
        user: &str,
        keys: &[KeyFingerprint],
        until: u64,
        now: u64,
    ) -> Result<(), StoreFailure>;
    /// After a right code: a session of `user` that shows `ticket` before `until` may
    /// become verified ([`Shortcuts::open_session`]).
    ///
    /// # Errors
    /// The store is unusable.
    fn expect_session(
        &self,
        config: &Config,
        user: &str,
        ticket: &Ticket,
        until: u64,
        now: u64,
    ) -> Result<(), StoreFailure>;
    /// Takes `ticket` (once) and, if it was `user`'s and still valid, records `session`
    /// as verified for `user` until `until`; whether it did.
    ///
    /// # Errors
    /// The store is unusable.
    fn open_session(
        &self,
        config: &Config,
        user: &str,
        ticket: &Ticket,
        session: AuditSession,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreFailure>;
    /// The end of `session`'s verification for `user`, if it ends after `now`.
    ///
    /// # Errors
    /// The store is unusable (the caller asks for a code).
    fn verified_session(
        &self,
        config: &Config,
        user: &str,
        session: AuditSession,
        now: u64,
    ) -> Result<Option<u64>, StoreFailure>;
    /// Forgets `session` (logout).
    ///
    /// # Errors
    /// The store is unusable.
    fn close_session(
        &self,
        config: &Config,
        user: &str,
        session: AuditSession,
        now: u64,
    ) -> Result<(), StoreFailure>;
}

/// The stores a module was built with: the file store always, the database in
/// `pam_totp_db.so` only; and the accounts they serve.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    pub file: &'a dyn LoginStore,
    pub postgres: Option<&'a dyn LoginStore>,
    pub accounts: &'a dyn Accounts,
}

impl<'a> Stores<'a> {
    /// The store `store` names, if this module has it.
    #[must_use]
    pub fn get(&self, store: Store) -> Option<&'a dyn LoginStore> {
        match store {
            Store::File => Some(self.file),
            Store::Postgres => self.postgres,
        }
    }
}

/// A user's stored record as `totp-enroll` finds it.
pub enum Stored {
    Found(StoredRecord),
    /// None: the store looked.
    Missing(NoRecord),
    /// Where the record would be is not there (a home not mounted): whether there is
    /// one cannot be told.
    Unproven(StoreFailure),
    /// There, but unreadable or invalid; the failure says why (never the content).
    Unusable(StoreFailure),
}

/// Why the command could not use a store: the admin's settings (the command exits 2),
/// or the store refused or failed (exit 1). The failure's text is the message shown.
#[derive(Debug)]
pub enum AdminFailure {
    Settings(StoreFailure),
    Refused(StoreFailure),
}

impl fmt::Display for AdminFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminFailure::Settings(e) | AdminFailure::Refused(e) => e.fmt(f),
        }
    }
}

impl Error for AdminFailure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AdminFailure::Settings(e) | AdminFailure::Refused(e) => Some(e),
        }
    }
}

impl From<StoreFailure> for AdminFailure {
    fn from(e: StoreFailure) -> AdminFailure {
        AdminFailure::Refused(e)
    }
}

/// What a store holds for a user besides the enrollment: the changes under way, which
/// only the database records (a record file has no reset mark nor ticket).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Unix time an admin reset the user (`totp-enroll reset`) who has not enrolled
    /// again since: they enroll at their next login on an `enroll_at_login` host.
    pub marked_for_enrollment_at: Option<u64>,
    /// A live re-enrollment ticket ("change your OTP" after an accepted code).
    pub reenroll_ticket: Option<ReenrollTicket>,
}

/// A re-enrollment ticket the database granted and nobody used yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReenrollTicket {
    /// The host role that holds it (the one whose `host_verify` accepted the code).
    pub host_role: String,
    /// Unix time it stops being valid.
    pub expires_at: u64,
}

/// What [`AdminPlace::unlock`] cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlocked {
    /// Failures counted before (both channels).
    pub failures: u32,
    /// The state was corrupt and was started afresh.
    pub started_afresh: bool,
}

/// One user's record and login state, as `totp-enroll` reads and changes them.
pub trait AdminPlace {
    /// Where the record is, for messages, audit lines and `status`'s `record`.
    fn describe(&self) -> String;
    /// A record file only root may write (a system store): its path, for the refusal a
    /// user gets.
    fn root_only(&self) -> Option<std::path::PathBuf>;
    /// Whether a record exists (even an unusable one).
    ///
    /// # Errors
    /// The store could not be asked.
    fn exists(&mut self) -> Result<bool, StoreFailure>;
    /// The record as stored.
    ///
    /// # Errors
    /// The store could not be asked (a missing or unusable record is a [`Stored`]).
    fn read_stored(&mut self) -> Result<Stored, StoreFailure>;
    /// Writes the record's text, replacing any; the login state stays.
    ///
    /// # Errors
    /// The write failed; nothing was changed.
    fn write(&mut self, text: &str) -> Result<(), StoreFailure>;
    /// Writes the record's text only if there is none; `false` (nothing written) if
    /// there is.
    ///
    /// # Errors
    /// The store failed.
    fn write_new(&mut self, text: &str) -> Result<bool, StoreFailure>;
    /// The plaintext recovery (or scratch) codes of the record the next `write` or
    /// `write_new` writes, for a store that hashes them itself (the database, with its
    /// own `crypt()`, so that it can check them). Other stores keep the record's argon2
    /// hashes: by default the codes are not kept.
    fn offer_codes(&mut self, _codes: &[Zeroizing<String>]) {}
    /// The realms the user belongs to, where the store has realms (the database);
    /// `None` elsewhere.
    ///
    /// # Errors
    /// The store could not be asked.
    fn realms(&mut self) -> Result<Option<Vec<String>>, StoreFailure> {
        Ok(None)
    }
    /// The changes under way for the user ([`Pending`]); none where the store keeps
    /// none (files).
    ///
    /// # Errors
    /// The store could not be asked.
    fn pending(&mut self) -> Result<Pending, StoreFailure> {
        Ok(Pending::default())
    }
    /// Removes the record and clears failures, lock-outs and burns (replay protection
    /// stays where the store keeps state apart); `false` if there was no record.
    ///
    /// # Errors
    /// The store failed.
    fn remove(&mut self) -> Result<bool, StoreFailure>;
    /// The login state as the module last left it; `None` if never logged in.
    ///
    /// # Errors
    /// The store failed.
    fn peek_state(&mut self) -> Result<Option<LoginState>, StoreFailure>;
    /// Clears failures and lock-outs (the console's too), keeping replay protection.
    ///
    /// # Errors
    /// The store failed.
    fn unlock(&mut self) -> Result<Unlocked, StoreFailure>;
    /// Carries replay protection (`used_until`; where the store keeps them, burnt
    /// recovery codes too) into the login state, never moving it back.
    ///
    /// # Errors
    /// The store failed.
    fn carry_state(&mut self, state: &LoginState) -> Result<(), StoreFailure>;
}

/// What `totp-enroll` needs from a store: implemented by the file store and the
/// database.
pub trait AdminStore {
    /// `account`'s record and state.
    ///
    /// # Errors
    /// `secret_path` does not expand for the account ([`AdminFailure::Settings`]).
    fn place<'a>(
        &'a mut self,
        config: &Config,
        account: &Account,
    ) -> Result<Box<dyn AdminPlace + 'a>, AdminFailure>;
    /// The accounts that may have a record, for `list` (a name the host does not know
    /// comes as a name-only account).
    ///
    /// # Errors
    /// The store could not be asked.
    fn accounts(&mut self, config: &Config) -> Result<Vec<Account>, AdminFailure>;
}

/// An [`Accounts`] from a script, for unit tests: users with their groups, and groups
/// by name; nothing from the host.
#[cfg(test)]
pub(crate) mod scripted {
    use std::path::PathBuf;

    use nix::unistd::{Gid, Uid};
    use pam_totp_os::account::{Account, AccountError};

    use super::Accounts;

    /// `users`: name, uid, and the gids of its groups (the first is its primary group);
    /// `groups`: name and gid.
    pub(crate) struct ScriptedAccounts {
        pub users: Vec<(&'static str, u32, Vec<u32>)>,
        pub groups: Vec<(&'static str, u32)>,
    }

    impl Accounts for ScriptedAccounts {
        fn user(&self, name: &str) -> Result<Account, AccountError> {
            pam_totp_os::account::check_user_name(name)?;
            let (name, uid, gids) = self
                .users
                .iter()
                .find(|(user, _, _)| *user == name)
                .ok_or(AccountError::Unknown)?;
            Ok(Account {
                name: (*name).to_owned(),
                uid: Uid::from_raw(*uid),
                gid: Gid::from_raw(gids.first().copied().unwrap_or(u32::MAX)),
                home: PathBuf::from(format!("/home/{name}")),
            })
        }

        fn groups_of(&self, account: &Account) -> Result<Vec<Gid>, AccountError> {
            let (_, _, gids) = self
                .users
                .iter()
                .find(|(user, _, _)| *user == account.name)
                .ok_or(AccountError::Unknown)?;
            Ok(gids.iter().map(|gid| Gid::from_raw(*gid)).collect())
        }

        fn group_id(&self, name: &str) -> Result<Option<Gid>, AccountError> {
            Ok(self
                .groups
                .iter()
                .find(|(group, _)| *group == name)
                .map(|(_, gid)| Gid::from_raw(*gid)))
        }

        fn host_name(&self) -> String {
            "host1".to_owned()
        }
    }
}
