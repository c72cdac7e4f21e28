//! The schema's versions, embedded in the build and applied in order.
//!
//! One transaction under a transaction-scoped advisory lock: two admins (or two hosts'
//! provisioning scripts) migrating at once serialise, and a failed migration leaves the
//! database as it was. Applied versions are recorded in `pam_totp.schema_migrations`;
//! running again applies nothing. A database newer than this build is refused, not
//! downgraded.

use crate::{Client, DbError};

/// Every migration, oldest first: (version, SQL). Append only; never edit one shipped.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_used_until_and_console.sql")),
];

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

/// Applies every migration not yet applied, as the connected (admin) role; returns the
/// versions applied now (empty: the schema was current).
///
/// # Errors
/// A statement failed (then nothing was applied), or the database holds a version this
/// build does not know.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, DbError> {
    client.batch_execute("begin the migration", "BEGIN")?;
    let result = apply(client);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client.batch_execute("end the migration", end);
    let applied = result?;
    ended?;
    Ok(applied)
}

fn apply(client: &mut Client) -> Result<Vec<i32>, DbError> {
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
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        client.batch_execute("apply a migration", sql)?;
        client.execute(
            "record a migration",
            "INSERT INTO pam_totp.schema_migrations (version) VALUES ($1)",
            &[version],
        )?;
        applied.push(*version);
    }
    Ok(applied)
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
