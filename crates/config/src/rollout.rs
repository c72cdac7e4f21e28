//! The rollout keys' checks at load: `enforce_after`, the exempt names, and the
//! combinations `enroll_at_login` refuses.

use serde::Deserialize;

use pam_totp_os::account::check_user_name;

use crate::{Config, Store, StoreKind, clock};

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
    // The database store writes no record file: secret_path and seal are not its.
    let writes_files = config.store == Store::File;
    if config.enroll_at_login && writes_files && config.store_kind() == StoreKind::Home {
        return Err((
            "enroll_at_login",
            "needs records in a root-owned store: set secret_path outside the home \
             (e.g. \"/var/lib/pam_totp/records/${USER}\"); the module never writes into a home directory",
        ));
    }
    if config.enroll_at_login && writes_files && config.seal {
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
}
