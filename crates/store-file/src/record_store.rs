//! Finding, reading and writing enrollment records on disk, safely as root.
//!
//! Reading: the directory is opened first, then the file relative to it with
//! `O_NOFOLLOW | O_NONBLOCK` (no symlink, no FIFO that would hang a login), and the
//! open file is checked with `fstat`: a regular file, the expected owner, no group or
//! other bits, and a bounded size. Home-directory records are read with the user's
//! file-system rights ([`crate::privs`]).
//!
//! "Not enrolled" is a proof, [`NoRecord`]: only the record's own open, relative to its
//! opened and trusted directory, makes one. A directory that is not there (a home not
//! mounted yet, a store never made) is [`StoreError::MissingDirectory`], which says
//! nothing about enrollment, so every caller fails closed on it.
//!
//! Writing (the command only): a temporary file in the same directory, `fsync`,
//! `rename`, and an `fsync` of the directory, so a crash or a full disk leaves the old
//! record or the new one, never a torn or missing one.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl;
use nix::unistd::Uid;

use pam_totp_config::FileSettings;
use pam_totp_core::record::{Record, RecordError, StoredRecord};
use pam_totp_os::account::Account;
use pam_totp_os::privs::UserRights;
use pam_totp_os::trusted_file::{self, Owner, Refused, ReplaceStep, Rules};

use crate::template::{self, StoreKind, TemplateError};

/// A record file larger than this is refused unread.
pub const MAX_RECORD_BYTES: u64 = 16 * 1024;

/// Where one user's record is, and under which rules it is read and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLocation {
    pub path: PathBuf,
    pub kind: StoreKind,
    pub account: Account,
}

pub use pam_totp_core::ports::NoRecord;

