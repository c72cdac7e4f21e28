//! The admin's side (`totp-enroll`): the schema owner works on the tables directly.
//! Hosts cannot do any of this (they have no privilege on the tables).
//!
//! Enrollments are columns (schema version 3): the secret is encrypted by the database
//! under its at-rest key (`pam_totp.seal_secret`), recovery codes are hashed by the
//! database (`crypt()` with bcrypt), from plaintext codes the command sends once.

use tokio_postgres::Row;
use zeroize::Zeroizing;

use crate::{Client, DbError, bits_from_db, bits_to_db, from_db, to_db};
use pam_totp_config::algorithm::Algorithm;
use pam_totp_core::login_state::{FailureSource, LoginState};
use pam_totp_core::ports::{Pending, ReenrollTicket};
use pam_totp_core::record::{Record, StoredRecord};
use pam_totp_core::secret::SecretKey;
use pam_totp_os::account::check_user_name;

fn checked(user: &str) -> Result<(), DbError> {
    check_user_name(user).map_err(|_| DbError::BadUser)
}

/// The realm every user without one belongs to, and every host is granted by default.
pub const DEFAULT_REALM: &str = "default";

/// The state columns, in the order [`state_from_row`] reads them.
const STATE_COLUMNS: &str = "used_until, failures, locked_until, console_failures, \
     console_locked_until, last_success, recovery_epoch, recovery_used, \
     failures_since_success, last_failure, last_failure_source, last_offset, hinted_step_start";

fn state_from_row(row: &Row, action: &'static str) -> Result<LoginState, DbError> {
    let q = |source| DbError::Query { action, source };
    let count = |at: usize| -> Result<u32, DbError> {
        Ok(u32::try_from(row.try_get::<_, i32>(at).map_err(q)?).unwrap_or(0))
    };
    Ok(LoginState {
        used_until: from_db(row.try_get(0).map_err(q)?),
        legacy_step: 0,
        failures: count(1)?,
        locked_until: from_db(row.try_get(2).map_err(q)?),
        console_failures: count(3)?,
        console_locked_until: from_db(row.try_get(4).map_err(q)?),
        last_success: from_db(row.try_get(5).map_err(q)?),
        recovery_epoch: bits_from_db(row.try_get(6).map_err(q)?),
        recovery_used: bits_from_db(row.try_get(7).map_err(q)?),
        failures_since_success: count(8)?,
        last_failure: from_db(row.try_get(9).map_err(q)?),
        last_failure_source: FailureSource::new(row.try_get(10).map_err(q)?, FailureSource::CAPACITY),
        clock_offset: row.try_get(11).map_err(q)?,
        hinted_step_start: from_db(row.try_get(12).map_err(q)?),
    })
}

/// The recovery (or scratch) codes written with an enrollment.
#[derive(Debug, Clone, Copy)]
pub enum Codes<'a> {
    /// No set (a record's argon2 hashes, which the database cannot check, are dropped).
    None,
    /// These plaintext codes, in index order, hashed by the database.
    Plain {
        epoch: u64,
        codes: &'a [Zeroizing<String>],
        scratch: bool,
    },
}

/// What writing an enrollment did beyond the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The record held a set of recovery codes hashed with argon2, which the database
    /// cannot check: the set was dropped and a new one must be issued.
    pub recovery_dropped: bool,
}

/// Writes `user`'s enrollment from `record`, replacing any (the login state is kept:
/// used steps and burnt codes stay used). `realms`: the user's realms from now on
/// (made if new); `None` leaves them as they are (a new user is in `default`).
///
/// # Errors
/// A bad user or realm name, the at-rest key is missing, or the statement failed.
pub fn write_enrollment(
    client: &mut Client,
    user: &str,
    record: &Record,
    codes: Codes<'_>,
    realms: Option<&[String]>,
) -> Result<Written, DbError> {
    in_transaction(client, |client| {
        let (written, _) = upsert(client, user, record, codes, realms, true)?;
        forget_reset(client, user)?;
        Ok(written)
    })
}

/// The admin's own enrollment ends a reset: a later `remove` must not bring the old
/// mark back.
fn forget_reset(client: &mut Client, user: &str) -> Result<(), DbError> {
    client.execute(
        "end the reset",
        "DELETE FROM pam_totp.enroll_marks WHERE user_name = $1",
        &[&user],
    )?;
    Ok(())
}

