//! Acting with a user's file-system rights while the process stays root.
//!
//! Reading a record in a home directory as root is how oath-toolkit's CVE-2024-47191
//! happened: a symlink planted by the user made root touch a file of the user's
//! choosing. With the file-system uid, gid and groups of the user, the kernel itself
//! refuses anything the user could not do, and root-squashed NFS homes become readable.

use std::ffi::CString;
use std::io;

use nix::unistd::{self, Gid, Uid};

use crate::account::Account;

/// Holds a user's file-system identity until dropped, then restores root's.
#[derive(Debug)]
#[must_use = "the rights are given back when this is dropped"]
pub struct UserRights {
    saved: Option<Saved>,
}

#[derive(Debug)]
struct Saved {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
}

impl UserRights {
    /// Takes on `account`'s file-system rights. A process that is not root already has
    /// no more rights than its own, so there is nothing to switch and this is a no-op.
    ///
    /// # Errors
    /// The groups could not be read or set, or the kernel refused the switch.
    pub fn assume(account: &Account) -> io::Result<UserRights> {
        if !unistd::geteuid().is_root() || account.uid.is_root() {
            return Ok(UserRights { saved: None });
        }
        let name = CString::new(account.name.as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let groups = unistd::getgrouplist(&name, account.gid).map_err(io::Error::from)?;
        let previous_groups = unistd::getgroups().map_err(io::Error::from)?;
        unistd::setgroups(&groups).map_err(io::Error::from)?;
        let fs_group = unistd::setfsgid(account.gid);
        let fs_user = unistd::setfsuid(account.uid);
        let rights = UserRights {
            saved: Some(Saved {
                uid: fs_user,
                gid: fs_group,
                groups: previous_groups,
            }),
        };
        // setfsuid reports no errors; asking again returns the identity now in force.
        if unistd::setfsuid(account.uid) != account.uid || unistd::setfsgid(account.gid) != account.gid {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "setfsuid/setfsgid refused",
            ));
        }
        Ok(rights)
    }
}

impl Drop for UserRights {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            unistd::setfsuid(saved.uid);
            unistd::setfsgid(saved.gid);
            // Nothing sensible can be done if this fails, and a panic here would be
            // worse; the groups only matter for further file access in this process.
            let _ = unistd::setgroups(&saved.groups);
        }
    }
}
