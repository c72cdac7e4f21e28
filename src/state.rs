//! Login state: the last accepted time step and the failure counters, one small file
//! per user in a root-owned directory. Only the module (and root's `totp-enroll` for
//! unlock and reset) writes it.
//!
//! Cost and safety both come from the layout: the file holds two fixed-size slots,
//! each with a sequence number and a CRC. An update writes the *other* slot with one
//! `pwrite` and one `fdatasync`, so a crash or power cut mid-write tears at most the
//! slot being written and the reader falls back to the intact one. That is the one
//! durable write a login needs, about four times cheaper than temp file + fsync +
//! rename + directory fsync. An exclusive `flock` on the open file serialises
//! read-verify-write across concurrent logins; the kernel drops it when the holder
//! dies, so a crashed login never blocks the next one.

#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;
use nix::unistd;

use crate::account::check_user_name;

const MAGIC: &[u8; 4] = b"PTS1";
const SLOT_BYTES: usize = 64;
const FILE_BYTES: u64 = 2 * SLOT_BYTES as u64;
/// How long a login waits for another login of the same user before failing closed.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the module remembers about a user between logins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginState {
    /// The newest time step whose code was accepted; replay protection refuses any
    /// code of this step or older.
    pub last_step: u64,
    /// Consecutive failed attempts since the last success.
    pub failures: u32,
    /// Unix time until which the account is locked out (0: not locked).
    pub locked_until: u64,
    /// Unix time of the last successful login (0: never).
    pub last_success: u64,
    /// Identifies the set of recovery codes the `recovery_used` bits refer to.
    pub recovery_epoch: u64,
    /// One bit per burnt recovery code of that set.
    pub recovery_used: u64,
}

/// Why the state could not be read or written. The module fails closed on each.
#[derive(Debug)]
pub enum StateError {
    /// The state directory is not owned by the module's user or is group/world writable.
    UnsafeDirectory { path: PathBuf },
    /// The state file is not a private regular file with one link.
    UnsafeFile { reason: &'static str },
    /// Neither slot holds a valid state: the file was damaged outside our writes.
    Corrupt,
    /// Another login held the lock for longer than [`LOCK_TIMEOUT`].
    LockTimeout,
    /// The user name cannot name a file.
    BadUser,
    /// Any other I/O failure (a full disk, a read-only file system, ...).
    Io { action: &'static str, source: io::Error },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::UnsafeDirectory { path } => write!(
                f,
                "state directory {} must be owned by root and not group/world writable",
                path.display()
            ),
            StateError::UnsafeFile { reason } => write!(f, "state file refused: {reason}"),
            StateError::Corrupt => {
                f.write_str("state file is corrupt; run `totp-enroll unlock --user NAME` to reset it")
            }
            StateError::LockTimeout => f.write_str("timed out waiting for another login of this user"),
            StateError::BadUser => f.write_str("user name cannot name a state file"),
            StateError::Io { action, source } => write!(f, "cannot {action}: {source}"),
        }
    }
}

impl std::error::Error for StateError {}

fn io_err(action: &'static str) -> impl FnOnce(io::Error) -> StateError {
    move |source| StateError::Io { action, source }
}

/// The opened and checked state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: File,
    /// The module's effective uid, which must own the directory and every state file
    /// (asked once: `geteuid` is a system call each time).
    euid: u32,
}