/// [`write_enrollment`] inside a transaction the caller holds (the migration's).
pub(crate) fn write_enrollment_in_transaction(
    client: &mut Client,
    user: &str,
    record: &Record,
    realms: &[String],
) -> Result<Written, DbError> {
    upsert(client, user, record, Codes::None, Some(realms), true).map(|(written, _)| written)
}

/// Runs `work` in one transaction: all of it or nothing.
fn in_transaction<T>(
    client: &mut Client,
    work: impl FnOnce(&mut Client) -> Result<T, DbError>,
) -> Result<T, DbError> {
    client.batch_execute("begin", "BEGIN")?;
    let result = work(client);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client.batch_execute("end", end);
    let done = result?;
    ended?;
    Ok(done)
}

/// [`write_enrollment`] only if `user` has no enrollment; `false` if one exists (left
/// as it was).
///
/// # Errors
/// As [`write_enrollment`].
pub fn insert_enrollment_if_absent(
    client: &mut Client,
    user: &str,
    record: &Record,
    codes: Codes<'_>,
    realms: Option<&[String]>,
) -> Result<Option<Written>, DbError> {
    in_transaction(client, |client| {
        let (written, new) = upsert(client, user, record, codes, realms, false)?;
        if new {
            forget_reset(client, user)?;
        }
        Ok(new.then_some(written))
    })
}

fn upsert(
    client: &mut Client,
    user: &str,
    record: &Record,
    codes: Codes<'_>,
    realms: Option<&[String]>,
    replace: bool,
) -> Result<(Written, bool), DbError> {
    checked(user)?;
    if let Some(realms) = realms {
        realms.iter().try_for_each(|realm| check_realm(realm))?;
    }
    let (epoch, plain, scratch): (i64, Vec<&str>, bool) = match codes {
        Codes::None => (0, Vec::new(), false),
        Codes::Plain {
            epoch,
            codes,
            scratch,
        } => (
            bits_to_db(epoch),
            codes.iter().map(|code| code.as_str()).collect(),
            scratch,
        ),
    };
    let written = Written {
        recovery_dropped: matches!(codes, Codes::None) && !record.recovery.is_empty(),
    };
    let algorithm = algorithm_name(record.algorithm);
    let digits = i32::from(record.digits);
    let period = i32::try_from(record.period).unwrap_or(i32::MAX);
    let confirmed = to_db(record.confirmed_until);
    let secret: &[u8] = record.secret.as_bytes();
    let on_conflict = if replace {
        "DO UPDATE SET secret = EXCLUDED.secret, algorithm = EXCLUDED.algorithm,
             digits = EXCLUDED.digits, period = EXCLUDED.period, created = EXCLUDED.created,
             confirmed_until = EXCLUDED.confirmed_until, recovery_epoch = EXCLUDED.recovery_epoch,
             recovery_hashes = EXCLUDED.recovery_hashes, scratch_codes = EXCLUDED.scratch_codes,
             recovery_set_at = EXCLUDED.recovery_set_at, updated_at = now()"
    } else {
        "DO NOTHING"
    };
    let n = client.execute(
        "write the enrollment",
        &format!(
            "INSERT INTO pam_totp.enrollments AS e (user_name, secret, algorithm, digits, period,
                     created, confirmed_until, recovery_epoch, recovery_hashes, scratch_codes,
                     recovery_set_at)
                 VALUES ($1, pam_totp.seal_secret($2), $3, $4, $5, $6, $7, $8,
                     ARRAY(SELECT pam_totp_crypto.crypt(c, pam_totp_crypto.gen_salt('bf', 8))
                           FROM unnest($9::text[]) WITH ORDINALITY AS t(c, i) ORDER BY i),
                     $10, CASE WHEN cardinality($9::text[]) > 0 THEN now() END)
                 ON CONFLICT (user_name) {on_conflict}"
        ),
        &[
            &user,
            &secret,
            &algorithm,
            &digits,
            &period,
            &record.created,
            &confirmed,
            &epoch,
            &plain,
            &scratch,
        ],
    )?;
    if n == 1
        && let Some(realms) = realms
    {
        set_user_realms(client, user, realms)?;
    }
    Ok((written, n == 1))
}

pub(crate) fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Sha1 => "SHA1",
        Algorithm::Sha256 => "SHA256",
        Algorithm::Sha512 => "SHA512",
    }
}

