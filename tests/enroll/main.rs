//! `totp-enroll` as people use it: in a pty and a real terminal, the files it writes,
//! and imports from google-authenticator and pam_oath files.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod basics;
mod files;
mod import;
mod terminal;
