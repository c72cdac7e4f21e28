//! Files root can trust: the one place where pam_totp opens a file whose content it
//! believes (config, records, state, host keys, database credentials, imported
//! google-authenticator files, the sibling `pam_totp_db.so`), creates a file that will
//! hold a secret, or replaces one atomically.
//!
//! The rules are data ([`Rules`]): who must own the file, which permission bits must be
//! clear, whether a symbolic link or a second hard link is refused, the largest size,
//! and the same for the directory holding it. Every caller states its rules; the checks
//! and their order (type, owner, mode, links, size) are written once, here. Opening
//! never blocks (`O_NONBLOCK`: a FIFO must not hang a login) and never follows a link
//! unless the rules allow it.
//!
//! Creating a file that will hold a secret (record, QR image, key) always makes a new
//! file (`O_CREAT | O_EXCL | O_NOFOLLOW`), owned by whoever creates it, with the mode
//! asked: opening an existing file instead would write the secret into a file someone
//! else may own and hold open, e.g. one planted in a shared directory. A replacement is
//! such a new temporary file in the same directory, synced, renamed over the old one,
//! and the directory synced ([`replace`]).

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;
use zeroize::Zeroizing;

/// Flags of a new file.
const FLAGS: OFlag = OFlag::O_WRONLY
    .union(OFlag::O_CREAT)
    .union(OFlag::O_EXCL)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Creates `name` (relative to `dir`, or to the working directory for `None`) as a new
/// file with `mode`, whatever the umask. Any existing entry, a symbolic link included,
/// is an error of kind [`io::ErrorKind::AlreadyExists`].
///
/// # Errors
/// The name exists, or the file cannot be created or its mode set.
pub fn create(dir: Option<BorrowedFd<'_>>, name: &Path, mode: u32) -> io::Result<File> {
    let mode = Mode::from_bits_truncate(mode);
    let fd = match dir {
        Some(dir) => fcntl::openat(dir, name, FLAGS, mode),
        None => fcntl::open(name, FLAGS, mode),
    }?;
    let file = File::from(fd);
    // The umask may have taken bits away (a public key must stay readable).
    nix::sys::stat::fchmod(file.as_fd(), mode)?;
    Ok(file)
}

/// The refusal for a secret's file whose name is taken, in the words the command shows.
#[must_use]
pub fn exists_message(path: &Path) -> String {
    format!(
        "{} exists; refusing to write the secret over a file that may not be yours; remove it \
         or choose another name",
        path.display()
    )
}

/// Who must own a trusted file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// uid 0.
    Root,
    /// This uid (a user's own file in a home store).
    Uid(u32),
    /// Root or the effective uid of this process (a config a test user runs with).
    RootOrEffective,
    /// Anyone: root reading a file an admin names (e.g. a pam_oath users file).
    Any,
}

impl Owner {
    fn accepts(self, uid: u32) -> bool {
        match self {
            Owner::Root => uid == 0,
            Owner::Uid(expected) => uid == expected,
            Owner::RootOrEffective => uid == 0 || uid == nix::unistd::geteuid().as_raw(),
            Owner::Any => true,
        }
    }
}

/// What a file (or directory) must be for root to believe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub owner: Owner,
    /// Permission bits that must be clear (`0o022`: not writable by group or others;
    /// `0o077`: private to its owner).
    pub forbidden_mode: u32,
    /// Refuse a file with more than one hard link (a link kept elsewhere by someone who
    /// could once write it).
    pub single_link: bool,
    /// Largest size accepted, in bytes; `None` when the caller checks sizes itself.
    pub max_bytes: Option<u64>,
    /// Follow a symbolic link at the last component (`false`: `O_NOFOLLOW`, a link is
    /// refused).
    pub follow_symlink: bool,
}

