//! The admin's policy: `/etc/security/pam_totp.toml`, overridden by module arguments.
//!
//! One serde struct is the single source of truth for every key, its type and its
//! default. Module arguments (`key=value`, or a bare `flag`) are merged into the file's
//! table before that struct is deserialised, so both paths are checked the same way and
//! an unknown key or a bad value is an error naming the key and where it came from.

#![forbid(unsafe_code)]

pub mod algorithm;
pub mod clock;
mod rollout;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use pam_totp_os::trusted_file::{self, Owner, Refused, Rules};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::algorithm::Algorithm;

/// Where the admin config lives unless `config=` / `--config` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/security/pam_totp.toml";

/// The host's private key for sealed records, unless `host_key` says otherwise.
pub const DEFAULT_HOST_KEY: &str = "/etc/security/pam_totp.key";
/// The host's public key, unless `host_public_key` says otherwise.
pub const DEFAULT_HOST_PUBLIC_KEY: &str = "/etc/security/pam_totp.pub";

/// A config file larger than this is refused rather than parsed.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// Every policy key, with its default. `deny_unknown_fields` makes a typo an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
// One field per config key: each boolean is an independent switch the admin sets.
#[allow(clippy::struct_excessive_bools)]
pub struct Config {
    /// Where each user's enrollment record lives (`${USER}`, `${HOME}`, leading `~`).
    pub secret_path: String,
    /// Root-owned directory holding one login-state file per user.
    pub state_dir: PathBuf,
    /// Time steps accepted either side of now.
    pub window: u8,
    /// Let users without a record pass (`PAM_IGNORE`) instead of refusing them.
    pub nullok: bool,
    /// Log the decisions of each login (never a secret or a code).
    pub debug: bool,
    /// The conversation prompt for the code.
    pub prompt: String,
    /// Name shown in the authenticator app; empty means the host name.
    pub issuer: String,
    /// Algorithm for new enrollments.
    pub algorithm: Algorithm,
    /// Digits for new enrollments.
    pub digits: u8,
    /// Seconds per time step for new enrollments.
    pub period: u64,
    /// Consecutive failures before a lock-out starts.
    pub max_failures: u32,
    /// Length of the first lock-out, in seconds; it doubles with each further failure.
    pub lockout_seconds: u64,
    /// The longest a lock-out can grow to, in seconds.
    pub lockout_max_seconds: u64,
    /// Users who are never locked out (failures are still counted and logged).
    pub lockout_exempt: Vec<String>,
    /// Rollout grace period: before this date (`YYYY-MM-DD`, from 00:00 UTC) users
    /// without a record are let through with a warning; from it they are refused.
    /// Empty: no grace period. A TOML date (`2027-01-15` unquoted) is read as its text.
    #[serde(deserialize_with = "rollout::date_or_text")]
    pub enforce_after: String,
    /// Accounts that never need a code (service accounts); each use is logged.
    pub exempt_users: Vec<String>,
    /// Members of these groups (primary or supplementary) never need a code; logged.
    pub exempt_groups: Vec<String>,
    /// Enroll users without a record at login, through the PAM conversation. Needs a
    /// root-owned store (`secret_path` outside the home).
    pub enroll_at_login: bool,
    /// One prompt for password and code together; the password part is handed on to
    /// the next module as `PAM_AUTHTOK` (`pam_totp_core::forward_pass`).
    pub forward_pass: bool,
    /// `totp-enroll` seals new secrets to `host_public_key` (see `pam_totp_store_file::seal`).
    pub seal: bool,
    /// The host's private key (root only, 0600): opens sealed records at login.
    pub host_key: PathBuf,
    /// The host's public key (world-readable): what `totp-enroll` seals to.
    pub host_public_key: PathBuf,
    /// Older private keys that still open records sealed to them until `reseal`.
    pub retired_keys: Vec<PathBuf>,
    /// Where records and login state live: `file` (`secret_path`, `state_dir`) or
    /// `postgres` (shared by many hosts; `pam_totp_store_pg`, in `pam_totp_db.so`).
    pub store: Store,
    /// With `store = "postgres"`: libpq-style `key=value` connection settings; TLS
    /// (`sslmode`, default verify-full) and credentials (`passfile`, `sslcert`/`sslkey`)
    /// in root-only files, never `password=` (`pam_totp_store_pg::conninfo`).
    pub postgres: String,
    /// Deadline of each database step (connecting, each statement), in milliseconds.
    pub postgres_timeout_ms: u64,
    /// After a right code over ssh with a public key, the same user with the same key
    /// (as sshd verified it: `SSH_AUTH_INFO_0`) passes without a code for this long.
    /// 0: off.
    pub remember_key_seconds: u64,
    /// After a login that passed a code, a check from a process of the same kernel audit
    /// session (`pam_loginuid`), for the same user, passes without a code for this long
    /// (sudo in a verified session). 0: off.
    pub step_up_seconds: u64,
}

