//! `totp-enroll`: enroll users for `pam_totp`, and the admin's tasks around it.

#![forbid(unsafe_code)]

mod audit;
mod caller;
mod cli;
mod enroll;
mod error;
mod keys;
mod qr;
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
        Some(Command::Keygen { force }) => keys::keygen(&config, &target, *force),
        Some(Command::Reseal { include_plain }) => keys::reseal(&config, &target, *include_plain),
    }
}
