//! This process's kernel audit session id (`/proc/self/sessionid`), which
//! `pam_loginuid` sets when a session opens and no process can choose or change later
//! (`step_up_seconds`). The text only: `pam_totp_core::step_up::AuditSession` decides
//! what it means (4294967295: unset).

use std::io::{self, Read};
use std::os::fd::AsFd;

use nix::sys::statfs::{PROC_SUPER_MAGIC, fstatfs};

const SESSION_ID: &str = "/proc/self/sessionid";

/// The text of `/proc/self/sessionid`, read only from a procfs (a file mounted over it
/// is refused: `ErrorKind::InvalidData`).
///
/// # Errors
/// No such file (a kernel without audit), not procfs, or unreadable.
pub fn session_id_text() -> io::Result<String> {
    let file = std::fs::File::open(SESSION_ID)?;
    let on_proc = fstatfs(file.as_fd()).map_err(io::Error::from)?.filesystem_type() == PROC_SUPER_MAGIC;
    if !on_proc {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not on procfs"));
    }
    let mut text = String::new();
    file.take(16).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_session_id_is_a_number() {
        let text = super::session_id_text().unwrap();
        assert!(text.trim_end().parse::<u32>().is_ok(), "{text:?}");
    }
}
