//! The files of this host as a login's [`LoginStore`] (`store = "file"`): the record
//! file ([`crate::record_store`]) and the user's state file ([`crate::state`]), kept
//! open across the prompt and locked (`flock`) from re-reading it to the durable write
//! of the outcome.

use std::fmt;

use pam_totp_config::{Config, Store, StoreKind};
use pam_totp_core::local_verdict;
use pam_totp_core::login_state::{Channel, LoginState};
use pam_totp_core::ports::{
    Decoy, DecoyWrite, Enrollment, EnrollmentLock, Found, Judged, Login, LoginStore, Missing, Opened,
    Session, Settled, Shortcuts, StoreFailure,
};
use pam_totp_core::record::{Record, StoredRecord};
use pam_totp_os::account::Account;

use crate::record_store::{RecordLocation, StoreError};
use crate::seal;
use crate::state::{self, LockedState, StateDir, StateFile};

/// What `nullok` and the other ways in for unenrolled users need, and the way out, for
/// the syslog line of a missing record directory.
const NOT_PROVEN: &str = "refusing: nullok, enforce_after and enroll_at_login pass only a user \
                          whose record directory exists and holds no record";

/// `store = "file"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileStore;

impl LoginStore for FileStore {
    fn host_clock_warning_due(&self, config: &Config) -> bool {
        crate::clock_watch::warning_due(config)
    }

    fn open(&self, config: &Config, login: &Login<'_>) -> Result<Found, StoreFailure> {
        let user = login.user;
        let channel = login.channel(config);
        // A record in a system store under the name PAM gave is used without a passwd
        // lookup (a scan of /etc/passwd with nss_files; sshd has done one already).
        // Without one (or with any problem), passwd decides as before: the user may be
        // known under another spelling, and only passwd tells an unknown user from one not
        // enrolled. A missing store directory is everyone's problem, whatever the name.
        if config.store == Store::File
            && let Some(location) = RecordLocation::in_system_store(config.files(), user)
        {
            match location.read_stored() {
                Ok(stored) => {
                    return match open_stored(config, &location, stored) {
                        Ok(record) => open_state(config, record, &location.account.name, channel),
                        Err(missing) => Ok(Found::Missing(missing)),
                    };
                }
                Err(e @ StoreError::MissingDirectory { .. }) => {
                    return Ok(Found::Missing(missing_directory(&location, e)));
                }
                Err(_) => {}
            }
        }
        let account = match Account::lookup(user) {
            Ok(account) => account,
            Err(e) => return Ok(Found::Missing(Missing::from_lookup(&e))),
        };
        let location = match RecordLocation::for_account(config.files(), account) {
            Ok(location) => location,
            Err(e) => return Ok(Found::Missing(Missing::Unusable(StoreFailure::new(e)))),
        };
        let record = match location.read_stored() {
            Ok(stored) => open_stored(config, &location, stored),
            Err(StoreError::NotFound(proof)) => Err(Missing::NotEnrolled(proof)),
            Err(e @ StoreError::MissingDirectory { .. }) => Err(missing_directory(&location, e)),
            Err(other) => Err(unusable(&location, other)),
        };
        match record {
            Ok(record) => open_state(config, record, &location.account.name, channel),
            Err(missing) => Ok(Found::Missing(missing)),
        }
    }

    fn decoy(&self, config: &Config, _login: &Login<'_>) -> Result<Box<dyn Decoy>, StoreFailure> {
        let decoy = StateDir::open(&config.state_dir)
            .and_then(|dir| dir.decoy())
            .map_err(StoreFailure::new)?;
        Ok(Box::new(FileDecoy(decoy)))
    }

    fn enrollment(&self, config: &Config, account: Account) -> Result<Box<dyn Enrollment>, StoreFailure> {
        let location = RecordLocation::for_account(config.files(), account).map_err(StoreFailure::new)?;
        if location.kind != StoreKind::System {
            return Err(StoreFailure::new(RecordsInHomes));
        }
        Ok(Box::new(NewRecord {
            location,
            state_dir: config.state_dir.clone(),
        }))
    }