/// Why a file was not trusted. `mode` is the whole `st_mode`; `found` the owner's uid.
#[derive(Debug)]
pub enum Refused {
    /// No such file (or directory).
    Missing,
    /// A symbolic link where the rules refuse one.
    Symlink,
    NotRegular,
    NotDirectory,
    Owner {
        found: u32,
    },
    Mode {
        mode: u32,
    },
    Links {
        count: u64,
    },
    TooLarge {
        len: u64,
    },
    Io {
        action: &'static str,
        source: io::Error,
    },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Missing => f.write_str("does not exist"),
            Refused::Symlink => f.write_str("is a symbolic link"),
            Refused::NotRegular => f.write_str("is not a regular file"),
            Refused::NotDirectory => f.write_str("is not a directory"),
            Refused::Owner { found } => write!(f, "is owned by uid {found}"),
            Refused::Mode { mode } => write!(f, "has mode {:04o}", mode & 0o7777),
            Refused::Links { count } => write!(f, "has {count} hard links"),
            Refused::TooLarge { len } => write!(f, "is too large ({len} bytes)"),
            Refused::Io { action, source } => write!(f, "cannot {action}: {source}"),
        }
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Refused::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io(action: &'static str) -> impl FnOnce(io::Error) -> Refused {
    move |source| Refused::Io { action, source }
}

impl Rules {
    /// Checks an opened file's metadata: regular file, owner, mode, links, size, in
    /// that order (the first failing rule is the one reported).
    ///
    /// # Errors
    /// The first rule the file breaks.
    pub fn check(&self, meta: &Metadata) -> Result<(), Refused> {
        if !meta.file_type().is_file() {
            return Err(Refused::NotRegular);
        }
        self.check_owner_and_mode(meta)?;
        if self.single_link && meta.nlink() != 1 {
            return Err(Refused::Links { count: meta.nlink() });
        }
        if let Some(max) = self.max_bytes
            && meta.len() > max
        {
            return Err(Refused::TooLarge { len: meta.len() });
        }
        Ok(())
    }

    /// Checks a directory's metadata: a directory, owner, mode.
    ///
    /// # Errors
    /// The first rule the directory breaks.
    pub fn check_dir(&self, meta: &Metadata) -> Result<(), Refused> {
        if !meta.file_type().is_dir() {
            return Err(Refused::NotDirectory);
        }
        self.check_owner_and_mode(meta)
    }

    fn check_owner_and_mode(&self, meta: &Metadata) -> Result<(), Refused> {
        if !self.owner.accepts(meta.uid()) {
            return Err(Refused::Owner { found: meta.uid() });
        }
        if meta.mode() & self.forbidden_mode != 0 {
            return Err(Refused::Mode { mode: meta.mode() });
        }
        Ok(())
    }

    fn open_flags(&self) -> OFlag {
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        if self.follow_symlink {
            flags
        } else {
            flags | OFlag::O_NOFOLLOW
        }
    }
}

fn refused_open(errno: Errno, action: &'static str) -> Refused {
    match errno {
        Errno::ENOENT => Refused::Missing,
        Errno::ELOOP => Refused::Symlink,
        other => Refused::Io {
            action,
            source: other.into(),
        },
    }
}

/// Opens a directory to open files relative to (no file in it is reached through a
/// path that could change meanwhile), checked against `rules` when given.
///
/// # Errors
/// Missing (`ENOENT`, `ENOTDIR`), unreadable, or breaking `rules`.
pub fn open_dir(path: &Path, rules: Option<&Rules>) -> Result<File, Refused> {
    let mut flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    if rules.is_some_and(|r| !r.follow_symlink) {
        flags |= OFlag::O_NOFOLLOW;
    }
    let dir = fcntl::open(path, flags, Mode::empty())
        .map(File::from)
        .map_err(|errno| match errno {
            Errno::ENOTDIR => Refused::Missing,
            other => refused_open(other, "open the directory"),
        })?;
    if let Some(rules) = rules {
        rules.check_dir(&dir.metadata().map_err(io("stat the directory"))?)?;
    }
    Ok(dir)
}

/// Opens `name` in `dir` for reading under `rules`; the file and its size.
///
/// # Errors
/// Missing, a refused link, unreadable, or breaking `rules`.
pub fn open_in(dir: &File, name: &Path, rules: &Rules) -> Result<(File, u64), Refused> {
    let fd = fcntl::openat(dir.as_fd(), name, rules.open_flags(), Mode::empty())
        .map_err(|errno| refused_open(errno, "open the file"))?;
    checked(File::from(fd), rules)
}

