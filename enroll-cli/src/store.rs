//! The command's side of record and state access: the checks and messages every
//! subcommand shares, whichever store the config names. A [`Place`] is one user's
//! record and login state, in this host's files or in the shared database; every
//! subcommand goes through it, so each flow exists once for both stores.

use std::path::Path;

use pam_totp::config::Config;
use pam_totp::db::{self, Client};
use pam_totp::record::{Record, StoredRecord};
use pam_totp::record_store::{NoRecord, RecordLocation, StoreError};
use pam_totp::seal;
use pam_totp::secret::SecretKey;
use pam_totp::state::{LoginState, StateDir, StateError};
use pam_totp::template::StoreKind;
use zeroize::Zeroizing;

use crate::caller::Target;
use crate::database::{self, failed};
use crate::error::{CliError, CliResult};

/// Where records are: this host's files, or the database (one connection for the run).
pub enum Backend {
    Files,
    Database(Box<Client>),
}

impl Backend {
    /// The store the config names; the database through `database` (`--database`) if
    /// given.
    pub fn open(config: &Config, target: &Target, database: Option<&str>) -> CliResult<Backend> {
        if !database::in_use(config) {
            if database.is_some() {
                return Err(CliError::Usage(
                    "--database applies with store = \"postgres\" (and to `db`); this config \
                     keeps records in files"
                        .to_owned(),
                ));
            }
            return Ok(Backend::Files);
        }
        database::require_root(target)?;
        Ok(Backend::Database(Box::new(database::connect(config, database)?)))
    }

    /// The target's place; a system file store is refused to a non-root caller.
    pub fn place(&mut self, config: &Config, target: &Target) -> CliResult<Place<'_>> {
        match self {
            Backend::Files => Ok(Place::File(location(config, target)?)),
            Backend::Database(client) => Ok(Place::Database {
                client: client.as_mut(),
                user: target.account.name.clone(),
            }),
        }
    }
}

/// One user's record and login state.
pub enum Place<'a> {
    File(RecordLocation),
    Database { client: &'a mut Client, user: String },
}