    fn shortcuts(&self) -> Option<&dyn Shortcuts> {
        Some(self)
    }
}

/// The state file of a user whose record was found, kept open across the prompt.
fn open_state(config: &Config, record: Record, user: &str, channel: Channel) -> Result<Found, StoreFailure> {
    let state_dir = StateDir::open(&config.state_dir).map_err(StoreFailure::new)?;
    // A first look, without the lock: a locked-out user is told so without a prompt. The
    // file stays open across the prompt, to be locked and read again for the verdict.
    let file = state_dir.glance(user).map_err(StoreFailure::new)?;
    let (_, locked_until) = file.state().counters(channel);
    Ok(Found::Enrolled(Opened {
        locked_until,
        digits: record.digits,
        session: Box::new(FileSession { file, record }),
    }))
}

/// A home not there refuses its user (it may be mounted a moment later); a missing
/// system store refuses everyone until the admin makes it.
fn missing_directory(location: &RecordLocation, e: StoreError) -> Missing {
    match location.kind {
        StoreKind::Home => Missing::Unproven(StoreFailure::described(
            format!("{e}; {NOT_PROVEN} (mount the home, or correct the home directory in passwd)"),
            e,
        )),
        StoreKind::System => Missing::Unusable(StoreFailure::described(
            format!("{e}; {NOT_PROVEN} (create it, owned by root, mode 0700, or correct secret_path)"),
            e,
        )),
    }
}

fn unusable(location: &RecordLocation, e: impl std::error::Error + Send + Sync + 'static) -> Missing {
    Missing::Unusable(StoreFailure::described(
        format!("cannot use record {}: {e}", location.path.display()),
        e,
    ))
}

/// A record file's content as a usable record; a sealed one is opened with the host key
/// (read only here; any problem fails closed).
fn open_stored(config: &Config, location: &RecordLocation, stored: StoredRecord) -> Result<Record, Missing> {
    match stored {
        StoredRecord::Plain(record) => Ok(record),
        StoredRecord::Sealed(sealed) => {
            seal::open_record(config.host_keys(), &location.account.name, &sealed)
                .map_err(|e| unusable(location, e))
        }
    }
}

/// The user's state file, open and unlocked across the prompt, and their record.
struct FileSession {
    file: StateFile,
    record: Record,
}

impl Session for FileSession {
    /// Locks the state file, reads it again, re-checks the lock-out, judges the answer
    /// and writes the new state durably before returning.
    fn judge(
        self: Box<Self>,
        config: &Config,
        login: &Login<'_>,
        reply: &[u8],
    ) -> Result<Judged, StoreFailure> {
        let channel = login.channel(config);
        let mut locked = self.file.lock().map_err(StoreFailure::new)?;
        let before = locked.state();
        let (_, locked_until_before) = before.counters(channel);
        if locked_until_before > login.now {
            return Ok(Judged::LockedOut(locked_until_before));
        }
        let source = state::failure_source(login.rhost.filter(|rhost| !rhost.is_empty()).or(login.tty));
        let verdict = local_verdict::judge(config, &self.record, before, reply, login.now, channel, source);
        locked.save(verdict.after).map_err(StoreFailure::new)?;
        let (failures, locked_until) = verdict.after.counters(channel);
        Ok(Judged::Settled(Settled {
            failure: verdict.failure,
            failures: verdict.failure.map(|_| failures),
            locked_until,
            locked_until_before,
            recovery_left: verdict.recovery_left,
            console: channel == Channel::Console,
            clock_offset: verdict.clock_offset,
            failed_since: verdict.failed_since,
        }))
    }
}

/// The decoy file of the state directory, and the throwaway check of the answer.
struct FileDecoy(state::Decoy);

impl Decoy for FileDecoy {
    fn spend(self: Box<Self>, config: &Config, login: &Login<'_>, reply: &[u8]) -> Result<(), StoreFailure> {
        pam_totp_core::decoy::spend(Box::new(self.0), config, reply, login.now)
    }
}

impl DecoyWrite for state::Decoy {
    fn write(self: Box<Self>) -> Result<(), StoreFailure> {
        state::Decoy::write(&self).map_err(StoreFailure::new)
    }
}