/// Where `secret_path` puts records: in users' homes (`~`, `${HOME}`) or in a
/// root-owned system store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// In the user's home (`~`, `${HOME}`): owned by the user, read with the user's rights.
    Home,
    /// A system directory: owned by root, in a directory only root can write.
    System,
}

impl Config {
    /// Whether `secret_path` is in the users' homes or a system store.
    #[must_use]
    pub fn store_kind(&self) -> StoreKind {
        store_kind(&self.secret_path)
    }
}

/// [`Config::store_kind`] of a `secret_path` template.
#[must_use]
pub fn store_kind(template: &str) -> StoreKind {
    if template.starts_with('~') || template.contains("${HOME}") {
        StoreKind::Home
    } else {
        StoreKind::System
    }
}

/// The `store` key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// Records in files (`secret_path`), state in `state_dir`: one host.
    #[default]
    File,
    /// Records and state in PostgreSQL, shared by many hosts.
    Postgres,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            secret_path: "~/.pam_totp".to_owned(),
            state_dir: PathBuf::from("/var/lib/pam_totp"),
            window: 1,
            nullok: false,
            debug: false,
            prompt: "Verification code: ".to_owned(),
            issuer: String::new(),
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            max_failures: 5,
            lockout_seconds: 30,
            lockout_max_seconds: 15 * 60,
            lockout_exempt: Vec::new(),
            enforce_after: String::new(),
            exempt_users: Vec::new(),
            exempt_groups: Vec::new(),
            enroll_at_login: false,
            forward_pass: false,
            seal: false,
            host_key: PathBuf::from(DEFAULT_HOST_KEY),
            host_public_key: PathBuf::from(DEFAULT_HOST_PUBLIC_KEY),
            retired_keys: Vec::new(),
            store: Store::File,
            postgres: String::new(),
            postgres_timeout_ms: 2000,
            remember_key_seconds: 0,
            step_up_seconds: 0,
        }
    }
}

/// The code section: how new enrollments make codes (`algorithm`, `digits`, `period`),
/// how far either side of now a code is accepted (`window`), and the issuer the app shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeParameters<'a> {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    pub window: u8,
    /// Empty: the host name.
    pub issuer: &'a str,
}

/// The prompt section: `prompt`, `forward_pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptSettings<'a> {
    pub prompt: &'a str,
    pub forward_pass: bool,
}

/// The rollout section: who may log in without a code, and enrollment at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutPolicy<'a> {
    pub nullok: bool,
    /// `YYYY-MM-DD`, or empty: no grace period.
    pub enforce_after: &'a str,
    pub exempt_users: &'a [String],
    pub exempt_groups: &'a [String],
    pub enroll_at_login: bool,
}

/// The file-store section: `secret_path`, `state_dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSettings<'a> {
    pub secret_path: &'a str,
    pub state_dir: &'a Path,
}

impl FileSettings<'_> {
    /// Whether `secret_path` is in the users' homes or a system store.
    #[must_use]
    pub fn store_kind(&self) -> StoreKind {
        store_kind(self.secret_path)
    }
}

/// The database section: `store`, `postgres`, `postgres_timeout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseSettings<'a> {
    pub store: Store,
    pub postgres: &'a str,
    pub timeout_ms: u64,
}

impl<'a> From<&'a Config> for DatabaseSettings<'a> {
    fn from(config: &'a Config) -> DatabaseSettings<'a> {
        config.database()
    }
}

/// The host-key section, for opening sealed records: `host_key`, `retired_keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostKeys<'a> {
    pub host_key: &'a Path,
    pub retired_keys: &'a [PathBuf],
}

/// The lock-out section: `max_failures`, `lockout_seconds`, `lockout_max_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub seconds: u64,
    pub max_seconds: u64,
}

