//! Whether the kernel believes the system clock is synchronised (NTP, chrony,
//! systemd-timesyncd): `adjtimex(2)` with no change requested, as `timedatectl` asks.
//! A host whose clock drifts refuses right codes; the module warns the admin.
//!
//! The one system call no safe wrapper offers (neither nix nor rustix has `adjtimex`):
//! this file alone in the crate allows `unsafe`, for it.

#![allow(unsafe_code)]

/// What the kernel says about the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSync {
    Synchronised,
    /// `STA_UNSYNC` set, or the call returned `TIME_ERROR`: no time service is keeping
    /// the clock right (or it lost its sources).
    Unsynchronised,
    /// The call failed (a seccomp filter, an odd kernel): nothing is claimed.
    Unknown,
}

/// Asks the kernel (`adjtimex` with `modes = 0`: a read, no privilege needed).
#[must_use]
pub fn status() -> ClockSync {
    // SAFETY: `timex` is a plain C struct of integers and a `timeval`; all zeroes is a
    // valid value of every field and, with `modes` = 0, asks for a read only.
    let mut buf: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `buf` is a valid, exclusively borrowed `timex` for the call's duration;
    // the kernel only writes into it.
    let returned = unsafe { libc::adjtimex(&raw mut buf) };
    interpret(returned, buf.status)
}

/// The verdict from `adjtimex`'s return value and the `status` field it filled.
#[must_use]
pub fn interpret(returned: libc::c_int, status: libc::c_int) -> ClockSync {
    if returned < 0 {
        ClockSync::Unknown
    } else if returned == libc::TIME_ERROR || status & libc::STA_UNSYNC != 0 {
        ClockSync::Unsynchronised
    } else {
        ClockSync::Synchronised
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_error_or_the_unsync_bit_means_unsynchronised() {
        assert_eq!(interpret(libc::TIME_OK, 0x2001), ClockSync::Synchronised);
        assert_eq!(
            interpret(libc::TIME_OK, libc::STA_UNSYNC),
            ClockSync::Unsynchronised
        );
        assert_eq!(interpret(libc::TIME_ERROR, 0), ClockSync::Unsynchronised);
        assert_eq!(interpret(libc::TIME_INS, 0x2001), ClockSync::Synchronised);
        assert_eq!(interpret(-1, 0), ClockSync::Unknown);
        // And the real call answers one of the three without failing here.
        let _ = status();
    }
}
