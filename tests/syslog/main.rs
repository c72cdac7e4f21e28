//! What syslog says, read from a `/dev/log` of the test's own: each test runs in a
//! private mount namespace (`testkit::namespace`), and they take turns.
//!
//! Every test of this binary, and only these, capture syslog: glibc keeps one syslog
//! socket per process, so a test logging from outside a namespace would send its lines
//! to whichever namespace last connected (or take these tests' lines elsewhere).

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod clock;
mod enrollment;
mod logins;
mod missing_directories;
mod postgres;
mod postgres_console;
mod postgres_realms;
mod slim_module;
