//! The database store's [`Shortcuts`] (migration 0005): remembered keys and verified audit
//! sessions, kept by the database and scoped to this host's login role, never to a
//! realm. The host sends what it saw and how long its config allows; the database decides
//! with its own clock, caps the time, and mints a shortcut only right after its
//! `host_verify` accepted a code of that user from this host role (once per acceptance).
//! The host's `until` and `now` only give the length asked for.

use std::fmt;

use pam_totp_config::Config;
use pam_totp_core::ports::{Shortcuts, StoreFailure};
use pam_totp_core::proven::{AuditSession, KeyFingerprint, Ticket};
use pam_totp_os::account::check_user_name;

use crate::pg_store::{PgStore, unavailable};
use crate::{Client, DbError};

/// Seconds from `now` to `until`, as the database takes them (it refuses 0 and caps the
/// rest: a longer value only makes it refuse).
fn seconds(until: u64, now: u64) -> i32 {
    i32::try_from(until.saturating_sub(now)).unwrap_or(i32::MAX)
}

fn connect(config: &Config, user: &str) -> Result<Client, StoreFailure> {
    check_user_name(user).map_err(|_| unavailable(DbError::BadUser))?;
    crate::connect(config).map_err(unavailable)
}

fn fingerprints(keys: &[KeyFingerprint]) -> Vec<&str> {
    keys.iter().map(KeyFingerprint::as_str).collect()
}

fn unix_time(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The database refused to mint a shortcut: no code of this user was accepted from this
/// host role moments ago, that acceptance minted one already, or the values are out of
/// range. Nothing is remembered; the next login asks for a code.
#[derive(Debug)]
struct Refused {
    action: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the database refused to {} (no code accepted from this host just before)",
            self.action
        )
    }
}

impl std::error::Error for Refused {}

fn minted(action: &'static str, yes: bool) -> Result<(), StoreFailure> {
    if yes {
        Ok(())
    } else {
        Err(StoreFailure::new(Refused { action }))
    }
}

/// Whether a host function that answers a boolean said yes.
fn said_yes(
    client: &mut Client,
    action: &'static str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<bool, StoreFailure> {
    let rows = client.query(action, sql, params).map_err(unavailable)?;
    let row = rows
        .first()
        .ok_or(DbError::NoResultRow { action })
        .map_err(unavailable)?;
    let yes: Option<bool> = row
        .try_get(0)
        .map_err(|source| unavailable(DbError::Query { action, source }))?;
    Ok(yes == Some(true))
}

impl Shortcuts for PgStore {
    fn remembered_key(
        &self,
        config: &Config,
        user: &str,
        keys: &[KeyFingerprint],
        _now: u64,
    ) -> Result<Option<(KeyFingerprint, u64)>, StoreFailure> {
        const ACTION: &str = "look up a remembered key";
        let mut client = connect(config, user)?;
        let rows = client
            .query(
                ACTION,
                "SELECT fingerprint, expires_at FROM pam_totp.host_remembered_key($1, $2)",
                &[&user, &fingerprints(keys)],
            )
            .map_err(unavailable)?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let (text, until): (String, i64) = row
            .try_get(0)
            .and_then(|text| Ok((text, row.try_get(1)?)))
            .map_err(|source| {
                unavailable(DbError::Query {
                    action: ACTION,
                    source,
                })
            })?;
        // Only one of the keys asked about: anything else is not this login's key.
        Ok(keys
            .iter()
            .find(|k| k.as_str() == text)
            .map(|k| (k.clone(), unix_time(until))))
    }

    fn remember_keys(
        &self,
        config: &Config,
        user: &str,
        keys: &[KeyFingerprint],
        until: u64,
        now: u64,
    ) -> Result<(), StoreFailure> {
        const ACTION: &str = "remember the key";
        let mut client = connect(config, user)?;
        let yes = said_yes(
            &mut client,
            ACTION,
            "SELECT pam_totp.host_remember_keys($1, $2, $3)",
            &[&user, &fingerprints(keys), &seconds(until, now)],
        )?;
        minted(ACTION, yes)
    }

    fn expect_session(
        &self,
        config: &Config,
        user: &str,
        ticket: &Ticket,
        until: u64,
        now: u64,
    ) -> Result<(), StoreFailure> {
        const ACTION: &str = "record a session ticket";
        let mut client = connect(config, user)?;
        let yes = said_yes(
            &mut client,
            ACTION,
            "SELECT pam_totp.host_expect_session($1, $2, $3)",
            &[&user, &ticket.as_str(), &seconds(until, now)],
        )?;
        minted(ACTION, yes)
    }

    fn open_session(
        &self,
        config: &Config,
        user: &str,
        ticket: &Ticket,
        session: AuditSession,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreFailure> {
        let mut client = connect(config, user)?;
        said_yes(
            &mut client,
            "verify the session",
            "SELECT pam_totp.host_open_session($1, $2, $3, $4)",
            &[
                &user,
                &ticket.as_str(),
                &i64::from(session.id()),
                &seconds(until, now),
            ],
        )
    }

    fn verified_session(
        &self,
        config: &Config,
        user: &str,
        session: AuditSession,
        _now: u64,
    ) -> Result<Option<u64>, StoreFailure> {
        const ACTION: &str = "look up a verified session";
        let mut client = connect(config, user)?;
        let rows = client
            .query(
                ACTION,
                "SELECT pam_totp.host_verified_session($1, $2)",
                &[&user, &i64::from(session.id())],
            )
            .map_err(unavailable)?;
        let row = rows
            .first()
            .ok_or(DbError::NoResultRow { action: ACTION })
            .map_err(unavailable)?;
        let until: Option<i64> = row.try_get(0).map_err(|source| {
            unavailable(DbError::Query {
                action: ACTION,
                source,
            })
        })?;
        Ok(until.map(unix_time))
    }

    fn close_session(
        &self,
        config: &Config,
        user: &str,
        session: AuditSession,
        _now: u64,
    ) -> Result<(), StoreFailure> {
        let mut client = connect(config, user)?;
        client
            .query(
                "forget the verified session",
                "SELECT pam_totp.host_close_session($1, $2)",
                &[&user, &i64::from(session.id())],
            )
            .map_err(unavailable)
            .map(|_| ())
    }
}
