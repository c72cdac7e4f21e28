//! The command line, as clap parses it. `--help` text lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Enroll a user for `pam_totp`: make a secret, show it as a QR code, and activate it
/// once a code from the authenticator app checks out.
///
/// Run without arguments to enroll yourself. Exit codes: 0 ok, 1 refused or failed
/// check, 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "totp-enroll", version, about, long_about)]
pub struct Cli {
    /// The admin config file.
    #[arg(long, value_name = "PATH", default_value = pam_totp::config::DEFAULT_CONFIG_PATH, global = true)]
    pub config: PathBuf,

    /// Act for this user (root only, unless it is yourself).
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,

    #[command(flatten)]
    pub enroll: EnrollArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options of enrollment, the default action.
#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// Use this base32 secret instead of a new random one (migration from another system).
    #[arg(long, value_name = "BASE32")]
    pub secret: Option<String>,

    /// Activate without asking for a code from the app (root only).
    #[arg(long)]
    pub no_confirm: bool,

    /// Replace an existing enrollment.
    #[arg(long)]
    pub force: bool,

    /// Do not draw the QR code (print the URI and the secret only).
    #[arg(long)]
    pub no_qr: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clear a user's failure count and lock-out (root only).
    Unlock,
    /// Make the host key pair that sealed records use (root only): the private key
    /// `host_key` (0600) and the public key `host_public_key` (0644), as in the config.
    Keygen {
        /// Replace an existing key pair; the old private key is kept under a retired name
        /// to list in `retired_keys` until `reseal` has run.
        #[arg(long)]
        force: bool,
    },
    /// Re-seal every sealed record of the configured store to the current host key
    /// (root only); records sealed to a retired key need it listed in `retired_keys`.
    Reseal {
        /// Also seal records whose secret is still in plain text.
        #[arg(long)]
        include_plain: bool,
    },
}
