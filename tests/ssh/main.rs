//! Real SSH logins end to end: OpenSSH's `sshd` in namespaces of its own
//! (`testkit::sshd`) with the shipped `pam.d/` snippets, enrollment at first login over
//! ssh, remembered keys and sudo in a verified session, and `make demo` as a newcomer
//! runs it.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::Write;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use testkit::postgres::Cluster;
use testkit::sshd::Sshd;

mod basics;
mod db_enrollment;
mod db_shortcuts;
mod demo;
mod enrollment;
mod shortcuts;
mod snippets;

/// `~/.pam_totp_change_request` is one file in [`testkit::sshd::SSH_USER`]'s one home, and
/// tests run at once: the test that asks for a change holds this for writing, every other
/// database-store test for reading, so none of their logins sees a request not theirs.
static CHANGE_REQUEST: RwLock<()> = RwLock::new(());

/// For a database-store test that does not ask for a change.
fn no_change_request() -> RwLockReadGuard<'static, ()> {
    CHANGE_REQUEST.read().unwrap_or_else(PoisonError::into_inner)
}

/// For the test that asks for one (it removes the file before it lets go).
fn change_request() -> RwLockWriteGuard<'static, ()> {
    CHANGE_REQUEST.write().unwrap_or_else(PoisonError::into_inner)
}

/// `server`'s module config pointed at `cluster` as the host role `role`.
fn use_database(server: &Sshd, cluster: &Cluster, role: &str) {
    let passfile = cluster.add_host_role_with_passfile(role, server.dir.path());
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(server.config_path())
        .unwrap();
    writeln!(
        config,
        "store = \"postgres\"\npostgres = \"{}\"",
        cluster.conninfo(role, &passfile)
    )
    .unwrap();
}
