//! Failed attempts shown at the next good login, as `pam_lastlog showfailed` does: how
//! many since the previous success, and the last one's source and time (UTC).

pub use crate::ports::FailedReport;
use crate::ports::{Conversation, Settled, client_field};

/// "3 failed verification codes since your last login, the last from 192.0.2.7 at
/// 14:02 UTC." (the date too when that was not today, UTC).
#[must_use]
pub fn message(report: &FailedReport, now: u64) -> String {
    let plural = if report.count == 1 { "" } else { "s" };
    let source = report.source.as_str();
    let from = if source.is_empty() {
        String::new()
    } else {
        format!(" from {}", client_field(source))
    };
    // `YYYY-MM-DDTHH:MM:SSZ`
    let stamp = pam_totp_config::clock::rfc3339(report.last_at);
    let (date, time) = (stamp.get(..10).unwrap_or(""), stamp.get(11..16).unwrap_or(""));
    let today = pam_totp_config::clock::rfc3339(now);
    let on = if today.get(..10) == Some(date) {
        String::new()
    } else {
        format!(" on {date}")
    };
    format!(
        "{} failed verification code{plural} since your last login, the last{from} at {time} UTC{on}.",
        report.count
    )
}

/// Shows the report a successful verdict carries, if any.
pub fn tell(settled: &Settled, now: u64, conv: &mut dyn Conversation) {
    if let Some(report) = &settled.failed_since {
        conv.show_info(&message(report, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login_state::{FailureSource, LoginState};

    #[test]
    fn the_report_says_count_source_and_time_in_utc() {
        // 2026-11-30 14:02:09 UTC
        let at = 1_796_047_329;
        let report = FailedReport {
            count: 3,
            last_at: at,
            source: FailureSource::new("192.0.2.7", 64),
        };
        assert_eq!(
            message(&report, at + 600),
            "3 failed verification codes since your last login, the last from 192.0.2.7 at 14:02 UTC."
        );
        let one = FailedReport {
            count: 1,
            source: FailureSource::new("", 64),
            ..report
        };
        assert_eq!(
            message(&one, at + 2 * 86_400),
            "1 failed verification code since your last login, the last at 14:02 UTC on 2026-11-30."
        );
        let hostile = FailedReport {
            source: FailureSource::new("evil\nhost", 64),
            ..report
        };
        assert!(message(&hostile, at).contains("from evil?host at"));
    }

    #[test]
    fn no_failures_no_report() {
        assert_eq!(FailedReport::since(&LoginState::default()), None);
        let state = LoginState {
            failures_since_success: 2,
            last_failure: 5,
            last_failure_source: FailureSource::new("pts/1", 64),
            ..LoginState::default()
        };
        assert_eq!(
            FailedReport::since(&state).map(|r| (r.count, r.last_at, r.source.as_str().to_owned())),
            Some((2, 5, "pts/1".to_owned()))
        );
    }
}
