//! Who is logging in: the user name PAM gave us, checked, and looked up in passwd.

use std::fmt;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid, User};

/// Longest user name we accept; passwd tools stop at 32, file names at 255.
pub const MAX_USER_NAME: usize = 64;

/// A user known to the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
}

/// Why a user name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    /// Empty, too long, or with characters that could make it a path (`/`, `..`, NUL).
    InvalidName,
    /// No such user in the password database.
    Unknown,
    /// The password database could not be asked.
    Lookup(nix::Error),
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::InvalidName => f.write_str("user name is not acceptable"),
            AccountError::Unknown => f.write_str("unknown user"),
            AccountError::Lookup(e) => write!(f, "user lookup failed: {e}"),
        }
    }
}

impl std::error::Error for AccountError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AccountError::Lookup(e) => Some(e),
            AccountError::InvalidName | AccountError::Unknown => None,
        }
    }
}

/// Checks that a user name is safe to use as a file name and in templates.
///
/// # Errors
/// [`AccountError::InvalidName`].
pub fn check_user_name(name: &str) -> Result<(), AccountError> {
    let acceptable = !name.is_empty()
        && name.len() <= MAX_USER_NAME
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != '/' && c != ':');
    if acceptable {
        Ok(())
    } else {
        Err(AccountError::InvalidName)
    }
}

impl Account {
    /// Looks a user up by name.
    ///
    /// # Errors
    /// An unacceptable name, an unknown user, or a failed lookup.
    pub fn lookup(name: &str) -> Result<Account, AccountError> {
        check_user_name(name)?;
        let user = User::from_name(name)
            .map_err(AccountError::Lookup)?
            .ok_or(AccountError::Unknown)?;
        Ok(Account {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
        })
    }

    /// An account known by its name alone, for a store whose paths and checks need nothing
    /// else: a system store (`secret_path` without `~` or `${HOME}`), where records belong to
    /// root and are read as root. Its uid and gid are `(uid_t)-1`, which owns no file, and
    /// its home is empty: a use that needed passwd would find nothing, not someone else's.
    ///
    /// # Errors
    /// [`AccountError::InvalidName`], as for [`Account::lookup`].
    pub fn name_only(name: &str) -> Result<Account, AccountError> {
        check_user_name(name)?;
        Ok(Account {
            name: name.to_owned(),
            uid: Uid::from_raw(u32::MAX),
            gid: Gid::from_raw(u32::MAX),
            home: PathBuf::new(),
        })
    }

    /// Looks a user up by uid (the command's caller).
    ///
    /// # Errors
    /// An unknown uid or a failed lookup.
    pub fn by_uid(uid: Uid) -> Result<Account, AccountError> {
        let user = User::from_uid(uid)
            .map_err(AccountError::Lookup)?
            .ok_or(AccountError::Unknown)?;
        check_user_name(&user.name)?;
        Ok(Account {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
        })
    }
}

/// This host's name (`gethostname`), as the authenticator app shows it; `localhost`
/// when it cannot be had.
#[must_use]
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_like_names_are_refused() {
        for name in [
            "",
            "a/b",
            "..",
            ".hidden",
            "-rf",
            "a b",
            "x\0y",
            "a:b",
            &"u".repeat(300),
        ] {
            assert_eq!(check_user_name(name), Err(AccountError::InvalidName), "{name:?}");
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        for name in ["root", "alice", "ec-bob", "svc_backup", "user.name", "alice@EDU"] {
            assert_eq!(check_user_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_name_only_account_is_checked_and_owns_nothing() {
        assert_eq!(Account::name_only("../etc"), Err(AccountError::InvalidName));
        let account = Account::name_only("alice").unwrap();
        assert_eq!((account.uid.as_raw(), account.gid.as_raw()), (u32::MAX, u32::MAX));
        assert_eq!(account.home, PathBuf::new());
    }

    #[test]
    fn root_is_found_and_strangers_are_not() {
        assert_eq!(Account::lookup("root").map(|a| a.uid), Ok(Uid::from_raw(0)));
        assert_eq!(
            Account::lookup("no-such-user-pam-totp"),
            Err(AccountError::Unknown)
        );
    }
}
