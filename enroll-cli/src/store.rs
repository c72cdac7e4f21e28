//! The command's side of record and state access: the checks and messages every
//! subcommand shares, whichever store the config names. The store is an
//! [`AdminStore`] (`pam_totp_store_file::FileStore` or `pam_totp_store_pg::PgAdmin`),
//! and a [`Place`] is one user's record and login state in it; every subcommand goes
//! through it, so each flow exists once for both stores.

use pam_totp_config::Config;
use pam_totp_core::login_state::LoginState;
use pam_totp_core::ports::{AdminFailure, AdminPlace, AdminStore, Pending, Stored};
use pam_totp_core::record::{Record, StoredRecord};
use pam_totp_core::secret::SecretKey;
use pam_totp_os::account::Account;
use pam_totp_store_file::FileStore;
use pam_totp_store_file::record_store::RecordLocation;
use pam_totp_store_file::seal;
use pam_totp_store_file::template::StoreKind;
use pam_totp_store_pg::PgAdmin;
use zeroize::Zeroizing;

use crate::caller::Target;
use crate::database;
use crate::error::{CliError, CliResult};

/// Where records are: this host's files, or the database (one connection for the run).
pub struct Backend(Box<dyn AdminStore>);

impl Backend {
    /// The store the config names; the database through `database` (`--database`) if
    /// given.
    pub fn open(
        config: &Config,
        target: &Target,
        database: Option<&str>,
        realms: &[String],
    ) -> CliResult<Backend> {
        if !database::in_use(config) {
            if !realms.is_empty() {
                return Err(CliError::Usage(
                    "--realm applies with store = \"postgres\"; this config keeps records in files"
                        .to_owned(),
                ));
            }
            if database.is_some() {
                return Err(CliError::Usage(
                    "--database applies with store = \"postgres\" (and to `db`); this config \
                     keeps records in files"
                        .to_owned(),
                ));
            }
            return Ok(Backend(Box::new(FileStore)));
        }
        database::require_root(target)?;
        Ok(Backend(Box::new(
            PgAdmin::new(database::connect(config, database)?).with_realms(realms.to_vec()),
        )))
    }

    /// The target's place; a system file store is refused to a non-root caller.
    pub fn place(&mut self, config: &Config, target: &Target) -> CliResult<Place<'_>> {
        let place = self.0.place(config, &target.account).map_err(admin_error)?;
        if let Some(path) = place.root_only()
            && !target.caller_is_root
        {
            return Err(CliError::Refused(format!(
                "Enrollment records on this host are kept by the administrator in {}.\n\
                 Ask your administrator (as root: totp-enroll ... --user {}).",
                path.display(),
                target.account.name
            )));
        }
        Ok(Place(place))
    }

    /// `account`'s place, for root's `list`.
    pub fn place_of(&mut self, config: &Config, account: &Account) -> CliResult<Place<'_>> {
        Ok(Place(self.0.place(config, account).map_err(admin_error)?))
    }

    /// The accounts that may have a record (`list`).
    pub fn accounts(&mut self, config: &Config) -> CliResult<Vec<Account>> {
        self.0.accounts(config).map_err(admin_error)
    }
}

fn admin_error(e: AdminFailure) -> CliError {
    e.into()
}

/// One user's record and login state.
pub struct Place<'a>(Box<dyn AdminPlace + 'a>);

