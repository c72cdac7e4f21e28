//! The file store's [`Shortcuts`]: remembered keys (`remember_key_seconds`) and verified
//! audit sessions (`step_up_seconds`), each a file of its own in `state_dir`, beside the
//! state files and never inside one (user names cannot start with `.`, so no user's
//! state file has these names).
//!
//! - `.remembered-keys`: `USER SHA256:FINGERPRINT UNTIL` lines;
//! - `.verified-sessions`: `ticket USER SHA256-HEX UNTIL` (a login's ticket, waiting for
//!   its session) and `session USER AUDIT-ID UNTIL` lines.
//!
//! Root's, private, one link (the state files' rules); read whole, changed only under
//! the exclusive lock of `.shortcuts.lock` and replaced atomically
//! (`trusted_file::replace`), with the entries that ended dropped. A line that does not
//! parse makes the whole file unusable: the login asks for a code.

use std::fmt;
use std::path::Path;

use pam_totp_config::Config;
use pam_totp_core::ports::{Shortcuts, StoreFailure};
use pam_totp_core::proven::{AuditSession, KeyFingerprint, Ticket};
use pam_totp_os::account::check_user_name;
use pam_totp_os::trusted_file::{self, Refused, ReplaceError, Rules};

use crate::FileStore;
use crate::state::{StateDir, StateError, state_file_rules, wait_for_lock};

const KEYS_FILE: &str = ".remembered-keys";
const SESSIONS_FILE: &str = ".verified-sessions";
const LOCK_FILE: &str = ".shortcuts.lock";
/// A file larger than this is refused (each line is under 200 bytes).
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why remembered keys or verified sessions could not be used.
#[derive(Debug)]
pub enum ShortcutError {
    /// The state directory or the lock.
    State(StateError),
    /// The file was refused (owner, mode, links, size) or unreadable.
    Refused { file: &'static str, source: Refused },
    /// A line did not parse.
    Corrupt { file: &'static str },
    /// The new file could not be written.
    Replace {
        file: &'static str,
        source: ReplaceError,
    },
    /// The user name cannot be stored.
    BadUser,
}

impl fmt::Display for ShortcutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShortcutError::State(e) => e.fmt(f),
            ShortcutError::Refused { file, source } => write!(f, "{file} in state_dir refused: {source}"),
            ShortcutError::Corrupt { file } => {
                write!(
                    f,
                    "{file} in state_dir is corrupt (remove it: every login asks for a code)"
                )
            }
            ShortcutError::Replace { file, source } => write!(f, "{file} in state_dir: {source}"),
            ShortcutError::BadUser => f.write_str("user name cannot be stored"),
        }
    }
}

impl std::error::Error for ShortcutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShortcutError::State(e) => Some(e),
            ShortcutError::Refused { source, .. } => Some(source),
            ShortcutError::Replace { source, .. } => Some(source),
            ShortcutError::Corrupt { .. } | ShortcutError::BadUser => None,
        }
    }
}

/// One line of either file: kind (`key`, `ticket`, `session`), user, value, end.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    user: String,
    value: String,
    until: u64,
}

impl Entry {
    fn line(&self) -> String {
        match self.kind {
            "key" => format!("{} {} {}\n", self.user, self.value, self.until),
            kind => format!("{kind} {} {} {}\n", self.user, self.value, self.until),
        }
    }
}

/// One of the two files, read whole.
struct Entries {
    entries: Vec<Entry>,
}

fn parse(file: &'static str, text: &str) -> Result<Vec<Entry>, ShortcutError> {
    let corrupt = || ShortcutError::Corrupt { file };
    text.lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let (kind, rest) = match (file, words.as_slice()) {
                (KEYS_FILE, [_, _, _]) => ("key", &words[..]),
                (SESSIONS_FILE, ["ticket", rest @ ..]) if rest.len() == 3 => ("ticket", rest),
                (SESSIONS_FILE, ["session", rest @ ..]) if rest.len() == 3 => ("session", rest),
                _ => return Err(corrupt()),
            };
            let [user, value, until] = rest else {
                return Err(corrupt());
            };
            check_user_name(user).map_err(|_| corrupt())?;
            let valid = match kind {
                "key" => KeyFingerprint::parse(value).is_some(),
                "ticket" => value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()),
                _ => value.parse::<u32>().is_ok(),
            };
            if !valid {
                return Err(corrupt());
            }
            Ok(Entry {
                kind,
                user: (*user).to_owned(),
                value: (*value).to_owned(),
                until: until.parse().map_err(|_| corrupt())?,
            })
        })
        .collect()
}

/// The state directory, opened and checked as for a login.
struct Dir(StateDir);

impl Dir {
    fn open(config: &Config) -> Result<Dir, ShortcutError> {
        StateDir::open(&config.state_dir)
            .map(Dir)
            .map_err(ShortcutError::State)
    }

    fn rules(&self) -> Rules {
        Rules {
            max_bytes: Some(MAX_FILE_BYTES),
            ..state_file_rules(self.0.dir_and_owner().1)
        }
    }

