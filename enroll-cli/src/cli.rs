//! The command line, as clap parses it. `--help` text lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use pam_totp_config::algorithm::Algorithm;

/// Enroll a user for `pam_totp`: make a secret, show it as a QR code, activate it once
/// a code from the authenticator app checks out, and hand out recovery codes.
///
/// Run without arguments to enroll yourself. With an existing enrollment (a new phone),
/// add --force: you are first asked for a current code or a recovery code, and the old
/// secret keeps working until the new one is confirmed.
///
/// Root can act for any user with --user NAME; other users only for themselves.
#[derive(Debug, Parser)]
#[command(
    name = "totp-enroll",
    version,
    about,
    long_about,
    after_help = "Exit codes: 0 ok; 1 refused or failed check (wrong code, not allowed, \
                  nothing to act on; `status` of a user who is not enrolled); 2 usage or \
                  configuration error. Errors go to standard error and say what to do next."
)]
pub struct Cli {
    /// The admin config file.
    #[arg(long, value_name = "PATH", default_value = pam_totp_config::DEFAULT_CONFIG_PATH, global = true)]
    pub config: PathBuf,

    /// Act for this user (root only, unless it is yourself).
    #[arg(long, value_name = "NAME", global = true)]
    pub user: Option<String>,

    /// With store = "postgres" (and for `db`): connect with this libpq-style string
    /// instead of the config's `postgres` (e.g. the admin role's, on the admin host).
    /// Root only.
    #[arg(long, value_name = "CONNINFO", global = true)]
    pub database: Option<String>,

    /// With store = "postgres": the realm (a project) the enrollment written belongs
    /// to; repeat for several. Hosts check codes only for users of the realms they are
    /// granted (`db grant-host`). Default: a new enrollment is in `default`, a replaced
    /// one keeps its realms.
    #[arg(long, value_name = "REALM", global = true)]
    pub realm: Vec<String>,

    #[command(flatten)]
    pub enroll: EnrollArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The action asked for, as the audit log names it.
    #[must_use]
    pub fn action(&self) -> &'static str {
        match &self.command {
            None => "enrollment",
            Some(Command::Status { .. }) => "status",
            Some(Command::List { .. }) => "list",
            Some(Command::RecoveryCodes) => "recovery-codes",
            Some(Command::Import { .. }) => "import",
            Some(Command::Unlock) => "unlock",
            Some(Command::Remove) => "remove",
            Some(Command::Reset) => "reset",
            Some(Command::Keygen { .. }) => "keygen",
            Some(Command::Db { .. }) => "db",
            Some(Command::Reseal { .. }) => "reseal",
        }
    }
}

/// Options of enrollment, the default action.
#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// Use this base32 secret instead of a new random one (migration from another system).
    /// Fewer than 128 bits (RFC 4226's minimum) is accepted with a warning.
    #[arg(long, value_name = "BASE32")]
    pub secret: Option<String>,

    /// Activate without asking for a code from the app (root only).
    #[arg(long)]
    pub no_confirm: bool,

    /// Replace an existing enrollment (a new phone). Asks for a current code or a
    /// recovery code first, unless run by root. With store = "postgres", run by a user:
    /// records the request, carried out at the next login (after the current code) on a
    /// host with `enroll_at_login`.
    #[arg(long)]
    pub force: bool,

    /// Do not draw the QR code (print the URI and the secret only), e.g. in scripts.
    #[arg(long)]
    pub no_qr: bool,

    /// Also write the QR code as a PNG image to FILE, a new file (mode 0600: it holds the
    /// secret); an existing FILE or symbolic link is refused.
    #[arg(long, value_name = "FILE")]
    pub qr_png: Option<PathBuf>,

    /// Also write the QR code as an SVG image to FILE, a new file (mode 0600: it holds the
    /// secret); an existing FILE or symbolic link is refused.
    #[arg(long, value_name = "FILE")]
    pub qr_svg: Option<PathBuf>,

    /// HMAC algorithm instead of the config's (SHA1). Microsoft Authenticator honours
    /// SHA1 only: a warning is printed for anything else.
    #[arg(long, value_enum, value_name = "NAME")]
    pub algorithm: Option<AlgorithmArg>,

    /// Digits per code instead of the config's (6). Microsoft Authenticator shows 6 only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(6..=8))]
    pub digits: Option<u8>,

    /// Seconds per code instead of the config's (30). Microsoft Authenticator uses 30 only.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=300))]
    pub period: Option<u64>,
}

impl EnrollArgs {
    /// Whether any enrollment option was given.
    #[must_use]
    pub fn is_used(&self) -> bool {
        self.secret.is_some()
            || self.no_confirm
            || self.force
            || self.no_qr
            || self.qr_png.is_some()
            || self.qr_svg.is_some()
            || self.algorithm.is_some()
            || self.digits.is_some()
            || self.period.is_some()
    }
}

/// `--algorithm` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    #[value(name = "SHA1", alias = "sha1")]
    Sha1,
    #[value(name = "SHA256", alias = "sha256")]
    Sha256,
    #[value(name = "SHA512", alias = "sha512")]
    Sha512,
}