impl StateDir {
    /// Opens `path` and checks that it belongs to the module's user (root) and is not
    /// group/world writable. The packages (and `make install`) create it: a login never
    /// does, since on SELinux hosts only the package gets its label right.
    ///
    /// # Errors
    /// An unsafe, unusable or missing directory.
    pub fn open(path: &Path) -> Result<StateDir, StateError> {
        let dir = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
        {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(io_err(
                    "open the state directory (reinstall the package, or create it: owned by root, mode 0700)",
                )(e));
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(StateError::UnsafeDirectory {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(io_err("open the state directory")(e)),
        };
        let meta = dir.metadata().map_err(io_err("stat the state directory"))?;
        let euid = unistd::geteuid().as_raw();
        if meta.uid() != euid || meta.mode() & 0o022 != 0 {
            return Err(StateError::UnsafeDirectory {
                path: path.to_owned(),
            });
        }
        Ok(StateDir { dir, euid })
    }

    /// Opens (creating if needed) and exclusively locks `user`'s state file, waiting up
    /// to [`LOCK_TIMEOUT`] for a concurrent login of the same user.
    ///
    /// # Errors
    /// An unsafe file, a corrupt file, a lock timeout, or I/O failure.
    pub fn lock(&self, user: &str) -> Result<LockedState, StateError> {
        let file = self.open_file(user)?;
        wait_for_lock(&file)?;
        let (state, seq) = read_slots(&file)?;
        Ok(LockedState {
            file,
            state,
            seq,
            euid: self.euid,
        })
    }

    /// Opens (creating if needed) `user`'s state file and reads it *without* locking it:
    /// the look a login takes before its prompt (is the user locked out?). The file
    /// stays open for [`StateFile::lock`], under which the verdict re-reads it.
    ///
    /// An unlocked read is safe for the same reason [`StateDir::peek`]'s is: a write in
    /// progress tears at most one slot, and the other one is read; should both slots
    /// fail their check anyway, the file is read again under the lock before it is
    /// called corrupt. Saves the `flock` pair a locked look costs at every login.
    ///
    /// # Errors
    /// An unsafe or corrupt file, a lock timeout (only on that second read), or I/O
    /// failure.
    pub fn glance(&self, user: &str) -> Result<StateFile, StateError> {
        let file = self.open_file(user)?;
        let state = match read_slots(&file) {
            Ok((state, _)) => state,
            Err(StateError::Corrupt) => {
                wait_for_lock(&file)?;
                let (state, _) = read_slots(&file)?;
                file.unlock().map_err(io_err("unlock the state file"))?;
                state
            }
            Err(e) => return Err(e),
        };
        Ok(StateFile {
            file,
            state,
            euid: self.euid,
        })
    }

    /// Opens (creating if needed) and checks `user`'s state file.
    fn open_file(&self, user: &str) -> Result<File, StateError> {
        check_user_name(user).map_err(|_| StateError::BadUser)?;
        let name = format!("{user}.state");
        let flags = OFlag::O_RDWR
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY;
        let fd = fcntl::openat(
            self.dir.as_fd(),
            name.as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|errno| match errno {
            Errno::ELOOP => StateError::UnsafeFile {
                reason: "it is a symbolic link",
            },
            other => StateError::Io {
                action: "open the state file",
                source: other.into(),
            },
        })?;
        let file = File::from(fd);
        check_state_file(&file, self.euid)?;
        Ok(file)
    }

    /// Reads `user`'s state without creating or locking it (for `totp-enroll status`);
    /// `None` if the user has none. The two-slot layout makes an unlocked read safe: a
    /// write in progress tears at most one slot, and the other is read.
    ///
    /// # Errors
    /// An unsafe or corrupt file, or I/O failure.
    pub fn peek(&self, user: &str) -> Result<Option<LoginState>, StateError> {
        check_user_name(user).map_err(|_| StateError::BadUser)?;
        let flags =
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
        let fd = match fcntl::openat(
            self.dir.as_fd(),
            format!("{user}.state").as_str(),
            flags,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => {
                return Err(StateError::UnsafeFile {
                    reason: "it is a symbolic link",
                });
            }
            Err(other) => {
                return Err(StateError::Io {
                    action: "open the state file",
                    source: other.into(),
                });
            }
        };
        let file = File::from(fd);
        check_state_file(&file, self.euid)?;
        read_slots(&file).map(|(state, _)| Some(state))
    }

    /// Deletes `user`'s state (admin reset). Not an error if there is none.
    ///
    /// # Errors
    /// The file could not be removed.
    pub fn remove(&self, user: &str) -> Result<(), StateError> {
        check_user_name(user).map_err(|_| StateError::BadUser)?;
        match unistd::unlinkat(
            self.dir.as_fd(),
            format!("{user}.state").as_str(),
            unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(errno) => Err(StateError::Io {
                action: "remove the state file",
                source: errno.into(),
            }),
        }
    }
}

fn check_state_file(file: &File, euid: u32) -> Result<(), StateError> {
    let meta = file.metadata().map_err(io_err("stat the state file"))?;
    let reason = if !meta.file_type().is_file() {
        "it is not a regular file"
    } else if meta.uid() != euid {
        "it is not owned by root"
    } else if meta.mode() & 0o077 != 0 {
        "group or other permission bits are set"
    } else if meta.nlink() != 1 {
        "it has more than one hard link"
    } else if meta.len() != 0 && meta.len() != FILE_BYTES {
        "it has the wrong size"
    } else {
        return Ok(());
    };
    Err(StateError::UnsafeFile { reason })
}

fn wait_for_lock(file: &File) -> Result<(), StateError> {
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(StateError::LockTimeout),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err("lock the state file")(e)),
        }
    }
}