    /// `file`'s entries; none if it does not exist.
    fn read(&self, file: &'static str) -> Result<Entries, ShortcutError> {
        let (dir, _) = self.0.dir_and_owner();
        let refused = |source| ShortcutError::Refused { file, source };
        let (opened, len) = match trusted_file::open_in(dir, Path::new(file), &self.rules()) {
            Ok(opened) => opened,
            Err(Refused::Missing) => {
                return Ok(Entries { entries: Vec::new() });
            }
            Err(e) => return Err(refused(e)),
        };
        let bytes = trusted_file::read_all(opened, len, MAX_FILE_BYTES).map_err(refused)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| ShortcutError::Corrupt { file })?;
        Ok(Entries {
            entries: parse(file, text)?,
        })
    }

    /// Runs `change` on `file`'s entries under the exclusive lock, drops the entries
    /// that ended by `now`, and replaces the file.
    fn change<T>(
        &self,
        file: &'static str,
        now: u64,
        change: impl FnOnce(&mut Vec<Entry>) -> T,
    ) -> Result<T, ShortcutError> {
        let (dir, euid) = self.0.dir_and_owner();
        let (lock, _) =
            trusted_file::open_or_create_in(dir, Path::new(LOCK_FILE), 0o600, &state_file_rules(euid))
                .map_err(|source| ShortcutError::Refused {
                    file: LOCK_FILE,
                    source,
                })?;
        wait_for_lock(&lock).map_err(ShortcutError::State)?;
        let mut entries = self.read(file)?.entries;
        let result = change(&mut entries);
        entries.retain(|entry| entry.until > now);
        let text: String = entries.iter().map(Entry::line).collect();
        trusted_file::replace(dir, Path::new(file), 0o600, text.as_bytes())
            .map_err(|source| ShortcutError::Replace { file, source })?;
        drop(lock);
        Ok(result)
    }
}

fn failure(e: ShortcutError) -> StoreFailure {
    StoreFailure::new(e)
}

fn checked_user(user: &str) -> Result<(), StoreFailure> {
    check_user_name(user).map_err(|_| failure(ShortcutError::BadUser))
}

impl Entries {
    fn live<'a>(&'a self, kind: &'static str, user: &'a str, now: u64) -> impl Iterator<Item = &'a Entry> {
        self.entries
            .iter()
            .filter(move |e| e.kind == kind && e.user == user && e.until > now)
    }
}

impl Shortcuts for FileStore {
    fn remembered_key(
        &self,
        config: &Config,
        user: &str,
        keys: &[KeyFingerprint],
        now: u64,
    ) -> Result<Option<(KeyFingerprint, u64)>, StoreFailure> {
        checked_user(user)?;
        let entries = Dir::open(config)
            .and_then(|dir| dir.read(KEYS_FILE))
            .map_err(failure)?;
        Ok(entries
            .live("key", user, now)
            .filter_map(|e| {
                keys.iter()
                    .find(|k| k.as_str() == e.value)
                    .map(|k| (k.clone(), e.until))
            })
            .max_by_key(|(_, until)| *until))
    }

    fn remember_keys(
        &self,
        config: &Config,
        user: &str,
        keys: &[KeyFingerprint],
        until: u64,
        now: u64,
    ) -> Result<(), StoreFailure> {
        checked_user(user)?;
        let dir = Dir::open(config).map_err(failure)?;
        dir.change(KEYS_FILE, now, |entries| {
            entries.retain(|e| !(e.user == user && keys.iter().any(|k| k.as_str() == e.value)));
            entries.extend(keys.iter().map(|key| Entry {
                kind: "key",
                user: user.to_owned(),
                value: key.as_str().to_owned(),
                until,
            }));
        })
        .map_err(failure)
    }

    fn expect_session(
        &self,
        config: &Config,
        user: &str,
        ticket: &Ticket,
        until: u64,
        now: u64,
    ) -> Result<(), StoreFailure> {
        checked_user(user)?;
        let dir = Dir::open(config).map_err(failure)?;
        dir.change(SESSIONS_FILE, now, |entries| {
            entries.push(Entry {
                kind: "ticket",
                user: user.to_owned(),
                value: ticket.digest(),
                until,
            });
        })
        .map_err(failure)
    }

