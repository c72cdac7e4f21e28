//! The database as a login's [`LoginStore`]: the host never sees a record; the database
//! says whether a user is enrolled and allowed here (`host_lookup`) and judges the answer
//! (`host_verify`). One login's store across the prompt holds nothing: the connection of
//! the lookup is closed before the prompt and a new one made for the verdict, so that
//! logins waiting at a prompt (any number of unauthenticated clients) hold no database
//! connection, and a connection dropped by a firewall while a user typed cannot stall
//! the verdict.

use std::fmt;

use pam_totp_config::Config;
use pam_totp_core::login_state::LoginState;
use pam_totp_core::ports::{
    AdminFailure, AdminPlace, AdminStore, Decoy, Enrollment, Failure, Found, Judged, Login, LoginStore,
    Missing, NoRecord, Opened, Pending, Session, Settled, Shortcuts, StoreFailure, Stored, Unlocked,
};
use pam_totp_core::record::{Record, StoredRecord};
use pam_totp_os::account::Account;
use pam_totp_store_file::seal;
use zeroize::Zeroizing;

use pam_totp_core::ports::{self as core_enroll, CheckedEnrollment, Replacement, Written};

use crate::admin;
use crate::login::{self, Status, Verdict, Verified};
use crate::self_enroll;
use crate::{Client, DbError};

/// `store = "postgres"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgStore;

/// Why the database store failed a login (the log line says "database unavailable").
#[derive(Debug)]
pub struct Unavailable(DbError);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database unavailable: {}", self.0)
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

pub(crate) fn unavailable(e: DbError) -> StoreFailure {
    StoreFailure::new(Unavailable(e))
}

/// The database store's enrollment at login goes through `host_enroll`
/// ([`CheckedEnrollment`]), never a record written by the host.
#[derive(Debug)]
struct NoEnrollmentAtLogin;

impl fmt::Display for NoEnrollmentAtLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the database takes enrollments at login through host_enroll only")
    }
}

impl std::error::Error for NoEnrollmentAtLogin {}

/// The `postgres` key's value is unusable.
#[derive(Debug)]
struct BadSettings(crate::conninfo::ConnInfoError);

impl fmt::Display for BadSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad value for `postgres`: {}", self.0)
    }
}

impl std::error::Error for BadSettings {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl LoginStore for PgStore {
    fn check_config(&self, config: &Config) -> Result<(), StoreFailure> {
        crate::check_settings(config).map_err(|e| StoreFailure::new(BadSettings(e)))
    }

    /// The database checks codes with its own clock; a host's clock still matters to
    /// everything else it logs and signs.
    fn host_clock_warning_due(&self, config: &Config) -> bool {
        pam_totp_store_file::clock_watch::warning_due(config)
    }

    fn open(&self, config: &Config, login: &Login<'_>) -> Result<Found, StoreFailure> {
        let account = match Account::lookup(login.user) {
            Ok(account) => account,
            Err(e) => return Ok(Found::Missing(Missing::from_lookup(&e))),
        };
        let mut client = crate::connect(config).map_err(unavailable)?;
        let status =
            login::lookup(&mut client, &account.name, login.at_local_console()).map_err(unavailable)?;
        drop(client);
        Ok(match status {
            Status::Enrolled { locked_until } => Found::Enrolled(Opened {
                locked_until,
                // Only `forward_pass` uses it, to split the answer: the host's setting.
                digits: config.digits,
                session: Box::new(PgSession { user: account.name }),
            }),
            Status::NotEnrolled => Found::Missing(Missing::NotEnrolled(NoRecord::proven_by_store())),
            Status::MarkedForEnrollment => Found::Missing(Missing::MarkedForEnrollment),
            Status::NotAllowed => Found::Missing(Missing::NotAllowed),
        })
    }

    fn decoy(&self, _config: &Config, login: &Login<'_>) -> Result<Box<dyn Decoy>, StoreFailure> {
        Ok(Box::new(PgSession {
            user: login.user.to_owned(),
        }))
    }

    fn enrollment(&self, _config: &Config, _account: Account) -> Result<Box<dyn Enrollment>, StoreFailure> {
        Err(StoreFailure::new(NoEnrollmentAtLogin))
    }

    fn checked_enrollment(&self) -> Option<&dyn CheckedEnrollment> {
        Some(self)
    }

