//! `totp-enroll`: enroll users for `pam_totp`, and the admin's tasks around it.

#![forbid(unsafe_code)]

mod audit;
mod caller;
mod cli;
mod codes;
mod enroll;
mod error;
mod proof;
mod qr;
mod remove;
mod status;
mod store;
mod terminal;
mod unlock;
mod uri;

use std::process::ExitCode;

use clap::Parser;
use pam_totp::config::Config;

use crate::cli::{Cli, Command};
use crate::error::{CliError, CliResult};

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
            eprintln!("totp-enroll: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: &Cli) -> CliResult<()> {
    let config = Config::load(&cli.config, &[]).map_err(|e| CliError::Usage(e.to_string()))?;
    let target = caller::resolve(cli.user.as_deref())?;
    match &cli.command {
        None => enroll::run(&config, &target, &cli.enroll),
        Some(Command::Unlock) => unlock::run(&config, &target),
        Some(Command::Status { json }) => status::run(&config, &target, *json),
        Some(Command::List { json }) => status::list(&config, &target, *json),
        Some(Command::RecoveryCodes) => codes::run(&config, &target),
        Some(Command::Remove) => remove::run(&config, &target),
    }
}
