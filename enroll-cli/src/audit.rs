//! Audit lines for the admin: every change, and every refused attempt, is written to
//! syslog (authpriv) with who did it. Never a secret or a code.

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

/// Logs a refused action (exit 1): what was tried, for whom, by whom, and why.
pub fn refusal(action: &str, user: Option<&str>, reason: &str) {
    let uid = nix::unistd::getuid();
    let caller = pam_totp_os::account::Account::by_uid(uid).map_or_else(|_| format!("uid {uid}"), |a| a.name);
    let user = user.unwrap_or(&caller);
    // One line per refusal, whatever the message's layout.
    let reason = reason.replace('\n', " ");
    record(&format!(
        "user={user} {action} refused for {caller} (uid {uid}): {reason}"
    ));
}
