//! The host's users and groups (NSS passwd and group) and its name, as the login flow's
//! [`Accounts`] port: the module's and the tests' one way to ask them.

use std::ffi::CString;

use nix::unistd::{self, Gid, Group};
use pam_totp_core::ports::Accounts;
use pam_totp_os::account::{Account, AccountError};

/// [`Accounts`] over this host's databases.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemAccounts;

impl Accounts for SystemAccounts {
    fn user(&self, name: &str) -> Result<Account, AccountError> {
        Account::lookup(name)
    }

    fn groups_of(&self, account: &Account) -> Result<Vec<Gid>, AccountError> {
        // A looked-up name holds no NUL (`check_user_name`); one that did names no one.
        let name = CString::new(account.name.as_bytes()).map_err(|_| AccountError::InvalidName)?;
        unistd::getgrouplist(&name, account.gid).map_err(AccountError::Lookup)
    }

    fn group_id(&self, name: &str) -> Result<Option<Gid>, AccountError> {
        Ok(Group::from_name(name)
            .map_err(AccountError::Lookup)?
            .map(|group| group.gid))
    }

    fn host_name(&self) -> String {
        pam_totp_os::account::host_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_in_the_root_group_and_strangers_are_unknown() {
        let root = SystemAccounts.user("root").unwrap();
        let gid = SystemAccounts.group_id("root").unwrap().unwrap();
        assert!(SystemAccounts.groups_of(&root).unwrap().contains(&gid));
        assert_eq!(SystemAccounts.group_id("no-such-group-pamtotp"), Ok(None));
        assert_eq!(
            SystemAccounts.user("no-such-user-pamtotp"),
            Err(AccountError::Unknown)
        );
    }
}
