//! Real SSH logins end to end: OpenSSH's `sshd` in namespaces of its own
//! (`testkit::sshd`) with the shipped `pam.d/` snippets, enrollment at first login over
//! ssh, remembered keys and sudo in a verified session, and `make demo` as a newcomer
//! runs it.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod basics;
mod db_enrollment;
mod db_shortcuts;
mod demo;
mod enrollment;
mod shortcuts;
mod snippets;
