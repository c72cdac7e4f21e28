//! Where one login's record and state live: files on this host (`store = "file"`), or
//! the database shared by many hosts (`store = "postgres"`). [`crate::authenticate`]
//! runs one flow over both: open (record + state), lock-out check, prompt, then
//! [`Session::begin`] and [`Pending::apply`] around the one verdict it computes.
//!
//! How each store makes the verdict safe against concurrent logins:
//! - files: the user's state file is locked (`flock`) from re-reading it to the durable
//!   write of the outcome;
//! - database: the attempt is charged as a failure first (one UPDATE that also refuses
//!   a locked-out user), so guesses in flight on all hosts stay within `max_failures`;
//!   a right answer then counts only through one more UPDATE that moves `used_until`
//!   forward (or burns a recovery-code bit), which exactly one login can win.

#![forbid(unsafe_code)]

use std::fmt;

use crate::account::{Account, AccountError};
use crate::config::{Config, Store};
#[cfg(feature = "postgres")]
use crate::db::{self, DbError, login::Charge};
use crate::record::{Record, StoredRecord};
use crate::record_store::{NoRecord, RecordLocation, StoreError};
use crate::seal;
use crate::state::{Channel, LockedState, LoginState, StateDir, StateError, StateFile};
use crate::template::StoreKind;

/// What [`nullok`](crate::config::Config::nullok) and the other ways in for unenrolled
/// users need, and the way out, for the syslog line of a missing record directory.
const NOT_PROVEN: &str = "refusing: nullok, enforce_after and enroll_at_login pass only a user \
                          whose record directory exists and holds no record";

/// Why no usable record was found.
pub(crate) enum Missing {
    Unknown,
    /// Proven: the record's directory is there, trusted, and holds none.
    NotEnrolled(NoRecord),
    /// The user's home (or record directory in it) is not there, e.g. not mounted yet:
    /// enrollment cannot be told, so the login is refused. The text is for syslog.
    Unproven(String),
    /// A problem only the admin can fix; the text is for syslog.
    Unusable(String),
}

/// The state or the database could not be used; the login fails closed.
#[derive(Debug)]
pub(crate) enum SessionError {
    State(StateError),
    #[cfg(feature = "postgres")]
    Db(DbError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::State(e) => e.fmt(f),
            #[cfg(feature = "postgres")]
            SessionError::Db(e) => write!(f, "database unavailable: {e}"),
        }
    }
}

/// One login's store across the prompt: the state file kept open (unlocked), or, for
/// the database, nothing: the connection that read the state is closed before the
/// prompt and a new one made for the verdict, so that logins waiting at a prompt (any
/// number of unauthenticated clients) hold no database connection, and a connection
/// dropped by a firewall while a user typed cannot stall the verdict.
#[derive(Debug)]
pub(crate) enum Session {
    File(StateFile),
    #[cfg(feature = "postgres")]
    Db,
}

/// A user's record, and their state as it was before the prompt.
pub(crate) struct Opened {
    pub record: Record,
    pub state: LoginState,
    pub session: Session,
}

/// Finds `user`'s record and opens their state in the configured store.
pub(crate) fn open(config: &Config, user: &str) -> Result<Result<Opened, Missing>, SessionError> {
    // A record in a system store under the name PAM gave is used without a passwd lookup
    // (a scan of /etc/passwd with nss_files; sshd has done one already). Without one (or
    // with any problem), passwd decides as before: the user may be known under another
    // spelling, and only passwd tells an unknown user from one not enrolled. A missing
    // store directory is everyone's problem, whatever the name.
    if config.store == Store::File
        && let Some(location) = RecordLocation::in_system_store(config, user)
    {
        match location.read_stored() {
            Ok(stored) => {
                return match open_stored(config, &location, stored) {
                    Ok(record) => open_state(config, record, &location.account.name),
                    Err(missing) => Ok(Err(missing)),
                };
            }
            Err(e @ StoreError::MissingDirectory { .. }) => {
                return Ok(Err(missing_directory(&location, &e)));
            }
            Err(_) => {}
        }
    }
    let account = match Account::lookup(user) {
        Ok(account) => account,
        Err(AccountError::Unknown | AccountError::InvalidName) => return Ok(Err(Missing::Unknown)),
        Err(e) => return Ok(Err(Missing::Unusable(e.to_string()))),
    };
    match config.store {
        Store::File => open_files(config, account),
        #[cfg(feature = "postgres")]
        Store::Postgres => open_db(config, &account),
        // The slim build hands such a login to pam_totp_db.so before it gets here.
        #[cfg(not(feature = "postgres"))]
        Store::Postgres => Ok(Err(Missing::Unusable(
            "store = \"postgres\" is not in this build of the module".to_owned(),
        ))),
    }
}