impl Place<'_> {
    /// Where the record is, for messages, audit lines and `status`'s `record`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Place::File(location) => location.path.display().to_string(),
            Place::Database { user, .. } => format!("postgres:{user}"),
        }
    }

    /// Whether a record exists (even an unusable one).
    pub fn exists(&mut self) -> CliResult<bool> {
        match self {
            Place::File(location) => location
                .exists()
                .map_err(|e| CliError::Refused(format!("{}: {e}", location.path.display()))),
            Place::Database { client, user } => {
                Ok(db::admin::read_record(client, user).map_err(failed)?.is_some())
            }
        }
    }

    /// The record as stored. The outer error: the store could not be asked (the
    /// database is down); the inner one: a missing or unusable record.
    pub fn read_stored(&mut self) -> CliResult<Result<StoredRecord, StoreError>> {
        match self {
            Place::File(location) => Ok(location.read_stored()),
            Place::Database { client, user } => {
                Ok(match db::admin::read_record(client, user).map_err(failed)? {
                    Some(text) => Record::parse_stored(&text).map_err(StoreError::Record),
                    None => Err(StoreError::NotFound(NoRecord::in_database())),
                })
            }
        }
    }

    /// Writes `record` (sealed with `sealed_secret` if given), replacing any; the login
    /// state (last step, burnt codes) stays.
    pub fn write(&mut self, record: &Record, sealed_secret: Option<&str>) -> CliResult<()> {
        let written = match self {
            Place::File(location) => match sealed_secret {
                Some(sealed) => location.write_sealed(record, sealed),
                None => location.write(record),
            }
            .map_err(|e| e.to_string()),
            Place::Database { client, user } => {
                db::admin::put_record(client, user, &text(record, sealed_secret)).map_err(|e| e.to_string())
            }
        };
        written.map_err(|e| {
            CliError::Refused(format!(
                "cannot write {}: {e}; nothing was changed",
                self.describe()
            ))
        })
    }

    /// Writes `record` only if there is none; `false` (nothing written) if there is.
    /// In the database the check and the write are one statement.
    pub fn write_new(&mut self, record: &Record, sealed_secret: Option<&str>) -> CliResult<bool> {
        if let Place::Database { client, user } = self {
            return db::admin::insert_record_if_absent(client, user, &text(record, sealed_secret))
                .map_err(failed);
        }
        if self.exists()? {
            return Ok(false);
        }
        self.write(record, sealed_secret).map(|()| true)
    }

    /// Removes the record, and clears failures, lock-out and recovery-code burns;
    /// `false` if there was no record. A state file keeps the last used step (so
    /// replay protection survives re-provisioning the same secret); the database drops
    /// the state row with the record (the schema's ON DELETE CASCADE).
    pub fn remove(&mut self, config: &Config) -> CliResult<bool> {
        let existed = self.exists()?;
        match self {
            Place::File(location) => {
                location.remove().map_err(|e| {
                    CliError::Refused(format!("cannot remove {}: {e}", location.path.display()))
                })?;
                reset_file_state(&config.state_dir, &location.account.name)?;
                Ok(existed)
            }
            Place::Database { client, user } => db::admin::remove(client, user).map_err(failed),
        }
    }

    /// The login state as the module last left it; `None` if never logged in. Root only.
    pub fn peek_state(&mut self, config: &Config) -> CliResult<Option<LoginState>> {
        match self {
            Place::File(location) => peek_state(&config.state_dir, &location.account.name),
            Place::Database { client, user } => db::admin::read_state(client, user).map_err(failed),
        }
    }

    /// Clears failures and lock-outs (the console's too), keeping replay protection;
    /// returns the failures there were. A corrupt state file is replaced by a fresh one.
    pub fn unlock(&mut self, config: &Config) -> CliResult<u32> {
        match self {
            Place::File(location) => unlock_file_state(&config.state_dir, &location.account.name),
            Place::Database { client, user } => {
                let before = db::admin::read_state(client, user).map_err(failed)?;
                db::admin::unlock(client, user).map_err(failed)?;
                Ok(before.map_or(0, |state| state.failures.saturating_add(state.console_failures)))
            }
        }
    }

    /// Carries replay protection (`used_until`; into the database, burnt recovery codes
    /// too) into the login state, never moving it back: an imported enrollment's, or
    /// the step of a code this command accepted. Root only.
    pub fn carry_state(&mut self, config: &Config, state: &LoginState) -> CliResult<()> {
        match self {
            Place::File(location) => {
                raise_file_used_until(&config.state_dir, &location.account.name, state.used_until)
            }
            Place::Database { client, user } => db::admin::carry_state(client, user, state).map_err(failed),
        }
    }
}

/// The record's text exactly as the file store writes it.
fn text(record: &Record, sealed_secret: Option<&str>) -> Zeroizing<String> {
    match sealed_secret {
        Some(sealed) => record.to_sealed_toml(sealed),
        None => record.to_toml(),
    }
}

/// Where the target's record file is; a system store is refused to a non-root caller.
pub fn location(config: &Config, target: &Target) -> CliResult<RecordLocation> {
    let location = RecordLocation::for_account(config, target.account.clone())
        .map_err(|e| CliError::Usage(format!("{e} (in {})", config.secret_path)))?;
    if location.kind == StoreKind::System && !target.caller_is_root {
        return Err(CliError::Refused(format!(
            "Enrollment records on this host are kept by the administrator in {}.\n\
             Ask your administrator (as root: totp-enroll ... --user {}).",
            location.path.display(),
            target.account.name
        )));
    }
    Ok(location)
}

/// An existing record as the command can change it: with its secret, and the sealed
/// box to keep when the record is sealed to the host key.
pub struct Existing {
    pub record: Record,
    pub sealed_secret: Option<String>,
    /// False for a sealed record read by a user: `record.secret` is then a random
    /// stand-in (never written: the record keeps its box), and only its recovery codes
    /// can be checked.
    pub secret_known: bool,
}