fn read_slots(file: &File) -> Result<(LoginState, u64), StateError> {
    let mut bytes = [0u8; 2 * SLOT_BYTES];
    let len = read_at_most(file, &mut bytes)?;
    if len == 0 {
        return Ok((LoginState::default(), 0));
    }
    let (first, second) = bytes.split_at(SLOT_BYTES);
    let best = [decode_slot(first), decode_slot(second)]
        .into_iter()
        .flatten()
        .max_by_key(|(_, seq)| *seq);
    best.ok_or(StateError::Corrupt)
}

fn read_at_most(file: &File, buf: &mut [u8]) -> Result<usize, StateError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file
            .read_at(&mut buf[filled..], filled as u64)
            .map_err(io_err("read the state file"))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

fn encode_slot(state: &LoginState, seq: u64) -> [u8; SLOT_BYTES] {
    let mut slot = [0u8; SLOT_BYTES];
    let fields: [&[u8]; 7] = [
        &seq.to_le_bytes(),
        &state.last_step.to_le_bytes(),
        &u64::from(state.failures).to_le_bytes(),
        &state.locked_until.to_le_bytes(),
        &state.last_success.to_le_bytes(),
        &state.recovery_epoch.to_le_bytes(),
        &state.recovery_used.to_le_bytes(),
    ];
    slot[..4].copy_from_slice(MAGIC);
    for (i, field) in fields.iter().enumerate() {
        slot[4 + i * 8..12 + i * 8].copy_from_slice(field);
    }
    let crc = crc32fast::hash(&slot[..SLOT_BYTES - 4]);
    slot[SLOT_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
    slot
}

fn decode_slot(slot: &[u8]) -> Option<(LoginState, u64)> {
    let slot: &[u8; SLOT_BYTES] = slot.try_into().ok()?;
    let (body, crc) = slot.split_at(SLOT_BYTES - 4);
    if &body[..4] != MAGIC || crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let field = |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            body.get(4 + i * 8..12 + i * 8)?.try_into().ok()?,
        ))
    };
    let state = LoginState {
        last_step: field(1)?,
        failures: u32::try_from(field(2)?).ok()?,
        locked_until: field(3)?,
        last_success: field(4)?,
        recovery_epoch: field(5)?,
        recovery_used: field(6)?,
    };
    Some((state, field(0)?))
}

/// A user's state, read under an exclusive lock that lasts until this is dropped.
#[derive(Debug)]
pub struct LockedState {
    file: File,
    state: LoginState,
    seq: u64,
    euid: u32,
}

/// A user's state file, opened and checked but not locked: kept across a slow step
/// (the prompt) so that the second lock needs no second open.
#[derive(Debug)]
pub struct StateFile {
    file: File,
    /// The state as last read (unlocked by [`StateDir::glance`]): good for a look, not
    /// for a verdict, which [`StateFile::lock`] reads afresh.
    state: LoginState,
    euid: u32,
}

impl StateFile {
    /// The state as last read; another login may have changed it since.
    #[must_use]
    pub fn state(&self) -> LoginState {
        self.state
    }

    /// Locks the file again and reads the state afresh (another login may have written
    /// it meanwhile).
    ///
    /// # Errors
    /// The file was replaced or unlinked meanwhile (an admin's reset), a lock timeout,
    /// or a corrupt or unreadable file.
    pub fn lock(self) -> Result<LockedState, StateError> {
        check_state_file(&self.file, self.euid)?;
        wait_for_lock(&self.file)?;
        let (state, seq) = read_slots(&self.file)?;
        Ok(LockedState {
            file: self.file,
            state,
            seq,
            euid: self.euid,
        })
    }
}