impl Place<'_> {
    /// Where the record is, for messages, audit lines and `status`'s `record`.
    #[must_use]
    pub fn describe(&self) -> String {
        self.0.describe()
    }

    /// Whether a record exists (even an unusable one).
    pub fn exists(&mut self) -> CliResult<bool> {
        self.0.exists().map_err(CliError::Store)
    }

    /// The record as stored. The error: the store could not be asked (the database is
    /// down); a missing or unusable record is a [`Stored`].
    pub fn read_stored(&mut self) -> CliResult<Stored> {
        self.0.read_stored().map_err(CliError::Store)
    }

    /// Writes `record` (sealed with `sealed_secret` if given), replacing any; the login
    /// state (last step, burnt codes) stays.
    pub fn write(&mut self, record: &Record, sealed_secret: Option<&str>) -> CliResult<()> {
        self.0
            .write(&text(record, sealed_secret))
            .map_err(CliError::Store)
    }

    /// The plaintext of the recovery codes of the record written next, for the database,
    /// which hashes them itself (files keep the record's argon2 hashes).
    pub fn offer_codes(&mut self, codes: &[pam_totp_core::recovery::RecoveryCode]) {
        let plain: Vec<Zeroizing<String>> = codes
            .iter()
            .map(|code| Zeroizing::new(code.as_str().to_owned()))
            .collect();
        self.0.offer_codes(&plain);
    }

    /// The changes under way (the database's reset mark and re-enrollment ticket).
    pub fn pending(&mut self) -> CliResult<Pending> {
        self.0.pending().map_err(CliError::Store)
    }

    /// The user's realms, where the store has realms (the database).
    pub fn realms(&mut self) -> CliResult<Option<Vec<String>>> {
        self.0.realms().map_err(CliError::Store)
    }

    /// The same for codes already in plain text (imported scratch codes).
    pub fn offer_plain_codes(&mut self, codes: &[Zeroizing<String>]) {
        self.0.offer_codes(codes);
    }

    /// Writes `record` only if there is none; `false` (nothing written) if there is.
    /// In the database the check and the write are one statement.
    pub fn write_new(&mut self, record: &Record, sealed_secret: Option<&str>) -> CliResult<bool> {
        self.0
            .write_new(&text(record, sealed_secret))
            .map_err(CliError::Store)
    }

    /// Removes the record, and clears failures, lock-out and recovery-code burns;
    /// `false` if there was no record. A state file keeps the last used step (so
    /// replay protection survives re-provisioning the same secret); the database drops
    /// the state row with the record (the schema's ON DELETE CASCADE).
    pub fn remove(&mut self) -> CliResult<bool> {
        self.0.remove().map_err(CliError::Store)
    }

    /// The login state as the module last left it; `None` if never logged in. Root only.
    pub fn peek_state(&mut self) -> CliResult<Option<LoginState>> {
        self.0.peek_state().map_err(CliError::Store)
    }

    /// Clears failures and lock-outs (the console's too), keeping replay protection;
    /// returns the failures there were. A corrupt state file is replaced by a fresh one.
    pub fn unlock(&mut self, user: &str) -> CliResult<u32> {
        let unlocked = self.0.unlock().map_err(CliError::Store)?;
        if unlocked.started_afresh {
            eprintln!("totp-enroll: the state file of {user} was corrupt; starting it afresh");
        }
        Ok(unlocked.failures)
    }

    /// Carries replay protection (`used_until`; into the database, burnt recovery codes
    /// too) into the login state, never moving it back: an imported enrollment's, or
    /// the step of a code this command accepted. Root only.
    pub fn carry_state(&mut self, state: &LoginState) -> CliResult<()> {
        self.0.carry_state(state).map_err(CliError::Store)
    }
}

/// The record's text exactly as the file store writes it.
fn text(record: &Record, sealed_secret: Option<&str>) -> Zeroizing<String> {
    match sealed_secret {
        Some(sealed) => record.to_sealed_toml(sealed),
        None => record.to_toml(),
    }
}

/// Where the target's record file is; a system store is refused to a non-root caller
/// (`import --pam-totp-files`, which reads this host's files whatever the store).
pub fn location(config: &Config, target: &Target) -> CliResult<RecordLocation> {
    let location = RecordLocation::for_account(config.files(), target.account.clone()).map_err(|source| {
        CliError::SecretPath {
            secret_path: config.secret_path.clone(),
            source,
        }
    })?;
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
        Stored::Found(StoredRecord::Plain(record)) => Ok(Existing {
            record,
            sealed_secret: None,
            secret_known: true,
        }),
        Stored::Found(StoredRecord::Sealed(sealed)) if target.caller_is_root => {
            let record =
                seal::open_record(config.host_keys(), &target.account.name, &sealed).map_err(|e| {
                    CliError::failed(format!("cannot open the sealed record {}", place.describe()), e)
                })?;
            Ok(Existing {
                record,
                sealed_secret: Some(sealed.sealed_secret().to_owned()),
                secret_known: true,
            })
        }
        Stored::Found(StoredRecord::Sealed(sealed)) => {
            let mut stand_in = vec![0u8; 20];
            getrandom::fill(&mut stand_in).map_err(|e| CliError::failed("no randomness from the OS", e))?;
            let stand_in = SecretKey::from_bytes(stand_in).map_err(|e| CliError::Unusable(e.into()))?;
            Ok(Existing {
                record: sealed.open(stand_in),
                sealed_secret: Some(sealed.sealed_secret().to_owned()),
                secret_known: false,
            })
        }
        Stored::Missing(_) => Err(CliError::Refused(format!(
            "{} is not enrolled ({}); run totp-enroll first",
            target.account.name,
            place.describe()
        ))),
        Stored::Unusable(other) | Stored::Unproven(other) => Err(CliError::Refused(format!(
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
pub fn peek_state(state_dir: &std::path::Path, user: &str) -> CliResult<Option<LoginState>> {
    pam_totp_store_file::admin::peek_state(state_dir, user).map_err(|e| CliError::Unusable(e.into()))
}
