//! Turning the second factor on for a host whose users already log in.
//!
//! Three policies, all decided before (or instead of) asking for a code:
//! - `exempt_users` / `exempt_groups`: service accounts that never need a code; every
//!   use is logged, so an exemption is never silent;
//! - `enforce_after = "YYYY-MM-DD"`: until that day (00:00 UTC) a user without a record
//!   logs in without a code but is told, at every login, from when a code is needed and
//!   how to enroll; from that day on, such users are refused (unless `nullok`);
//! - `enroll_at_login`: checked here only as configuration (it needs a root-owned
//!   store); the flow itself is in [`crate::login_enroll`].

#![forbid(unsafe_code)]

use std::ffi::CString;

use serde::Deserialize;

use nix::unistd::{self, Group};

use crate::account::{Account, check_user_name};
use crate::clock;
use crate::config::Config;
use crate::template::{self, StoreKind};

/// Checks the rollout keys of a config: `(key, why)` for the first bad one.
///
/// # Errors
/// An `enforce_after` that is not a `YYYY-MM-DD` date, an unusable exempt name, or
/// `enroll_at_login` with records in users' homes.
pub fn validate(config: &Config) -> Result<(), (&'static str, &'static str)> {
    if !config.enforce_after.is_empty() && clock::parse_date(&config.enforce_after).is_none() {
        return Err((
            "enforce_after",
            "must be a date written YYYY-MM-DD (e.g. \"2027-01-15\"), or empty",
        ));
    }
    if config.exempt_users.iter().any(|u| check_user_name(u).is_err()) {
        return Err(("exempt_users", "each entry must be a plain user name"));
    }
    if config.exempt_groups.iter().any(|g| check_user_name(g).is_err()) {
        return Err(("exempt_groups", "each entry must be a plain group name"));
    }
    if config.enroll_at_login && template::store_kind(&config.secret_path) == StoreKind::Home {
        return Err((
            "enroll_at_login",
            "needs records in a root-owned store: set secret_path outside the home \
             (e.g. \"/var/lib/pam_totp/records/${USER}\"); the module never writes into a home directory",
        ));
    }
    if config.enroll_at_login && config.seal {
        return Err((
            "enroll_at_login",
            "cannot be combined with seal = true yet: the module does not seal the records it \
             writes; enroll with totp-enroll, or set seal = false",
        ));
    }
    if config.enroll_at_login && config.forward_pass {
        return Err((
            "enroll_at_login",
            "cannot be combined with forward_pass: with forward_pass the module runs before \
             the password is checked, and enrollment must only follow a first factor that passed",
        ));
    }
    Ok(())
}

/// `enforce_after` as written: a string, or a TOML date literal taken as its text (so
/// `enforce_after = 2027-01-15` works as well as the quoted form).
///
/// # Errors
/// Neither a string nor a TOML date-time.
pub fn date_or_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Date(toml::value::Datetime),
    }
    Ok(match Written::deserialize(deserializer)? {
        Written::Text(text) => text,
        Written::Date(date) => date.to_string(),
    })
}

/// Whether `now` falls in the grace period (before `enforce_after`).
#[must_use]
pub fn in_grace_period(config: &Config, now: u64) -> bool {
    clock::parse_date(&config.enforce_after).is_some_and(|start| now < start)
}

/// What an unenrolled user is told at each login during the grace period.
#[must_use]
pub fn grace_message(config: &Config) -> String {
    format!(
        "Two-factor authentication: from {} a verification code from an authenticator app \
         will be required to log in to this host. Set it up now: run `totp-enroll` and \
         scan the QR code with Microsoft Authenticator (or a similar app).",
        config.enforce_after
    )
}

/// Why an account needs no code, for the log line: `exempt_users` or the matching group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exemption {
    User,
    Group(String),
}

impl std::fmt::Display for Exemption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exemption::User => f.write_str("exempt_users"),
            Exemption::Group(group) => write!(f, "exempt_groups: member of {group}"),
        }
    }
}

/// Whether `user` is exempt. Only known users can be; a group that does not exist, or a
/// group database that cannot be read, exempts no one (the code is then asked for:
/// failing closed).
#[must_use]
pub fn exemption(config: &Config, user: &str) -> Option<Exemption> {
    if config.exempt_users.is_empty() && config.exempt_groups.is_empty() {
        return None;
    }
    let account = Account::lookup(user).ok()?;
    if config.exempt_users.contains(&account.name) {
        return Some(Exemption::User);
    }
    if config.exempt_groups.is_empty() {
        return None;
    }
    let name = CString::new(account.name.as_bytes()).ok()?;
    let member_of = unistd::getgrouplist(&name, account.gid).ok()?;
    config.exempt_groups.iter().find_map(|group| {
        let gid = Group::from_name(group).ok().flatten()?.gid;
        member_of.contains(&gid).then(|| Exemption::Group(group.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforce_after_may_be_a_toml_date_or_a_string() {
        for text in ["enforce_after = 2027-01-15", "enforce_after = \"2027-01-15\""] {
            let config: Result<Config, _> = toml::from_str(text);
            assert_eq!(
                config.map(|c| c.enforce_after).ok().as_deref(),
                Some("2027-01-15"),
                "{text}"
            );
        }
        let config: Config = toml::from_str("enforce_after = 2027-01-15T10:00:00Z").unwrap();
        assert!(validate(&config).is_err(), "a time is not a date");
    }

    #[test]
    fn grace_lasts_until_the_date() {
        let config = Config {
            enforce_after: "2027-01-15".to_owned(),
            ..Config::default()
        };
        assert!(in_grace_period(&config, 1_799_971_199));
        assert!(!in_grace_period(&config, 1_799_971_200));
        assert!(!in_grace_period(&Config::default(), 0));
        assert!(grace_message(&config).contains("2027-01-15"));
        assert!(grace_message(&config).contains("totp-enroll"));
    }

    #[test]
    fn enroll_at_login_is_refused_with_records_in_homes() {
        let home = Config {
            enroll_at_login: true,
            ..Config::default()
        };
        assert_eq!(validate(&home).map_err(|(key, _)| key), Err("enroll_at_login"));
        let system = Config {
            secret_path: "/var/lib/pam_totp/records/${USER}".to_owned(),
            ..home
        };
        assert_eq!(validate(&system), Ok(()));
        let sealing = Config {
            seal: true,
            ..system.clone()
        };
        assert_eq!(validate(&sealing).map_err(|(key, _)| key), Err("enroll_at_login"));
        let one_prompt = Config {
            forward_pass: true,
            ..system
        };
        assert_eq!(
            validate(&one_prompt).map_err(|(key, _)| key),
            Err("enroll_at_login")
        );
    }

    #[test]
    fn root_is_exempt_by_name_and_by_group() {
        let by_name = Config {
            exempt_users: vec!["root".to_owned()],
            ..Config::default()
        };
        assert_eq!(exemption(&by_name, "root"), Some(Exemption::User));
        let by_group = Config {
            exempt_groups: vec!["no-such-group-pamtotp".to_owned(), "root".to_owned()],
            ..Config::default()
        };
        assert_eq!(
            exemption(&by_group, "root"),
            Some(Exemption::Group("root".to_owned()))
        );
        assert_eq!(exemption(&by_group, "no-such-user-pamtotp"), None);
        assert_eq!(exemption(&Config::default(), "root"), None);
    }
}
