//! Login state: until when codes are used up, and the failure counters, one small file
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

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::Mode;
use nix::unistd;

use pam_totp_os::account::check_user_name;
use pam_totp_os::trusted_file::{self, Owner, Refused, Rules};

pub use pam_totp_core::login_state::{Channel, FailureSource, LoginState};

/// The slot format written by this version (and read).
const MAGIC: &[u8; 4] = b"PTS2";
/// The decoy's file name: no user name starts with a dot, so it is no one's state.
const DECOY_FILE: &str = ".decoy";
/// The empty file whose mtime says when the module last warned that this host's clock
/// is not synchronised (no user name starts with a dot).
pub const CLOCK_WARNED_FILE: &str = ".clock-warned";
/// How often at most that warning is logged.
pub const CLOCK_WARNING_EVERY: Duration = Duration::from_secs(3600);
const SLOT_BYTES: usize = 128;
const FILE_BYTES: u64 = 2 * SLOT_BYTES as u64;
/// The previous version's slot format, still read: two 64-byte slots holding the last
/// accepted step rather than a time. The first write after reading one goes to the
/// second new slot (bytes 128..256), which the old slots do not overlap, so a crash
/// during that write leaves the old file readable.
const LEGACY_MAGIC: &[u8; 4] = b"PTS1";
const LEGACY_SLOT_BYTES: usize = 64;
const LEGACY_FILE_BYTES: u64 = 2 * LEGACY_SLOT_BYTES as u64;
/// How long a login waits for another login of the same user before failing closed.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

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

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StateError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

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
        let rules = Rules {
            forbidden_mode: 0o022,
            ..state_file_rules(euid)
        };
        if rules.check_dir(&meta).is_err() {
            return Err(StateError::UnsafeDirectory {
                path: path.to_owned(),
            });
        }
        Ok(StateDir { dir, euid })
    }

    /// The checked directory and the module's uid, for the files of
    /// [`crate::shortcuts`] beside the state files.
    pub(crate) fn dir_and_owner(&self) -> (&File, u32) {
        (&self.dir, self.euid)
    }

    /// Opens (creating if needed) and exclusively locks `user`'s state file, waiting up
    /// to [`LOCK_TIMEOUT`] for a concurrent login of the same user.
    ///
    /// # Errors
    /// An unsafe file, a corrupt file, a lock timeout, or I/O failure.
    pub fn lock(&self, user: &str) -> Result<LockedState, StateError> {
        let file = self.open_file(user)?;
        wait_for_lock(&file)?;
        let slots = read_slots(&file)?;
        Ok(LockedState {
            file,
            state: slots.state,
            seq: slots.seq,
            next_offset: slots.next_offset,
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
            Ok(slots) => slots.state,
            Err(StateError::Corrupt) => {
                wait_for_lock(&file)?;
                let state = read_slots(&file)?.state;
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

    /// Opens (creating if needed) the [`Decoy`] and reads it, as [`StateDir::glance`]
    /// does a state file.
    ///
    /// # Errors
    /// An unsafe file or I/O failure, as for a state file.
    pub fn decoy(&self) -> Result<Decoy, StateError> {
        let file = self.open_checked(DECOY_FILE)?;
        // Read for the cost only: nothing in the decoy is ever believed.
        let _ = read_slots(&file);
        Ok(Decoy {
            file,
            euid: self.euid,
        })
    }

    /// Whether the unsynchronised-clock warning is due at `now` (none in the last
    /// [`CLOCK_WARNING_EVERY`]), by [`CLOCK_WARNED_FILE`]'s mtime; if so, its mtime
    /// becomes `now` (created, root's and private, the first time).
    ///
    /// # Errors
    /// An unsafe marker (a link, another owner, ...) or I/O failure.
    pub fn clock_warning_due(&self, now: std::time::SystemTime) -> Result<bool, StateError> {
        let name = Path::new(CLOCK_WARNED_FILE);
        let file = match trusted_file::open_in(&self.dir, name, &self.file_rules()) {
            Ok((file, _)) => {
                let warned = file
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .map_err(io_err("stat the clock marker"))?;
                let recent = now
                    .duration_since(warned)
                    .is_ok_and(|since| since < CLOCK_WARNING_EVERY);
                if recent {
                    return Ok(false);
                }
                file
            }
            Err(Refused::Missing) => {
                trusted_file::open_or_create_in(&self.dir, name, 0o600, &self.file_rules())
                    .map_err(refused)?
                    .0
            }
            Err(other) => return Err(refused(other)),
        };
        file.set_modified(now).map_err(io_err("touch the clock marker"))?;
        Ok(true)
    }

    /// Opens (creating if needed) and checks `user`'s state file.
    fn open_file(&self, user: &str) -> Result<File, StateError> {
        check_user_name(user).map_err(|_| StateError::BadUser)?;
        self.open_checked(&format!("{user}.state"))
    }

    /// Opens (creating if needed) and checks the file `name` of this directory.
    fn open_checked(&self, name: &str) -> Result<File, StateError> {
        let (file, len) =
            trusted_file::open_or_create_in(&self.dir, Path::new(name), 0o600, &self.file_rules())
                .map_err(refused)?;
        check_size(len)?;
        Ok(file)
    }

    /// A state file: this process's (root's), private, one link; its sizes are
    /// [`check_size`]'s.
    fn file_rules(&self) -> Rules {
        state_file_rules(self.euid)
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
        read_slots(&file).map(|slots| Some(slots.state))
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
    state_file_rules(euid).check(&meta).map_err(refused)?;
    check_size(meta.len())
}

pub(crate) fn state_file_rules(euid: u32) -> Rules {
    Rules {
        owner: Owner::Uid(euid),
        forbidden_mode: 0o077,
        single_link: true,
        max_bytes: None,
        follow_symlink: false,
    }
}

/// A state file the rules refused, in the words of the log line.
fn refused(refused: Refused) -> StateError {
    let reason = match refused {
        Refused::Symlink => "it is a symbolic link",
        Refused::NotRegular | Refused::NotDirectory | Refused::Missing => "it is not a regular file",
        Refused::Owner { .. } => "it is not owned by root",
        Refused::Mode { .. } => "group or other permission bits are set",
        Refused::Links { .. } => "it has more than one hard link",
        Refused::TooLarge { .. } => "it has the wrong size",
        Refused::Io { source, .. } => {
            return StateError::Io {
                action: "open the state file",
                source,
            };
        }
    };
    StateError::UnsafeFile { reason }
}

/// Empty (new), or one of the two formats' sizes. Between the two sizes: a previous
/// version's file whose first write in the new format was cut short (read as that old
/// file).
fn check_size(len: u64) -> Result<(), StateError> {
    if len != 0 && !(LEGACY_FILE_BYTES..=FILE_BYTES).contains(&len) {
        return Err(StateError::UnsafeFile {
            reason: "it has the wrong size",
        });
    }
    Ok(())
}

pub(crate) fn wait_for_lock(file: &File) -> Result<(), StateError> {
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

/// The newest state in a file, its sequence number, and where the next write goes (the
/// slot not holding it).
struct Slots {
    state: LoginState,
    seq: u64,
    next_offset: u64,
}

/// Whether sequence number `a` is newer than `b`, by serial-number arithmetic: the two
/// slots always hold consecutive numbers, so a counter that wraps past `u64::MAX` to 0
/// still orders them.
fn newer(a: u64, b: u64) -> bool {
    a.wrapping_sub(b).cast_signed() > 0
}

fn read_slots(file: &File) -> Result<Slots, StateError> {
    let mut bytes = [0u8; 2 * SLOT_BYTES];
    let len = read_at_most(file, &mut bytes)?;
    if len == 0 {
        return Ok(Slots {
            state: LoginState::default(),
            seq: 0,
            next_offset: SLOT_BYTES as u64,
        });
    }
    let (first, second) = bytes.split_at(SLOT_BYTES);
    let best = match (decode_slot(first), decode_slot(second)) {
        (Some((_, sa)), Some((b, sb))) if newer(sb, sa) => Some((b, sb, 0)),
        (Some((a, sa)), _) => Some((a, sa, SLOT_BYTES as u64)),
        (None, Some((b, sb))) => Some((b, sb, 0)),
        (None, None) => None,
    };
    if let Some((state, seq, next_offset)) = best {
        return Ok(Slots {
            state,
            seq,
            next_offset,
        });
    }
    // No slot of this version: a file of the previous one, which must be written in the
    // second new slot (see LEGACY_MAGIC).
    let (first, rest) = bytes.split_at(LEGACY_SLOT_BYTES);
    let legacy = [
        decode_legacy_slot(first),
        decode_legacy_slot(&rest[..LEGACY_SLOT_BYTES]),
    ];
    let (state, seq) = match legacy {
        [Some((a, sa)), Some((b, sb))] => {
            if newer(sb, sa) {
                (b, sb)
            } else {
                (a, sa)
            }
        }
        [Some(one), None] | [None, Some(one)] => one,
        [None, None] => return Err(StateError::Corrupt),
    };
    Ok(Slots {
        state,
        seq,
        next_offset: SLOT_BYTES as u64,
    })
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

/// Where the report's fields sit in a slot, after the ten `u64` fields and before the
/// CRC; a slot written before they existed holds zeros there (no report, no offset).
/// The offset is kept as an `i16` (seconds; the hint's reach is 600).
const OFFSET_AT: usize = 84;
const SINCE_SUCCESS_AT: usize = 86;
const LAST_FAILURE_AT: usize = 90;
const HINTED_AT: usize = 98;
const SOURCE_LEN_AT: usize = 106;
const SOURCE_AT: usize = 107;
/// The longest source kept as text; an IPv6 address is kept as its 16 bytes.
pub const SOURCE_BYTES: usize = SLOT_BYTES - 4 - SOURCE_AT;
/// The length byte of a source kept as an IPv6 address.
const SOURCE_IPV6: u8 = 0xff;

/// A failed attempt's source (`PAM_RHOST`, else the tty) as the slot keeps it: an IP
/// address whole, other text cut to [`SOURCE_BYTES`].
#[must_use]
pub fn failure_source(source: Option<&str>) -> FailureSource {
    let text = source.unwrap_or("");
    if text.len() > SOURCE_BYTES
        && let Ok(ip) = text.parse::<std::net::Ipv6Addr>()
    {
        return FailureSource::new(&ip.to_string(), FailureSource::CAPACITY);
    }
    FailureSource::new(text, SOURCE_BYTES)
}

fn encode_source(source: &FailureSource, slot: &mut [u8; SLOT_BYTES]) {
    let text = source.as_str();
    let tail = &mut slot[SOURCE_AT..SLOT_BYTES - 4];
    if let Ok(ip) = text.parse::<std::net::Ipv6Addr>()
        && text.len() > SOURCE_BYTES
    {
        slot[SOURCE_LEN_AT] = SOURCE_IPV6;
        slot[SOURCE_AT..SOURCE_AT + 16].copy_from_slice(&ip.octets());
        return;
    }
    let kept = FailureSource::new(text, SOURCE_BYTES);
    let bytes = kept.as_str().as_bytes();
    tail[..bytes.len()].copy_from_slice(bytes);
    slot[SOURCE_LEN_AT] = u8::try_from(bytes.len()).unwrap_or(0);
}

fn decode_source(body: &[u8]) -> Option<FailureSource> {
    let len = *body.get(SOURCE_LEN_AT)?;
    if len == SOURCE_IPV6 {
        let octets: [u8; 16] = body.get(SOURCE_AT..SOURCE_AT + 16)?.try_into().ok()?;
        let text = std::net::Ipv6Addr::from(octets).to_string();
        return Some(FailureSource::new(&text, FailureSource::CAPACITY));
    }
    let bytes = body.get(SOURCE_AT..SOURCE_AT + usize::from(len))?;
    Some(FailureSource::new(std::str::from_utf8(bytes).ok()?, SOURCE_BYTES))
}

fn encode_slot(state: &LoginState, seq: u64) -> [u8; SLOT_BYTES] {
    let mut slot = [0u8; SLOT_BYTES];
    let fields: [u64; 10] = [
        seq,
        state.used_until,
        state.legacy_step,
        u64::from(state.failures),
        state.locked_until,
        u64::from(state.console_failures),
        state.console_locked_until,
        state.last_success,
        state.recovery_epoch,
        state.recovery_used,
    ];
    slot[..4].copy_from_slice(MAGIC);
    for (i, field) in fields.iter().enumerate() {
        slot[4 + i * 8..12 + i * 8].copy_from_slice(&field.to_le_bytes());
    }
    let offset = i16::try_from(state.clock_offset).unwrap_or(if state.clock_offset < 0 {
        i16::MIN
    } else {
        i16::MAX
    });
    slot[OFFSET_AT..OFFSET_AT + 2].copy_from_slice(&offset.to_le_bytes());
    slot[HINTED_AT..HINTED_AT + 8].copy_from_slice(&state.hinted_step_start.to_le_bytes());
    slot[SINCE_SUCCESS_AT..SINCE_SUCCESS_AT + 4].copy_from_slice(&state.failures_since_success.to_le_bytes());
    slot[LAST_FAILURE_AT..LAST_FAILURE_AT + 8].copy_from_slice(&state.last_failure.to_le_bytes());
    encode_source(&state.last_failure_source, &mut slot);
    let crc = crc32fast::hash(&slot[..SLOT_BYTES - 4]);
    slot[SLOT_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
    slot
}

/// The checked body of a slot of `size` bytes with `magic`.
fn checked_body(slot: &[u8], size: usize, magic: [u8; 4]) -> Option<&[u8]> {
    if slot.len() != size {
        return None;
    }
    let (body, crc) = slot.split_at(size - 4);
    if body[..4] != magic || crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    Some(body)
}

/// The checked body of a slot of `size` bytes with `magic`, and a reader of its fields.
fn checked_fields<'a>(
    slot: &'a [u8],
    size: usize,
    magic: &[u8; 4],
) -> Option<impl Fn(usize) -> Option<u64> + 'a> {
    let body = checked_body(slot, size, *magic)?;
    Some(move |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            body.get(4 + i * 8..12 + i * 8)?.try_into().ok()?,
        ))
    })
}

fn decode_slot(slot: &[u8]) -> Option<(LoginState, u64)> {
    let field = checked_fields(slot, SLOT_BYTES, MAGIC)?;
    let body = checked_body(slot, SLOT_BYTES, *MAGIC)?;
    let bytes4 = |at: usize| -> Option<[u8; 4]> { body.get(at..at + 4)?.try_into().ok() };
    let bytes8 = |at: usize| -> Option<[u8; 8]> { body.get(at..at + 8)?.try_into().ok() };
    let offset: [u8; 2] = body.get(OFFSET_AT..OFFSET_AT + 2)?.try_into().ok()?;
    let state = LoginState {
        used_until: field(1)?,
        legacy_step: field(2)?,
        failures: u32::try_from(field(3)?).ok()?,
        locked_until: field(4)?,
        console_failures: u32::try_from(field(5)?).ok()?,
        console_locked_until: field(6)?,
        last_success: field(7)?,
        recovery_epoch: field(8)?,
        recovery_used: field(9)?,
        clock_offset: i32::from(i16::from_le_bytes(offset)),
        failures_since_success: u32::from_le_bytes(bytes4(SINCE_SUCCESS_AT)?),
        last_failure: u64::from_le_bytes(bytes8(LAST_FAILURE_AT)?),
        hinted_step_start: u64::from_le_bytes(bytes8(HINTED_AT)?),
        last_failure_source: decode_source(body)?,
    };
    Some((state, field(0)?))
}

/// A slot of the previous version: its last step is kept as `legacy_step`.
fn decode_legacy_slot(slot: &[u8]) -> Option<(LoginState, u64)> {
    let field = checked_fields(slot, LEGACY_SLOT_BYTES, LEGACY_MAGIC)?;
    let state = LoginState {
        legacy_step: field(1)?,
        failures: u32::try_from(field(2)?).ok()?,
        locked_until: field(3)?,
        last_success: field(4)?,
        recovery_epoch: field(5)?,
        recovery_used: field(6)?,
        ..LoginState::default()
    };
    Some((state, field(0)?))
}

/// A user's state, read under an exclusive lock that lasts until this is dropped.
#[derive(Debug)]
pub struct LockedState {
    file: File,
    state: LoginState,
    seq: u64,
    next_offset: u64,
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
        let slots = read_slots(&self.file)?;
        Ok(LockedState {
            file: self.file,
            state: slots.state,
            seq: slots.seq,
            next_offset: slots.next_offset,
            euid: self.euid,
        })
    }
}

/// The one file that logins of unknown and unenrolled users write, so that they cost
/// what an enrolled user's wrong answer does (`crate::decoy`). One for all names (no
/// state is made for a name that is not a user), checked like a state file, and never
/// locked: nothing in it is read back as true, so those logins never wait for each other.
#[derive(Debug)]
pub struct Decoy {
    file: File,
    euid: u32,
}

impl Decoy {
    /// What [`StateFile::lock`] and [`LockedState::save`] do, but the lock: check and
    /// read the file, then one `pwrite` of a slot and one `fdatasync`.
    ///
    /// # Errors
    /// The file was replaced meanwhile, or the write or sync failed (as it would have
    /// for a state file).
    pub fn write(&self) -> Result<(), StateError> {
        check_state_file(&self.file, self.euid)?;
        let _ = read_slots(&self.file);
        // The second slot, so that the file has a state file's size from the first write.
        self.file
            .write_all_at(&encode_slot(&LoginState::default(), 1), SLOT_BYTES as u64)
            .map_err(io_err("write the decoy state file"))?;
        self.file.sync_data().map_err(io_err("sync the decoy state file"))
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
        let seq = self.seq.wrapping_add(1);
        self.file
            .write_all_at(&encode_slot(&state, seq), self.next_offset)
            .map_err(io_err("write the state file"))?;
        self.file.sync_data().map_err(io_err("sync the state file"))?;
        self.seq = seq;
        self.next_offset = SLOT_BYTES as u64 - self.next_offset;
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LoginState {
        LoginState {
            used_until: 1_740_000_030,
            legacy_step: 0,
            failures: 3,
            locked_until: 9,
            console_failures: 2,
            console_locked_until: 11,
            last_success: 7,
            recovery_epoch: 5,
            recovery_used: 0b101,
            failures_since_success: 4,
            last_failure: 1_740_000_001,
            last_failure_source: failure_source(Some("192.0.2.7")),
            clock_offset: -180,
            hinted_step_start: 1_739_999_820,
        }
    }

    #[test]
    fn a_failure_source_is_kept_whole_as_an_address_and_cut_as_other_text() {
        let v6 = "2001:db8:85a3:1234:5678:8a2e:370:7334";
        for (source, kept) in [
            (Some(v6), v6),
            (Some("pts/0"), "pts/0"),
            (Some("a-rather-long-host-name.example.org"), "a-rather-long-hos"),
            (None, ""),
        ] {
            let state = LoginState {
                last_failure_source: failure_source(source),
                ..sample()
            };
            let (read, _) = decode_slot(&encode_slot(&state, 1)).unwrap();
            assert_eq!(read.last_failure_source.as_str(), kept);
            assert_eq!(read, state);
        }
    }

    /// A slot as the previous version wrote it (its encoder, kept here to test reading).
    fn legacy_slot(last_step: u64, failures: u64, seq: u64) -> [u8; LEGACY_SLOT_BYTES] {
        let mut slot = [0u8; LEGACY_SLOT_BYTES];
        slot[..4].copy_from_slice(LEGACY_MAGIC);
        for (i, field) in [seq, last_step, failures, 0, 7, 0, 0].iter().enumerate() {
            slot[4 + i * 8..12 + i * 8].copy_from_slice(&field.to_le_bytes());
        }
        let crc = crc32fast::hash(&slot[..LEGACY_SLOT_BYTES - 4]);
        slot[LEGACY_SLOT_BYTES - 4..].copy_from_slice(&crc.to_le_bytes());
        slot
    }

    fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
        std::fs::write(path, bytes).map_err(io_err("write"))?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io_err("chmod"))
    }

    #[test]
    fn a_previous_versions_file_is_read_and_rewritten_in_the_new_format() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let path = tmp.path().join("olga.state");
        let mut old = [0u8; 2 * LEGACY_SLOT_BYTES];
        old[..LEGACY_SLOT_BYTES].copy_from_slice(&legacy_slot(100, 1, 4));
        old[LEGACY_SLOT_BYTES..].copy_from_slice(&legacy_slot(101, 2, 5));
        write_private(&path, &old)?;
        let dir = StateDir::open(tmp.path())?;
        let mut locked = dir.lock("olga")?;
        let read = locked.state();
        assert_eq!((read.legacy_step, read.failures, read.used_until), (101, 2, 0));
        // Step 101 of a 30 s record ends at 3060; the window's reach does not clamp it.
        assert_eq!(read.replay_floor(30, 3_000, 1), 3_060);
        locked.save(LoginState {
            used_until: read.replay_floor(30, 3_000, 1),
            legacy_step: 0,
            ..read
        })?;
        drop(locked);
        let bytes = std::fs::read(&path).map_err(io_err("read"))?;
        assert_eq!(bytes.len(), 2 * SLOT_BYTES, "rewritten in the new size");
        assert_eq!(
            &bytes[..2 * LEGACY_SLOT_BYTES],
            &old[..],
            "the old slots were not touched"
        );
        let state = dir.lock("olga")?.state();
        assert_eq!(
            (state.used_until, state.legacy_step, state.failures),
            (3_060, 0, 2)
        );
        Ok(())
    }

    #[test]
    fn a_first_new_write_cut_short_leaves_the_old_file_readable() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let path = tmp.path().join("tom.state");
        let mut bytes = vec![0u8; 2 * LEGACY_SLOT_BYTES];
        bytes[..LEGACY_SLOT_BYTES].copy_from_slice(&legacy_slot(100, 1, 4));
        bytes[LEGACY_SLOT_BYTES..].copy_from_slice(&legacy_slot(101, 2, 5));
        // Half of the new slot 1 made it to disk.
        bytes.extend_from_slice(&encode_slot(&sample(), 6)[..SLOT_BYTES / 2]);
        write_private(&path, &bytes)?;
        let state = StateDir::open(tmp.path())?.lock("tom")?.state();
        assert_eq!((state.legacy_step, state.failures), (101, 2));
        Ok(())
    }

    #[test]
    fn a_legacy_step_in_another_periods_units_costs_at_most_one_window() {
        // Step 170_000_000 of a 10 s record, read with the new record's 30 s period.
        let damaged = LoginState {
            legacy_step: 170_000_000,
            ..LoginState::default()
        };
        let now = 1_700_000_000;
        assert_eq!(damaged.replay_floor(30, now, 1), now + 60);
        // A time already there wins over an older legacy step.
        let both = LoginState {
            used_until: now + 90,
            ..damaged
        };
        assert_eq!(both.replay_floor(30, now, 1), now + 90);
        assert_eq!(LoginState::default().replay_floor(30, now, 1), 0);
    }

    #[test]
    fn writes_after_the_sequence_number_wraps_are_kept() -> Result<(), StateError> {
        let tmp = tempfile::tempdir().map_err(io_err("tempdir"))?;
        let path = tmp.path().join("wendy.state");
        let mut bytes = vec![0u8; 2 * SLOT_BYTES];
        bytes[..SLOT_BYTES].copy_from_slice(&encode_slot(&sample(), u64::MAX - 1));
        bytes[SLOT_BYTES..].copy_from_slice(&encode_slot(&sample(), u64::MAX));
        write_private(&path, &bytes)?;
        let dir = StateDir::open(tmp.path())?;
        // A code accepted after the wrap (seq 0), then a failure (seq 1): both kept.
        let used = LoginState {
            used_until: sample().used_until + 30,
            failures: 0,
            ..sample()
        };
        dir.lock("wendy")?.save(used)?;
        assert_eq!(
            dir.lock("wendy")?.state(),
            used,
            "the write at seq 0 is the newest"
        );
        let failed = LoginState { failures: 1, ..used };
        dir.lock("wendy")?.save(failed)?;
        assert_eq!(dir.lock("wendy")?.state(), failed);
        assert_eq!(dir.peek("wendy")?, Some(failed));
        Ok(())
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
            used_until: sample().used_until + 30,
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
                (
                    any::<u64>(),
                    any::<u64>(),
                    any::<u32>(),
                    any::<u64>(),
                    any::<u32>(),
                ),
                (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
                (
                    any::<u32>(),
                    any::<u64>(),
                    "[ -~]{0,17}",
                    any::<i16>(),
                    any::<u64>(),
                ),
            )
                .prop_map(
                    |(
                        (used_until, legacy_step, failures, locked_until, console_failures),
                        (console_locked_until, last_success, recovery_epoch, recovery_used),
                        (failures_since_success, last_failure, source, clock_offset, hinted_step_start),
                    )| LoginState {
                        used_until,
                        legacy_step,
                        failures,
                        locked_until,
                        console_failures,
                        console_locked_until,
                        last_success,
                        recovery_epoch,
                        recovery_used,
                        failures_since_success,
                        last_failure,
                        last_failure_source: failure_source(Some(&source)),
                        clock_offset: i32::from(clock_offset),
                        hinted_step_start,
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
                    Ok(_) => prop_assert!(
                        bytes.is_empty() || (2 * LEGACY_SLOT_BYTES..=2 * SLOT_BYTES).contains(&bytes.len())
                    ),
                    Err(StateError::Corrupt | StateError::UnsafeFile { .. }) => {}
                    Err(e) => prop_assert!(false, "unexpected error {}", e),
                }
            }
        }
    }
}