/// Why a record could not be read or written. Names the problem, never the content.
#[derive(Debug)]
pub enum StoreError {
    /// The user has no record (not enrolled), proven.
    NotFound(NoRecord),
    /// The directory the record would be in does not exist or is not a directory: a home
    /// or store not mounted, or never made. Enrollment cannot be told either way.
    MissingDirectory {
        path: PathBuf,
        /// `path` is the user's home directory itself.
        home: bool,
    },
    /// `secret_path` does not expand for this user.
    Template(TemplateError),
    /// The record is a symbolic link.
    Symlink,
    /// The record is a directory, FIFO, device or socket.
    NotRegular,
    /// The record's owner is neither the user (home store) nor root (system store).
    WrongOwner { found: u32, expected: u32 },
    /// The record can be read or written by group or others.
    TooOpen { mode: u32 },
    /// A system store's directory is not root-owned or is group/world writable.
    UnsafeDirectory { path: PathBuf },
    /// Larger than [`MAX_RECORD_BYTES`].
    TooLarge,
    /// The content is not a valid record.
    Record(RecordError),
    /// Any other I/O failure, with what was being done.
    Io { action: &'static str, source: io::Error },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound(_) => f.write_str("no enrollment record"),
            StoreError::MissingDirectory { path, home: true } => write!(
                f,
                "home directory {} is missing or not a directory (not mounted?)",
                path.display()
            ),
            StoreError::MissingDirectory { path, home: false } => write!(
                f,
                "record directory {} is missing or not a directory",
                path.display()
            ),
            StoreError::Template(e) => e.fmt(f),
            StoreError::Symlink => f.write_str("record is a symbolic link; refused"),
            StoreError::NotRegular => f.write_str("record is not a regular file; refused"),
            StoreError::WrongOwner { found, expected } => {
                write!(
                    f,
                    "record is owned by uid {found}, expected uid {expected}; refused"
                )
            }
            StoreError::TooOpen { mode } => write!(
                f,
                "record mode is {:04o}; group/other bits must be clear (chmod 600)",
                mode & 0o7777
            ),
            StoreError::UnsafeDirectory { path } => write!(
                f,
                "record directory {} must be owned by root and not group/world writable",
                path.display()
            ),
            StoreError::TooLarge => write!(f, "record is larger than {MAX_RECORD_BYTES} bytes; refused"),
            StoreError::Record(e) => e.fmt(f),
            StoreError::Io { action, source } => write!(f, "cannot {action}: {source}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Template(e) => Some(e),
            StoreError::Record(e) => Some(e),
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl RecordLocation {
    /// Where `account`'s record is under `files`' `secret_path`.
    ///
    /// # Errors
    /// The template does not expand.
    pub fn for_account(files: FileSettings<'_>, account: Account) -> Result<RecordLocation, StoreError> {
        let path = template::expand(files.secret_path, &account).map_err(StoreError::Template)?;
        Ok(RecordLocation {
            path,
            kind: files.store_kind(),
            account,
        })
    }

    /// Where `name`'s record is when `secret_path` is a system store, without asking passwd:
    /// such a path needs only the name, and its records belong to root (see
    /// [`Account::name_only`]). `None` for a home store, which needs the user's home and ids.
    ///
    /// A login uses it to read the record before, and instead of, looking the user up; if
    /// there is no record under the name as given, it asks passwd, which may know the user
    /// under another spelling (the name its record was written under).
    #[must_use]
    pub fn in_system_store(files: FileSettings<'_>, name: &str) -> Option<RecordLocation> {
        if files.store_kind() != StoreKind::System {
            return None;
        }
        let account = Account::name_only(name).ok()?;
        RecordLocation::for_account(files, account).ok()
    }

    /// The uid a record here must belong to.
    #[must_use]
    pub fn expected_owner(&self) -> Uid {
        match self.kind {
            StoreKind::Home => self.account.uid,
            StoreKind::System => Uid::from_raw(0),
        }
    }

    fn split(&self) -> Result<(&Path, &Path), StoreError> {
        match (self.path.parent(), self.path.file_name()) {
            (Some(dir), Some(name)) => Ok((dir, Path::new(name))),
            _ => Err(StoreError::Template(TemplateError::NotAbsolute)),
        }
    }

    /// Home stores are touched with the user's rights; system stores as root.
    fn rights(&self) -> Result<Option<UserRights>, StoreError> {
        match self.kind {
            StoreKind::Home => UserRights::assume(&self.account)
                .map(Some)
                .map_err(|source| StoreError::Io {
                    action: "switch to the user's file rights",
                    source,
                }),
            StoreKind::System => Ok(None),
        }
    }

    fn open_dir(&self, dir: &Path) -> Result<File, StoreError> {
        // A system store's directory is root's and only root's to write; a home's is
        // opened with the user's rights, which the kernel checks.
        let rules = (self.kind == StoreKind::System).then_some(SYSTEM_DIRECTORY);
        trusted_file::open_dir(dir, rules.as_ref()).map_err(|refused| match refused {
            Refused::Missing => self.missing_directory(dir),
            Refused::Owner { .. } | Refused::Mode { .. } | Refused::NotDirectory | Refused::Symlink => {
                StoreError::UnsafeDirectory { path: dir.to_owned() }
            }
            Refused::Io { source, .. } => StoreError::Io {
                action: "open the record directory",
                source,
            },
            other => StoreError::Io {
                action: "open the record directory",
                source: io::Error::other(other.to_string()),
            },
        })
    }

    /// The record's rules: the expected owner's alone, at most [`MAX_RECORD_BYTES`].
    fn rules(&self) -> Rules {
        Rules {
            owner: Owner::Uid(self.expected_owner().as_raw()),
            forbidden_mode: 0o077,
            single_link: false,
            max_bytes: Some(MAX_RECORD_BYTES),
            follow_symlink: false,
        }
    }

    fn refused(&self, refused: Refused) -> StoreError {
        match refused {
            Refused::Missing => StoreError::NotFound(NoRecord::proven_by_store()),
            Refused::Symlink => StoreError::Symlink,
            Refused::NotRegular | Refused::NotDirectory => StoreError::NotRegular,
            Refused::Owner { found } => StoreError::WrongOwner {
                found,
                expected: self.expected_owner().as_raw(),
            },
            Refused::Mode { mode } => StoreError::TooOpen { mode },
            Refused::TooLarge { .. } => StoreError::TooLarge,
            Refused::Links { count } => StoreError::Io {
                action: "open the record",
                source: io::Error::other(format!("{count} hard links")),
            },
            Refused::Io { action, source } => StoreError::Io {
                action: match action {
                    "read the file" => "read the record",
                    "stat the file" => "stat the record",
                    _ => "open the record",
                },
                source,
            },
        }
    }

    /// A missing record directory, named as what to fix: in a home store whose home is
    /// itself not there, the home (what an admin mounts), else the directory.
    fn missing_directory(&self, dir: &Path) -> StoreError {
        let home = &self.account.home;
        let home_missing = self.kind == StoreKind::Home
            && dir.starts_with(home)
            && !std::fs::metadata(home).is_ok_and(|meta| meta.is_dir());
        if home_missing {
            StoreError::MissingDirectory {
                path: home.clone(),
                home: true,
            }
        } else {
            StoreError::MissingDirectory {
                path: dir.to_owned(),
                home: self.kind == StoreKind::Home && dir == home,
            }
        }
    }

    /// Reads and parses a plain record (a sealed one is `Record(RecordError::Sealed)`).
    ///
    /// # Errors
    /// See [`StoreError`]; a missing record is [`StoreError::NotFound`], a missing
    /// directory [`StoreError::MissingDirectory`].
    pub fn read(&self) -> Result<Record, StoreError> {
        match self.read_stored()? {
            StoredRecord::Plain(record) => Ok(record),
            StoredRecord::Sealed(_) => Err(StoreError::Record(RecordError::Sealed)),
        }
    }

    /// Reads and parses the record, plain or sealed ([`crate::seal`] opens a sealed one).
    ///
    /// # Errors
    /// See [`StoreError`]; a missing record is [`StoreError::NotFound`], a missing
    /// directory [`StoreError::MissingDirectory`].
    pub fn read_stored(&self) -> Result<StoredRecord, StoreError> {
        let (dir, name) = self.split()?;
        let _rights = self.rights()?;
        let dir = self.open_dir(dir)?;
        let (file, len) = trusted_file::open_in(&dir, name, &self.rules()).map_err(|e| self.refused(e))?;
        let text = trusted_file::read_all(file, len, MAX_RECORD_BYTES).map_err(|e| self.refused(e))?;
        let text = std::str::from_utf8(&text)
            .map_err(|_| StoreError::Record(RecordError::Malformed { line: None }))?;
        Record::parse_stored(text).map_err(StoreError::Record)
    }

    /// Whether a record exists here (any file, even an unusable one, counts).
    ///
    /// # Errors
    /// The directory is missing or cannot be opened: nothing can be said.
    pub fn exists(&self) -> Result<bool, StoreError> {
        let (dir, name) = self.split()?;
        let _rights = self.rights()?;
        let dir = self.open_dir(dir)?;
        match nix::sys::stat::fstatat(dir.as_fd(), name, fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(errno) => Err(StoreError::Io {
                action: "look for the record",
                source: errno.into(),
            }),
        }
    }

    /// Writes `record` atomically, mode 0600, owned by the expected owner.
    ///
    /// # Errors
    /// The directory is unsafe or unwritable, or the disk refused the write; the
    /// existing record, if any, is then unchanged.
    pub fn write(&self, record: &Record) -> Result<(), StoreError> {
        self.write_text(&record.to_toml())
    }

    /// Writes `record` with its secret sealed (`sealed_secret` from
    /// [`crate::seal::PublicHostKey::seal`]), as [`RecordLocation::write`] does.
    ///
    /// # Errors
    /// As [`RecordLocation::write`].
    pub fn write_sealed(&self, record: &Record, sealed_secret: &str) -> Result<(), StoreError> {
        self.write_text(&record.to_sealed_toml(sealed_secret))
    }

    /// Writes a record's text (plain or sealed TOML) as [`RecordLocation::write`] does.
    ///
    /// # Errors
    /// As [`RecordLocation::write`].
    pub fn write_text(&self, text: &str) -> Result<(), StoreError> {
        let (dir_path, name) = self.split()?;
        let _rights = self.rights()?;
        let dir = self.open_dir(dir_path)?;
        let label = pam_totp_os::selinux_label::label_as_home_record;
        trusted_file::replace_labelled(&dir, name, 0o600, text.as_bytes(), &label).map_err(|e| {
            StoreError::Io {
                action: match e.step {
                    ReplaceStep::CreateTemporary => "create a temporary record",
                    ReplaceStep::Label => "label the record for SELinux",
                    ReplaceStep::Write => "write the record",
                    ReplaceStep::Sync => "sync the record",
                    ReplaceStep::Rename => "replace the record",
                    ReplaceStep::SyncDirectory => "sync the record directory",
                },
                source: e.source,
            }
        })?;
        remove_stale_temporaries(&dir, dir_path, name);
        Ok(())
    }

    /// Removes the record. Not an error if there is none.
    ///
    /// # Errors
    /// The directory is missing (a record in a home not mounted would stay), or the
    /// directory or file could not be changed.
    pub fn remove(&self) -> Result<(), StoreError> {
        let (dir_path, name) = self.split()?;
        let _rights = self.rights()?;
        let dir = self.open_dir(dir_path)?;
        match nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(errno) => {
                return Err(StoreError::Io {
                    action: "remove the record",
                    source: errno.into(),
                });
            }
        }
        dir.sync_all().map_err(|source| StoreError::Io {
            action: "sync the record directory",
            source,
        })
    }
}

/// A system store's directory: root's, not writable by group or others.
const SYSTEM_DIRECTORY: Rules = Rules {
    owner: Owner::Root,
    forbidden_mode: 0o022,
    single_link: false,
    max_bytes: None,
    follow_symlink: true,
};

/// Writers killed mid-update leave `.NAME.tmp.PID` files behind, each holding a secret
/// that may since have been replaced: once a new record is in place, they go. They never
/// block anything (each writer uses a name of its own), so this is best effort.
fn remove_stale_temporaries(dir: &File, dir_path: &Path, name: &Path) {
    let prefix = format!(".{}.tmp.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir_path) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        if file_name.to_string_lossy().starts_with(&prefix) {
            // Relative to the checked directory, whatever the path now leads to.
            let _ = nix::unistd::unlinkat(
                dir.as_fd(),
                file_name.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    // Run as root (the test suite does): root owns what the tests make, and can give
    // files away.
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};

    use super::*;
    use pam_totp_config::Config;
    use pam_totp_config::algorithm::Algorithm;
    use pam_totp_core::secret::SecretKey;
    use std::io::Seek;
    use std::io::{Read, Write};
    use std::os::unix::fs::MetadataExt;

    fn record() -> Record {
        let secret = SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        Record::new(secret, Algorithm::Sha1, 6, 30, String::new())
    }

    /// A system store `DIR/alice`, the way a login finds it.
    fn system(dir: &Path) -> RecordLocation {
        let config = Config {
            secret_path: format!("{}/${{USER}}", dir.display()),
            ..Config::default()
        };
        RecordLocation::in_system_store(config.files(), "alice").unwrap()
    }

    /// Root's records in a home store whose home is `home`.
    fn home_store(home: &Path, secret_path: &str) -> RecordLocation {
        let account = Account {
            home: home.to_owned(),
            ..Account::lookup("root").unwrap()
        };
        let config = Config {
            secret_path: secret_path.to_owned(),
            ..Config::default()
        };
        RecordLocation::for_account(config.files(), account).unwrap()
    }

    fn plant(path: &Path, mode: u32) {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(record().to_toml().as_bytes()))
            .unwrap();
    }

    #[test]
    fn no_record_in_an_existing_trusted_directory_is_not_found() {
        let tmp = tempfile::tempdir().unwrap();
        let location = system(tmp.path());
        assert!(matches!(location.read(), Err(StoreError::NotFound(_))));
        assert!(!location.exists().unwrap());
        location.write(&record()).unwrap();
        assert!(location.read().is_ok());
        assert!(location.exists().unwrap());
        location.remove().unwrap();
        assert!(matches!(location.read(), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn a_missing_store_directory_is_not_a_missing_record() {
        let tmp = tempfile::tempdir().unwrap();
        let location = system(&tmp.path().join("records"));
        let missing = |e: Result<_, StoreError>| {
            matches!(e, Err(StoreError::MissingDirectory { ref path, home: false })
                if *path == tmp.path().join("records"))
        };
        assert!(missing(location.read().map(drop)), "{:?}", location.read());
        assert!(missing(location.exists().map(drop)));
        assert!(missing(location.remove()));
        // A file where the directory should be is no better.
        plant(&tmp.path().join("records"), 0o600);
        assert!(missing(location.read().map(drop)));
    }

    #[test]
    fn a_missing_home_is_named_as_the_home() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("alice");
        for secret_path in ["~/.pam_totp", "${HOME}/.config/pam_totp/record"] {
            let location = home_store(&home, secret_path);
            let error = location.read().unwrap_err();
            assert!(
                matches!(error, StoreError::MissingDirectory { ref path, home: true } if *path == home),
                "{secret_path}: {error:?}"
            );
            assert!(error.to_string().contains("not mounted?"), "{error}");
        }
        // The home is there, a directory below it is not: that directory is named.
        std::fs::create_dir(&home).unwrap();
        let location = home_store(&home, "${HOME}/.config/pam_totp/record");
        assert!(matches!(
            location.read(),
            Err(StoreError::MissingDirectory { ref path, home: false }) if *path == home.join(".config/pam_totp")
        ));
        let location = home_store(&home, "~/.pam_totp");
        assert!(matches!(location.read(), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn a_symlinked_record_is_refused_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        plant(&elsewhere, 0o600);
        symlink(&elsewhere, tmp.path().join("alice")).unwrap();
        let location = system(tmp.path());
        assert!(matches!(location.read(), Err(StoreError::Symlink)));
        // A dangling link is no missing record either.
        std::fs::remove_file(&elsewhere).unwrap();
        assert!(matches!(location.read(), Err(StoreError::Symlink)));
        assert!(location.exists().unwrap());
    }

    #[test]
    fn a_record_of_the_wrong_owner_or_too_open_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("alice");
        plant(&path, 0o600);
        nix::unistd::chown(&path, Some(Uid::from_raw(4321)), None).unwrap();
        let location = system(tmp.path());
        assert!(matches!(
            location.read(),
            Err(StoreError::WrongOwner {
                found: 4321,
                expected: 0
            })
        ));
        nix::unistd::chown(&path, Some(Uid::from_raw(0)), None).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(location.read(), Err(StoreError::TooOpen { .. })));
    }

    #[test]
    fn a_writable_store_directory_or_a_directory_record_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("alice")).unwrap();
        let location = system(tmp.path());
        assert!(matches!(location.read(), Err(StoreError::NotRegular)));
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(location.read(), Err(StoreError::UnsafeDirectory { .. })));
        assert!(matches!(
            location.exists(),
            Err(StoreError::UnsafeDirectory { .. })
        ));
    }

    #[test]
    fn a_temporary_planted_under_the_writers_name_never_receives_the_secret() {
        // Runs as root (the test suite does): a system store in a root-owned directory.
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            secret_path: format!("{}/${{USER}}", tmp.path().display()),
            ..Config::default()
        };
        let location = RecordLocation::for_account(config.files(), Account::lookup("root").unwrap()).unwrap();
        // Someone else's file under the temporary's name, held open to read later.
        let planted = tmp.path().join(format!(".root.tmp.{}", std::process::id()));
        std::fs::write(&planted, "theirs").unwrap();
        std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
        let mut held = File::open(&planted).unwrap();

        let secret = SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        location
            .write(&Record::new(secret, Algorithm::Sha1, 6, 30, String::new()))
            .unwrap();
        let mut seen = String::new();
        held.rewind().unwrap();
        held.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "theirs");
        let meta = std::fs::symlink_metadata(&location.path).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
        assert!(location.read().is_ok());
    }
}