    fn shortcuts(&self) -> Option<&dyn Shortcuts> {
        Some(self)
    }
}

/// The host sends; `host_enroll` / `host_reenroll` decide (migration 0006).
impl CheckedEnrollment for PgStore {
    fn enroll(
        &self,
        config: &Config,
        login: &Login<'_>,
        new: &core_enroll::NewSecret<'_>,
    ) -> Result<Written, StoreFailure> {
        let mut client = crate::connect(config).map_err(unavailable)?;
        let answer = with_new_secret(new, |sent| self_enroll::enroll(&mut client, login.user, sent))
            .map_err(unavailable)?;
        Ok(written(answer))
    }

    fn change_requested(
        &self,
        config: &Config,
        login: &Login<'_>,
    ) -> Result<Option<Box<dyn Replacement>>, StoreFailure> {
        let Ok(account) = Account::lookup(login.user) else {
            return Ok(None);
        };
        let Some(requested_at) = self_enroll::change_requested_at(&account) else {
            return Ok(None);
        };
        let mut client = crate::connect(config).map_err(unavailable)?;
        let ticket =
            self_enroll::reenroll_ticket(&mut client, &account.name, requested_at).map_err(unavailable)?;
        Ok(ticket.map(|ticket| Box::new(PgReplacement { ticket }) as Box<dyn Replacement>))
    }
}

/// A ticket `host_reenroll_ticket` granted.
struct PgReplacement {
    ticket: Zeroizing<String>,
}

impl Replacement for PgReplacement {
    fn replace(
        self: Box<Self>,
        config: &Config,
        login: &Login<'_>,
        new: &core_enroll::NewSecret<'_>,
    ) -> Result<Written, StoreFailure> {
        let mut client = crate::connect(config).map_err(unavailable)?;
        let answer = with_new_secret(new, |sent| {
            self_enroll::reenroll(&mut client, login.user, &self.ticket, sent)
        })
        .map_err(unavailable)?;
        Ok(written(answer))
    }
}

fn with_new_secret<T>(
    new: &core_enroll::NewSecret<'_>,
    send: impl FnOnce(&self_enroll::NewSecret<'_>) -> T,
) -> T {
    let codes: Vec<&str> = new
        .recovery_codes
        .iter()
        .map(pam_totp_core::code_hash::OneTimeCode::as_str)
        .collect();
    send(&self_enroll::NewSecret {
        secret: new.record.secret.as_bytes(),
        algorithm: admin::algorithm_name(new.record.algorithm),
        digits: i32::from(new.record.digits),
        period: i32::try_from(new.record.period).unwrap_or(i32::MAX),
        confirm_code: new.code,
        recovery_codes: &codes,
    })
}

fn written(answer: self_enroll::Answer) -> Written {
    match answer {
        self_enroll::Answer::Written => Written::Enrolled,
        self_enroll::Answer::AlreadyEnrolled => Written::AlreadyEnrolled,
        self_enroll::Answer::InvalidCode => Written::CodeRefused,
        self_enroll::Answer::Malformed | self_enroll::Answer::NotAllowed | self_enroll::Answer::NoTicket => {
            Written::Refused
        }
    }
}

/// Nothing held across the prompt but the name the database knows the user by.
struct PgSession {
    user: String,
}

impl PgSession {
    /// The database's verdict on `reply`; `None` for an answer the host refuses as
    /// malformed itself (not text, or longer than the database takes).
    fn verify(
        &self,
        config: &Config,
        login: &Login<'_>,
        reply: &[u8],
    ) -> Result<Option<Verified>, StoreFailure> {
        let Some(answer) = std::str::from_utf8(reply)
            .ok()
            .map(str::trim)
            .filter(|answer| answer.chars().count() <= login::MAX_ANSWER_CHARS && !answer.contains('\0'))
        else {
            return Ok(None);
        };
        let source = login
            .rhost
            .filter(|rhost| !rhost.is_empty())
            .or(login.tty)
            .unwrap_or("");
        let mut client = crate::connect(config).map_err(unavailable)?;
        let verified = login::verify(&mut client, &self.user, answer, login.at_local_console(), source)
            .map_err(unavailable)?;
        Ok(Some(verified))
    }
}

impl Session for PgSession {
    fn judge(
        self: Box<Self>,
        config: &Config,
        login: &Login<'_>,
        reply: &[u8],
    ) -> Result<Judged, StoreFailure> {
        let Some(verified) = self.verify(config, login, reply)? else {
            return Ok(Judged::Settled(Settled {
                failure: Some(Failure::MalformedCode),
                failures: None,
                locked_until: 0,
                locked_until_before: 0,
                recovery_left: None,
                console: false,
                clock_offset: None,
                failed_since: None,
            }));
        };
        let failure = match verified.verdict {
            Verdict::Accepted | Verdict::AcceptedRecovery => None,
            Verdict::LockedOut => return Ok(Judged::LockedOut(verified.locked_until)),
            Verdict::InvalidCode => Some(Failure::InvalidCode),
            Verdict::ReplayedCode => Some(Failure::ReplayedCode),
            Verdict::InvalidRecoveryCode => Some(Failure::InvalidRecoveryCode),
            Verdict::RecoveryCodeAlreadyUsed => Some(Failure::RecoveryCodeAlreadyUsed),
            Verdict::MalformedCode => Some(Failure::MalformedCode),
            Verdict::NotEnrolled => Some(Failure::NotEnrolled),
            Verdict::NotAllowed => Some(Failure::NotAllowed),
        };
        let counted = !matches!(verified.verdict, Verdict::NotEnrolled | Verdict::NotAllowed);
        Ok(Judged::Settled(Settled {
            failure,
            failures: counted.then_some(verified.failures),
            locked_until: verified.locked_until,
            locked_until_before: verified.locked_until_before,
            recovery_left: verified
                .recovery_left
                .filter(|_| verified.verdict == Verdict::AcceptedRecovery)
                .map(|left| usize::try_from(left).unwrap_or(usize::MAX)),
            // host_verify does not say which counters it charged, so the line says what
            // the host claimed (`p_console` above): for the database's lockout_exempt
            // accounts, which a host cannot read, that is the console's counters (the
            // file store's line); for others, still where the attempt came from.
            console: login.at_local_console(),
            clock_offset: verified
                .clock_offset
                .filter(|_| verified.verdict == Verdict::InvalidCode),
            failed_since: verified
                .failed_since
                .filter(|_| matches!(verified.verdict, Verdict::Accepted | Verdict::AcceptedRecovery)),
        }))
    }
}

/// An unknown, unenrolled or not allowed user's answer goes to the database as an
/// enrolled user's does: `host_verify` costs it the same work, and it counts nothing.
impl Decoy for PgSession {
    fn spend(self: Box<Self>, config: &Config, login: &Login<'_>, reply: &[u8]) -> Result<(), StoreFailure> {
        // A name the database could not hold is an unknown user's: nothing to ask.
        if pam_totp_os::account::check_user_name(&self.user).is_err() {
            return Ok(());
        }
        self.verify(config, login, reply).map(|_| ())
    }
}

/// A database error as `totp-enroll` reports it: `database: ...`, with a hint when the
/// role lacks a privilege.
#[derive(Debug)]
pub struct AdminDbFailure(pub DbError);

impl fmt::Display for AdminDbFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = if self.0.is_permission_denied() {
            " (the command needs the admin role, the schema's owner: see --database)"
        } else {
            ""
        };
        write!(f, "database: {}{hint}", self.0)
    }
}