/// The shortcut section: when a proven earlier code stands in for a new one
/// (`pam_totp_core::remember`, `pam_totp_core::step_up`). 0: off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortcutPolicy {
    pub remember_key_seconds: u64,
    pub step_up_seconds: u64,
}

/// Longest `remember_key_seconds` / `step_up_seconds`: a working day.
pub const MAX_SHORTCUT_SECONDS: u64 = 12 * 3600;

/// Why a configuration could not be used. The module fails closed on every one.
#[derive(Debug)]
pub enum ConfigError {
    /// The file exists but could not be read.
    Read { path: PathBuf, source: io::Error },
    /// The file is larger than any sane config.
    TooLarge { path: PathBuf },
    /// The file is not TOML.
    Syntax {
        origin: String,
        source: Box<toml::de::Error>,
    },
    /// An unknown key, or a value of the wrong type; `message` names the key.
    Invalid {
        origin: String,
        message: String,
        source: Box<toml::de::Error>,
    },
    /// A module argument that names no key.
    UnknownArgument { key: String },
    /// A value of the right type that makes no sense (`digits = 12`).
    Value {
        origin: String,
        key: &'static str,
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            ConfigError::TooLarge { path } => write!(
                f,
                "config {} is larger than {MAX_CONFIG_BYTES} bytes",
                path.display()
            ),
            ConfigError::Syntax { origin, source } => write!(f, "{origin}: {}", source.message()),
            ConfigError::Invalid { origin, message, .. } => write!(f, "{origin}: {message}"),
            ConfigError::UnknownArgument { key } => {
                write!(f, "module arguments: unknown argument `{key}`")
            }
            ConfigError::Value { origin, key, message } => {
                write!(f, "{origin}: bad value for `{key}`: {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Syntax { source, .. } | ConfigError::Invalid { source, .. } => Some(source.as_ref()),
            ConfigError::TooLarge { .. }
            | ConfigError::UnknownArgument { .. }
            | ConfigError::Value { .. } => None,
        }
    }
}

impl Config {
    /// Loads the file at `path` (missing = all defaults) and applies `overrides`,
    /// module arguments in PAM style: `key=value` or a bare `flag` meaning `true`.
    ///
    /// # Errors
    /// Any unreadable file, syntax error, unknown key or bad value.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        let mut table = match read_capped(path) {
            Ok(text) => toml::from_str::<Table>(&text).map_err(|source| ConfigError::Syntax {
                origin: path.display().to_string(),
                source: Box::new(source),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Table::new(),
            Err(e) if e.kind() == io::ErrorKind::FileTooLarge => {
                return Err(ConfigError::TooLarge {
                    path: path.to_owned(),
                });
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let origin = if overrides.is_empty() {
            path.display().to_string()
        } else {
            format!("{} with module arguments", path.display())
        };
        for arg in overrides {
            let (key, value) = parse_override(arg)?;
            table.insert(key, value);
        }
        // The table deserialises directly at every login; only when it fails is it
        // written out and parsed again as text, whose spans let the error name its key.
        let config: Config = if let Ok(config) = table.clone().try_into() {
            config
        } else {
            let merged = toml::to_string(&table).unwrap_or_default();
            toml::from_str(&merged).map_err(|source| ConfigError::Invalid {
                origin: origin.clone(),
                message: describe_value_error(&merged, &source),
                source: Box::new(source),
            })?
        };
        config.validate(&origin)?;
        Ok(config)
    }

    /// Builds the config from PAM module arguments: `config=PATH` names the file (default
    /// [`DEFAULT_CONFIG_PATH`]), `secret=` is the PAM-style name of `secret_path`, and every
    /// other argument overrides the file's key of the same name.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_module_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut path = PathBuf::from(DEFAULT_CONFIG_PATH);
        let mut overrides = Vec::with_capacity(args.len());
        for arg in args {
            if let Some(value) = arg.strip_prefix("config=") {
                path = PathBuf::from(value);
            } else if let Some(value) = arg.strip_prefix("secret=") {
                overrides.push(format!("secret_path={value}"));
            } else {
                overrides.push(arg.clone());
            }
        }
        Config::load(&path, &overrides)
    }

    /// The code parameters (`pam_totp_core::verify`, new records, the Key URI).
    #[must_use]
    pub fn codes(&self) -> CodeParameters<'_> {
        CodeParameters {
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
            window: self.window,
            issuer: &self.issuer,
        }
    }

