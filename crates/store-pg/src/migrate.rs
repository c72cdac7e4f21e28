//! The schema's versions, embedded in the build and applied in order.
//!
//! One transaction under a transaction-scoped advisory lock: two admins (or two hosts'
//! provisioning scripts) migrating at once serialise, and a failed migration leaves the
//! database as it was. Applied versions are recorded in `pam_totp.schema_migrations`;
//! running again applies nothing. A database newer than this build is refused, not
//! downgraded.

use pam_totp_config::HostKeys;
use pam_totp_core::record::{Record, StoredRecord};
use pam_totp_store_file::seal;

use crate::admin;
use crate::{Client, DbError};

/// Every migration, oldest first: (version, SQL). Append only; never edit one shipped.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_used_until_and_console.sql")),
    (3, include_str!("migrations/0003_checked_in_the_database.sql")),
    // The parts of issue #17 were written apart, each with its own version: a version
    // not recorded yet is applied in this list's order, whichever were before it (5's
    // functions read 6's table only when called).
    (
        4,
        include_str!("migrations/0004_clock_offset_and_failed_report.sql"),
    ),
    (5, include_str!("migrations/0005_shortcuts.sql")),
    (6, include_str!("migrations/0006_self_enrollment.sql")),
];

/// The version whose SQL leaves record text to move into columns ([`move_records`]).
const COLUMNS_VERSION: i32 = 3;

/// The advisory lock key: "pam_totp" as bytes, so other applications' keys do not collide.
const LOCK_KEY: i64 = 0x7061_6d5f_746f_7470;

const BOOTSTRAP: &str = "CREATE SCHEMA IF NOT EXISTS pam_totp;
CREATE TABLE IF NOT EXISTS pam_totp.schema_migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON pam_totp.schema_migrations FROM PUBLIC;";

/// The newest schema version this build knows.
#[must_use]
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The versions applied now (empty: the schema was current).
    pub applied: Vec<i32>,
    /// Records moved from text to columns (schema version 3).
    pub moved: Vec<String>,
    /// Users whose recovery or scratch codes were hashed with argon2, which the database
    /// cannot check: their set was dropped, a new one must be issued.
    pub recovery_dropped: Vec<String>,
}

/// Applies every migration not yet applied, as the connected (admin) role, with no host
/// key (a sealed record of version 1/2 stops it); returns the versions applied now
/// (empty: the schema was current).
///
/// # Errors
/// As [`migrate_with_keys`].
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, DbError> {
    migrate_with_keys(client, None).map(|migrated| migrated.applied)
}

/// Applies every migration not yet applied, as the connected (admin) role; `keys` open
/// the sealed records of version 1/2 that version 3 moves into columns.
///
/// # Errors
/// A statement failed, a record cannot be moved (sealed without its key, unusable):
/// then nothing was applied; or the database holds a version this build does not know.
pub fn migrate_with_keys(client: &mut Client, keys: Option<HostKeys<'_>>) -> Result<Migrated, DbError> {
    client.batch_execute("begin the migration", "BEGIN")?;
    let result = apply(client, keys);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client.batch_execute("end the migration", end);
    let migrated = result?;
    ended?;
    Ok(migrated)
}

fn apply(client: &mut Client, keys: Option<HostKeys<'_>>) -> Result<Migrated, DbError> {
    client.query(
        "take the migration lock",
        "SELECT pg_advisory_xact_lock($1)",
        &[&LOCK_KEY],
    )?;
    client.batch_execute("create the schema", BOOTSTRAP)?;
    let done = recorded_versions(client)?;
    if let Some(newer) = done.iter().find(|v| **v > latest_version()) {
        return Err(DbError::NewerSchema {
            found: *newer,
            supported: latest_version(),
        });
    }
    let mut migrated = Migrated::default();
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        client.batch_execute("apply a migration", sql)?;
        if *version == COLUMNS_VERSION {
            move_records(client, keys, &mut migrated)?;
        }
        client.execute(
            "record a migration",
            "INSERT INTO pam_totp.schema_migrations (version) VALUES ($1)",
            &[version],
        )?;
        migrated.applied.push(*version);
    }
    Ok(migrated)
}

/// Version 3's second half: every record of `pam_totp.records` (TOML text, sealed or
/// not) into `pam_totp.enrollments`, in realm `default`; the login state stays as it is
/// (`used_until` included: no used code becomes valid again). Then the text goes.
fn move_records(
    client: &mut Client,
    keys: Option<HostKeys<'_>>,
    migrated: &mut Migrated,
) -> Result<(), DbError> {
    const ACTION: &str = "read the records to move";
    let rows = client.query(
        ACTION,
        "SELECT user_name, record FROM pam_totp.records ORDER BY user_name",
        &[],
    )?;
    for row in &rows {
        let q = |source| DbError::Query {
            action: ACTION,
            source,
        };
        let user: String = row.try_get(0).map_err(q)?;
        let text = zeroize::Zeroizing::new(row.try_get::<_, String>(1).map_err(q)?);
        let record = open(&user, &text, keys)?;
        let written = admin::write_enrollment_in_transaction(
            client,
            &user,
            &record,
            &[admin::DEFAULT_REALM.to_owned()],
        )?;
        if written.recovery_dropped {
            migrated.recovery_dropped.push(user.clone());
        }
        migrated.moved.push(user);
    }
    client.batch_execute(
        "finish moving the records",
        "ALTER TABLE pam_totp.login_state ADD CONSTRAINT login_state_user_name_fkey
             FOREIGN KEY (user_name) REFERENCES pam_totp.enrollments ON DELETE CASCADE;
         DROP TABLE pam_totp.records;",
    )
}

fn open(user: &str, text: &str, keys: Option<HostKeys<'_>>) -> Result<Record, DbError> {
    let bad = |source| DbError::BadRecord {
        user: user.to_owned(),
        source,
    };
    match Record::parse_stored(text).map_err(bad)? {
        StoredRecord::Plain(record) => Ok(record),
        StoredRecord::Sealed(sealed) => match keys {
            Some(keys) => seal::open_record(keys, user, &sealed).map_err(|source| DbError::Sealed {
                user: user.to_owned(),
                source,
            }),
            None => Err(bad(pam_totp_core::record::RecordError::Sealed)),
        },
    }
}

/// The versions applied so far (empty: not initialised). Needs the admin role.
///
/// # Errors
/// The query failed.
pub fn applied_versions(client: &mut Client) -> Result<Vec<i32>, DbError> {
    let exists = client.query(
        "look for the schema",
        "SELECT to_regclass('pam_totp.schema_migrations') IS NOT NULL",
        &[],
    )?;
    let exists = exists
        .first()
        .and_then(|row| row.try_get::<_, bool>(0).ok())
        .unwrap_or(false);
    if !exists {
        return Ok(Vec::new());
    }
    recorded_versions(client)
}

/// The versions in `schema_migrations`, which must exist.
fn recorded_versions(client: &mut Client) -> Result<Vec<i32>, DbError> {
    client
        .query(
            "read applied migrations",
            "SELECT version FROM pam_totp.schema_migrations ORDER BY version",
            &[],
        )?
        .iter()
        .map(|row| row.try_get::<_, i32>(0))
        .collect::<Result<_, _>>()
        .map_err(|source| DbError::Query {
            action: "read applied migrations",
            source,
        })
}