impl std::error::Error for AdminDbFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn admin_failed(e: DbError) -> StoreFailure {
    StoreFailure::new(AdminDbFailure(e))
}

/// The database as `totp-enroll`'s [`AdminStore`], over one connection as the admin
/// role (the schema's owner) for the whole run.
pub struct PgAdmin {
    client: Box<Client>,
    realms: Option<Vec<String>>,
}

impl PgAdmin {
    #[must_use]
    pub fn new(client: Client) -> PgAdmin {
        PgAdmin {
            client: Box::new(client),
            realms: None,
        }
    }

    /// Enrollments written through this store are in exactly `realms` (`--realm`);
    /// without, a new enrollment is in `default` and a replaced one keeps its realms.
    #[must_use]
    pub fn with_realms(mut self, realms: Vec<String>) -> PgAdmin {
        self.realms = (!realms.is_empty()).then_some(realms);
        self
    }
}

impl AdminStore for PgAdmin {
    fn place<'a>(
        &'a mut self,
        config: &Config,
        account: &Account,
    ) -> Result<Box<dyn AdminPlace + 'a>, AdminFailure> {
        Ok(Box::new(PgPlace {
            client: self.client.as_mut(),
            user: account.name.clone(),
            realms: self.realms.as_deref(),
            config: config.clone(),
            codes: Vec::new(),
        }))
    }

    /// Every enrolled user and every user reset and not enrolled again, whether or not
    /// this host knows the account.
    fn accounts(&mut self, _config: &Config) -> Result<Vec<Account>, AdminFailure> {
        let names = admin::list_users(&mut self.client).map_err(admin_failed)?;
        Ok(names
            .iter()
            .filter_map(|name| Account::name_only(name).ok())
            .collect())
    }
}

