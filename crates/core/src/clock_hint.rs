//! Clock trouble explained: a refused code that is right for a time near, but outside,
//! the window is still refused and counted, and the user is told which way and how far
//! their phone's clock is off (the most common reason a right code is refused).
//!
//! Only an enrolled user's verdict carries an offset: the decoy does the same search
//! for the cost and throws it away, so an unknown or unenrolled user is never told.
//!
//! A hint is an oracle for guesses: a guess that is the code of a step a few minutes
//! ahead, told so, could be typed again when that step comes. So the hinted step is
//! burnt (its code is refused as a replay, `LoginState::hinted_step_start`), and while
//! a burnt step may still come into the window no other hint is given (there is one
//! burnt step per user): a guesser gains nothing from the hint but a refusal.

use pam_totp_config::Config;

use crate::login_state::LoginState;
use crate::ports::{Conversation, Logger, Login, LoginStore, Priority, Settled};

/// How far from the window a code is still recognised, in seconds either side.
pub const REACH_SECONDS: u64 = 600;

/// Whether `step` (of `period` seconds) is the step a hint was given for.
#[must_use]
pub fn burnt(state: &LoginState, step: u64, period: u64) -> bool {
    state.hinted_step_start != 0 && step.saturating_mul(period) == state.hinted_step_start
}

/// The hint to give for a wrong code found `offset` seconds from `now`, and the start
/// of the step to burn (a step ahead; for one behind, the one burnt before): none while
/// an earlier hinted step may still come into the window.
#[must_use]
pub fn hint(
    state: &LoginState,
    offset: Option<i64>,
    now: u64,
    period: u64,
    window: u8,
) -> Option<(i64, u64)> {
    let offset = offset?;
    let window_start = (now / period)
        .saturating_sub(u64::from(window))
        .saturating_mul(period);
    if state.hinted_step_start >= window_start {
        return None;
    }
    // A step behind the window never comes back (but for a wider window): no burn.
    if offset < 0 {
        return Some((offset, state.hinted_step_start));
    }
    let current = (now / period).saturating_mul(period);
    let start = current.checked_add_signed(offset)?;
    Some((offset, start))
}

/// What the user is told about a code `offset` seconds ahead of (positive) or behind
/// the clock that checked it.
#[must_use]
pub fn message(offset: i64) -> String {
    let minutes = offset.unsigned_abs().saturating_add(30) / 60;
    let size = match minutes {
        0 => "less than a minute".to_owned(),
        1 => "about 1 minute".to_owned(),
        n => format!("about {n} minutes"),
    };
    let direction = if offset > 0 { "ahead of" } else { "behind" };
    format!(
        "Your code is for a time {size} {direction} this server's clock: \
         set your phone's time to automatic."
    )
}

/// The log field for an offset (never the code).
#[must_use]
pub fn log_field(offset: i64) -> String {
    format!(" clock_offset={offset:+}s")
}

/// Tells the user about a refused code's clock offset, if the verdict found one.
pub fn tell(login: &Login<'_>, settled: &Settled, conv: &mut dyn Conversation, log: &dyn Logger) {
    let Some(offset) = settled.clock_offset else {
        return;
    };
    conv.show_error(&message(offset));
    log.log(
        Priority::Notice,
        &format!(
            "code for another time refused; {}{}",
            login.who(),
            log_field(offset)
        ),
    );
}

/// The admin's warning that this host's clock is not synchronised, when the store says
/// it is due (at most once an hour).
pub fn warn_host_clock(store: &dyn LoginStore, config: &Config, log: &dyn Logger) {
    if store.host_clock_warning_due(config) {
        log.log(
            Priority::Warning,
            "this host's clock is not synchronised (adjtimex): right codes may be refused; \
             enable a time service (chrony, systemd-timesyncd)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_says_the_direction_and_rough_size() {
        assert_eq!(
            message(180),
            "Your code is for a time about 3 minutes ahead of this server's clock: \
             set your phone's time to automatic."
        );
        assert_eq!(
            message(-300),
            "Your code is for a time about 5 minutes behind this server's clock: \
             set your phone's time to automatic."
        );
        assert!(message(60).contains("about 1 minute ahead"));
        assert!(message(-90).contains("about 2 minutes behind"));
        assert!(message(20).contains("less than a minute ahead"));
        assert_eq!(log_field(-270), " clock_offset=-270s");
        assert_eq!(log_field(90), " clock_offset=+90s");
    }

    #[test]
    fn a_hinted_step_is_burnt_and_no_second_hint_is_given_while_it_may_come() {
        let now = 30_000;
        let fresh = LoginState::default();
        assert_eq!(hint(&fresh, Some(180), now, 30, 1), Some((180, 30_180)));
        assert_eq!(hint(&fresh, None, now, 30, 1), None);
        let hinted = LoginState {
            hinted_step_start: 30_180,
            ..fresh
        };
        assert!(burnt(&hinted, 30_180 / 30, 30));
        assert!(!burnt(&hinted, 30_180 / 30 + 1, 30));
        assert!(!burnt(&fresh, 0, 30));
        // While step 1006 may still come into the window: no other hint.
        assert_eq!(hint(&hinted, Some(-300), now, 30, 1), None);
        assert_eq!(hint(&hinted, Some(300), now + 180, 30, 1), None);
        // Once it is behind the window, a new hint (and a new burnt step).
        assert_eq!(hint(&hinted, Some(-300), now + 240, 30, 1), Some((-300, 30_180)));
        assert_eq!(hint(&hinted, Some(300), now + 240, 30, 1), Some((300, 30_540)));
    }
}