impl LockedState {
    /// Releases the lock, keeping the file open for [`StateFile::lock`].
    ///
    /// # Errors
    /// The kernel refused to release the lock.
    pub fn unlock(self) -> Result<StateFile, StateError> {
        self.file.unlock().map_err(io_err("unlock the state file"))?;
        Ok(StateFile {
            file: self.file,
            state: self.state,
            euid: self.euid,
        })
    }

    /// The state as read (or as last saved through this lock).
    #[must_use]
    pub fn state(&self) -> LoginState {
        self.state
    }

    /// Durably replaces the state: one `pwrite` of the older slot and one `fdatasync`.
    ///
    /// # Errors
    /// The write or the sync failed (full disk, read-only file system); the previous
    /// state is then still the one on disk.
    pub fn save(&mut self, state: LoginState) -> Result<(), StateError> {
        let seq = self.seq + 1;
        let offset = (seq % 2) * SLOT_BYTES as u64;
        self.file
            .write_all_at(&encode_slot(&state, seq), offset)
            .map_err(io_err("write the state file"))?;
        self.file.sync_data().map_err(io_err("sync the state file"))?;
        self.seq = seq;
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LoginState {
        LoginState {
            last_step: 58_000_000,
            failures: 3,
            locked_until: 9,
            last_success: 7,
            recovery_epoch: 5,
            recovery_used: 0b101,
        }
    }

    #[test]
    fn slots_round_trip() {
        assert_eq!(decode_slot(&encode_slot(&sample(), 42)), Some((sample(), 42)));
    }

    #[test]
    fn a_torn_slot_is_rejected() {
        let mut slot = encode_slot(&sample(), 42);
        slot[20] ^= 1;
        assert_eq!(decode_slot(&slot), None);
        assert_eq!(decode_slot(&[0u8; SLOT_BYTES]), None);
    }

    #[test]
    fn saves_survive_reopening_and_alternate_slots() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let dir = StateDir::open(tmp.path())?;
        let mut locked = dir.lock("alice")?;
        assert_eq!(locked.state(), LoginState::default());
        locked.save(sample())?;
        let newer = LoginState {
            last_step: sample().last_step + 1,
            ..sample()
        };
        locked.save(newer)?;
        drop(locked);
        assert_eq!(dir.lock("alice")?.state(), newer);
        Ok(())
    }

