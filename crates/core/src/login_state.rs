//! What the module remembers about a user between logins, whatever the store: replay
//! protection, failure counters and lock-outs per channel, burnt recovery codes, the
//! failed attempts since the last success, the last clock offset seen.

/// Which failure counter and lock-out an attempt is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Every attempt of an ordinary account, and every attempt of a `lockout_exempt`
    /// account that does not come from the local console.
    Shared,
    /// A `lockout_exempt` account at the local console: counted and locked out apart,
    /// so that a remote attacker cannot lock the owner out of the console.
    Console,
}

/// What the module remembers about a user between logins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginState {
    /// Unix time at which the newest accepted step ends: replay protection refuses any
    /// code of a step that starts before it. A time, not a step number, so that it keeps
    /// its meaning when the user re-enrolls with another period.
    pub used_until: u64,
    /// The last accepted step of a state written by the previous version (`PTS1`), in
    /// units of the period the record had then (0: none). Converted to `used_until` by
    /// [`LoginState::replay_floor`] at the first login that knows the record's period.
    pub legacy_step: u64,
    /// Consecutive failed attempts since the last success ([`Channel::Shared`]).
    pub failures: u32,
    /// Unix time until which the account is locked out (0: not locked).
    pub locked_until: u64,
    /// The same two for [`Channel::Console`].
    pub console_failures: u32,
    pub console_locked_until: u64,
    /// Unix time of the last successful login (0: never).
    pub last_success: u64,
    /// Identifies the set of recovery codes the `recovery_used` bits refer to.
    pub recovery_epoch: u64,
    /// One bit per burnt recovery code of that set.
    pub recovery_used: u64,
    /// Failed attempts since the last success, both channels, for the report at the
    /// next good login ([`crate::failed_report`]); an admin's unlock leaves it.
    pub failures_since_success: u32,
    /// Unix time of the last failed attempt (0: none), and where it came from.
    pub last_failure: u64,
    pub last_failure_source: FailureSource,
    /// Seconds between the time of the last refused code that matched a step near the
    /// window and this host's clock, positive when the code was ahead (0: none seen):
    /// what `totp-enroll status` shows ([`crate::clock_hint`]).
    pub clock_offset: i32,
    /// Unix time at which the step a clock hint was given for starts (0: none): its
    /// code is refused as used ([`crate::clock_hint`]).
    pub hinted_step_start: u64,
}

/// Where a failed attempt came from (`PAM_RHOST`, else the tty), as text of at most
/// [`FailureSource::CAPACITY`] bytes: a copyable value, as the rest of the state is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FailureSource {
    len: u8,
    bytes: [u8; FailureSource::CAPACITY],
}

impl FailureSource {
    /// The most kept (the database keeps 64 characters; the state file fewer).
    pub const CAPACITY: usize = 64;

    /// `text` cut to at most `max` bytes (and [`FailureSource::CAPACITY`]) on a
    /// character boundary.
    #[must_use]
    pub fn new(text: &str, max: usize) -> FailureSource {
        let mut end = text.len().min(max).min(FailureSource::CAPACITY);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; FailureSource::CAPACITY];
        bytes[..end].copy_from_slice(&text.as_bytes()[..end]);
        FailureSource {
            len: u8::try_from(end).unwrap_or(0),
            bytes,
        }
    }

    /// The text kept.
    #[must_use]
    pub fn as_str(&self) -> &str {
        let kept = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(kept).unwrap_or_default()
    }
}

impl Default for FailureSource {
    fn default() -> FailureSource {
        FailureSource::new("", 0)
    }
}

impl std::fmt::Debug for FailureSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl LoginState {
    /// Replay protection as a Unix time for a record of `period` seconds, checked at
    /// `now` with `window` steps either side: `used_until`, or a previous version's
    /// `legacy_step` read in `period` units. That conversion is clamped to the end of
    /// the newest step the window can reach: within the window the clamp refuses exactly
    /// what the unclamped value refuses, and a step number the old format stored in
    /// units of another period (the re-enrollment bug) costs at most one window rather
    /// than every code until a far future.
    #[must_use]
    pub fn replay_floor(&self, period: u64, now: u64, window: u8) -> u64 {
        if self.legacy_step == 0 {
            return self.used_until;
        }
        let converted = self.legacy_step.saturating_add(1).saturating_mul(period);
        let reach = now.saturating_add((u64::from(window) + 1).saturating_mul(period));
        self.used_until.max(converted.min(reach))
    }

    /// The failures and lock-out `channel` counts.
    #[must_use]
    pub fn counters(&self, channel: Channel) -> (u32, u64) {
        match channel {
            Channel::Shared => (self.failures, self.locked_until),
            Channel::Console => (self.console_failures, self.console_locked_until),
        }
    }

    /// One more failed attempt at `now` from `source`, for the next good login's report.
    #[must_use]
    pub fn with_failure_noted(self, now: u64, source: FailureSource) -> LoginState {
        LoginState {
            failures_since_success: self.failures_since_success.saturating_add(1),
            last_failure: now,
            last_failure_source: source,
            ..self
        }
    }

    /// The same state with `channel`'s failures and lock-out replaced.
    #[must_use]
    pub fn with_counters(self, channel: Channel, failures: u32, locked_until: u64) -> LoginState {
        match channel {
            Channel::Shared => LoginState {
                failures,
                locked_until,
                ..self
            },
            Channel::Console => LoginState {
                console_failures: failures,
                console_locked_until: locked_until,
                ..self
            },
        }
    }
}
