//! The command's errors, by cause, and the exit codes they map to (0 ok, 1 refused or
//! failed, 2 usage or configuration error). Each error that wraps another keeps it as
//! its `source()`; the text each prints is the command's message (tests assert on it).
//!
//! For new code: `CliError::usage(..)` for a bad argument, `CliError::not_allowed(..)`
//! for what this caller may not do, `CliError::refused(..)` for a state the command will
//! not change, `?` on a `DbError` (`From`), a `StoreFailure`/`AdminFailure` (`From`),
//! a `ConfigError` (`From`), and `CliError::failed("cannot ...", e)` for any other
//! failed operation, `e` an `io::Error`, `SealError`, `AccountError`, ... ([`Cause`]).

use std::error::Error;
use std::fmt;
use std::io;

use pam_totp_config::ConfigError;
use pam_totp_core::code_hash::RecoveryError;
use pam_totp_core::ports::{AdminFailure, StoreFailure};
use pam_totp_core::secret::SecretError;
use pam_totp_os::account::AccountError;
use pam_totp_store_file::record_store::StoreError;
use pam_totp_store_file::seal::SealError;
use pam_totp_store_file::state::StateError;
use pam_totp_store_pg::DbError;
use pam_totp_store_pg::conninfo::ConnInfoError;

#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or options: exit 2.
    Usage(String),
    /// An option's value (`--secret`, `--user NAME`, `--database`) is unusable: exit 2.
    BadOption { option: String, cause: Cause },
    /// The config file is unusable: exit 2.
    Config(ConfigError),
    /// `secret_path` does not expand for the account: exit 2.
    SecretPath { secret_path: String, source: StoreError },
    /// `seal = true`, but the public host key cannot be used: exit 2.
    SealSetting(SealError),
    /// The store's settings do not fit the command: exit 2.
    StoreSettings(StoreFailure),
    /// This caller may not do this (root only, another user): exit 1.
    NotAllowed(String),
    /// The code typed did not prove the enrollment, or none was typed: exit 1.
    WrongCode(String),
    /// A state the command will not change (not enrolled, already there, ...): exit 1.
    Refused(String),
    /// The store refused or failed: exit 1.
    Store(StoreFailure),
    /// The database refused or failed: exit 1.
    Database(DbError),
    /// An operation failed (`doing`: what, for the message): exit 1.
    Failed { doing: String, cause: Cause },
    /// Something failed before any change: exit 1.
    NothingChanged(Cause),
    /// A key, state or record could not be used (its message says which): exit 1.
    Unusable(Cause),
}

impl CliError {
    /// A usage message (exit 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::Usage(message.into())
    }

    /// What this caller may not do (exit 1).
    pub fn not_allowed(message: impl Into<String>) -> CliError {
        CliError::NotAllowed(message.into())
    }

    /// A state the command will not change (exit 1).
    pub fn refused(message: impl Into<String>) -> CliError {
        CliError::Refused(message.into())
    }

    /// `doing` (`cannot read the code`) failed because of `cause` (exit 1).
    pub fn failed(doing: impl Into<String>, cause: impl Into<Cause>) -> CliError {
        CliError::Failed {
            doing: doing.into(),
            cause: cause.into(),
        }
    }

    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_)
            | CliError::BadOption { .. }
            | CliError::Config(_)
            | CliError::SecretPath { .. }
            | CliError::SealSetting(_)
            | CliError::StoreSettings(_) => 2,
            CliError::NotAllowed(_)
            | CliError::WrongCode(_)
            | CliError::Refused(_)
            | CliError::Store(_)
            | CliError::Database(_)
            | CliError::Failed { .. }
            | CliError::NothingChanged(_)
            | CliError::Unusable(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::NotAllowed(m) | CliError::WrongCode(m) | CliError::Refused(m) => {
                f.write_str(m)
            }
            CliError::BadOption { option, cause } => write!(f, "{option}: {cause}"),
            CliError::Config(e) => write!(f, "{e}; fix the config file, or name another with --config"),
            CliError::SecretPath { secret_path, source } => write!(f, "{source} (in {secret_path})"),
            CliError::SealSetting(e) => write!(f, "seal = true, but {e}"),
            CliError::StoreSettings(e) | CliError::Store(e) => e.fmt(f),
            CliError::Database(e) => {
                let hint = if e.is_permission_denied() {
                    " (the command needs the admin role, the schema's owner: see --database)"
                } else {
                    ""
                };
                write!(f, "database: {e}{hint}")
            }
            CliError::Failed { doing, cause } => write!(f, "{doing}: {cause}"),
            CliError::NothingChanged(cause) => write!(f, "{cause}; nothing was changed"),
            CliError::Unusable(cause) => cause.fmt(f),
        }
    }
}