/// The target's record, which must exist and be usable. A sealed record can only be
/// opened by root (the host's private key is root's).
pub fn read_existing(config: &Config, place: &mut Place<'_>, target: &Target) -> CliResult<Existing> {
    match place.read_stored()? {
        Ok(StoredRecord::Plain(record)) => Ok(Existing {
            record,
            sealed_secret: None,
            secret_known: true,
        }),
        Ok(StoredRecord::Sealed(sealed)) if target.caller_is_root => {
            let record = seal::open_record(config, &target.account.name, &sealed).map_err(|e| {
                CliError::Refused(format!("cannot open the sealed record {}: {e}", place.describe()))
            })?;
            Ok(Existing {
                record,
                sealed_secret: Some(sealed.sealed_secret().to_owned()),
                secret_known: true,
            })
        }
        Ok(StoredRecord::Sealed(sealed)) => {
            let mut stand_in = vec![0u8; 20];
            getrandom::fill(&mut stand_in)
                .map_err(|e| CliError::Refused(format!("no randomness from the OS: {e}")))?;
            let stand_in = SecretKey::from_bytes(stand_in).map_err(|e| CliError::Refused(e.to_string()))?;
            Ok(Existing {
                record: sealed.open(stand_in),
                sealed_secret: Some(sealed.sealed_secret().to_owned()),
                secret_known: false,
            })
        }
        Err(StoreError::NotFound(_)) => Err(CliError::Refused(format!(
            "{} is not enrolled ({}); run totp-enroll first",
            target.account.name,
            place.describe()
        ))),
        Err(other) => Err(CliError::Refused(format!(
            "cannot use {}: {other}; ask your administrator to remove it (as root: \
             totp-enroll remove --user {}), then enroll again",
            place.describe(),
            target.account.name
        ))),
    }
}

/// The login state of `user` as the module last left it; `None` if the user never
/// logged in (or the state directory does not exist). Root only. The command never
/// creates the state directory either (on SELinux hosts only the package labels it
/// right): unlock and import refuse while it is missing, naming the fix.
pub fn peek_state(state_dir: &Path, user: &str) -> CliResult<Option<LoginState>> {
    if !state_dir.exists() {
        return Ok(None);
    }
    let dir = StateDir::open(state_dir).map_err(state_error)?;
    dir.peek(user).map_err(state_error)
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(state_error)`
pub fn state_error(e: StateError) -> CliError {
    CliError::Refused(e.to_string())
}

/// After a removal: failures, lock-outs and burns go; replay protection stays.
fn reset_file_state(state_dir: &Path, user: &str) -> CliResult<()> {
    if !state_dir.exists() {
        return Ok(());
    }
    let dir = StateDir::open(state_dir).map_err(state_error)?;
    if !dir.peek(user).is_ok_and(|state| state.is_some()) {
        return Ok(());
    }
    let mut locked = match dir.lock(user) {
        Err(StateError::Corrupt) => {
            dir.remove(user).map_err(state_error)?;
            dir.lock(user).map_err(state_error)?
        }
        other => other.map_err(state_error)?,
    };
    let before = locked.state();
    locked
        .save(LoginState {
            used_until: before.used_until,
            legacy_step: before.legacy_step,
            ..LoginState::default()
        })
        .map_err(state_error)
}

fn unlock_file_state(state_dir: &Path, user: &str) -> CliResult<u32> {
    let dir = StateDir::open(state_dir).map_err(state_error)?;
    let mut locked = match dir.lock(user) {
        Err(StateError::Corrupt) => {
            eprintln!("totp-enroll: the state file of {user} was corrupt; starting it afresh");
            dir.remove(user).map_err(state_error)?;
            dir.lock(user).map_err(state_error)?
        }
        other => other.map_err(state_error)?,
    };
    let before = locked.state();
    locked
        .save(LoginState {
            failures: 0,
            locked_until: 0,
            console_failures: 0,
            console_locked_until: 0,
            ..before
        })
        .map_err(state_error)?;
    Ok(before.failures.saturating_add(before.console_failures))
}

/// Raises the state file's `used_until` to `until` (a Unix time).
fn raise_file_used_until(state_dir: &Path, user: &str, until: u64) -> CliResult<()> {
    if until == 0 {
        return Ok(());
    }
    let refused = |e: StateError| CliError::Refused(format!("login state of {user}: {e}"));
    let dir = StateDir::open(state_dir).map_err(refused)?;
    let mut locked = dir.lock(user).map_err(refused)?;
    let before = locked.state();
    if before.used_until < until {
        locked
            .save(LoginState {
                used_until: until,
                ..before
            })
            .map_err(refused)?;
    }
    Ok(())
}