/// Opens `path` for reading under `rules`, its directory first under `parent` when
/// given (whoever can write the directory can swap the file); the file and its size.
///
/// # Errors
/// Missing, a refused link, unreadable, or breaking `rules` (or, for the directory,
/// `parent`).
pub fn open(path: &Path, rules: &Rules, parent: Option<&Rules>) -> Result<(File, u64), Refused> {
    if let Some(parent) = parent {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Refused::Missing);
        };
        let dir = open_dir(dir, Some(parent))?;
        return open_in(&dir, Path::new(name), rules);
    }
    let fd = fcntl::open(path, rules.open_flags(), Mode::empty())
        .map_err(|errno| refused_open(errno, "open the file"))?;
    checked(File::from(fd), rules)
}

/// Opens (creating it with `mode` if missing) `name` in `dir` for reading and writing,
/// under `rules`: a state file. The file and its size.
///
/// # Errors
/// A refused link, unusable, or breaking `rules`.
pub fn open_or_create_in(dir: &File, name: &Path, mode: u32, rules: &Rules) -> Result<(File, u64), Refused> {
    let flags = (rules.open_flags() - OFlag::O_RDONLY) | OFlag::O_RDWR | OFlag::O_CREAT;
    let fd = fcntl::openat(dir.as_fd(), name, flags, Mode::from_bits_truncate(mode))
        .map_err(|errno| refused_open(errno, "open the file"))?;
    checked(File::from(fd), rules)
}

fn checked(file: File, rules: &Rules) -> Result<(File, u64), Refused> {
    let meta = file.metadata().map_err(io("stat the file"))?;
    rules.check(&meta)?;
    Ok((file, meta.len()))
}

/// Reads an opened file of `len` bytes (the size its check saw) to the end, at most
/// `max` bytes; the bytes are wiped on drop.
///
/// # Errors
/// Unreadable, or longer than `max` (it grew since the check).
pub fn read_all(file: File, len: u64, max: u64) -> Result<Zeroizing<Vec<u8>>, Refused> {
    // Sized from the fstat: one read and the one that sees the end, where an empty
    // buffer costs five (std probes with 32 bytes, then doubles).
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(len.min(max) + 1).unwrap_or(0)));
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read the file"))?;
    if bytes.len() as u64 > max {
        return Err(Refused::TooLarge {
            len: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// The step of [`replace`] that failed; callers name it in their own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceStep {
    CreateTemporary,
    Label,
    Write,
    Sync,
    Rename,
    SyncDirectory,
}

/// Why [`replace`] failed: the step, and the error.
#[derive(Debug)]
pub struct ReplaceError {
    pub step: ReplaceStep,
    pub source: io::Error,
}

impl fmt::Display for ReplaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.step {
            ReplaceStep::CreateTemporary => "create a temporary file",
            ReplaceStep::Label => "label the file",
            ReplaceStep::Write => "write the file",
            ReplaceStep::Sync => "sync the file",
            ReplaceStep::Rename => "replace the file",
            ReplaceStep::SyncDirectory => "sync the directory",
        };
        write!(f, "cannot {action}: {}", self.source)
    }
}

impl std::error::Error for ReplaceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The temporary name [`replace`] writes `name` under first.
#[must_use]
pub fn temporary_name(name: &Path) -> std::path::PathBuf {
    std::path::PathBuf::from(format!(".{}.tmp.{}", name.to_string_lossy(), std::process::id()))
}

/// Replaces `name` in `dir` with `bytes` atomically: a new temporary file of `mode` in
/// the same directory ([`create`]: never one opened over another's), written, synced,
/// renamed over `name`, and the directory synced. A reader sees the old content or the
/// new, never a mix; on any failure the temporary file is removed and `name` unchanged.
///
/// # Errors
/// The step that failed.
pub fn replace(dir: &File, name: &Path, mode: u32, bytes: &[u8]) -> Result<(), ReplaceError> {
    replace_labelled(dir, name, mode, bytes, &|_| Ok(()))
}

