//! The files of this host as `totp-enroll`'s [`AdminStore`]: record files written
//! atomically (with the user's rights in a home store), state files changed under their
//! lock. Messages name the file and the problem, never the content.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use pam_totp_config::{Config, StoreKind};
use pam_totp_core::login_state::LoginState;
use pam_totp_core::ports::{AdminFailure, AdminPlace, AdminStore, StoreFailure, Stored, Unlocked};
use pam_totp_os::account::Account;

use crate::FileStore;
use crate::record_store::{RecordLocation, StoreError};
use crate::state::{StateDir, StateError};

impl AdminStore for FileStore {
    fn place<'a>(
        &'a mut self,
        config: &Config,
        account: &Account,
    ) -> Result<Box<dyn AdminPlace + 'a>, AdminFailure> {
        let location = location(config, account)?;
        Ok(Box::new(FilePlace {
            location,
            state_dir: config.state_dir.clone(),
        }))
    }

    fn accounts(&mut self, config: &Config) -> Result<Vec<Account>, AdminFailure> {
        let mut accounts = Vec::new();
        for name in candidates(config) {
            let Ok(account) = Account::lookup(&name) else {
                continue;
            };
            // An account without a home (/nonexistent) shows no record.
            if matches!(
                location(config, &account)?.exists(),
                Err(StoreError::MissingDirectory { .. })
            ) {
                continue;
            }
            accounts.push(account);
        }
        Ok(accounts)
    }
}

fn location(config: &Config, account: &Account) -> Result<RecordLocation, AdminFailure> {
    RecordLocation::for_account(config.files(), account.clone()).map_err(|e| {
        AdminFailure::Settings(StoreFailure::described(
            format!("{e} (in {})", config.secret_path),
            e,
        ))
    })
}

/// Names that may have a record here: passwd's, the state files', and a system store's
/// files.
fn candidates(config: &Config) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Ok(out) = Command::new("getent").arg("passwd").output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(name) = line.split(':').next() {
                names.insert(name.to_owned());
            }
        }
    }
    let state_names = std::fs::read_dir(&config.state_dir)
        .into_iter()
        .flatten()
        .flatten();
    for entry in state_names {
        if let Some(name) = entry.file_name().to_str().and_then(|n| n.strip_suffix(".state")) {
            names.insert(name.to_owned());
        }
    }
    if config.store_kind() == StoreKind::System
        && let Some(dir) = config.secret_path.strip_suffix("/${USER}")
    {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Some(name) = entry.file_name().to_str() {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// One user's record file and state file.
struct FilePlace {
    location: RecordLocation,
    state_dir: PathBuf,
}

impl AdminPlace for FilePlace {
    fn describe(&self) -> String {
        self.location.path.display().to_string()
    }

    fn root_only(&self) -> Option<PathBuf> {
        (self.location.kind == StoreKind::System).then(|| self.location.path.clone())
    }

    fn exists(&mut self) -> Result<bool, StoreFailure> {
        self.location
            .exists()
            .map_err(|e| StoreFailure::described(format!("{}: {e}", self.location.path.display()), e))
    }

    fn read_stored(&mut self) -> Result<Stored, StoreFailure> {
        Ok(match self.location.read_stored() {
            Ok(stored) => Stored::Found(stored),
            Err(StoreError::NotFound(proof)) => Stored::Missing(proof),
            Err(e @ StoreError::MissingDirectory { .. }) => Stored::Unproven(StoreFailure::new(e)),
            Err(other) => Stored::Unusable(StoreFailure::new(other)),
        })
    }

    fn write(&mut self, text: &str) -> Result<(), StoreFailure> {
        self.location.write_text(text).map_err(|e| {
            StoreFailure::described(
                format!("cannot write {}: {e}; nothing was changed", self.describe()),
                e,
            )
        })
    }

    fn write_new(&mut self, text: &str) -> Result<bool, StoreFailure> {
        if self.exists()? {
            return Ok(false);
        }
        self.write(text).map(|()| true)
    }

    fn remove(&mut self) -> Result<bool, StoreFailure> {
        let existed = self.exists()?;
        self.location.remove().map_err(|e| {
            StoreFailure::described(format!("cannot remove {}: {e}", self.location.path.display()), e)
        })?;
        reset_state(&self.state_dir, &self.location.account.name).map_err(StoreFailure::new)?;
        Ok(existed)
    }

    fn peek_state(&mut self) -> Result<Option<LoginState>, StoreFailure> {
        peek_state(&self.state_dir, &self.location.account.name).map_err(StoreFailure::new)
    }

    fn unlock(&mut self) -> Result<Unlocked, StoreFailure> {
        unlock_state(&self.state_dir, &self.location.account.name).map_err(StoreFailure::new)
    }

    fn carry_state(&mut self, state: &LoginState) -> Result<(), StoreFailure> {
        let user = &self.location.account.name;
        raise_used_until(&self.state_dir, user, state.used_until)
            .map_err(|e| StoreFailure::described(format!("login state of {user}: {e}"), e))
    }
}

/// The login state of `user` as the module last left it; `None` if the user never
/// logged in (or the state directory does not exist yet).
///
/// # Errors
/// The state directory or file is unusable.
pub fn peek_state(state_dir: &Path, user: &str) -> Result<Option<LoginState>, StateError> {
    if !state_dir.exists() {
        return Ok(None);
    }
    StateDir::open(state_dir)?.peek(user)
}

/// After a removal: failures, lock-outs and burns go; replay protection stays.
fn reset_state(state_dir: &Path, user: &str) -> Result<(), StateError> {
    if !state_dir.exists() {
        return Ok(());
    }
    let dir = StateDir::open(state_dir)?;
    if !dir.peek(user).is_ok_and(|state| state.is_some()) {
        return Ok(());
    }
    let mut locked = match dir.lock(user) {
        Err(StateError::Corrupt) => {
            dir.remove(user)?;
            dir.lock(user)?
        }
        other => other?,
    };
    let before = locked.state();
    locked.save(LoginState {
        used_until: before.used_until,
        legacy_step: before.legacy_step,
        ..LoginState::default()
    })
}

fn unlock_state(state_dir: &Path, user: &str) -> Result<Unlocked, StateError> {
    let dir = StateDir::open(state_dir)?;
    let mut started_afresh = false;
    let mut locked = match dir.lock(user) {
        Err(StateError::Corrupt) => {
            started_afresh = true;
            dir.remove(user)?;
            dir.lock(user)?
        }
        other => other?,
    };
    let before = locked.state();
    locked.save(LoginState {
        failures: 0,
        locked_until: 0,
        console_failures: 0,
        console_locked_until: 0,
        ..before
    })?;
    Ok(Unlocked {
        failures: before.failures.saturating_add(before.console_failures),
        started_afresh,
    })
}

/// Raises the state file's `used_until` to `until` (a Unix time).
fn raise_used_until(state_dir: &Path, user: &str, until: u64) -> Result<(), StateError> {
    if until == 0 {
        return Ok(());
    }
    let dir = StateDir::open(state_dir)?;
    let mut locked = dir.lock(user)?;
    let before = locked.state();
    if before.used_until < until {
        locked.save(LoginState {
            used_until: until,
            ..before
        })?;
    }
    Ok(())
}
