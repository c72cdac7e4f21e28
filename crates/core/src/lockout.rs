//! The lock-out rule: how many failures lock an account out, and for how long. The
//! database store runs the same rule in SQL (its migrations); both are tested against
//! [`CASES`], one table in one place.

pub use pam_totp_config::LockoutPolicy;

use crate::login_state::{Channel, LoginState};

/// Counts one more failure on `channel`'s counters, and starts or lengthens its
/// lock-out once there are enough. Every account is limited so, exempt ones included.
#[must_use]
pub fn record_failure(policy: &LockoutPolicy, before: LoginState, now: u64, channel: Channel) -> LoginState {
    let (failures, locked_until) = before.counters(channel);
    let failures = failures.saturating_add(1);
    let locked_until = if failures < policy.max_failures {
        locked_until
    } else {
        let doublings = (failures - policy.max_failures).min(32);
        let length = policy
            .seconds
            .saturating_mul(1u64 << doublings)
            .min(policy.max_seconds);
        now.saturating_add(length)
    };
    before.with_counters(channel, failures, locked_until)
}

/// One more failure with `failures` counted and locked until `locked_until` at `now`:
/// the counters after it, under [`CASES_POLICY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub failures: u32,
    pub locked_until: u64,
    pub now: u64,
    /// `(failures, locked_until)` after the failure.
    pub after: (u32, u64),
}

/// The policy [`CASES`] are written for: 3 failures, 30 s doubling, at most 100 s.
pub const CASES_POLICY: LockoutPolicy = LockoutPolicy {
    max_failures: 3,
    seconds: 30,
    max_seconds: 100,
};

/// The lock-out rule as a table, for the Rust rule and the SQL one alike (values a
/// database integer holds; saturation near `u32::MAX`/`u64::MAX` is tested apart).
pub const CASES: &[Case] = &[
    // Below max_failures: counted, no lock-out.
    Case {
        failures: 0,
        locked_until: 0,
        now: 1000,
        after: (1, 0),
    },
    Case {
        failures: 1,
        locked_until: 0,
        now: 1000,
        after: (2, 0),
    },
    // The third failure locks for lockout_seconds, each further one doubles it...
    Case {
        failures: 2,
        locked_until: 0,
        now: 1000,
        after: (3, 1030),
    },
    Case {
        failures: 3,
        locked_until: 1030,
        now: 2000,
        after: (4, 2060),
    },
    // ...up to lockout_max_seconds.
    Case {
        failures: 4,
        locked_until: 2060,
        now: 3000,
        after: (5, 3100),
    },
    Case {
        failures: 40,
        locked_until: 0,
        now: 3000,
        after: (41, 3100),
    },
    // An older, longer lock-out still running is replaced by the rule's length from now.
    Case {
        failures: 5,
        locked_until: 9000,
        now: 3000,
        after: (6, 3100),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = CASES_POLICY;

    #[test]
    fn the_rule_follows_the_table_of_cases() {
        for case in CASES {
            let before = LoginState {
                failures: case.failures,
                locked_until: case.locked_until,
                ..LoginState::default()
            };
            let after = record_failure(&CASES_POLICY, before, case.now, Channel::Shared);
            assert_eq!((after.failures, after.locked_until), case.after, "{case:?}");
        }
    }

    #[test]
    fn lockout_starts_at_max_failures_and_doubles_up_to_the_cap() {
        let mut state = LoginState::default();
        let mut lengths = Vec::new();
        for _ in 0..6 {
            state = record_failure(&POLICY, state, 1000, Channel::Shared);
            lengths.push(state.locked_until.saturating_sub(1000));
        }
        assert_eq!(lengths, [0, 0, 30, 60, 100, 100]);
        assert_eq!(state.failures, 6);
    }

    #[test]
    fn console_failures_lock_the_console_alone_with_the_same_rule() {
        let mut state = LoginState::default();
        let mut lengths = Vec::new();
        for _ in 0..6 {
            state = record_failure(&POLICY, state, 1000, Channel::Console);
            lengths.push(state.console_locked_until.saturating_sub(1000));
        }
        assert_eq!(lengths, [0, 0, 30, 60, 100, 100]);
        assert_eq!(state.console_failures, 6);
        assert_eq!(
            (state.failures, state.locked_until),
            (0, 0),
            "the shared counters are untouched"
        );
    }

    #[test]
    fn failure_counts_saturate_instead_of_overflowing() {
        let state = LoginState {
            failures: u32::MAX,
            ..LoginState::default()
        };
        let after = record_failure(&POLICY, state, u64::MAX - 5, Channel::Shared);
        assert_eq!((after.failures, after.locked_until), (u32::MAX, u64::MAX));
    }
}
