//! `totp-enroll db init | migrate | grant-host ROLE`: the admin's database tasks, as
//! the schema owner. The schema itself (versions, grants) is `pam_totp_store_pg::migrate`'s.

use pam_totp_config::Config;
use pam_totp_store_pg::{self as db, Client, admin, migrate};

use crate::audit;
use crate::caller::Target;
use crate::cli::DbCommand;
use crate::database::{self, failed};
use crate::error::{CliError, CliResult};

pub fn run(config: &Config, target: &Target, database: Option<&str>, command: &DbCommand) -> CliResult<()> {
    database::require_root(target)?;
    let mut client = database::connect(config, database)?;
    match command {
        DbCommand::Init => init(&mut client, target),
        DbCommand::Migrate => upgrade(&mut client, target),
        DbCommand::GrantHost { role } => grant_host(&mut client, target, role),
    }
}

/// Creates the schema; on a database already initialised, applies what is pending.
fn init(client: &mut Client, target: &Target) -> CliResult<()> {
    let before = migrate::applied_versions(client).map_err(failed)?;
    let applied = db::migrate(client).map_err(failed)?;
    if before.is_empty() {
        audit::record(&format!(
            "database schema created (versions {}) by {}",
            versions(&applied),
            target.caller_name
        ));
        println!(
            "Schema created: version {} (migrations {} applied).",
            migrate::latest_version(),
            versions(&applied)
        );
    } else {
        report(&applied, target);
    }
    Ok(())
}

fn upgrade(client: &mut Client, target: &Target) -> CliResult<()> {
    if migrate::applied_versions(client).map_err(failed)?.is_empty() {
        return Err(CliError::Refused(
            "the database has no pam_totp schema yet; create it with totp-enroll db init".to_owned(),
        ));
    }
    let applied = db::migrate(client).map_err(failed)?;
    report(&applied, target);
    Ok(())
}

fn report(applied: &[i32], target: &Target) {
    if applied.is_empty() {
        println!(
            "Nothing to apply: the schema is at version {}, this build's latest.",
            migrate::latest_version()
        );
        return;
    }
    audit::record(&format!(
        "database schema migrated (versions {}) by {}",
        versions(applied),
        target.caller_name
    ));
    println!(
        "Applied migrations {}; the schema is at version {}.",
        versions(applied),
        migrate::latest_version()
    );
}

fn grant_host(client: &mut Client, target: &Target, role: &str) -> CliResult<()> {
    admin::grant_host(client, role).map_err(|e| match e {
        db::DbError::BadHostRole => CliError::Usage(format!("grant-host {role}: {}", db::HOST_ROLE_RULE)),
        other => failed(other),
    })?;
    audit::record(&format!(
        "database role {role} made a host (pam_totp_host) by {}",
        target.caller_name
    ));
    println!(
        "{role} is a member of pam_totp_host: hosts logging in as {role} can verify codes, \
         one named user at a time, and read no table."
    );
    Ok(())
}

fn versions(list: &[i32]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