impl From<AlgorithmArg> for Algorithm {
    fn from(arg: AlgorithmArg) -> Algorithm {
        match arg {
            AlgorithmArg::Sha1 => Algorithm::Sha1,
            AlgorithmArg::Sha256 => Algorithm::Sha256,
            AlgorithmArg::Sha512 => Algorithm::Sha512,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the enrollment: since when, parameters, recovery codes left, and (root only:
    /// the login state is root's) failures, lock-out, last login, failed attempts since
    /// it and the last clock offset seen; and whether this host's clock is synchronised
    /// (adjtimex). With store = "postgres", also a `reset` the user has not followed by
    /// enrolling again (since when; who is in the audit log) and a re-enrollment ticket
    /// held by a host ("change your OTP"). Never the secret.
    Status {
        /// One JSON object on standard output, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Every enrolled user with their status (root only); with store = "postgres", users
    /// reset and not enrolled again too (parameters `RESET`).
    List {
        /// One JSON array on standard output, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Issue a fresh set of recovery codes; the old ones stop working. Asks for a
    /// current code first, unless run by root.
    RecoveryCodes,
    /// Import an enrollment made with google-authenticator or pam_oath: the entry in the
    /// user's app keeps working, nobody scans a new code. Users already enrolled are
    /// skipped unless --force.
    Import {
        /// From a google-authenticator file (default: the user's `~/.google_authenticator`);
        /// its 8-digit scratch codes become recovery codes.
        #[arg(
            long,
            value_name = "FILE",
            num_args = 0..=1,
            required_unless_present_any = ["oath_usersfile", "pam_totp_files"],
            conflicts_with = "oath_usersfile"
        )]
        #[allow(clippy::option_option)] // absent, `--google-authenticator`, or with FILE
        google_authenticator: Option<Option<PathBuf>>,
        /// From pam_oath's users file (`HOTP/T30/6 user - hexsecret`): as root, every
        /// time-based entry (or only that of --user). The code pam_oath last accepted is
        /// kept from being used again.
        #[arg(long, value_name = "FILE", conflicts_with = "pam_totp_files")]
        oath_usersfile: Option<PathBuf>,
        /// With store = "postgres": this host's pam_totp record files (where
        /// `secret_path` says) into the database, with their login state; every user with
        /// a record file, or only --user. The files are kept (remove them after checking).
        /// Root only.
        #[arg(long, conflicts_with_all = ["google_authenticator", "oath_usersfile"])]
        pam_totp_files: bool,
        /// With --google-authenticator: every user's `~/.google_authenticator`, each read
        /// with that user's rights (root only).
        #[arg(long, requires = "google_authenticator", conflicts_with = "user")]
        all_users: bool,
        /// Replace existing enrollments.
        #[arg(long)]
        force: bool,
    },
    /// Clear a user's failure count and lock-out (root only).
    Unlock,
    /// Delete a user's enrollment so they can enroll afresh (root only). Failures,
    /// lock-out and recovery codes go with it.
    Remove,
    /// A new phone (root only): as `remove`, and with store = "postgres" the user is
    /// also marked to enroll at their next login on a host with `enroll_at_login` (never
    /// let through without a code by nullok or the grace period meanwhile).
    Reset,
    /// Make the host key pair that sealed records use (root only): the private key
    /// `host_key` (0600) and the public key `host_public_key` (0644), as in the config.
    Keygen {
        /// Replace an existing key pair; the old private key is kept under a retired name
        /// to list in `retired_keys` until `reseal` has run.
        #[arg(long)]
        force: bool,
    },
    /// The shared database of store = "postgres" (root only): create or upgrade the
    /// schema, and let hosts' login roles in.
    Db {
        #[command(subcommand)]
        action: DbCommand,
    },
    /// Re-seal every sealed record of the configured store to the current host key
    /// (root only); records sealed to a retired key need it listed in `retired_keys`.
    Reseal {
        /// Also seal records whose secret is still in plain text.
        #[arg(long)]
        include_plain: bool,
    },
}

/// `totp-enroll db ...`: the admin's database tasks, as the schema owner (the config's
/// `postgres` string on the admin host, or --database).
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the schema in an empty database (every migration from the first); on an
    /// initialised database, applies what is pending, like `migrate`.
    Init,
    /// Apply pending schema migrations and print which; a database newer than this
    /// build is refused.
    Migrate,
    /// Let an existing login role act as a host: make it a member of `pam_totp_host`
    /// (it can then only ask the database to check codes, one named user at a time)
    /// for the users of each --realm (default: the realm `default`).
    GrantHost {
        /// The host's login role.
        #[arg(value_name = "ROLE")]
        role: String,
    },
    /// Take realms (each --realm) from a host's login role; with none left it is no
    /// host any more.
    RevokeHost {
        /// The host's login role.
        #[arg(value_name = "ROLE")]
        role: String,
    },
    /// Show the lock-out policy and window the database decides with; with options,
    /// change them (the rest stay).
    Policy {
        /// Failures that start a lock-out.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max_failures: Option<u32>,
        /// The first lock-out's length; each further failure doubles it.
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        lockout_seconds: Option<u64>,
        /// The longest lock-out.
        #[arg(long, value_name = "SECONDS")]
        lockout_max_seconds: Option<u64>,
        /// Time steps accepted either side of the database's clock (0-10).
        #[arg(long, value_name = "STEPS", value_parser = clap::value_parser!(u8).range(0..=10))]
        window: Option<u8>,
        /// Accounts whose attempts at a host's local console are counted apart (so a
        /// remote attacker cannot lock them out there); replaces the list. Give it with
        /// no name to empty the list.
        #[arg(long, value_name = "USER", num_args = 0..)]
        lockout_exempt: Option<Vec<String>>,
    },
}
