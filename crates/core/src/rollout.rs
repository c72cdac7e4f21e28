//! Turning the second factor on for a host whose users already log in.
//!
//! Three policies, all decided before (or instead of) asking for a code:
//! - `exempt_users` / `exempt_groups`: service accounts that never need a code; every
//!   use is logged, so an exemption is never silent;
//! - `enforce_after = "YYYY-MM-DD"`: until that day (00:00 UTC) a user without a record
//!   logs in without a code but is told, at every login, from when a code is needed and
//!   how to enroll; from that day on, such users are refused (unless `nullok`);
//! - `enroll_at_login`: checked as configuration by `pam_totp_config` (it needs a
//!   root-owned store); the flow itself is in [`crate::login_enroll`].

use pam_totp_config::{RolloutPolicy, clock};

use crate::ports::Accounts;

/// Whether `now` falls in the grace period (before `enforce_after`).
#[must_use]
pub fn in_grace_period(rollout: &RolloutPolicy<'_>, now: u64) -> bool {
    clock::parse_date(rollout.enforce_after).is_some_and(|start| now < start)
}

/// What an unenrolled user is told at each login during the grace period.
#[must_use]
pub fn grace_message(rollout: &RolloutPolicy<'_>) -> String {
    format!(
        "Two-factor authentication: from {} a verification code from an authenticator app \
         will be required to log in to this host. Set it up now: run `totp-enroll` and \
         scan the QR code with Microsoft Authenticator (or a similar app).",
        rollout.enforce_after
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
pub fn exemption(rollout: &RolloutPolicy<'_>, accounts: &dyn Accounts, user: &str) -> Option<Exemption> {
    if rollout.exempt_users.is_empty() && rollout.exempt_groups.is_empty() {
        return None;
    }
    let account = accounts.user(user).ok()?;
    if rollout.exempt_users.contains(&account.name) {
        return Some(Exemption::User);
    }
    if rollout.exempt_groups.is_empty() {
        return None;
    }
    let member_of = accounts.groups_of(&account).ok()?;
    rollout.exempt_groups.iter().find_map(|group| {
        let gid = accounts.group_id(group).ok().flatten()?;
        member_of.contains(&gid).then(|| Exemption::Group(group.clone()))
    })
}

#[cfg(test)]
mod tests {
    use pam_totp_os::account::{Account, AccountError};

    use pam_totp_config::Config;

    use super::*;

    #[test]
    fn grace_lasts_until_the_date() {
        let config = Config {
            enforce_after: "2027-01-15".to_owned(),
            ..Config::default()
        };
        assert!(in_grace_period(&config.rollout(), 1_799_971_199));
        assert!(!in_grace_period(&config.rollout(), 1_799_971_200));
        assert!(!in_grace_period(&Config::default().rollout(), 0));
        assert!(grace_message(&config.rollout()).contains("2027-01-15"));
        assert!(grace_message(&config.rollout()).contains("totp-enroll"));
    }

    use crate::ports::scripted::ScriptedAccounts;

    /// backup (uid 34) is in its own group and in `operators`; alice is in hers only.
    fn host() -> ScriptedAccounts {
        ScriptedAccounts {
            users: vec![("backup", 34, vec![34, 500]), ("alice", 1000, vec![1000])],
            groups: vec![("backup", 34), ("operators", 500), ("alice", 1000)],
        }
    }

    #[test]
    fn an_account_is_exempt_by_name_and_by_group() {
        let host = host();
        let by_name = Config {
            exempt_users: vec!["backup".to_owned()],
            ..Config::default()
        };
        assert_eq!(
            exemption(&by_name.rollout(), &host, "backup"),
            Some(Exemption::User)
        );
        assert_eq!(exemption(&by_name.rollout(), &host, "alice"), None);
        let by_group = Config {
            exempt_groups: vec!["no-such-group".to_owned(), "operators".to_owned()],
            ..Config::default()
        };
        assert_eq!(
            exemption(&by_group.rollout(), &host, "backup"),
            Some(Exemption::Group("operators".to_owned()))
        );
        assert_eq!(exemption(&by_group.rollout(), &host, "alice"), None);
        assert_eq!(exemption(&by_group.rollout(), &host, "no-such-user"), None);
        assert_eq!(exemption(&Config::default().rollout(), &host, "backup"), None);
    }

    #[test]
    fn a_primary_group_exempts_too() {
        let by_group = Config {
            exempt_groups: vec!["alice".to_owned()],
            ..Config::default()
        };
        assert_eq!(
            exemption(&by_group.rollout(), &host(), "alice"),
            Some(Exemption::Group("alice".to_owned()))
        );
    }

    #[test]
    fn a_group_database_that_cannot_be_read_exempts_no_one() {
        struct Broken(ScriptedAccounts);
        impl Accounts for Broken {
            fn user(&self, name: &str) -> Result<Account, AccountError> {
                self.0.user(name)
            }
            fn groups_of(&self, _: &Account) -> Result<Vec<nix::unistd::Gid>, AccountError> {
                Err(AccountError::Lookup(nix::Error::EIO))
            }
            fn group_id(&self, name: &str) -> Result<Option<nix::unistd::Gid>, AccountError> {
                self.0.group_id(name)
            }
            fn host_name(&self) -> String {
                self.0.host_name()
            }
        }
        let by_group = Config {
            exempt_groups: vec!["operators".to_owned()],
            ..Config::default()
        };
        assert_eq!(exemption(&by_group.rollout(), &Broken(host()), "backup"), None);
    }
}