    fn open_session(
        &self,
        config: &Config,
        user: &str,
        ticket: &Ticket,
        session: AuditSession,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreFailure> {
        checked_user(user)?;
        let digest = ticket.digest();
        let id = session.id().to_string();
        let dir = Dir::open(config).map_err(failure)?;
        dir.change(SESSIONS_FILE, now, |entries| {
            let before = entries.len();
            // Taken whatever happens next: a ticket is redeemed once.
            entries.retain(|e| !(e.kind == "ticket" && e.user == user && e.value == digest && e.until > now));
            if entries.len() == before {
                return false;
            }
            // An audit id belongs to one session: whatever it was verified for before
            // (another user's, an id reused after a reboot) is gone.
            entries.retain(|e| !(e.kind == "session" && e.value == id));
            entries.push(Entry {
                kind: "session",
                user: user.to_owned(),
                value: id,
                until,
            });
            true
        })
        .map_err(failure)
    }

    fn verified_session(
        &self,
        config: &Config,
        user: &str,
        session: AuditSession,
        now: u64,
    ) -> Result<Option<u64>, StoreFailure> {
        checked_user(user)?;
        let id = session.id().to_string();
        let entries = Dir::open(config)
            .and_then(|dir| dir.read(SESSIONS_FILE))
            .map_err(failure)?;
        Ok(entries
            .live("session", user, now)
            .filter(|e| e.value == id)
            .map(|e| e.until)
            .max())
    }

    fn close_session(
        &self,
        config: &Config,
        user: &str,
        session: AuditSession,
        now: u64,
    ) -> Result<(), StoreFailure> {
        checked_user(user)?;
        let id = session.id().to_string();
        let dir = Dir::open(config).map_err(failure)?;
        dir.change(SESSIONS_FILE, now, |entries| {
            entries.retain(|e| !(e.kind == "session" && e.user == user && e.value == id));
        })
        .map_err(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(dir: &Path) -> Config {
        Config {
            state_dir: dir.to_owned(),
            ..Config::default()
        }
    }

    fn state_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    fn key(n: u8) -> KeyFingerprint {
        KeyFingerprint::of_blob(&[n])
    }

    #[test]
    fn a_key_is_remembered_for_its_user_until_its_end() {
        let dir = state_dir();
        let config = config(dir.path());
        FileStore
            .remember_keys(&config, "alice", &[key(1)], 200, 100)
            .unwrap();
        assert_eq!(
            FileStore
                .remembered_key(&config, "alice", &[key(2), key(1)], 150)
                .unwrap(),
            Some((key(1), 200))
        );
        assert_eq!(
            FileStore
                .remembered_key(&config, "alice", &[key(2)], 150)
                .unwrap(),
            None
        );
        assert_eq!(
            FileStore.remembered_key(&config, "bob", &[key(1)], 150).unwrap(),
            None
        );
        assert_eq!(
            FileStore
                .remembered_key(&config, "alice", &[key(1)], 200)
                .unwrap(),
            None
        );
        let meta = std::fs::metadata(dir.path().join(KEYS_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Ended entries are dropped at the next change.
        FileStore
            .remember_keys(&config, "bob", &[key(3)], 400, 300)
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(!text.contains("alice"), "{text}");
    }

    #[test]
    fn a_ticket_verifies_one_session_of_its_user_once() {
        let dir = state_dir();
        let config = config(dir.path());
        let ticket = Ticket::new().unwrap();
        let session = AuditSession::parse("7").unwrap();
        FileStore
            .expect_session(&config, "alice", &ticket, 300, 0)
            .unwrap();
        assert!(
            !FileStore
                .open_session(&config, "bob", &ticket, session, 1000, 10)
                .unwrap()
        );
        assert!(
            FileStore
                .open_session(&config, "alice", &ticket, session, 1000, 10)
                .unwrap()
        );
        assert!(
            !FileStore
                .open_session(&config, "alice", &ticket, session, 1000, 10)
                .unwrap(),
            "once"
        );
        let text = std::fs::read_to_string(dir.path().join(SESSIONS_FILE)).unwrap();
        assert!(!text.contains(ticket.as_str()), "only the hash is kept");
        assert_eq!(
            FileStore.verified_session(&config, "alice", session, 20).unwrap(),
            Some(1000)
        );
        assert_eq!(
            FileStore.verified_session(&config, "bob", session, 20).unwrap(),
            None
        );
        let other = AuditSession::parse("8").unwrap();
        assert_eq!(
            FileStore.verified_session(&config, "alice", other, 20).unwrap(),
            None
        );
        assert_eq!(
            FileStore
                .verified_session(&config, "alice", session, 1000)
                .unwrap(),
            None
        );
        FileStore.close_session(&config, "alice", session, 30).unwrap();
        assert_eq!(
            FileStore.verified_session(&config, "alice", session, 40).unwrap(),
            None
        );
        // An expired ticket redeems nothing.
        let late = Ticket::new().unwrap();
        FileStore.expect_session(&config, "alice", &late, 300, 0).unwrap();
        assert!(
            !FileStore
                .open_session(&config, "alice", &late, session, 1000, 300)
                .unwrap()
        );
    }

    #[test]
    fn a_damaged_or_unsafe_file_is_an_error_not_a_pass() {
        let dir = state_dir();
        let config = config(dir.path());
        let path = dir.path().join(KEYS_FILE);
        for text in [
            "alice SHA256:x 99\n",
            "alice\n",
            &format!("alice {} 99 extra\n", key(1).as_str()),
            &format!(".x {} 99\n", key(1).as_str()),
        ] {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(
                FileStore.remembered_key(&config, "alice", &[key(1)], 0).is_err(),
                "{text}"
            );
        }
        std::fs::write(&path, format!("alice {} 99\n", key(1).as_str())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            FileStore.remembered_key(&config, "alice", &[key(1)], 0).is_err(),
            "readable by others"
        );
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert!(
            FileStore.remembered_key(&config, "alice", &[key(1)], 0).is_err(),
            "a symlink"
        );
        assert!(FileStore.remember_keys(&config, "../x", &[key(1)], 9, 0).is_err());
    }
}