fn algorithm_from_name(name: &str) -> Option<Algorithm> {
    match name {
        "SHA1" => Some(Algorithm::Sha1),
        "SHA256" => Some(Algorithm::Sha256),
        "SHA512" => Some(Algorithm::Sha512),
        _ => None,
    }
}

/// Writes `user`'s record given as record text (TOML, as [`Record::to_toml`] makes it),
/// replacing any; see [`write_enrollment`]. A sealed record is refused (the admin side
/// writes plain records; the database encrypts the secret).
///
/// # Errors
/// The text is not a plain record, or as [`write_enrollment`].
pub fn put_record(client: &mut Client, user: &str, record: &str) -> Result<Written, DbError> {
    let record = plain_record(user, record)?;
    write_enrollment(client, user, &record, Codes::None, None)
}

/// [`put_record`] only if `user` has no enrollment; `false` if one exists.
///
/// # Errors
/// As [`put_record`].
pub fn insert_record_if_absent(client: &mut Client, user: &str, record: &str) -> Result<bool, DbError> {
    let record = plain_record(user, record)?;
    Ok(insert_enrollment_if_absent(client, user, &record, Codes::None, None)?.is_some())
}

fn plain_record(user: &str, text: &str) -> Result<Record, DbError> {
    match Record::parse_stored(text) {
        Ok(StoredRecord::Plain(record)) => Ok(record),
        Ok(StoredRecord::Sealed(_)) => Err(DbError::BadRecord {
            user: user.to_owned(),
            source: pam_totp_core::record::RecordError::Sealed,
        }),
        Err(source) => Err(DbError::BadRecord {
            user: user.to_owned(),
            source,
        }),
    }
}

/// What an admin may see of an enrollment: never the secret, never a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentInfo {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    pub created: String,
    pub recovery_epoch: u64,
    pub recovery_codes: usize,
    pub scratch_codes: bool,
    pub confirmed_until: u64,
    pub realms: Vec<String>,
}

const INFO_COLUMNS: &str = "algorithm, digits, period, created, recovery_epoch, \
     cardinality(recovery_hashes), scratch_codes, confirmed_until, \
     ARRAY(SELECT realm FROM pam_totp.user_realms u WHERE u.user_name = e.user_name ORDER BY realm)";

fn info_from_row(row: &Row, action: &'static str) -> Result<EnrollmentInfo, DbError> {
    let q = |source| DbError::Query { action, source };
    let algorithm: String = row.try_get(0).map_err(q)?;
    let realms: Vec<String> = row.try_get(8).map_err(q)?;
    Ok(EnrollmentInfo {
        algorithm: algorithm_from_name(&algorithm).ok_or(DbError::NoResultRow { action })?,
        digits: u8::try_from(row.try_get::<_, i32>(1).map_err(q)?).unwrap_or(0),
        period: u64::try_from(row.try_get::<_, i32>(2).map_err(q)?).unwrap_or(0),
        created: row.try_get(3).map_err(q)?,
        recovery_epoch: bits_from_db(row.try_get(4).map_err(q)?),
        recovery_codes: usize::try_from(row.try_get::<_, i32>(5).map_err(q)?).unwrap_or(0),
        scratch_codes: row.try_get(6).map_err(q)?,
        confirmed_until: from_db(row.try_get(7).map_err(q)?),
        realms: if realms.is_empty() {
            vec![DEFAULT_REALM.to_owned()]
        } else {
            realms
        },
    })
}

/// `user`'s enrollment without its secret, if enrolled.
///
/// # Errors
/// The query failed.
pub fn read_info(client: &mut Client, user: &str) -> Result<Option<EnrollmentInfo>, DbError> {
    const ACTION: &str = "read the enrollment";
    checked(user)?;
    let rows = client.query(
        ACTION,
        &format!("SELECT {INFO_COLUMNS} FROM pam_totp.enrollments e WHERE e.user_name = $1"),
        &[&user],
    )?;
    rows.first().map(|row| info_from_row(row, ACTION)).transpose()
}

