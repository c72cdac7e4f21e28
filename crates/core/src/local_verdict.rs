//! The verdict on an answer made on this host, from the record and the login state: what
//! the file store's [`crate::ports::Session::judge`] runs with the user's state file
//! locked. (The database store makes its verdict in the database and never sees a
//! record.)

use pam_totp_config::Config;

use crate::answer::{self, Answer};
use crate::clock_hint;
use crate::failed_report::FailedReport;
use crate::lockout;
use crate::login_state::{Channel, FailureSource, LoginState};
use crate::ports::Failure;
use crate::record::Record;
use crate::recovery::RecoveryVerdict;
use crate::verify::{self, Verdict};

/// The verdict on one answer, and the state to write durably before it is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalVerdict {
    /// `None`: accepted. Else the reason of the failure.
    pub failure: Option<Failure>,
    /// The new state: the step used or the code burnt, or one more failure.
    pub after: LoginState,
    /// Recovery codes left after this login, when one was used.
    pub recovery_left: Option<usize>,
    /// A refused code's clock offset ([`verify::clock_offset`]).
    pub clock_offset: Option<i64>,
    /// The failed attempts an acceptance ends.
    pub failed_since: Option<FailedReport>,
}

/// Judges `reply` against `record` and the state read under the lock (`state`), at
/// `now`, charging a failure to `channel` under `config`'s lock-out rule and noting it,
/// with `source` (the client), for the next good login's report.
#[must_use]
pub fn judge(
    config: &Config,
    record: &Record,
    state: LoginState,
    reply: &[u8],
    now: u64,
    channel: Channel,
    source: FailureSource,
) -> LocalVerdict {
    let answer = Answer::parse(reply, record);
    // A state of the previous version is converted here, where the period is known.
    let floor = state.replay_floor(record.period, now, config.window);
    let before = LoginState {
        used_until: floor,
        legacy_step: 0,
        ..state
    };
    // The record may say which step its enrollment was confirmed with (a user's
    // `totp-enroll` cannot write the root-only state): that code is used up too.
    let used_until = floor.max(record.confirmed_until);
    let failure_at = |reason, hinted: Option<(i64, u64)>| LocalVerdict {
        failure: Some(reason),
        after: LoginState {
            clock_offset: hinted.map_or(before.clock_offset, |(offset, _)| {
                i32::try_from(offset).unwrap_or(i32::MAX)
            }),
            hinted_step_start: hinted.map_or(before.hinted_step_start, |(_, start)| start),
            ..lockout::record_failure(&config.lockout(), before, now, channel).with_failure_noted(now, source)
        },
        recovery_left: None,
        clock_offset: hinted.map(|(offset, _)| offset),
        failed_since: None,
    };
    let failure = |reason| failure_at(reason, None);
    let success = |after: LoginState, recovery_left| LocalVerdict {
        failure: None,
        after: LoginState {
            failures_since_success: 0,
            ..after
        },
        recovery_left,
        clock_offset: None,
        failed_since: FailedReport::since(&before),
    };
    match &answer {
        Answer::Code(code) => match verify::check(record, code, now, config.window, used_until) {
            // The code a clock hint was given for is never accepted (see clock_hint).
            Verdict::Accepted { step } if clock_hint::burnt(&before, step, record.period) => {
                failure(Failure::ReplayedCode)
            }
            Verdict::Accepted { step } => success(
                LoginState {
                    used_until: verify::step_end(step, record.period),
                    last_success: now,
                    ..before.with_counters(channel, 0, 0)
                },
                None,
            ),
            Verdict::Replayed => failure(Failure::ReplayedCode),
            // Only a wrong code pays for the wider search: a right one costs what it did.
            Verdict::Invalid => failure_at(
                Failure::InvalidCode,
                clock_hint::hint(
                    &before,
                    verify::clock_offset(
                        record,
                        code,
                        now,
                        config.window,
                        used_until,
                        clock_hint::REACH_SECONDS,
                    ),
                    now,
                    record.period,
                    config.window,
                ),
            ),
        },
        Answer::Recovery(_) | Answer::Scratch(_) => match answer::check_answer(record, &answer, &before) {
            RecoveryVerdict::Accepted { used, remaining } => success(
                LoginState {
                    last_success: now,
                    recovery_epoch: record.recovery_epoch,
                    recovery_used: used,
                    ..before.with_counters(channel, 0, 0)
                },
                Some(remaining),
            ),
            RecoveryVerdict::AlreadyUsed => failure(Failure::RecoveryCodeAlreadyUsed),
            RecoveryVerdict::Invalid => failure(Failure::InvalidRecoveryCode),
        },
        Answer::Malformed => failure(Failure::MalformedCode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::RecoveryCode;

    #[test]
    fn a_recovery_code_is_burnt_once_and_its_second_use_counts_a_failure() {
        let config = Config {
            max_failures: 3,
            ..Config::default()
        };
        let codes: Vec<RecoveryCode> = (0..3)
            .map(|i| RecoveryCode::from_random(i, &[9; 11]).unwrap())
            .collect();
        let hashes = codes
            .iter()
            .map(|c| c.hash(b"saltsaltsaltsalt").unwrap())
            .collect();
        let record = Record::new(
            crate::secret::SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap(),
            pam_totp_config::algorithm::Algorithm::Sha1,
            6,
            30,
            String::new(),
        )
        .with_recovery(77, hashes);
        let typed = codes[1].display();
        let first = judge(
            &config,
            &record,
            LoginState::default(),
            typed.as_bytes(),
            1_000_000,
            Channel::Shared,
            FailureSource::default(),
        );
        assert_eq!(first.failure, None);
        assert_eq!(first.recovery_left, Some(2));
        assert_eq!(
            (first.after.recovery_epoch, first.after.recovery_used),
            (77, 0b10)
        );
        let again = judge(
            &config,
            &record,
            first.after,
            typed.as_bytes(),
            1_000_001,
            Channel::Shared,
            FailureSource::default(),
        );
        assert_eq!(again.failure, Some(Failure::RecoveryCodeAlreadyUsed));
        assert_eq!(again.after.failures, 1);
        assert_eq!(again.after.recovery_used, 0b10);
    }
}