fn open_files(config: &Config, account: Account) -> Result<Result<Opened, Missing>, SessionError> {
    let location = match RecordLocation::for_account(config, account) {
        Ok(location) => location,
        Err(e) => return Ok(Err(Missing::Unusable(e.to_string()))),
    };
    let record = match location.read_stored() {
        Ok(stored) => open_stored(config, &location, stored),
        Err(StoreError::NotFound(proof)) => Err(Missing::NotEnrolled(proof)),
        Err(e @ StoreError::MissingDirectory { .. }) => Err(missing_directory(&location, &e)),
        Err(other) => Err(unusable(&location, &other)),
    };
    match record {
        Ok(record) => open_state(config, record, &location.account.name),
        Err(missing) => Ok(Err(missing)),
    }
}

/// The state file of a user whose record was found, kept open across the prompt.
fn open_state(config: &Config, record: Record, user: &str) -> Result<Result<Opened, Missing>, SessionError> {
    let state_dir = StateDir::open(&config.state_dir).map_err(SessionError::State)?;
    // A first look, without the lock: a locked-out user is told so without a prompt. The
    // file stays open across the prompt, to be locked and read again for the verdict.
    let file = state_dir.glance(user).map_err(SessionError::State)?;
    Ok(Ok(Opened {
        record,
        state: file.state(),
        session: Session::File(file),
    }))
}

/// A home not there refuses its user (it may be mounted a moment later); a missing
/// system store refuses everyone until the admin makes it.
fn missing_directory(location: &RecordLocation, e: &StoreError) -> Missing {
    match location.kind {
        StoreKind::Home => Missing::Unproven(format!(
            "{e}; {NOT_PROVEN} (mount the home, or correct the home directory in passwd)"
        )),
        StoreKind::System => Missing::Unusable(format!(
            "{e}; {NOT_PROVEN} (create it, owned by root, mode 0700, or correct secret_path)"
        )),
    }
}

fn unusable(location: &RecordLocation, e: &dyn fmt::Display) -> Missing {
    Missing::Unusable(format!("cannot use record {}: {e}", location.path.display()))
}

/// A record file's content as a usable record; a sealed one is opened with the host key
/// (read only here; any problem fails closed).
fn open_stored(config: &Config, location: &RecordLocation, stored: StoredRecord) -> Result<Record, Missing> {
    match stored {
        StoredRecord::Plain(record) => Ok(record),
        StoredRecord::Sealed(sealed) => {
            seal::open_record(config, &location.account.name, &sealed).map_err(|e| unusable(location, &e))
        }
    }
}

#[cfg(feature = "postgres")]
fn open_db(config: &Config, account: &Account) -> Result<Result<Opened, Missing>, SessionError> {
    let mut client = db::connect(config).map_err(SessionError::Db)?;
    let Some(found) = db::login::read(&mut client, &account.name).map_err(SessionError::Db)? else {
        return Ok(Err(Missing::NotEnrolled(NoRecord::in_database())));
    };
    // The same text, parsed and (if sealed) opened exactly as a record file's.
    let unusable = |e: &dyn fmt::Display| Missing::Unusable(format!("cannot use the database record: {e}"));
    let record = match Record::parse_stored(&found.record) {
        Ok(StoredRecord::Plain(record)) => record,
        Ok(StoredRecord::Sealed(sealed)) => match seal::open_record(config, &account.name, &sealed) {
            Ok(record) => record,
            Err(e) => return Ok(Err(unusable(&e))),
        },
        Err(e) => return Ok(Err(unusable(&e))),
    };
    drop(client);
    Ok(Ok(Opened {
        record,
        state: found.state,
        session: Session::Db,
    }))
}

/// A verdict about to be made: the store is held (file locked) or the attempt charged.
pub(crate) enum Pending {
    File(LockedState),
    #[cfg(feature = "postgres")]
    // Boxed: a client (runtime and connection) is large, and moved a few times.
    Db {
        client: Box<db::Client>,
        charged: LoginState,
    },
}

/// What [`Session::begin`] found.
pub(crate) enum Begun {
    /// Locked out until this Unix time: do not check the answer.
    LockedOut(u64),
    Open(Pending),
}

impl Session {
    /// Holds the store for a verdict on `user`'s answer at `now`, charged to `channel`.
    // Without the database, only the file store's arguments are used.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub(crate) fn begin(
        self,
        config: &Config,
        user: &str,
        now: u64,
        channel: Channel,
    ) -> Result<Begun, SessionError> {
        match self {
            Session::File(file) => {
                let locked = file.lock().map_err(SessionError::State)?;
                let (_, until) = locked.state().counters(channel);
                if until > now {
                    return Ok(Begun::LockedOut(until));
                }
                Ok(Begun::Open(Pending::File(locked)))
            }
            #[cfg(feature = "postgres")]
            Session::Db => {
                let client = db::connect(config).map_err(SessionError::Db)?;
                Self::charge(client, config, user, now, channel)
            }
        }
    }

    #[cfg(feature = "postgres")]
    fn charge(
        mut client: db::Client,
        config: &Config,
        user: &str,
        now: u64,
        channel: Channel,
    ) -> Result<Begun, SessionError> {
        match db::login::charge(&mut client, config, user, now, channel) {
            Ok(Some(Charge::Charged(charged))) => Ok(Begun::Open(Pending::Db {
                client: Box::new(client),
                charged,
            })),
            Ok(Some(Charge::LockedOut(state))) => Ok(Begun::LockedOut(state.counters(channel).1)),
            // Removed by an admin since the prompt.
            Ok(None) => Err(SessionError::Db(DbError::Schema(
                "the record was removed during the login".to_owned(),
            ))),
            Err(e) => Err(SessionError::Db(e)),
        }
    }
}

