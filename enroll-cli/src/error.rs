//! The command's errors and the exit codes they map to (0 ok, 1 refused or failed
//! check, 2 usage or configuration error).

use std::fmt;

#[derive(Debug)]
pub enum CliError {
    /// Bad arguments or an unusable config: exit 2.
    Usage(String),
    /// Not allowed, a wrong code, or a failed write: exit 1.
    Refused(String),
}

impl CliError {
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Refused(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Refused(m) => f.write_str(m),
        }
    }
}

pub type CliResult<T> = Result<T, CliError>;