/// As [`replace`], with `label` applied to the temporary file before anything is written
/// to it: a renamed file keeps the label it was created with (see [`crate::selinux_label`]).
///
/// # Errors
/// As [`replace`], and [`ReplaceStep::Label`] when `label` fails.
pub fn replace_labelled(
    dir: &File,
    name: &Path,
    mode: u32,
    bytes: &[u8],
    label: &dyn Fn(&File) -> io::Result<()>,
) -> Result<(), ReplaceError> {
    let temp = temporary_name(name);
    let result = write_then_rename(dir, &temp, name, mode, bytes, label);
    if result.is_err() {
        let _ = nix::unistd::unlinkat(dir.as_fd(), &temp, nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    result
}

fn write_then_rename(
    dir: &File,
    temp: &Path,
    name: &Path,
    mode: u32,
    bytes: &[u8],
    label: &dyn Fn(&File) -> io::Result<()>,
) -> Result<(), ReplaceError> {
    let fail = |step| move |source| ReplaceError { step, source };
    let make = || create(Some(dir.as_fd()), temp, mode);
    let mut file = match make() {
        // A stale temporary of a killed writer with our pid: removed, then made anew (a
        // file planted again meanwhile fails the second try).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = nix::unistd::unlinkat(dir.as_fd(), temp, nix::unistd::UnlinkatFlags::NoRemoveDir);
            make()
        }
        other => other,
    }
    .map_err(fail(ReplaceStep::CreateTemporary))?;
    label(&file).map_err(fail(ReplaceStep::Label))?;
    file.write_all(bytes).map_err(fail(ReplaceStep::Write))?;
    file.sync_all().map_err(fail(ReplaceStep::Sync))?;
    drop(file);
    fcntl::renameat(dir.as_fd(), temp, dir.as_fd(), name).map_err(|e| ReplaceError {
        step: ReplaceStep::Rename,
        source: e.into(),
    })?;
    dir.sync_all().map_err(fail(ReplaceStep::SyncDirectory))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    const PRIVATE: Rules = Rules {
        owner: Owner::Root,
        forbidden_mode: 0o077,
        single_link: true,
        max_bytes: Some(64),
        follow_symlink: false,
    };

    /// A directory of root's (the suite runs as root), mode 0700, and a file in it.
    fn dir_with(name: &str, bytes: &[u8], mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(dir.path().join(name))
            .and_then(|mut f| f.write_all(bytes))
            .unwrap();
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    fn open_private(dir: &tempfile::TempDir, name: &str) -> Result<(File, u64), Refused> {
        open(&dir.path().join(name), &PRIVATE, None)
    }

    #[test]
    fn a_file_that_keeps_every_rule_is_read() {
        let dir = dir_with("key", b"secret", 0o600);
        let (file, len) = open_private(&dir, "key").unwrap();
        assert_eq!(read_all(file, len, 64).unwrap().as_slice(), b"secret");
    }

    #[test]
    fn a_symbolic_link_is_refused_unless_the_rules_follow_it() {
        let dir = dir_with("key", b"secret", 0o600);
        std::os::unix::fs::symlink(dir.path().join("key"), dir.path().join("link")).unwrap();
        assert!(matches!(open_private(&dir, "link"), Err(Refused::Symlink)));
        let following = Rules {
            follow_symlink: true,
            ..PRIVATE
        };
        assert!(open(&dir.path().join("link"), &following, None).is_ok());
    }

    #[test]
    fn a_file_of_another_owner_is_refused() {
        let dir = dir_with("key", b"secret", 0o600);
        std::os::unix::fs::chown(dir.path().join("key"), Some(1), None).unwrap();
        assert!(matches!(
            open_private(&dir, "key"),
            Err(Refused::Owner { found: 1 })
        ));
        let theirs = Rules {
            owner: Owner::Uid(1),
            ..PRIVATE
        };
        assert!(open(&dir.path().join("key"), &theirs, None).is_ok());
    }

    #[test]
    fn group_or_other_bits_are_refused() {
        for mode in [0o640, 0o604, 0o660] {
            let dir = dir_with("key", b"secret", mode);
            assert!(
                matches!(open_private(&dir, "key"), Err(Refused::Mode { mode: m }) if m & 0o777 == mode),
                "{mode:o}"
            );
        }
        // Readable by others is fine where only writing is forbidden (a public key).
        let dir = dir_with("pub", b"key", 0o644);
        let public = Rules {
            forbidden_mode: 0o022,
            ..PRIVATE
        };
        assert!(open(&dir.path().join("pub"), &public, None).is_ok());
    }

    #[test]
    fn a_second_hard_link_is_refused_where_the_rules_say_so() {
        let dir = dir_with("state", b"", 0o600);
        std::fs::hard_link(dir.path().join("state"), dir.path().join("kept")).unwrap();
        assert!(matches!(
            open_private(&dir, "state"),
            Err(Refused::Links { count: 2 })
        ));
        let any_links = Rules {
            single_link: false,
            ..PRIVATE
        };
        assert!(open(&dir.path().join("state"), &any_links, None).is_ok());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        // No writer: a blocking open would hang here.
        assert!(matches!(open(&fifo, &PRIVATE, None), Err(Refused::NotRegular)));
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_and_a_grown_one_cut() {
        let dir = dir_with("big", &[b'x'; 65], 0o600);
        assert!(matches!(
            open_private(&dir, "big"),
            Err(Refused::TooLarge { len: 65 })
        ));
        let (file, _) = open(
            &dir.path().join("big"),
            &Rules {
                max_bytes: None,
                ..PRIVATE
            },
            None,
        )
        .unwrap();
        // Grown after the check: the read stops at the limit and refuses.
        assert!(matches!(read_all(file, 10, 64), Err(Refused::TooLarge { .. })));
    }

    #[test]
    fn a_directory_others_can_write_is_refused_as_a_parent() {
        let dir = dir_with("key", b"secret", 0o600);
        let parent = Rules {
            forbidden_mode: 0o022,
            ..PRIVATE
        };
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(open(&dir.path().join("key"), &PRIVATE, Some(&parent)).is_ok());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            open(&dir.path().join("key"), &PRIVATE, Some(&parent)),
            Err(Refused::Mode { .. })
        ));
        assert!(matches!(
            open(&dir.path().join("nothing"), &PRIVATE, Some(&parent)),
            Err(Refused::Mode { .. })
        ));
        assert!(matches!(
            open(&dir.path().join("no-dir/key"), &PRIVATE, Some(&parent)),
            Err(Refused::Missing)
        ));
    }

    #[test]
    fn replace_swaps_the_whole_content_and_leaves_no_temporary() {
        let dir = dir_with("record", b"old", 0o600);
        let handle = File::open(dir.path()).unwrap();
        replace(&handle, Path::new("record"), 0o600, b"new content").unwrap();
        assert_eq!(std::fs::read(dir.path().join("record")).unwrap(), b"new content");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["record"]);
        let mode = std::fs::metadata(dir.path().join("record"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn replace_never_writes_through_a_planted_temporary() {
        let dir = dir_with("record", b"old", 0o600);
        let handle = File::open(dir.path()).unwrap();
        // A symlink planted under the temporary name, pointing at a file of theirs: it is
        // unlinked (not followed), and the replacement made new.
        let theirs = dir.path().join("theirs");
        std::fs::write(&theirs, "theirs").unwrap();
        std::os::unix::fs::symlink(&theirs, dir.path().join(temporary_name(Path::new("record")))).unwrap();
        replace(&handle, Path::new("record"), 0o600, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "theirs");
        assert_eq!(std::fs::read(dir.path().join("record")).unwrap(), b"new");
        // A rename that fails (the name is a non-empty directory): nothing is left
        // behind, and what was there stays.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join("busy"))
            .unwrap();
        std::fs::write(dir.path().join("busy/inside"), "kept").unwrap();
        assert!(replace(&handle, Path::new("busy"), 0o600, b"new").is_err());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("busy/inside")).unwrap(),
            "kept"
        );
        assert!(!dir.path().join(temporary_name(Path::new("busy"))).exists());
    }

    #[test]
    fn an_existing_file_or_symlink_is_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("planted");
        std::fs::write(&planted, "theirs").unwrap();
        let err = create(None, &planted, 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&planted).unwrap(), "theirs");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
        assert_eq!(
            create(None, &link, 0o600).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(!dir.path().join("target").exists());
    }

    #[test]
    fn a_new_file_gets_exactly_the_mode_asked() {
        let dir = tempfile::tempdir().unwrap();
        let handle = File::open(dir.path()).unwrap();
        for (name, mode) in [("private", 0o600), ("public", 0o644)] {
            create(Some(handle.as_fd()), Path::new(name), mode).unwrap();
            let meta = std::fs::metadata(dir.path().join(name)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        }
    }
}
