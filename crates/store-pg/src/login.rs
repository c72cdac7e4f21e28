//! What a host does at login, through the schema's SECURITY DEFINER functions (migration
//! 0003): before the prompt, whether the user is enrolled and allowed here and whether
//! they are locked out (`host_lookup`); after it, the answer itself, which the database
//! checks with its own clock and policy (`host_verify`). Nothing a host receives holds a
//! secret, a hash, or anything a code can be computed from.

use tokio_postgres::Row;

use crate::{Client, DbError, from_db};
use pam_totp_core::failed_report::FailedReport;
use pam_totp_core::login_state::FailureSource;
use pam_totp_os::account::check_user_name;

/// The longest answer a host sends; a longer one the host refuses as malformed itself.
pub const MAX_ANSWER_CHARS: usize = 64;
/// The longest client description (`PAM_RHOST` or tty) sent for the failed-attempts report.
pub const MAX_SOURCE_CHARS: usize = 64;

/// What `host_lookup` says about a user, on this host's realms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Enrolled in one of this host's realms; locked out until this Unix time (0: not).
    Enrolled {
        locked_until: u64,
    },
    NotEnrolled,
    /// Not enrolled, and reset by an admin (`totp-enroll reset`): to enroll at the next
    /// login (migration 0006).
    MarkedForEnrollment,
    /// Enrolled or not, the user is in none of this host's realms.
    NotAllowed,
}

/// What `host_verify` decided, as the database recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    AcceptedRecovery,
    InvalidCode,
    ReplayedCode,
    InvalidRecoveryCode,
    RecoveryCodeAlreadyUsed,
    MalformedCode,
    LockedOut,
    NotEnrolled,
    NotAllowed,
}

impl Verdict {
    fn from_db(text: &str) -> Option<Verdict> {
        Some(match text {
            "accepted" => Verdict::Accepted,
            "accepted_recovery" => Verdict::AcceptedRecovery,
            "invalid_code" => Verdict::InvalidCode,
            "replayed_code" => Verdict::ReplayedCode,
            "invalid_recovery_code" => Verdict::InvalidRecoveryCode,
            "recovery_code_already_used" => Verdict::RecoveryCodeAlreadyUsed,
            "malformed_code" => Verdict::MalformedCode,
            "locked_out" => Verdict::LockedOut,
            "not_enrolled" => Verdict::NotEnrolled,
            "not_allowed" => Verdict::NotAllowed,
            _ => return None,
        })
    }
}

/// `host_verify`'s row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub verdict: Verdict,
    /// The user's failures on that channel after this attempt.
    pub failures: u32,
    /// The lock-out after this attempt, and before it (Unix time, 0: none).
    pub locked_until: u64,
    pub locked_until_before: u64,
    /// Recovery codes left after [`Verdict::AcceptedRecovery`].
    pub recovery_left: Option<u32>,
    /// After [`Verdict::InvalidCode`]: the code was right this many seconds from the
    /// database's clock, outside the window (migration 0004).
    pub clock_offset: Option<i64>,
    /// After an acceptance: the failed attempts it ended (migration 0004).
    pub failed_since: Option<FailedReport>,
}

fn query_error(action: &'static str) -> impl Fn(tokio_postgres::Error) -> DbError {
    move |source| DbError::Query { action, source }
}

/// Whether `user` may log in here and is enrolled, and their lock-out on the console's
/// counters (`console`) or the shared ones.
///
/// # Errors
/// The call failed or timed out, or answered what this build does not know.
pub fn lookup(client: &mut Client, user: &str, console: bool) -> Result<Status, DbError> {
    const ACTION: &str = "look up the user";
    check_user_name(user).map_err(|_| DbError::BadUser)?;
    let rows = client.query(
        ACTION,
        "SELECT status, locked_until FROM pam_totp.host_lookup($1, $2)",
        &[&user, &console],
    )?;
    let row = rows.first().ok_or(DbError::NoResultRow { action: ACTION })?;
    let status: String = row.try_get(0).map_err(query_error(ACTION))?;
    let locked_until: Option<i64> = row.try_get(1).map_err(query_error(ACTION))?;
    match status.as_str() {
        "enrolled" => Ok(Status::Enrolled {
            locked_until: from_db(locked_until.unwrap_or(0)),
        }),
        "not_enrolled" => Ok(Status::NotEnrolled),
        "enroll" => Ok(Status::MarkedForEnrollment),
        "not_allowed" => Ok(Status::NotAllowed),
        _ => Err(DbError::UnknownAnswer { action: ACTION }),
    }
}

/// Sends `answer` (trimmed, at most [`MAX_ANSWER_CHARS`]) for the database to judge,
/// charged to the console's counters (`console`) or the shared ones; `source` (the
/// client, cut to [`MAX_SOURCE_CHARS`]) is kept for the failed-attempts report.
///
/// # Errors
/// The call failed or timed out (nothing was accepted), or answered what this build
/// does not know.
pub fn verify(
    client: &mut Client,
    user: &str,
    answer: &str,
    console: bool,
    source: &str,
) -> Result<Verified, DbError> {
    const ACTION: &str = "check the answer";
    check_user_name(user).map_err(|_| DbError::BadUser)?;
    let source: String = source.chars().take(MAX_SOURCE_CHARS).collect();
    let rows = client.query(
        ACTION,
        "SELECT verdict, failures, locked_until, locked_until_before, recovery_left, \
         offset_seconds, failures_before, last_failure, last_failure_source \
         FROM pam_totp.host_verify($1, $2, $3, $4)",
        &[&user, &answer, &console, &source],
    )?;
    let row = rows.first().ok_or(DbError::NoResultRow { action: ACTION })?;
    verified_from_row(row, ACTION)
}

fn verified_from_row(row: &Row, action: &'static str) -> Result<Verified, DbError> {
    let verdict: String = row.try_get(0).map_err(query_error(action))?;
    let verdict = Verdict::from_db(&verdict).ok_or(DbError::UnknownAnswer { action })?;
    let count = |value: Option<i32>| value.and_then(|n| u32::try_from(n).ok());
    let time = |value: Option<i64>| value.map_or(0, from_db);
    let offset: Option<i32> = row.try_get(5).map_err(query_error(action))?;
    let failures_before = count(row.try_get(6).map_err(query_error(action))?).filter(|n| *n > 0);
    let last_failure = time(row.try_get(7).map_err(query_error(action))?);
    let source: Option<String> = row.try_get(8).map_err(query_error(action))?;
    let failed_since = failures_before.map(|count| FailedReport {
        count,
        last_at: last_failure,
        source: FailureSource::new(source.as_deref().unwrap_or(""), MAX_SOURCE_CHARS * 4),
    });
    Ok(Verified {
        verdict,
        failures: count(row.try_get(1).map_err(query_error(action))?).unwrap_or(0),
        locked_until: time(row.try_get(2).map_err(query_error(action))?),
        locked_until_before: time(row.try_get(3).map_err(query_error(action))?),
        recovery_left: count(row.try_get(4).map_err(query_error(action))?),
        clock_offset: offset.map(i64::from),
        failed_since,
    })
}
