//! The system users the benchmark logs in as: every module looks users up in passwd, so
//! they must be real. Created once, removed by `--cleanup`.

use std::process::Command;

/// Prefix of the benchmark's login users: `ptbench000`, `ptbench001`, ...
const PREFIX: &str = "ptbench";

/// Name of login user `i`.
#[must_use]
pub fn name(i: usize) -> String {
    format!("{PREFIX}{i:03}")
}

/// A passwd user with no enrollment in any store.
pub const UNENROLLED: &str = "ptbench-none";

/// A name passwd does not know (never created).
pub const UNKNOWN: &str = "ptbench-unknown";

/// Makes sure users `0..count` and [`UNENROLLED`] exist (no home, no shell).
///
/// # Errors
/// `useradd` failed for a reason other than the user existing.
pub fn ensure(count: usize) -> Result<(), String> {
    ensure_named((0..count).map(name).chain(std::iter::once(UNENROLLED.to_owned())))
}

/// Makes sure each of `names` exists as a system user (no home, no shell).
///
/// # Errors
/// `useradd` failed for a reason other than the user existing.
pub fn ensure_named(names: impl IntoIterator<Item = String>) -> Result<(), String> {
    for user in names {
        if nix::unistd::User::from_name(&user).ok().flatten().is_some() {
            continue;
        }
        let status = Command::new("useradd")
            .args([
                "--no-create-home",
                "--no-user-group",
                "--shell",
                "/usr/sbin/nologin",
                "--home-dir",
                "/nonexistent",
            ])
            .arg(&user)
            .status()
            .map_err(|e| format!("useradd: {e}"))?;
        if !status.success() && status.code() != Some(9) {
            return Err(format!("useradd {user} failed: {status}"));
        }
    }
    Ok(())
}

/// Removes every user [`ensure`] may have made.
pub fn remove(count: usize) {
    for user in (0..count).map(name).chain(std::iter::once(UNENROLLED.to_owned())) {
        let _ = Command::new("userdel").arg(&user).status();
    }
}