/// The store's part of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A TOTP code of the step from Unix time `starts` to `ends` (exclusive), which
    /// starts at or after the state's `used_until`.
    Step { starts: u64, ends: u64 },
    /// Recovery code `index` of the record's set (epoch `epoch`, `count` codes).
    Recovery { epoch: u64, count: usize, index: usize },
    /// A failure.
    Fail(&'static str),
}

/// What was durably recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    /// `None`: accepted. Else the reason of the failure.
    pub failure: Option<&'static str>,
    /// The state after a failure: counts and lock-out, for the log.
    pub after: LoginState,
    /// The lock-out before this attempt (a new lock-out is logged once).
    pub locked_until_before: u64,
}

impl Pending {
    /// The state the answer is judged against (used steps, burnt codes).
    pub(crate) fn state(&self) -> LoginState {
        match self {
            Pending::File(locked) => locked.state(),
            #[cfg(feature = "postgres")]
            Pending::Db { charged, .. } => *charged,
        }
    }

    /// Durably records `decision`. `file_after` is the file store's new state for it
    /// (the database computes its own, from the row, in the same statements).
    /// Success is returned only after the write or the accepting UPDATE is durable.
    // Without the database, only the file store's arguments are used.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub(crate) fn apply(
        self,
        user: &str,
        now: u64,
        decision: Decision,
        file_after: LoginState,
        channel: Channel,
    ) -> Result<Settled, SessionError> {
        match self {
            Pending::File(mut locked) => {
                let (_, locked_until_before) = locked.state().counters(channel);
                locked.save(file_after).map_err(SessionError::State)?;
                Ok(Settled {
                    failure: match decision {
                        Decision::Fail(reason) => Some(reason),
                        Decision::Step { .. } | Decision::Recovery { .. } => None,
                    },
                    after: file_after,
                    locked_until_before,
                })
            }
            #[cfg(feature = "postgres")]
            Pending::Db { mut client, charged } => {
                let accepted = match decision {
                    Decision::Step { starts, ends } => {
                        db::login::accept_step(&mut client, user, starts, ends, now, channel)
                            .map_err(SessionError::Db)?
                            .then_some(())
                            .ok_or("replayed code")
                    }
                    Decision::Recovery { epoch, count, index } => {
                        db::login::burn_recovery(&mut client, user, epoch, count, index, now, channel)
                            .map_err(SessionError::Db)?
                            .then_some(())
                            .ok_or("recovery code already used")
                    }
                    Decision::Fail(reason) => Err(reason),
                };
                // The charge already counted the failure and any lock-out it starts; a
                // charged user was not locked out on this channel before.
                Ok(Settled {
                    failure: accepted.err(),
                    after: charged,
                    locked_until_before: 0,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    use super::{Missing, open};
    use crate::algorithm::Algorithm;
    use crate::config::Config;
    use crate::record::Record;
    use crate::secret::SecretKey;

    #[test]
    fn a_system_store_record_is_found_by_the_name_as_given_and_passwd_decides_the_rest() {
        // Runs as root (the test suite does): the store, record and state are root's.
        let tmp = tempfile::tempdir().unwrap();
        let state_dir = tmp.path().join("state");
        std::fs::DirBuilder::new().mode(0o700).create(&state_dir).unwrap();
        let config = Config {
            secret_path: format!("{}/${{USER}}", tmp.path().display()),
            state_dir,
            ..Config::default()
        };
        let secret = SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        let record = Record::new(secret, Algorithm::Sha1, 6, 30, String::new());
        let name = "no-such-user-pam-totp";
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp.path().join(name))
            .and_then(|mut f| std::io::Write::write_all(&mut f, record.to_toml().as_bytes()))
            .unwrap();
        // Root's record under this very name: no passwd lookup is needed to use it.
        assert!(matches!(open(&config, name), Ok(Ok(_))));
        // No record under the name: passwd decides, and does not know this one.
        assert!(matches!(
            open(&config, "no-such-user-pam-totp2"),
            Ok(Err(Missing::Unknown))
        ));
        // A name that cannot name a file never reaches the store.
        assert!(matches!(open(&config, "../etc"), Ok(Err(Missing::Unknown))));
    }
}
