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
use crate::config::Config;
use crate::template::{self, StoreKind};

/// Checks the rollout keys of a config: `(key, why)` for the first bad one.
///
/// # Errors
/// An `enforce_after` that is not a `YYYY-MM-DD` date, an unusable exempt name, or
/// `enroll_at_login` with records in users' homes.
pub fn validate(config: &Config) -> Result<(), (&'static str, &'static str)> {
    if !config.enforce_after.is_empty() && parse_date(&config.enforce_after).is_none() {
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

/// Unix time of 00:00 UTC on `YYYY-MM-DD`, or `None` when the text is not a real date
/// of the Gregorian calendar between 1970 and 9999.
#[must_use]
pub fn parse_date(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if year < 1970 || day == 0 || day > month_days {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400)
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's `days_from_civil`, for
/// years from 1970 on, so everything stays unsigned).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Whether `now` falls in the grace period (before `enforce_after`).
#[must_use]
pub fn in_grace_period(config: &Config, now: u64) -> bool {
    parse_date(&config.enforce_after).is_some_and(|start| now < start)
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
    fn dates_are_midnight_utc() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(951_868_800));
        assert_eq!(parse_date("2027-01-15"), Some(1_799_971_200));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
    }

    #[test]
    fn impossible_or_sloppy_dates_are_refused() {
        for text in [
            "",
            "2027-1-15",
            "2027/01/15",
            "15-01-2027",
            "2027-13-01",
            "2027-00-10",
            "2027-02-29",
            "2100-02-29",
            "2027-04-31",
            "1969-12-31",
            "+027-01-15",
            "2027-01-15T00:00",
            "２０２７-01-15",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
    }

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
