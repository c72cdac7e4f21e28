//! What a host does at login, through the schema's SECURITY DEFINER functions: each
//! names one user, so the host role can neither list users nor dump records.

use tokio_postgres::Row;
use zeroize::Zeroizing;

use crate::{Client, DbError, bits_from_db, bits_to_db, from_db, to_db};
use pam_totp_config::Config;
use pam_totp_core::login_state::{Channel, LoginState};
use pam_totp_os::account::check_user_name;

/// A user's record text (TOML, as in a record file) and login state.
pub struct Found {
    pub record: Zeroizing<String>,
    pub state: LoginState,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Found(record redacted, {:?})", self.state)
    }
}

/// The outcome of charging an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Counted as a failure (and a lock-out started if it was the one too many), to be
    /// undone by an accepted answer. The state after the charge.
    Charged(LoginState),
    /// Locked out: nothing counted, the answer must not be checked.
    LockedOut(LoginState),
}

/// The state columns, in the order [`state_from_row`] reads them.
pub(crate) const STATE_COLUMNS: &str = "used_until, failures, locked_until, console_failures, \
     console_locked_until, last_success, recovery_epoch, recovery_used";

/// Reads a state from `row`, columns `from..from + 8` ([`STATE_COLUMNS`]).
pub(crate) fn state_from_row(row: &Row, from: usize, action: &'static str) -> Result<LoginState, DbError> {
    let q = |source| DbError::Query { action, source };
    let count = |at: usize| -> Result<u32, DbError> {
        Ok(u32::try_from(row.try_get::<_, i32>(at).map_err(q)?).unwrap_or(0))
    };
    Ok(LoginState {
        used_until: from_db(row.try_get(from).map_err(q)?),
        legacy_step: 0,
        failures: count(from + 1)?,
        locked_until: from_db(row.try_get(from + 2).map_err(q)?),
        console_failures: count(from + 3)?,
        console_locked_until: from_db(row.try_get(from + 4).map_err(q)?),
        last_success: from_db(row.try_get(from + 5).map_err(q)?),
        recovery_epoch: bits_from_db(row.try_get(from + 6).map_err(q)?),
        recovery_used: bits_from_db(row.try_get(from + 7).map_err(q)?),
    })
}

/// `user`'s record and state; `None` if not enrolled.
///
/// # Errors
/// The call failed or timed out.
pub fn read(client: &mut Client, user: &str) -> Result<Option<Found>, DbError> {
    const ACTION: &str = "read the record";
    check_user_name(user).map_err(|_| DbError::BadUser)?;
    let rows = client.query(ACTION, "SELECT * FROM pam_totp.login_read($1)", &[&user])?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let record = Zeroizing::new(row.try_get::<_, String>(0).map_err(|source| DbError::Query {
        action: ACTION,
        source,
    })?);
    Ok(Some(Found {
        record,
        state: state_from_row(row, 1, ACTION)?,
    }))
}

/// Charges one attempt as a failure on `channel`'s counters under `config`'s lock-out
/// rule, before the answer is checked; `None` if the user has no record (any more).
///
/// # Errors
/// The call failed or timed out.
pub fn charge(
    client: &mut Client,
    config: &Config,
    user: &str,
    now: u64,
    channel: Channel,
) -> Result<Option<Charge>, DbError> {
    const ACTION: &str = "count the attempt";
    check_user_name(user).map_err(|_| DbError::BadUser)?;
    let max_failures = i32::try_from(config.max_failures).unwrap_or(i32::MAX);
    let rows = client.query(
        ACTION,
        "SELECT * FROM pam_totp.login_charge($1, $2, $3, $4, $5, $6)",
        &[
            &user,
            &to_db(now),
            &max_failures,
            &to_db(config.lockout_seconds),
            &to_db(config.lockout_max_seconds),
            &(channel == Channel::Console),
        ],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let charged: bool = row.try_get(0).map_err(|source| DbError::Query {
        action: ACTION,
        source,
    })?;
    let state = state_from_row(row, 1, ACTION)?;
    Ok(Some(if charged {
        Charge::Charged(state)
    } else {
        Charge::LockedOut(state)
    }))
}

fn one_bool(rows: &[Row], action: &'static str) -> Result<bool, DbError> {
    let row = rows.first().ok_or_else(|| DbError::NoResultRow { action })?;
    row.try_get(0).map_err(|source| DbError::Query { action, source })
}

/// Accepts the step from Unix time `starts` to `ends` only if it starts at or after the
/// user's `used_until`, clearing `channel`'s failures (the charge included). `false`:
/// another login used this step or a later one first.
///
/// # Errors
/// The call failed or timed out: nothing was accepted.
pub fn accept_step(
    client: &mut Client,
    user: &str,
    starts: u64,
    ends: u64,
    now: u64,
    channel: Channel,
) -> Result<bool, DbError> {
    const ACTION: &str = "accept the code";
    let rows = client.query(
        ACTION,
        "SELECT pam_totp.login_accept_step($1, $2, $3, $4, $5)",
        &[
            &user,
            &to_db(starts),
            &to_db(ends),
            &to_db(now),
            &(channel == Channel::Console),
        ],
    )?;
    one_bool(&rows, ACTION)
}

/// Burns code `index` of the recovery set `epoch` (of `count` codes), clearing
/// `channel`'s failures. `false`: that code was burnt already (perhaps on another host
/// just now).
///
/// # Errors
/// The call failed or timed out: nothing was burnt.
pub fn burn_recovery(
    client: &mut Client,
    user: &str,
    epoch: u64,
    count: usize,
    index: usize,
    now: u64,
    channel: Channel,
) -> Result<bool, DbError> {
    const ACTION: &str = "burn the recovery code";
    let valid = match count {
        0 => 0,
        n if n >= 64 => u64::MAX,
        n => (1u64 << n) - 1,
    };
    let bit = u32::try_from(index)
        .ok()
        .and_then(|i| 1u64.checked_shl(i))
        .ok_or_else(|| DbError::RecoveryIndex)?;
    let rows = client.query(
        ACTION,
        "SELECT pam_totp.login_burn_recovery($1, $2, $3, $4, $5, $6)",
        &[
            &user,
            &bits_to_db(epoch),
            &bits_to_db(valid),
            &bits_to_db(bit),
            &to_db(now),
            &(channel == Channel::Console),
        ],
    )?;
    one_bool(&rows, ACTION)
}