    #[test]
    fn a_glance_reads_without_waiting_for_the_lock_and_the_lock_reads_afresh() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let dir = StateDir::open(tmp.path())?;
        let mut held = dir.lock("frank")?;
        held.save(sample())?;
        let started = Instant::now();
        let glanced = dir.glance("frank")?;
        assert!(
            started.elapsed() < LOCK_TIMEOUT / 5,
            "a glance waited for the lock"
        );
        assert_eq!(glanced.state(), sample());
        let newer = LoginState {
            failures: 11,
            ..sample()
        };
        held.save(newer)?;
        drop(held);
        assert_eq!(glanced.lock()?.state(), newer);
        Ok(())
    }

    #[test]
    fn a_file_kept_open_across_an_unlock_sees_what_others_wrote() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let dir = StateDir::open(tmp.path())?;
        let kept = dir.lock("carol")?.unlock()?;
        dir.lock("carol")?.save(sample())?;
        let mut relocked = kept.lock()?;
        assert_eq!(relocked.state(), sample());
        let newer = LoginState {
            failures: 9,
            ..sample()
        };
        relocked.save(newer)?;
        drop(relocked);
        assert_eq!(dir.lock("carol")?.state(), newer);
        Ok(())
    }

    #[test]
    fn a_file_removed_while_unlocked_is_not_written() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let dir = StateDir::open(tmp.path())?;
        let kept = dir.lock("dave")?.unlock()?;
        dir.remove("dave")?;
        assert!(matches!(kept.lock(), Err(StateError::UnsafeFile { .. })));
        Ok(())
    }

    #[test]
    fn a_damaged_newest_slot_falls_back_to_the_older_one() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let dir = StateDir::open(tmp.path())?;
        let mut locked = dir.lock("bob")?;
        locked.save(sample())?; // seq 1, slot 1
        let newer = LoginState {
            failures: 4,
            ..sample()
        };
        locked.save(newer)?; // seq 2, slot 0
        locked.file.write_all_at(&[0xff; 8], 8).map_err(io_err("tear"))?;
        drop(locked);
        assert_eq!(dir.lock("bob")?.state(), sample());
        Ok(())
    }

    #[test]
    fn garbage_state_is_corrupt_not_a_panic() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let path = tmp.path().join("eve.state");
        std::fs::write(&path, [0x5a; 2 * SLOT_BYTES]).map_err(io_err("write"))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io_err("chmod"))?;
        let dir = StateDir::open(tmp.path())?;
        assert!(matches!(dir.lock("eve"), Err(StateError::Corrupt)));
        std::fs::write(&path, [0x5a; 7]).map_err(io_err("write"))?;
        assert!(matches!(dir.lock("eve"), Err(StateError::UnsafeFile { .. })));
        Ok(())
    }

    #[test]
    fn peek_reads_without_creating() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let dir = StateDir::open(tmp.path())?;
        assert_eq!(dir.peek("carol")?, None);
        assert!(!tmp.path().join("carol.state").exists());
        dir.lock("carol")?.save(sample())?;
        assert_eq!(dir.peek("carol")?, Some(sample()));
        Ok(())
    }

    #[test]
    fn a_symlinked_state_file_is_refused() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("mallory.state"))
            .map_err(io_err("symlink"))?;
        let dir = StateDir::open(tmp.path())?;
        assert!(matches!(dir.lock("mallory"), Err(StateError::UnsafeFile { .. })));
        Ok(())
    }

    #[test]
    fn a_group_writable_state_dir_is_refused() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o770))
            .map_err(io_err("chmod"))?;
        assert!(matches!(
            StateDir::open(tmp.path()),
            Err(StateError::UnsafeDirectory { .. })
        ));
        Ok(())
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_state() -> impl Strategy<Value = LoginState> {
            (
                any::<u64>(),
                any::<u32>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
            )
                .prop_map(
                    |(last_step, failures, locked_until, last_success, recovery_epoch, recovery_used)| {
                        LoginState {
                            last_step,
                            failures,
                            locked_until,
                            last_success,
                            recovery_epoch,
                            recovery_used,
                        }
                    },
                )
        }

        proptest! {
            // 256 cases in `cargo test`; `make fuzz` (run by `make test`) sets PROPTEST_CASES.
            #![proptest_config(ProptestConfig::default())]

            #[test]
            fn any_slot_bytes_decode_or_are_refused_never_a_panic(
                bytes in proptest::collection::vec(any::<u8>(), 0..=2 * SLOT_BYTES),
            ) {
                let _ = decode_slot(&bytes);
            }

            #[test]
            fn every_state_round_trips(state in any_state(), seq in any::<u64>()) {
                prop_assert_eq!(decode_slot(&encode_slot(&state, seq)), Some((state, seq)));
            }

            #[test]
            fn any_torn_byte_is_detected(state in any_state(), seq in any::<u64>(), at in 0..SLOT_BYTES, flip in 1u8..=255) {
                let mut slot = encode_slot(&state, seq);
                slot[at] ^= flip;
                prop_assert_eq!(decode_slot(&slot), None);
            }

            #[test]
            fn any_state_file_content_is_read_or_refused(
                bytes in proptest::collection::vec(any::<u8>(), 0..=3 * SLOT_BYTES),
            ) {
                let tmp = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let path = tmp.path().join("fuzz.state");
                std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let dir = StateDir::open(tmp.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                match dir.lock("fuzz") {
                    Ok(_) => prop_assert!(bytes.is_empty() || bytes.len() == 2 * SLOT_BYTES),
                    Err(StateError::Corrupt | StateError::UnsafeFile { .. }) => {}
                    Err(e) => prop_assert!(false, "unexpected error {}", e),
                }
            }
        }
    }
}