    /// The prompt keys (`pam_totp_core::forward_pass`).
    #[must_use]
    pub fn prompt_settings(&self) -> PromptSettings<'_> {
        PromptSettings {
            prompt: &self.prompt,
            forward_pass: self.forward_pass,
        }
    }

    /// The rollout keys (`pam_totp_core::rollout`, `login_enroll`).
    #[must_use]
    pub fn rollout(&self) -> RolloutPolicy<'_> {
        RolloutPolicy {
            nullok: self.nullok,
            enforce_after: &self.enforce_after,
            exempt_users: &self.exempt_users,
            exempt_groups: &self.exempt_groups,
            enroll_at_login: self.enroll_at_login,
        }
    }

    /// Where the file store keeps records and login state (`pam_totp_store_file`).
    #[must_use]
    pub fn files(&self) -> FileSettings<'_> {
        FileSettings {
            secret_path: &self.secret_path,
            state_dir: &self.state_dir,
        }
    }

    /// The database keys (`pam_totp_store_pg`).
    #[must_use]
    pub fn database(&self) -> DatabaseSettings<'_> {
        DatabaseSettings {
            store: self.store,
            postgres: &self.postgres,
            timeout_ms: self.postgres_timeout_ms,
        }
    }

    /// The keys that open sealed records (`pam_totp_store_file::seal`).
    #[must_use]
    pub fn host_keys(&self) -> HostKeys<'_> {
        HostKeys {
            host_key: &self.host_key,
            retired_keys: &self.retired_keys,
        }
    }

    /// The lock-out keys, for the rule in `pam_totp_core::lockout`.
    #[must_use]
    pub fn lockout(&self) -> LockoutPolicy {
        LockoutPolicy {
            max_failures: self.max_failures,
            seconds: self.lockout_seconds,
            max_seconds: self.lockout_max_seconds,
        }
    }

    /// The shortcut keys (`pam_totp_core::remember`, `pam_totp_core::step_up`).
    #[must_use]
    pub fn shortcuts(&self) -> ShortcutPolicy {
        ShortcutPolicy {
            remember_key_seconds: self.remember_key_seconds,
            step_up_seconds: self.step_up_seconds,
        }
    }

    /// Whether `user` is never locked out.
    #[must_use]
    pub fn is_lockout_exempt(&self, user: &str) -> bool {
        self.lockout_exempt.iter().any(|exempt| exempt == user)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, message: &str| ConfigError::Value {
            origin: origin.to_owned(),
            key,
            message: message.to_owned(),
        };
        if self.window > 10 {
            return Err(bad("window", "must be between 0 and 10 time steps"));
        }
        if !(6..=8).contains(&self.digits) {
            return Err(bad("digits", "must be 6, 7 or 8"));
        }
        if !(10..=300).contains(&self.period) {
            return Err(bad("period", "must be between 10 and 300 seconds"));
        }
        if self.secret_path.is_empty() {
            return Err(bad("secret_path", "must not be empty"));
        }
        if !self.state_dir.is_absolute() {
            return Err(bad("state_dir", "must be an absolute path"));
        }
        if self.prompt.contains('\0') {
            return Err(bad("prompt", "must not contain NUL"));
        }
        if self.issuer.contains(':') {
            return Err(bad(
                "issuer",
                "must not contain `:` (the Key URI Format reserves it)",
            ));
        }
        if !self.host_key.is_absolute() {
            return Err(bad("host_key", "must be an absolute path"));
        }
        if !self.host_public_key.is_absolute() {
            return Err(bad("host_public_key", "must be an absolute path"));
        }
        if !self.retired_keys.iter().all(|p| p.is_absolute()) {
            return Err(bad("retired_keys", "must be absolute paths"));
        }
        if self.max_failures == 0 {
            return Err(bad("max_failures", "must be at least 1"));
        }
        if self.lockout_seconds == 0 || self.lockout_max_seconds < self.lockout_seconds {
            return Err(bad(
                "lockout_max_seconds",
                "lockout_seconds must be positive and not above lockout_max_seconds",
            ));
        }
        if !(100..=60_000).contains(&self.postgres_timeout_ms) {
            return Err(bad("postgres_timeout_ms", "must be between 100 and 60000"));
        }
        if self.remember_key_seconds > MAX_SHORTCUT_SECONDS {
            return Err(bad("remember_key_seconds", "must be between 0 and 43200"));
        }
        if self.step_up_seconds > MAX_SHORTCUT_SECONDS {
            return Err(bad("step_up_seconds", "must be between 0 and 43200"));
        }
        // With store = "postgres", the connection string itself is checked by the database
        // store (pam_totp_store_pg::check_settings), the one crate that knows its syntax;
        // enroll_at_login goes through the database's host_enroll (migration 0006),
        // remembered keys and verified sessions through its shortcut functions (0005).
        rollout::validate(self).map_err(|(key, message)| bad(key, message))
    }
}