impl Error for CliError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CliError::Usage(_) | CliError::NotAllowed(_) | CliError::WrongCode(_) | CliError::Refused(_) => {
                None
            }
            CliError::BadOption { cause, .. }
            | CliError::Failed { cause, .. }
            | CliError::NothingChanged(cause)
            | CliError::Unusable(cause) => Some(cause.error()),
            CliError::Config(e) => Some(e),
            CliError::SecretPath { source, .. } => Some(source),
            CliError::SealSetting(e) => Some(e),
            CliError::StoreSettings(e) | CliError::Store(e) => Some(e),
            CliError::Database(e) => Some(e),
        }
    }
}

/// Defines [`Cause`], the typed errors behind a [`CliError`], with a `From` for each.
macro_rules! causes {
    ($($variant:ident($error:ty)),* $(,)?) => {
        /// The typed errors behind a [`CliError`].
        #[derive(Debug)]
        pub enum Cause {
            $($variant($error),)*
        }

        impl Cause {
            /// The wrapped error.
            fn error(&self) -> &(dyn Error + 'static) {
                match self {
                    $(Cause::$variant(e) => e,)*
                }
            }
        }

        $(impl From<$error> for Cause {
            fn from(e: $error) -> Cause {
                Cause::$variant(e)
            }
        })*
    };
}

causes!(
    Io(io::Error),
    Account(AccountError),
    Secret(SecretError),
    Seal(SealError),
    State(StateError),
    Recovery(RecoveryError),
    ConnInfo(ConnInfoError),
    Json(serde_json::Error),
    Randomness(getrandom::Error),
);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.error(), f)
    }
}

impl From<DbError> for CliError {
    fn from(e: DbError) -> CliError {
        CliError::Database(e)
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> CliError {
        CliError::Config(e)
    }
}

impl From<StoreFailure> for CliError {
    fn from(e: StoreFailure) -> CliError {
        CliError::Store(e)
    }
}

impl From<AdminFailure> for CliError {
    fn from(e: AdminFailure) -> CliError {
        match e {
            AdminFailure::Settings(e) => CliError::StoreSettings(e),
            AdminFailure::Refused(e) => CliError::Store(e),
        }
    }
}

pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_keeps_its_cause_and_exit_code() {
        let e = CliError::failed(
            "cannot read the code",
            io::Error::new(io::ErrorKind::BrokenPipe, "gone"),
        );
        assert_eq!(e.to_string(), "cannot read the code: gone");
        assert_eq!(e.exit_code(), 1);
        let io = e.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(io.map(io::Error::kind), Some(io::ErrorKind::BrokenPipe));

        let e = CliError::BadOption {
            option: "--user nobody-here".to_owned(),
            cause: AccountError::Unknown.into(),
        };
        assert_eq!(e.to_string(), "--user nobody-here: unknown user");
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.source()
                .and_then(|s| s.downcast_ref::<AccountError>())
                .is_some()
        );

        let e = CliError::from(DbError::Closed);
        assert_eq!(e.to_string(), "database: connection closed");
        assert_eq!(e.exit_code(), 1);
        assert!(e.source().and_then(|s| s.downcast_ref::<DbError>()).is_some());

        assert_eq!(CliError::usage("x").exit_code(), 2);
        assert!(CliError::not_allowed("x").source().is_none());
    }
}