/// One user's row.
struct PgPlace<'a> {
    client: &'a mut Client,
    user: String,
    realms: Option<&'a [String]>,
    /// For a sealed record given to write (`seal = true`): opened with the host key,
    /// as the database keeps secrets under its own at-rest key.
    config: Config,
    /// The plaintext codes of the next record written (`offer_codes`).
    codes: Vec<Zeroizing<String>>,
}

impl PgPlace<'_> {
    /// The record to write from its text, and the codes it goes with.
    fn record_to_write(&mut self, text: &str) -> Result<(Record, Vec<Zeroizing<String>>), StoreFailure> {
        let record = match Record::parse_stored(text).map_err(StoreFailure::new)? {
            StoredRecord::Plain(record) => record,
            StoredRecord::Sealed(sealed) => {
                seal::open_record(self.config.host_keys(), &self.user, &sealed).map_err(StoreFailure::new)?
            }
        };
        Ok((record, std::mem::take(&mut self.codes)))
    }

    fn codes<'c>(record: &Record, codes: &'c [Zeroizing<String>]) -> admin::Codes<'c> {
        if codes.is_empty() || codes.len() != record.recovery.len() {
            admin::Codes::None
        } else {
            admin::Codes::Plain {
                epoch: record.recovery_epoch,
                codes,
                scratch: record.scratch_codes,
            }
        }
    }
}

impl AdminPlace for PgPlace<'_> {
    fn describe(&self) -> String {
        format!("postgres:{}", self.user)
    }

    fn root_only(&self) -> Option<std::path::PathBuf> {
        None
    }

    fn exists(&mut self) -> Result<bool, StoreFailure> {
        Ok(admin::read_info(self.client, &self.user)
            .map_err(admin_failed)?
            .is_some())
    }

    /// The enrollment with its secret (decrypted by the database for the admin role)
    /// and the database's own hashes of its codes (counted, never checked here).
    fn read_stored(&mut self) -> Result<Stored, StoreFailure> {
        Ok(
            match admin::read_enrollment(self.client, &self.user).map_err(admin_failed)? {
                Some(record) => Stored::Found(StoredRecord::Plain(record)),
                None => Stored::Missing(NoRecord::proven_by_store()),
            },
        )
    }

    fn write(&mut self, text: &str) -> Result<(), StoreFailure> {
        let (record, codes) = self.record_to_write(text)?;
        admin::write_enrollment(
            self.client,
            &self.user,
            &record,
            Self::codes(&record, &codes),
            self.realms,
        )
        .map(drop)
        .map_err(|e| {
            StoreFailure::described(
                format!("cannot write postgres:{}: {e}; nothing was changed", self.user),
                e,
            )
        })
    }

    /// The check and the write are one statement.
    fn write_new(&mut self, text: &str) -> Result<bool, StoreFailure> {
        let (record, codes) = self.record_to_write(text)?;
        admin::insert_enrollment_if_absent(
            self.client,
            &self.user,
            &record,
            Self::codes(&record, &codes),
            self.realms,
        )
        .map(|written| written.is_some())
        .map_err(admin_failed)
    }

    fn offer_codes(&mut self, codes: &[Zeroizing<String>]) {
        self.codes = codes.to_vec();
    }

    fn realms(&mut self) -> Result<Option<Vec<String>>, StoreFailure> {
        admin::user_realms(self.client, &self.user)
            .map(Some)
            .map_err(admin_failed)
    }

    fn pending(&mut self) -> Result<Pending, StoreFailure> {
        admin::pending(self.client, &self.user).map_err(admin_failed)
    }

    /// The state row goes with the enrollment (the schema's ON DELETE CASCADE).
    fn remove(&mut self) -> Result<bool, StoreFailure> {
        admin::remove(self.client, &self.user).map_err(admin_failed)
    }

    fn peek_state(&mut self) -> Result<Option<LoginState>, StoreFailure> {
        admin::read_state(self.client, &self.user).map_err(admin_failed)
    }

    fn unlock(&mut self) -> Result<Unlocked, StoreFailure> {
        let before = admin::read_state(self.client, &self.user).map_err(admin_failed)?;
        admin::unlock(self.client, &self.user).map_err(admin_failed)?;
        Ok(Unlocked {
            failures: before.map_or(0, |state| state.failures.saturating_add(state.console_failures)),
            started_afresh: false,
        })
    }

    fn carry_state(&mut self, state: &LoginState) -> Result<(), StoreFailure> {
        admin::carry_state(self.client, &self.user, state).map_err(admin_failed)
    }
}
