//! Logins through real libpam with the built module and the file store: codes from
//! `oathtool`, records written by the built `totp-enroll`, replay, lock-out, hostile
//! input and files, races, rollout, re-enrollment and sealed secrets.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod bad_input;
mod basics;
mod clock_and_failures;
mod hostile_files;
mod lockout;
mod races;
mod reenroll;
mod rollout;
mod seal;
