//! Who runs the command and for whom: the rules that keep users to their own records.

use nix::unistd::{Uid, getuid};
use pam_totp_os::account::Account;

use crate::error::{CliError, CliResult};

/// The user acted on, and whether the caller may act with root's powers.
#[derive(Debug)]
pub struct Target {
    pub account: Account,
    pub caller_name: String,
    pub caller_is_root: bool,
}

/// Resolves `--user` against the real uid: root may name anyone; others only themselves.
pub fn resolve(user: Option<&str>) -> CliResult<Target> {
    let uid: Uid = getuid();
    let caller =
        Account::by_uid(uid).map_err(|e| CliError::failed(format!("cannot identify you (uid {uid})"), e))?;
    let account = match user {
        None => caller.clone(),
        Some(name) => Account::lookup(name).map_err(|e| CliError::BadOption {
            option: format!("--user {name}"),
            cause: e.into(),
        })?,
    };
    if account.uid != caller.uid && !uid.is_root() {
        return Err(CliError::NotAllowed(format!(
            "only root can act for another user (you are {}, not {}); leave out --user to act \
             for yourself, or ask your administrator",
            caller.name, account.name
        )));
    }
    Ok(Target {
        account,
        caller_name: caller.name,
        caller_is_root: uid.is_root(),
    })
}
