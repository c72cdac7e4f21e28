//! What a host writes for enrollment at login (migration 0006), through SECURITY
//! DEFINER functions that decide by themselves: `host_enroll` (a first enrollment of a
//! user of this host's realms who has none; the database checks the confirming code
//! with its clock, hashes the recovery codes and seals the secret) and, for "change your
//! OTP", `host_reenroll_ticket` (granted only right after this host role's accepted
//! verdict for the user, once) and `host_reenroll` (needs that ticket).
//!
//! The user's request to change is a file they leave in their home
//! ([`CHANGE_REQUEST_FILE`], made by `totp-enroll --force`): only looked at (as the
//! user, never opened or written), and not trusted alone: the database grants a ticket
//! only for a request made after the enrollment it would replace, right after a code of
//! that user was accepted in this login.

use std::os::unix::fs::MetadataExt;

use pam_totp_os::account::{Account, check_user_name};
use pam_totp_os::privs::UserRights;
use zeroize::Zeroizing;

use crate::{Client, DbError};

/// The file in a user's home that asks for a new secret at the next login.
pub const CHANGE_REQUEST_FILE: &str = ".pam_totp_change_request";

/// A new secret, as the host sends it: the confirming code (digits) and the plaintext
/// recovery codes (12 characters each, in index order), which the database hashes.
pub struct NewSecret<'a> {
    pub secret: &'a [u8],
    pub algorithm: &'a str,
    pub digits: i32,
    pub period: i32,
    pub confirm_code: &'a str,
    pub recovery_codes: &'a [&'a str],
}

/// What `host_enroll` or `host_reenroll` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Written (`enrolled`, `reenrolled`).
    Written,
    AlreadyEnrolled,
    InvalidCode,
    /// Parameters the database refuses.
    Malformed,
    NotAllowed,
    /// `host_reenroll` without a live ticket of this host role for this user.
    NoTicket,
}

fn answer(text: &str, action: &'static str) -> Result<Answer, DbError> {
    Ok(match text {
        "enrolled" | "reenrolled" => Answer::Written,
        "already_enrolled" => Answer::AlreadyEnrolled,
        "invalid_code" => Answer::InvalidCode,
        "malformed" => Answer::Malformed,
        "not_allowed" => Answer::NotAllowed,
        "no_ticket" => Answer::NoTicket,
        _ => return Err(DbError::UnknownAnswer { action }),
    })
}

fn single_text(rows: &[tokio_postgres::Row], action: &'static str) -> Result<Option<String>, DbError> {
    let row = rows.first().ok_or(DbError::NoResultRow { action })?;
    row.try_get(0).map_err(|source| DbError::Query { action, source })
}

/// A first enrollment of `user` (`host_enroll`).
///
/// # Errors
/// The call failed or timed out (nothing was written), or answered what this build
/// does not know.
pub fn enroll(client: &mut Client, user: &str, new: &NewSecret<'_>) -> Result<Answer, DbError> {
    write(client, "enroll the user", user, None, new)
}

/// `host_enroll`, or `host_reenroll` with `ticket`.
fn write(
    client: &mut Client,
    action: &'static str,
    user: &str,
    ticket: Option<&str>,
    new: &NewSecret<'_>,
) -> Result<Answer, DbError> {
    check_user_name(user).map_err(|_| DbError::BadUser)?;
    let sql = if ticket.is_some() {
        "SELECT pam_totp.host_reenroll($1, $8, $2, $3, $4, $5, $6, $7)"
    } else {
        "SELECT pam_totp.host_enroll($1, $2, $3, $4, $5, $6, $7)"
    };
    let base: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &user,
        &new.secret,
        &new.algorithm,
        &new.digits,
        &new.period,
        &new.confirm_code,
        &new.recovery_codes,
    ];
    let rows = match &ticket {
        Some(ticket) => {
            let mut params = base.to_vec();
            params.push(ticket);
            client.query(action, sql, &params)?
        }
        None => client.query(action, sql, &base)?,
    };
    let text = single_text(&rows, action)?.ok_or(DbError::UnknownAnswer { action })?;
    answer(&text, action)
}

/// A ticket to replace `user`'s enrollment, asked for at `requested_at` (Unix time):
/// `None` unless this host role's `host_verify` accepted the user's answer moments ago
/// and no ticket was issued for that acceptance yet.
///
/// # Errors
/// The call failed or timed out.
pub fn reenroll_ticket(
    client: &mut Client,
    user: &str,
    requested_at: i64,
) -> Result<Option<Zeroizing<String>>, DbError> {
    const ACTION: &str = "ask for a re-enrollment ticket";
    check_user_name(user).map_err(|_| DbError::BadUser)?;
    let rows = client.query(
        ACTION,
        "SELECT pam_totp.host_reenroll_ticket($1, $2)",
        &[&user, &requested_at],
    )?;
    Ok(single_text(&rows, ACTION)?.map(Zeroizing::new))
}

/// Replaces `user`'s enrollment with `ticket` (`host_reenroll`); the ticket is used up.
///
/// # Errors
/// The call failed or timed out, or answered what this build does not know.
pub fn reenroll(
    client: &mut Client,
    user: &str,
    ticket: &str,
    new: &NewSecret<'_>,
) -> Result<Answer, DbError> {
    write(client, "replace the enrollment", user, Some(ticket), new)
}

/// When `account` asked for a new secret (the modification time of
/// [`CHANGE_REQUEST_FILE`] in their home, a regular file they own), looked at with their
/// file-system rights; `None`: no request, or none that can be told.
#[must_use]
pub fn change_requested_at(account: &Account) -> Option<i64> {
    let rights = UserRights::assume(account).ok()?;
    let meta = std::fs::symlink_metadata(account.home.join(CHANGE_REQUEST_FILE)).ok();
    drop(rights);
    let meta = meta?;
    (meta.file_type().is_file() && meta.uid() == account.uid.as_raw()).then(|| meta.mtime())
}
