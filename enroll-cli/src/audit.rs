//! Audit lines for the admin: every change is written to syslog (authpriv) with who
//! did it. Never a secret or a code.

use syslog::{Facility, Formatter3164};

/// Logs `message` under `totp-enroll[pid]`; a host without a syslog socket loses the
/// line rather than failing the command.
pub fn record(message: &str) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "totp-enroll".into(),
        pid: std::process::id(),
    };
    if let Ok(mut logger) = syslog::unix(formatter) {
        let _ = logger.notice(message);
    }
}
