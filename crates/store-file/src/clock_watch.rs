//! The warning that this host's clock is not synchronised: the kernel's word
//! ([`pam_totp_os::clock_sync`]), at most once an hour per host (a marker's mtime in the
//! state directory, [`crate::state::StateDir::clock_warning_due`]). Both stores use it.

use std::time::SystemTime;

use pam_totp_config::Config;
use pam_totp_os::clock_sync::{self, ClockSync};

use crate::state::StateDir;

/// Whether the kernel says this host's clock is not synchronised.
#[must_use]
pub fn host_unsynchronised() -> bool {
    clock_sync::status() == ClockSync::Unsynchronised
}

/// Whether a login should log the warning now. Costs one `adjtimex` on a synchronised
/// host; a marker that cannot be used does not silence it.
#[must_use]
pub fn warning_due(config: &Config) -> bool {
    if !host_unsynchronised() {
        return false;
    }
    StateDir::open(&config.state_dir)
        .and_then(|dir| dir.clock_warning_due(SystemTime::now()))
        .unwrap_or(true)
}
