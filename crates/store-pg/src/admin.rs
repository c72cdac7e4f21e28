//! The admin's side (`totp-enroll`): the schema owner works on the tables directly.
//! Hosts cannot do any of this (they have no privilege on the tables).

use zeroize::Zeroizing;

use crate::login::{STATE_COLUMNS, state_from_row};
use crate::{Client, DbError};
use pam_totp_core::login_state::LoginState;
use pam_totp_os::account::check_user_name;

fn checked(user: &str) -> Result<(), DbError> {
    check_user_name(user).map_err(|_| DbError::BadUser)
}

/// Writes `user`'s record (TOML text, as [`crate::record`] serialises it), replacing any;
/// the login state (last step, burnt codes) is kept, as with a file record.
///
/// # Errors
/// The statement failed.
pub fn put_record(client: &mut Client, user: &str, record: &str) -> Result<(), DbError> {
    checked(user)?;
    client.execute(
        "write the record",
        "INSERT INTO pam_totp.records (user_name, record) VALUES ($1, $2)
         ON CONFLICT (user_name) DO UPDATE SET record = EXCLUDED.record, updated_at = now()",
        &[&user, &record],
    )?;
    Ok(())
}

/// Writes `user`'s record only if there is none; `false` if one exists (left as it was).
///
/// # Errors
/// The statement failed.
pub fn insert_record_if_absent(client: &mut Client, user: &str, record: &str) -> Result<bool, DbError> {
    checked(user)?;
    let n = client.execute(
        "write the record",
        "INSERT INTO pam_totp.records (user_name, record) VALUES ($1, $2)
         ON CONFLICT (user_name) DO NOTHING",
        &[&user, &record],
    )?;
    Ok(n == 1)
}

/// `user`'s record text, if enrolled.
///
/// # Errors
/// The query failed.
pub fn read_record(client: &mut Client, user: &str) -> Result<Option<Zeroizing<String>>, DbError> {
    const ACTION: &str = "read the record";
    checked(user)?;
    let rows = client.query(
        ACTION,
        "SELECT record FROM pam_totp.records WHERE user_name = $1",
        &[&user],
    )?;
    rows.first()
        .map(|row| {
            row.try_get::<_, String>(0)
                .map(Zeroizing::new)
                .map_err(|source| DbError::Query {
                    action: ACTION,
                    source,
                })
        })
        .transpose()
}

/// `user`'s login state; `None` if no login has been attempted since enrollment.
///
/// # Errors
/// The query failed.
pub fn read_state(client: &mut Client, user: &str) -> Result<Option<LoginState>, DbError> {
    const ACTION: &str = "read the login state";
    checked(user)?;
    let rows = client.query(
        ACTION,
        &format!("SELECT {STATE_COLUMNS} FROM pam_totp.login_state WHERE user_name = $1"),
        &[&user],
    )?;
    rows.first().map(|row| state_from_row(row, 0, ACTION)).transpose()
}

/// Removes `user`'s record and state; `false` if there was none.
///
/// # Errors
/// The statement failed.
pub fn remove(client: &mut Client, user: &str) -> Result<bool, DbError> {
    checked(user)?;
    // login_state goes with it (ON DELETE CASCADE).
    let n = client.execute(
        "remove the record",
        "DELETE FROM pam_totp.records WHERE user_name = $1",
        &[&user],
    )?;
    Ok(n == 1)
}

/// Clears `user`'s failures and lock-outs, the console's too (used steps and burnt codes
/// stay, so no code becomes usable again); `false` if the user has no state.
///
/// # Errors
/// The statement failed.
pub fn unlock(client: &mut Client, user: &str) -> Result<bool, DbError> {
    checked(user)?;
    let n = client.execute(
        "unlock",
        "UPDATE pam_totp.login_state SET failures = 0, locked_until = 0, console_failures = 0,
             console_locked_until = 0 WHERE user_name = $1",
        &[&user],
    )?;
    Ok(n == 1)
}

/// Every enrolled user name, sorted.
///
/// # Errors
/// The query failed.
pub fn list_users(client: &mut Client) -> Result<Vec<String>, DbError> {
    const ACTION: &str = "list users";
    client
        .query(
            ACTION,
            "SELECT user_name FROM pam_totp.records ORDER BY user_name",
            &[],
        )?
        .iter()
        .map(|row| row.try_get::<_, String>(0))
        .collect::<Result<_, _>>()
        .map_err(|source| DbError::Query {
            action: ACTION,
            source,
        })
}

/// Lets the login role `role` act as a host (membership of `pam_totp_host`).
///
/// # Errors
/// Not a plain role name, or the statement failed (no such role, no privilege).
pub fn grant_host(client: &mut Client, role: &str) -> Result<(), DbError> {
    // Identifiers cannot be bound parameters: only plain names are accepted.
    let plain = !role.is_empty()
        && role.len() <= 63
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !role.starts_with(|c: char| c.is_ascii_digit());
    if !plain {
        return Err(DbError::BadHostRole);
    }
    client.batch_execute(
        "grant the host role",
        &format!("GRANT pam_totp_host TO \"{role}\""),
    )
}

/// Carries `state`'s replay protection and burnt recovery codes into `user`'s database
/// state, never moving them back: an imported record must not make a used code or a
/// burnt recovery code good again. Failures and lock-outs are not carried.
///
/// # Errors
/// The statement failed.
pub fn carry_state(client: &mut Client, user: &str, state: &LoginState) -> Result<(), DbError> {
    checked(user)?;
    let used_until = i64::try_from(state.used_until).unwrap_or(i64::MAX);
    // u64 bit patterns stored as bigint (see the schema).
    let epoch = i64::from_ne_bytes(state.recovery_epoch.to_ne_bytes());
    let burnt = i64::from_ne_bytes(state.recovery_used.to_ne_bytes());
    client.execute(
        "carry the login state",
        "INSERT INTO pam_totp.login_state AS s (user_name, used_until, recovery_epoch, recovery_used)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_name) DO UPDATE SET
             used_until = greatest(s.used_until, EXCLUDED.used_until),
             recovery_used = CASE WHEN s.recovery_epoch = EXCLUDED.recovery_epoch
                                  THEN s.recovery_used | EXCLUDED.recovery_used
                                  WHEN EXCLUDED.recovery_epoch = 0 THEN s.recovery_used
                                  ELSE EXCLUDED.recovery_used END,
             recovery_epoch = CASE WHEN EXCLUDED.recovery_epoch = 0 THEN s.recovery_epoch
                                   ELSE EXCLUDED.recovery_epoch END",
        &[&user, &used_until, &epoch, &burnt],
    )?;
    Ok(())
}