/// `user`'s enrollment as a [`Record`], its secret decrypted by the database (the admin
/// role reads the at-rest key), for the commands that rewrite an enrollment. Its
/// recovery hashes are the database's (bcrypt): counted by `status`, never checked
/// outside the database, and not written back (a new set comes as plaintext codes).
///
/// # Errors
/// The query failed or the at-rest key is missing.
pub fn read_enrollment(client: &mut Client, user: &str) -> Result<Option<Record>, DbError> {
    const ACTION: &str = "read the enrollment";
    checked(user)?;
    let rows = client.query(
        ACTION,
        &format!(
            "SELECT {INFO_COLUMNS}, pam_totp.open_secret(e.secret), e.recovery_hashes
             FROM pam_totp.enrollments e WHERE e.user_name = $1"
        ),
        &[&user],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let info = info_from_row(row, ACTION)?;
    let secret: Vec<u8> = row.try_get(9).map_err(|source| DbError::Query {
        action: ACTION,
        source,
    })?;
    let secret = SecretKey::from_bytes(secret).map_err(|_| DbError::NoResultRow { action: ACTION })?;
    let mut record = Record::new(secret, info.algorithm, info.digits, info.period, info.created)
        .with_confirmed_until(info.confirmed_until);
    record.recovery_epoch = info.recovery_epoch;
    record.recovery = row.try_get(10).map_err(|source| DbError::Query {
        action: ACTION,
        source,
    })?;
    record.scratch_codes = info.scratch_codes;
    Ok(Some(record))
}

/// `user`'s record as record text (see [`read_enrollment`]), if enrolled.
///
/// # Errors
/// As [`read_enrollment`].
pub fn read_record(client: &mut Client, user: &str) -> Result<Option<Zeroizing<String>>, DbError> {
    Ok(read_enrollment(client, user)?.map(|mut record| {
        // A record's text holds argon2 hashes only.
        record.recovery.clear();
        record.to_toml()
    }))
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
    rows.first().map(|row| state_from_row(row, ACTION)).transpose()
}

/// Removes `user`'s record and state; `false` if there was none.
///
/// # Errors
/// The statement failed.
pub fn remove(client: &mut Client, user: &str) -> Result<bool, DbError> {
    checked(user)?;
    // login_state goes with it (ON DELETE CASCADE); the realms stay, so that the user
    // stays "not allowed" where it was (never "not enrolled").
    let n = client.execute(
        "remove the enrollment",
        "DELETE FROM pam_totp.enrollments WHERE user_name = $1",
        &[&user],
    )?;
    Ok(n == 1)
}

/// "New phone": removes `user`'s enrollment and state at once (the old secret stops
/// working) and marks the user to enroll again at their next login (`host_lookup` says
/// `enroll`), in one transaction; `false` if there was no enrollment (marked all the same).
///
/// # Errors
/// The statement failed (nothing changed).
pub fn reset(client: &mut Client, user: &str) -> Result<bool, DbError> {
    checked(user)?;
    in_transaction(client, |client| {
        let n = client.execute(
            "remove the enrollment",
            "DELETE FROM pam_totp.enrollments WHERE user_name = $1",
            &[&user],
        )?;
        client.execute(
            "mark the user for enrollment",
            "INSERT INTO pam_totp.enroll_marks (user_name) VALUES ($1)
             ON CONFLICT (user_name) DO UPDATE SET marked_at = now()",
            &[&user],
        )?;
        client.execute(
            "drop re-enrollment tickets",
            "DELETE FROM pam_totp.reenroll_tickets WHERE user_name = $1",
            &[&user],
        )?;
        Ok(n == 1)
    })
}

/// Whether `user` is marked to enroll at their next login ([`reset`]).
///
/// # Errors
/// The statement failed.
pub fn marked_for_enrollment(client: &mut Client, user: &str) -> Result<bool, DbError> {
    checked(user)?;
    let rows = client.query(
        "read the enrollment mark",
        "SELECT 1 FROM pam_totp.enroll_marks WHERE user_name = $1",
        &[&user],
    )?;
    Ok(!rows.is_empty())
}

/// What is under way for `user`: an admin's reset not followed by an enrollment yet
/// (`enroll_marks`), and a re-enrollment ticket not used nor expired
/// (`reenroll_tickets`: its host role and end, never its hash).
///
/// # Errors
/// The query failed.
pub fn pending(client: &mut Client, user: &str) -> Result<Pending, DbError> {
    const ACTION: &str = "read the changes under way";
    checked(user)?;
    let rows = client.query(
        ACTION,
        "SELECT (SELECT floor(extract(epoch FROM m.marked_at))::bigint
                 FROM pam_totp.enroll_marks m WHERE m.user_name = $1
                 AND NOT EXISTS (SELECT 1 FROM pam_totp.enrollments e WHERE e.user_name = $1)),
                t.host_role, t.expires_at
         FROM (SELECT 1) AS one
         LEFT JOIN pam_totp.reenroll_tickets t
             ON t.user_name = $1 AND t.expires_at >= floor(extract(epoch FROM now()))::bigint",
        &[&user],
    )?;
    let row = rows.first().ok_or(DbError::NoResultRow { action: ACTION })?;
    let q = |source| DbError::Query {
        action: ACTION,
        source,
    };
    let marked: Option<i64> = row.try_get(0).map_err(q)?;
    let host_role: Option<String> = row.try_get(1).map_err(q)?;
    let expires_at: Option<i64> = row.try_get(2).map_err(q)?;
    Ok(Pending {
        marked_for_enrollment_at: marked.map(from_db),
        reenroll_ticket: host_role
            .zip(expires_at)
            .map(|(host_role, expires_at)| ReenrollTicket {
                host_role,
                expires_at: from_db(expires_at),
            }),
    })
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

/// Every enrolled user name, and every user reset and not enrolled again yet, sorted.
///
/// # Errors
/// The query failed.
pub fn list_users(client: &mut Client) -> Result<Vec<String>, DbError> {
    const ACTION: &str = "list users";
    client
        .query(
            ACTION,
            "SELECT user_name FROM pam_totp.enrollments
             UNION SELECT user_name FROM pam_totp.enroll_marks ORDER BY user_name",
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

/// Lets the login role `role` act as a host (membership of `pam_totp_host`) for the
/// realm `default`.
///
/// # Errors
/// Not a plain role name, or the statement failed (no such role, no privilege).
pub fn grant_host(client: &mut Client, role: &str) -> Result<(), DbError> {
    grant_host_realms(client, role, &[DEFAULT_REALM.to_owned()])
}

fn check_host_role(role: &str) -> Result<(), DbError> {
    // Identifiers cannot be bound parameters: only plain names are accepted.
    let plain = !role.is_empty()
        && role.len() <= 63
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !role.starts_with(|c: char| c.is_ascii_digit());
    if plain { Ok(()) } else { Err(DbError::BadHostRole) }
}

/// What a realm name must be (the schema's check says the same).
pub const REALM_RULE: &str = "realm names are 1-63 lower-case letters, digits, _, . and -, \
     starting with a letter or digit";

fn check_realm(realm: &str) -> Result<(), DbError> {
    let ok = !realm.is_empty()
        && realm.len() <= 63
        && realm
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
        && realm.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok { Ok(()) } else { Err(DbError::BadRealm) }
}

/// Makes `role` a host (membership of `pam_totp_host`) that checks codes for the users
/// of `realms` (made if new), in addition to those it had.
///
/// # Errors
/// A bad role or realm name, or a statement failed.
pub fn grant_host_realms(client: &mut Client, role: &str, realms: &[String]) -> Result<(), DbError> {
    check_host_role(role)?;
    realms.iter().try_for_each(|realm| check_realm(realm))?;
    client.batch_execute(
        "grant the host role",
        &format!("GRANT pam_totp_host TO \"{role}\""),
    )?;
    for realm in realms {
        add_realm(client, realm)?;
        client.execute(
            "grant the realm",
            "INSERT INTO pam_totp.host_realms (host_role, realm) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&role, realm],
        )?;
    }
    Ok(())
}

/// Takes `realms` from `role`; with no realm left it is no host any more (no longer a
/// member of `pam_totp_host`). Returns the realms it still has.
///
/// # Errors
/// A bad role or realm name, or a statement failed.
pub fn revoke_host_realms(
    client: &mut Client,
    role: &str,
    realms: &[String],
) -> Result<Vec<String>, DbError> {
    check_host_role(role)?;
    realms.iter().try_for_each(|realm| check_realm(realm))?;
    client.execute(
        "revoke realms",
        "DELETE FROM pam_totp.host_realms WHERE host_role = $1 AND realm = ANY($2)",
        &[&role, &realms],
    )?;
    let left = host_realms(client, role)?;
    if left.is_empty() {
        client.batch_execute(
            "revoke the host role",
            &format!("REVOKE pam_totp_host FROM \"{role}\""),
        )?;
    }
    Ok(left)
}

/// The realms granted to `role`.
///
/// # Errors
/// The query failed.
pub fn host_realms(client: &mut Client, role: &str) -> Result<Vec<String>, DbError> {
    strings(
        client,
        "read a host's realms",
        "SELECT realm FROM pam_totp.host_realms WHERE host_role = $1 ORDER BY realm",
        &[&role],
    )
}

fn add_realm(client: &mut Client, realm: &str) -> Result<(), DbError> {
    check_realm(realm)?;
    client.execute(
        "add the realm",
        "INSERT INTO pam_totp.realms (realm) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&realm],
    )?;
    Ok(())
}

/// Puts `user` in exactly `realms` (made if new).
///
/// # Errors
/// A bad realm name, or a statement failed.
pub fn set_user_realms(client: &mut Client, user: &str, realms: &[String]) -> Result<(), DbError> {
    checked(user)?;
    client.execute(
        "set the user's realms",
        "DELETE FROM pam_totp.user_realms WHERE user_name = $1",
        &[&user],
    )?;
    for realm in realms {
        add_realm(client, realm)?;
        client.execute(
            "set the user's realms",
            "INSERT INTO pam_totp.user_realms (user_name, realm) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&user, realm],
        )?;
    }
    Ok(())
}

/// `user`'s realms (`default` if none is set).
///
/// # Errors
/// The query failed.
pub fn user_realms(client: &mut Client, user: &str) -> Result<Vec<String>, DbError> {
    checked(user)?;
    let realms = strings(
        client,
        "read the user's realms",
        "SELECT realm FROM pam_totp.user_realms WHERE user_name = $1 ORDER BY realm",
        &[&user],
    )?;
    Ok(if realms.is_empty() {
        vec![DEFAULT_REALM.to_owned()]
    } else {
        realms
    })
}

/// Every realm.
///
/// # Errors
/// The query failed.
pub fn realms(client: &mut Client) -> Result<Vec<String>, DbError> {
    strings(
        client,
        "list realms",
        "SELECT realm FROM pam_totp.realms ORDER BY realm",
        &[],
    )
}

fn strings(
    client: &mut Client,
    action: &'static str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<String>, DbError> {
    client
        .query(action, sql, params)?
        .iter()
        .map(|row| row.try_get::<_, String>(0))
        .collect::<Result<_, _>>()
        .map_err(|source| DbError::Query { action, source })
}

/// The database's lock-out policy and window (`totp-enroll db policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub max_failures: u32,
    pub lockout_seconds: u64,
    pub lockout_max_seconds: u64,
    pub window: u8,
    pub lockout_exempt: Vec<String>,
}

/// The policy in force.
///
/// # Errors
/// The query failed.
pub fn read_policy(client: &mut Client) -> Result<Policy, DbError> {
    const ACTION: &str = "read the policy";
    let rows = client.query(
        ACTION,
        "SELECT max_failures, lockout_seconds, lockout_max_seconds, window_steps, lockout_exempt
         FROM pam_totp.policy",
        &[],
    )?;
    let row = rows.first().ok_or(DbError::NoResultRow { action: ACTION })?;
    let q = |source| DbError::Query {
        action: ACTION,
        source,
    };
    Ok(Policy {
        max_failures: u32::try_from(row.try_get::<_, i32>(0).map_err(q)?).unwrap_or(0),
        lockout_seconds: from_db(row.try_get(1).map_err(q)?),
        lockout_max_seconds: from_db(row.try_get(2).map_err(q)?),
        window: u8::try_from(row.try_get::<_, i32>(3).map_err(q)?).unwrap_or(0),
        lockout_exempt: row.try_get(4).map_err(q)?,
    })
}

/// Replaces the policy; the schema's checks refuse what the config file would refuse
/// (no failure allowed, a window past 10, a cap below the first lock-out).
///
/// # Errors
/// A value out of range, or the statement failed.
pub fn write_policy(client: &mut Client, policy: &Policy) -> Result<(), DbError> {
    let max_failures = i32::try_from(policy.max_failures).unwrap_or(i32::MAX);
    let seconds = to_db(policy.lockout_seconds);
    let max_seconds = to_db(policy.lockout_max_seconds);
    let window = i32::from(policy.window);
    client.execute(
        "write the policy",
        "UPDATE pam_totp.policy SET max_failures = $1, lockout_seconds = $2,
             lockout_max_seconds = $3, window_steps = $4, lockout_exempt = $5",
        &[
            &max_failures,
            &seconds,
            &max_seconds,
            &window,
            &policy.lockout_exempt,
        ],
    )?;
    Ok(())
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
