//! The SELinux label of a record `totp-enroll` writes into a home directory.
//!
//! On an SELinux host a new file takes its directory's type (`user_home_t`, or
//! `admin_home_t` in `/root`) and keeps it through a rename. Login programs such as
//! `local_login_t` may not read that type; they may read `auth_home_t`, which
//! `packaging/selinux/pam_totp.fc` gives `~/.pam_totp`. A named type transition cannot
//! help: it matches one exact file name, and the record is written under a temporary
//! name of its own per process (`record_store.rs`). So the temporary file is given the
//! record's type before the rename, its user, role and level kept; the policy lets
//! every user domain relabel its home files so (`tests/selinux_policy.rs` checks it).
//! No libselinux: without SELinux the file has no label and nothing happens.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io;

use rustix::fs::XattrFlags;
use rustix::io::Errno;

/// The type `pam_totp.fc` gives records in homes (`HOME_DIR/\.pam_totp`, `/root/.pam_totp`).
pub const HOME_RECORD_TYPE: &str = "auth_home_t";

/// The types a file created in a home directory gets by default.
const DEFAULT_HOME_TYPES: [&str; 2] = ["user_home_t", "admin_home_t"];

const ATTRIBUTE: &str = "security.selinux";

/// Gives `file` the type of a home record if it has a default home type.
///
/// # Errors
/// The label could not be read or changed (e.g. the policy forbids it).
pub fn label_as_home_record(file: &File) -> io::Result<()> {
    let mut buffer = [0u8; 512];
    let length = match rustix::fs::fgetxattr(file, ATTRIBUTE, &mut buffer[..]) {
        Ok(length) => length,
        Err(Errno::NODATA | Errno::NOTSUP) => return Ok(()),
        Err(errno) => return Err(errno.into()),
    };
    let current = String::from_utf8_lossy(buffer.get(..length).unwrap_or_default());
    match relabelled(current.trim_end_matches('\0')) {
        Some(context) => rustix::fs::fsetxattr(file, ATTRIBUTE, context.as_bytes(), XattrFlags::REPLACE)
            .map_err(io::Error::from),
        None => Ok(()),
    }
}

/// `user:role:TYPE:level` with the home record's type, if TYPE is a default home type.
fn relabelled(context: &str) -> Option<String> {
    let mut fields = context.splitn(4, ':');
    let (user, role, kind) = (fields.next()?, fields.next()?, fields.next()?);
    if !DEFAULT_HOME_TYPES.contains(&kind) {
        return None;
    }
    Some(match fields.next() {
        Some(level) => format!("{user}:{role}:{HOME_RECORD_TYPE}:{level}"),
        None => format!("{user}:{role}:{HOME_RECORD_TYPE}"),
    })
}

#[cfg(test)]
mod tests {
    use super::relabelled;

    #[test]
    fn a_default_home_type_becomes_the_record_type_keeping_user_role_and_level() {
        assert_eq!(
            relabelled("staff_u:object_r:user_home_t:s0:c0.c1023").as_deref(),
            Some("staff_u:object_r:auth_home_t:s0:c0.c1023")
        );
        assert_eq!(
            relabelled("unconfined_u:object_r:admin_home_t:s0").as_deref(),
            Some("unconfined_u:object_r:auth_home_t:s0")
        );
        assert_eq!(
            relabelled("user_u:object_r:user_home_t").as_deref(),
            Some("user_u:object_r:auth_home_t")
        );
    }

    #[test]
    fn other_types_are_left_alone() {
        // A system store's var_auth_t, an NFS home's nfs_t, a record already labelled.
        for context in [
            "system_u:object_r:var_auth_t:s0",
            "system_u:object_r:nfs_t:s0",
            "staff_u:object_r:auth_home_t:s0",
            "garbage",
        ] {
            assert_eq!(relabelled(context), None, "{context}");
        }
    }

    #[test]
    fn without_selinux_a_file_is_left_as_it_is() {
        let file = tempfile::tempfile().unwrap();
        super::label_as_home_record(&file).unwrap();
    }
}
