//! `totp-enroll`: enroll users for `pam_totp`, and the admin's tasks around it.

#![forbid(unsafe_code)]

mod audit;
mod caller;
mod change_request;
mod cli;
mod codes;
mod database;
mod enroll;
mod error;
mod import;
mod keys;
mod proof;
mod qr;
mod remove;
mod schema;
mod status;
mod store;
mod terminal;
mod unlock;
mod uri;

use std::process::ExitCode;

use clap::Parser;
use pam_totp_config::Config;

use crate::cli::{Cli, Command};
use crate::error::{CliError, CliResult};
use crate::store::Backend;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.exit_code() == 1 {
                audit::refusal(cli.action(), cli.user.as_deref(), &e.to_string());
            }
            eprintln!("totp-enroll: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: &Cli) -> CliResult<()> {
    if cli.command.is_some() && cli.enroll.is_used() {
        return Err(CliError::Usage(
            "enrollment options (--secret, --force, --no-qr, --qr-png, ...) go without a subcommand; \
             see totp-enroll --help"
                .to_owned(),
        ));
    }
    let config = Config::load(&cli.config, &[]).map_err(CliError::Config)?;
    let target = caller::resolve(cli.user.as_deref())?;
    let database = cli.database.as_deref();
    match &cli.command {
        Some(Command::Db { action }) => return schema::run(&config, &target, database, &cli.realm, action),
        Some(Command::Keygen { force }) => return keys::keygen(&config, &target, *force),
        Some(Command::Reseal { include_plain }) => {
            if database::in_use(&config) {
                return Err(CliError::Usage(
                    "reseal works on record files; with store = \"postgres\" it is not available yet"
                        .to_owned(),
                ));
            }
            return keys::reseal(&config, &target, *include_plain);
        }
        Some(Command::Reset) if database::in_use(&config) => {
            return remove::reset_in_database(&config, &target, database);
        }
        None if cli.enroll.force && database::in_use(&config) && !target.caller_is_root => {
            return change_request::run(&target);
        }
        _ => {}
    }
    let mut backend = Backend::open(&config, &target, database, &cli.realm)?;
    let backend = &mut backend;
    match &cli.command {
        None => enroll::run(&config, backend, &target, &cli.enroll),
        Some(Command::Unlock) => unlock::run(&config, backend, &target),
        Some(Command::Status { json }) => status::run(&config, backend, &target, *json),
        Some(Command::List { json }) => status::list(&config, backend, &target, *json),
        Some(Command::RecoveryCodes) => codes::run(&config, backend, &target),
        Some(Command::Remove | Command::Reset) => remove::run(&config, backend, &target),
        Some(Command::Import {
            google_authenticator,
            oath_usersfile,
            pam_totp_files,
            all_users,
            force,
        }) => {
            let source = match (google_authenticator, oath_usersfile, all_users) {
                _ if *pam_totp_files => import::Source::PamTotpFiles,
                (Some(Some(_)), _, true) => {
                    return Err(CliError::Usage(
                        "--all-users reads each user's own ~/.google_authenticator; give no FILE".to_owned(),
                    ));
                }
                (Some(_), _, true) => import::Source::GoogleAuthenticatorAllUsers,
                (Some(file), _, false) => import::Source::GoogleAuthenticator(file.clone()),
                (None, Some(file), _) => import::Source::OathUsersfile(file.clone()),
                (None, None, _) => {
                    return Err(CliError::Usage(
                        "import needs --google-authenticator [FILE], --oath-usersfile FILE or \
                         --pam-totp-files"
                            .to_owned(),
                    ));
                }
            };
            import::run(&config, backend, &target, &source, *force, cli.user.is_some())
        }
        Some(Command::Db { .. } | Command::Keygen { .. } | Command::Reseal { .. }) => Ok(()),
    }
}