/// `enroll_at_login` with records in homes (the config refuses it; checked again here).
#[derive(Debug)]
struct RecordsInHomes;

impl fmt::Display for RecordsInHomes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("records are in homes")
    }
}

impl std::error::Error for RecordsInHomes {}

/// A record file an enrollment at login may write.
struct NewRecord {
    location: RecordLocation,
    state_dir: std::path::PathBuf,
}

/// Writing the record failed; names the file.
#[derive(Debug)]
struct CannotWrite {
    path: std::path::PathBuf,
    source: StoreError,
}

impl fmt::Display for CannotWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for CannotWrite {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Enrollment for NewRecord {
    fn place(&self) -> String {
        self.location.path.display().to_string()
    }

    fn exists(&self) -> Result<bool, StoreFailure> {
        self.location.exists().map_err(StoreFailure::new)
    }

    fn lock(&self, user: &str) -> Result<Box<dyn EnrollmentLock>, StoreFailure> {
        let dir = StateDir::open(&self.state_dir).map_err(StoreFailure::new)?;
        let locked = dir.lock(user).map_err(StoreFailure::new)?;
        Ok(Box::new(FileEnrollmentLock(locked)))
    }

    fn write(&self, record: &Record) -> Result<(), StoreFailure> {
        self.location.write(record).map_err(|source| {
            StoreFailure::new(CannotWrite {
                path: self.location.path.clone(),
                source,
            })
        })
    }
}

struct FileEnrollmentLock(LockedState);

impl EnrollmentLock for FileEnrollmentLock {
    fn save(&mut self, state: LoginState) -> Result<(), StoreFailure> {
        self.0.save(state).map_err(StoreFailure::new)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    use super::*;
    use pam_totp_config::algorithm::Algorithm;
    use pam_totp_core::secret::SecretKey;

    fn login(user: &str) -> Login<'_> {
        Login {
            user,
            rhost: None,
            tty: None,
            args: &[],
            now: 1_000_000,
        }
    }

    fn open(config: &Config, user: &str) -> Result<Found, StoreFailure> {
        FileStore.open(config, &login(user))
    }

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
        assert!(matches!(open(&config, name), Ok(Found::Enrolled(_))));
        // No record under the name: passwd decides, and does not know this one.
        assert!(matches!(
            open(&config, "no-such-user-pam-totp2"),
            Ok(Found::Missing(Missing::Unknown))
        ));
        // A name that cannot name a file never reaches the store.
        assert!(matches!(
            open(&config, "../etc"),
            Ok(Found::Missing(Missing::Unknown))
        ));
    }

    #[test]
    fn the_decoy_is_one_checked_file_that_takes_no_name() {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            state_dir: tmp.path().join("state"),
            ..Config::default()
        };
        // The packages make the state directory; the module never does.
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(&config.state_dir)
            .unwrap();
        let recovery = pam_totp_core::recovery::RecoveryCode::from_random(3, &[1; 11])
            .unwrap()
            .display();
        for reply in [&b"123456"[..], recovery.as_bytes(), b"nonsense"] {
            let nobody = login("nobody");
            FileStore
                .decoy(&config, &nobody)
                .unwrap()
                .spend(&config, &nobody, reply)
                .unwrap();
        }
        let names: Vec<_> = std::fs::read_dir(&config.state_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".decoy"]);
        let meta = std::fs::metadata(config.state_dir.join(".decoy")).unwrap();
        // Two 128-byte slots (PTS2); the test said 128 since the merge of #14 (one slot of the old size).
        assert_eq!(meta.len(), 256, "a state file's size");
        // A decoy someone linked elsewhere is refused like a state file.
        let linked = config.state_dir.join("linked");
        std::fs::hard_link(config.state_dir.join(".decoy"), &linked).unwrap();
        let refused = FileStore.decoy(&config, &login("nobody")).err().unwrap();
        let cause =
            std::error::Error::source(&refused).and_then(|e| e.downcast_ref::<crate::state::StateError>());
        assert!(matches!(cause, Some(crate::state::StateError::UnsafeFile { .. })));
    }
}
