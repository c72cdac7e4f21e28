//! `totp-enroll db init | migrate | grant-host ROLE | revoke-host ROLE | policy`: the
//! admin's database tasks, as the schema owner. The schema itself (versions, grants) is
//! `pam_totp_store_pg::migrate`'s.

use pam_totp_config::Config;
use pam_totp_store_pg::{self as db, Client, admin, migrate};

use crate::audit;
use crate::caller::Target;
use crate::cli::DbCommand;
use crate::database::{self, failed};
use crate::error::{CliError, CliResult};

pub fn run(
    config: &Config,
    target: &Target,
    database: Option<&str>,
    realms: &[String],
    command: &DbCommand,
) -> CliResult<()> {
    database::require_root(target)?;
    let mut client = database::connect(config, database)?;
    match command {
        DbCommand::Init => init(&mut client, config, target),
        DbCommand::Migrate => upgrade(&mut client, config, target),
        DbCommand::GrantHost { role } => grant_host(&mut client, target, role, realms),
        DbCommand::RevokeHost { role } => revoke_host(&mut client, target, role, realms),
        DbCommand::Policy {
            max_failures,
            lockout_seconds,
            lockout_max_seconds,
            window,
            lockout_exempt,
        } => {
            let change = PolicyChange {
                max_failures: *max_failures,
                lockout_seconds: *lockout_seconds,
                lockout_max_seconds: *lockout_max_seconds,
                window: *window,
                lockout_exempt: lockout_exempt.clone(),
            };
            policy(&mut client, target, change)
        }
    }
}

/// Applies the migrations; records of schema version 1/2 sealed to the host key are
/// opened with the config's `host_key` (or a `retired_keys` entry) if this host has it.
fn apply(client: &mut Client, config: &Config) -> CliResult<Vec<i32>> {
    let keys = config.host_key.exists().then(|| config.host_keys());
    let migrated = migrate::migrate_with_keys(client, keys).map_err(|e| match e {
        db::DbError::BadRecord {
            ref user,
            source: pam_totp_core::record::RecordError::Sealed,
        } => CliError::Refused(format!(
            "database: the record of {user} is sealed to a host key, and this host has no \
             host_key ({}); run the command where the key is, or name it in the config; \
             nothing was changed",
            config.host_key.display()
        )),
        other => failed(other),
    })?;
    if !migrated.moved.is_empty() {
        println!(
            "Moved {} enrollments from record text to columns (realm default).",
            migrated.moved.len()
        );
    }
    for user in &migrated.recovery_dropped {
        println!(
            "{user}: the recovery (or scratch) codes were hashed with argon2, which the \
             database cannot check: they no longer work; issue a new set with \
             totp-enroll recovery-codes --user {user}"
        );
        audit::record(&format!(
            "user={user} recovery codes dropped by the schema migration"
        ));
    }
    Ok(migrated.applied)
}

/// Creates the schema; on a database already initialised, applies what is pending.
fn init(client: &mut Client, config: &Config, target: &Target) -> CliResult<()> {
    let before = migrate::applied_versions(client).map_err(failed)?;
    let applied = apply(client, config)?;
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

fn upgrade(client: &mut Client, config: &Config, target: &Target) -> CliResult<()> {
    if migrate::applied_versions(client).map_err(failed)?.is_empty() {
        return Err(CliError::Refused(
            "the database has no pam_totp schema yet; create it with totp-enroll db init".to_owned(),
        ));
    }
    let applied = apply(client, config)?;
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

fn role_error(role: &str, e: db::DbError) -> CliError {
    match e {
        db::DbError::BadHostRole => CliError::Usage(format!("{role}: {}", db::HOST_ROLE_RULE)),
        db::DbError::BadRealm => CliError::Usage(format!("--realm: {}", admin::REALM_RULE)),
        other => failed(other),
    }
}

fn grant_host(client: &mut Client, target: &Target, role: &str, realms: &[String]) -> CliResult<()> {
    let realms = if realms.is_empty() {
        vec![admin::DEFAULT_REALM.to_owned()]
    } else {
        realms.to_vec()
    };
    admin::grant_host_realms(client, role, &realms).map_err(|e| role_error(role, e))?;
    let all = admin::host_realms(client, role).map_err(failed)?;
    audit::record(&format!(
        "database role {role} made a host (pam_totp_host) for realms {} by {}",
        realms.join(","),
        target.caller_name
    ));
    println!(
        "{role} is a member of pam_totp_host: hosts logging in as {role} can have codes \
         checked for the users of realms {}, one named user at a time, and read no table.",
        all.join(", ")
    );
    Ok(())
}

fn revoke_host(client: &mut Client, target: &Target, role: &str, realms: &[String]) -> CliResult<()> {
    if realms.is_empty() {
        return Err(CliError::Usage(
            "revoke-host needs the realms to take (--realm REALM, repeatable)".to_owned(),
        ));
    }
    let left = admin::revoke_host_realms(client, role, realms).map_err(|e| role_error(role, e))?;
    audit::record(&format!(
        "database role {role} lost realms {} by {}",
        realms.join(","),
        target.caller_name
    ));
    if left.is_empty() {
        println!("{role} has no realm left and is no longer a host (pam_totp_host).");
    } else {
        println!("{role} keeps realms {}.", left.join(", "));
    }
    Ok(())
}

/// `db policy` options: what to change.
struct PolicyChange {
    max_failures: Option<u32>,
    lockout_seconds: Option<u64>,
    lockout_max_seconds: Option<u64>,
    window: Option<u8>,
    lockout_exempt: Option<Vec<String>>,
}

fn policy(client: &mut Client, target: &Target, change: PolicyChange) -> CliResult<()> {
    let mut policy = admin::read_policy(client).map_err(failed)?;
    let changing = change.max_failures.is_some()
        || change.lockout_seconds.is_some()
        || change.lockout_max_seconds.is_some()
        || change.window.is_some()
        || change.lockout_exempt.is_some();
    if changing {
        policy = admin::Policy {
            max_failures: change.max_failures.unwrap_or(policy.max_failures),
            lockout_seconds: change.lockout_seconds.unwrap_or(policy.lockout_seconds),
            lockout_max_seconds: change.lockout_max_seconds.unwrap_or(policy.lockout_max_seconds),
            window: change.window.unwrap_or(policy.window),
            lockout_exempt: change.lockout_exempt.unwrap_or(policy.lockout_exempt),
        };
        if policy.lockout_max_seconds < policy.lockout_seconds {
            return Err(CliError::Usage(
                "--lockout-max-seconds must not be below --lockout-seconds".to_owned(),
            ));
        }
        admin::write_policy(client, &policy).map_err(failed)?;
        audit::record(&format!(
            "database policy set to max_failures={} lockout_seconds={} lockout_max_seconds={} \
             window={} lockout_exempt={} by {}",
            policy.max_failures,
            policy.lockout_seconds,
            policy.lockout_max_seconds,
            policy.window,
            policy.lockout_exempt.join(","),
            target.caller_name
        ));
    }
    println!("max_failures = {}", policy.max_failures);
    println!("lockout_seconds = {}", policy.lockout_seconds);
    println!("lockout_max_seconds = {}", policy.lockout_max_seconds);
    println!("window = {}", policy.window);
    println!("lockout_exempt = [{}]", policy.lockout_exempt.join(", "));
    Ok(())
}

fn versions(list: &[i32]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