/// Whoever can write the policy can turn the second factor off (`nullok`): root's (or
/// the caller's), not writable by group or others. A symlink is followed (configuration
/// management links configs into place); a FIFO is not waited on.
const CONFIG_RULES: Rules = Rules {
    owner: Owner::RootOrEffective,
    forbidden_mode: 0o022,
    single_link: false,
    max_bytes: None,
    follow_symlink: true,
};

/// Reads at most [`MAX_CONFIG_BYTES`]; a longer file is `FileTooLarge`. Only a regular
/// file ([`CONFIG_RULES`]) is read.
fn read_capped(path: &Path) -> io::Result<String> {
    let (file, len) = trusted_file::open(path, &CONFIG_RULES, None).map_err(|refused| match refused {
        Refused::Missing => io::Error::from(io::ErrorKind::NotFound),
        Refused::NotRegular => io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        Refused::Owner { .. } | Refused::Mode { .. } => io::Error::new(
            io::ErrorKind::PermissionDenied,
            "refused: it must be owned by root and not writable by group or others",
        ),
        Refused::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    let bytes = trusted_file::read_all(file, len, MAX_CONFIG_BYTES).map_err(|refused| match refused {
        Refused::TooLarge { .. } => io::Error::from(io::ErrorKind::FileTooLarge),
        Refused::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

/// `window: invalid type: ...`: the message, prefixed with the key its span points at.
fn describe_value_error(text: &str, error: &toml::de::Error) -> String {
    let key = error.span().and_then(|span| {
        let line_start = text[..span.start.min(text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = &text[line_start..];
        line.split_once('=').map(|(key, _)| key.trim().to_owned())
    });
    match key {
        Some(key) if !key.is_empty() && !error.message().contains(&key) => {
            format!("`{key}`: {}", error.message())
        }
        _ => error.message().to_owned(),
    }
}

/// Turns one module argument into a TOML key and value.
///
/// The value is read as a TOML literal where it is one (`window=0`, `nullok=false`),
/// else taken as a string (`prompt=Code: `); a string for a key whose default is a list
/// is split on commas (`lockout_exempt=root,admin`), and a number or boolean for a key
/// whose default is a string is taken as written (`issuer=2024`).
fn parse_override(arg: &str) -> Result<(String, Value), ConfigError> {
    let (key, raw) = match arg.split_once('=') {
        Some((key, raw)) => (key, Some(raw)),
        None => (arg, None),
    };
    let defaults = Table::try_from(Config::default()).unwrap_or_default();
    let Some(default) = defaults.get(key) else {
        return Err(ConfigError::UnknownArgument { key: key.to_owned() });
    };
    let Some(raw) = raw else {
        return Ok((key.to_owned(), Value::Boolean(true)));
    };
    let literal = toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    let value = match (default, literal) {
        (Value::String(_), _) => Value::String(raw.to_owned()),
        (Value::Array(_), None | Some(Value::String(_))) => Value::Array(
            raw.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        (_, Some(literal)) => literal,
        (_, None) => Value::String(raw.to_owned()),
    };
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_text(text: &str, args: &[&str]) -> Result<Config, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().map_err(|source| ConfigError::Read {
            path: PathBuf::new(),
            source,
        })?;
        file.write_all(text.as_bytes())
            .map_err(|source| ConfigError::Read {
                path: PathBuf::new(),
                source,
            })?;
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        Config::load(file.path(), &args)
    }

    #[test]
    fn each_section_carries_its_keys_from_the_file_and_the_arguments() {
        let config = load_text(
            "digits = 8\nissuer = \"Educloud\"\nexempt_groups = [\"svc\"]\nsecret_path = \"/var/lib/totp/${USER}\"\n",
            &["window=2", "forward_pass", "postgres_timeout_ms=500"],
        )
        .unwrap();
        let codes = config.codes();
        assert_eq!((codes.digits, codes.window, codes.issuer), (8, 2, "Educloud"));
        assert!(config.prompt_settings().forward_pass);
        assert_eq!(config.rollout().exempt_groups, ["svc"]);
        assert_eq!(config.files().store_kind(), StoreKind::System);
        assert_eq!(config.files().state_dir, Path::new("/var/lib/pam_totp"));
        assert_eq!(config.database().timeout_ms, 500);
        assert_eq!(config.database().store, Store::File);
    }

    #[test]
    fn a_file_that_is_not_toml_keeps_the_parser_error_as_its_source() {
        let err = load_text("digits = = 8", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn missing_file_means_defaults() {
        let config = Config::load(Path::new("/nonexistent/pam_totp.toml"), &[]);
        assert_eq!(config.ok(), Some(Config::default()));
    }

    #[test]
    fn defaults_are_what_authenticator_apps_honour() {
        let config = Config::default();
        assert_eq!(
            (config.algorithm, config.digits, config.period),
            (Algorithm::Sha1, 6, 30)
        );
        assert_eq!(config.window, 1);
        assert_eq!(config.prompt, "Verification code: ");
    }

    #[test]
    fn file_values_are_read() {
        let config = load_text("window = 0\nsecret_path = \"/var/lib/pam_totp/${USER}\"\n", &[]);
        let config = config.ok();
        assert_eq!(config.as_ref().map(|c| c.window), Some(0));
        assert_eq!(
            config.map(|c| c.secret_path),
            Some("/var/lib/pam_totp/${USER}".to_owned())
        );
    }

    #[test]
    fn unknown_key_is_an_error_naming_key_and_file() {
        let err = load_text("windw = 2\n", &[])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("windw"), "{err}");
        assert!(err.contains(".tmp"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error_naming_key() {
        let err = load_text("window = \"wide\"\n", &[]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("window")));
    }

    #[test]
    fn a_toml_date_reads_the_same_as_a_quoted_one() {
        for text in ["enforce_after = 2027-01-15\n", "enforce_after = \"2027-01-15\"\n"] {
            let config = load_text(text, &[]).ok().map(|c| c.enforce_after);
            assert_eq!(config.as_deref(), Some("2027-01-15"), "{text}");
        }
    }

    #[test]
    fn an_issuer_with_a_colon_is_refused() {
        // The Key URI Format ends the issuer at `:`; apps would show a broken name.
        let err = load_text("issuer = \"Lab:1\"\n", &[])
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("issuer")));
    }

    #[test]
    fn out_of_range_value_is_an_error() {
        let err = load_text("digits = 12\n", &[]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("digits")));
        assert!(load_text("window = 200\n", &[]).is_err());
        for key in ["remember_key_seconds", "step_up_seconds"] {
            assert!(load_text(&format!("{key} = 43200\n"), &[]).is_ok(), "{key}");
            let err = load_text(&format!("{key} = 43201\n"), &[])
                .err()
                .map(|e| e.to_string());
            assert!(err.is_some_and(|e| e.contains(key)), "{key}");
        }
    }

    #[test]
    fn module_arguments_override_the_file() {
        let config = load_text(
            "window = 3\n",
            &[
                "window=0",
                "nullok",
                "debug",
                "prompt=Code: ",
                "lockout_exempt=root,ops",
            ],
        );
        let config = config.ok().unwrap_or_default();
        assert_eq!(config.window, 0);
        assert!(config.nullok && config.debug);
        assert!(!config.forward_pass);
        let forward = load_text("", &["forward_pass"]).ok().unwrap_or_default();
        assert!(forward.forward_pass, "a bare `forward_pass` argument turns it on");
        assert_eq!(config.prompt, "Code: ");
        assert_eq!(config.lockout_exempt, vec!["root".to_owned(), "ops".to_owned()]);
    }

    #[test]
    fn string_keys_take_numeric_looking_values_as_text() {
        let config = load_text("", &["issuer=2024", "secret=x"]);
        assert!(config.is_err(), "`secret` is not a config key");
        let config = load_text("", &["issuer=2024"]).ok().unwrap_or_default();
        assert_eq!(config.issuer, "2024");
    }

    #[test]
    fn module_arguments_name_the_file_and_alias_secret() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"window = 4\n").unwrap();
        let args = [
            format!("config={}", file.path().display()),
            "secret=/srv/otp/${USER}".to_owned(),
        ];
        let config = Config::from_module_args(&args).unwrap();
        assert_eq!(config.window, 4);
        assert_eq!(config.secret_path, "/srv/otp/${USER}");
    }

    #[test]
    fn sealing_keys_come_from_the_file_or_arguments() {
        let config = load_text("seal = true\nretired_keys = [\"/etc/security/old.key\"]\n", &[])
            .ok()
            .unwrap_or_default();
        assert!(config.seal);
        assert_eq!(config.host_key, PathBuf::from(DEFAULT_HOST_KEY));
        assert_eq!(config.retired_keys, vec![PathBuf::from("/etc/security/old.key")]);
        let config = load_text("", &["host_key=/k", "retired_keys=/a,/b"])
            .ok()
            .unwrap_or_default();
        assert_eq!(config.host_key, PathBuf::from("/k"));
        assert_eq!(config.retired_keys.len(), 2);
        assert!(load_text("host_key = \"relative.key\"\n", &[]).is_err());
        assert!(load_text("retired_keys = [\"old.key\"]\n", &[]).is_err());
    }

    #[test]
    fn the_postgres_keys_are_read_and_the_connection_string_left_to_the_database_store() {
        // pam_totp_store_pg::check_settings checks the string; see its tests.
        let config = load_text("store = \"postgres\"\npostgres = \"nonsense\"\n", &[]).unwrap();
        assert_eq!(config.store, Store::Postgres);
        assert_eq!(config.postgres_timeout_ms, 2000);
        let error = |text: &str| {
            load_text(text, &[])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(load_text("store = \"postgres\"\nenroll_at_login = true\n", &[]).is_ok());
        for key in ["remember_key_seconds", "step_up_seconds"] {
            let config = load_text(&format!("store = \"postgres\"\n{key} = 600\n"), &[]);
            assert!(config.is_ok(), "{key}");
        }
        assert!(error("postgres_timeout_ms = 5\n").contains("postgres_timeout_ms"));
        assert!(error("store = \"ldap\"\n").contains("store"));
        let args = load_text("", &["store=postgres", "postgres_timeout_ms=500"]).unwrap();
        assert_eq!((args.store, args.postgres_timeout_ms), (Store::Postgres, 500));
    }

    #[test]
    fn unknown_module_argument_is_an_error() {
        let err = load_text("", &["use_frist_pass"]).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("use_frist_pass")));
    }

    #[test]
    fn a_config_others_could_write_is_refused() {
        use std::fs;
        use std::os::unix::fs::PermissionsExt;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"window = 1\n").unwrap();
        for mode in [0o666, 0o620, 0o602] {
            fs::set_permissions(file.path(), fs::Permissions::from_mode(mode)).unwrap();
            let err = Config::load(file.path(), &[]).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("not writable by group or others")),
                "{mode:o}: {err:?}"
            );
        }
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(file.path(), &[]).is_ok());
    }

    #[test]
    fn garbage_file_is_an_error_not_a_panic() {
        assert!(load_text("\u{0}\u{1}[[[", &[]).is_err());
        assert!(load_text(&"x".repeat(100_000), &[]).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // 256 cases in `cargo test`; `make fuzz` (run by `make test`) sets PROPTEST_CASES.
            #![proptest_config(ProptestConfig::default())]

            #[test]
            fn any_config_text_loads_or_is_an_error(text in "\\PC{0,200}") {
                let _ = load_text(&text, &[]);
            }

            #[test]
            fn any_key_value_lines_load_or_are_an_error(
                lines in proptest::collection::vec(
                    ("(window|digits|period|max_failures|lockout_seconds|lockout_max_seconds|lockout_exempt|nullok|debug|prompt|issuer|algorithm|state_dir|secret_path|[a-z]{1,8})",
                     "(-?[0-9]{1,25}|true|false|\"\\PC{0,12}\"|\\[\"[a-z]{0,5}\"\\]|[a-z/~${}]{0,12})"),
                    0..6,
                ),
            ) {
                let text = lines
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Ok(config) = load_text(&text, &[]) {
                    prop_assert!(config.window <= 10);
                    prop_assert!((6..=8).contains(&config.digits));
                    prop_assert!(config.max_failures >= 1);
                    prop_assert!(config.lockout_seconds >= 1);
                }
            }

            #[test]
            fn any_module_arguments_load_or_are_an_error(
                args in proptest::collection::vec("\\PC{0,30}", 0..5),
            ) {
                let _ = Config::load(Path::new("/nonexistent/pam_totp.toml"), &args);
                let _ = Config::from_module_args(&args);
            }
        }
    }
}
