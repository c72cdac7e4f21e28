//! The accounts the tests log in as. They are written into the private user database
//! that cargo's runner for this workspace (`testkit/run-hermetic`) gives every test
//! binary, never into the host's: outside it, adding a user fails the test instead.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use nix::unistd::{Gid, Group, Uid, User, chown};

/// Written by `testkit/run-hermetic` into the private `/etc` (its overlay holds it; the
/// host's `/etc` never does).
pub const HERMETIC_MARK: &str = "/etc/pam_totp-test-hermetic";

/// Fails unless this process runs as root in the runner's private user database.
pub fn assert_hermetic() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the integration tests must run as root"
    );
    assert!(
        Path::new(HERMETIC_MARK).exists(),
        "not in the private user database of testkit/run-hermetic: run the tests with \
         `cargo test` in the repository (its .cargo/config.toml makes that script the \
         runner); the tests never add users to the host"
    );
}

static ADDING: Mutex<()> = Mutex::new(());

/// `name`'s passwd entry, adding the user first if needed: a group of its own, `/bin/sh`,
/// a locked password and a home `/home/NAME` (0755) owned by it, as `useradd -m` makes.
#[must_use]
pub fn ensure_user(name: &str) -> User {
    assert_hermetic();
    let _turn = ADDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(user) = User::from_name(name).ok().flatten() {
        return user;
    }
    let id = next_free_id();
    let home = Path::new("/home").join(name);
    append("/etc/group", &format!("{name}:x:{id}:\n"));
    append("/etc/gshadow", &format!("{name}:!::\n"));
    append(
        "/etc/passwd",
        &format!("{name}:x:{id}:{id}::{}:/bin/sh\n", home.display()),
    );
    append("/etc/shadow", &format!("{name}:!:20000:0:99999:7:::\n"));
    std::fs::create_dir(&home).expect("home directory");
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).expect("chmod home");
    chown(&home, Some(Uid::from_raw(id)), Some(Gid::from_raw(id))).expect("chown home");
    User::from_name(name).ok().flatten().expect("the user just added")
}

/// Group `group`, made if needed, with `user` added to its members.
pub fn add_to_group(user: &str, group: &str) -> Group {
    assert_hermetic();
    let _turn = ADDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if Group::from_name(group).ok().flatten().is_none() {
        let id = next_free_id();
        append("/etc/group", &format!("{group}:x:{id}:\n"));
        append("/etc/gshadow", &format!("{group}:!::\n"));
    }
    for file in ["/etc/group", "/etc/gshadow"] {
        let text = std::fs::read_to_string(file).expect("group database");
        let lines: Vec<String> = text.lines().map(|line| with_member(line, group, user)).collect();
        std::fs::write(file, lines.join("\n") + "\n").expect("write the group database");
    }
    Group::from_name(group)
        .ok()
        .flatten()
        .expect("the group just made")
}

/// Makes the accounts `dpkg` finds named in its `statoverride` file (system accounts
/// of the host that are not in the private base, e.g. `messagebus`): dpkg stops at a
/// name it cannot resolve. They get unused ids from 999 down; dpkg applies them only to
/// the files of the packages that own them, which no test installs.
pub fn ensure_dpkg_accounts() {
    assert_hermetic();
    let overrides = std::fs::read_to_string("/var/lib/dpkg/statoverride").unwrap_or_default();
    let _turn = ADDING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for line in overrides.lines() {
        let mut fields = line.split_whitespace();
        let (Some(user), Some(group)) = (fields.next(), fields.next()) else {
            continue;
        };
        if Group::from_name(group).ok().flatten().is_none() {
            let id = free_system_id();
            append("/etc/group", &format!("{group}:x:{id}:\n"));
            append("/etc/gshadow", &format!("{group}:!::\n"));
        }
        if User::from_name(user).ok().flatten().is_none() {
            let id = free_system_id();
            append(
                "/etc/passwd",
                &format!("{user}:x:{id}:65534::/nonexistent:/usr/sbin/nologin\n"),
            );
            append("/etc/shadow", &format!("{user}:!:20000:0:99999:7:::\n"));
        }
    }
}

/// A line of `/etc/group` or `/etc/gshadow` (members last), with `user` among the
/// members if it is `group`'s line; any other line as it was.
fn with_member(line: &str, group: &str, user: &str) -> String {
    let is_group = line.strip_prefix(group).is_some_and(|rest| rest.starts_with(':'));
    let members = line.rsplit(':').next().unwrap_or_default();
    if !is_group || members.split(',').any(|member| member == user) {
        line.to_owned()
    } else if members.is_empty() {
        format!("{line}{user}")
    } else {
        format!("{line},{user}")
    }
}

/// Sets `name`'s password (with `chpasswd`, into the private `/etc/shadow`).
pub fn set_password(name: &str, password: &str) {
    assert_hermetic();
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run chpasswd");
    chpasswd
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(format!("{name}:{password}\n").as_bytes())
        .expect("write to chpasswd");
    drop(chpasswd.stdin.take());
    assert!(chpasswd.wait().is_ok_and(|s| s.success()), "chpasswd failed");
}

/// The lowest id from 1000 up that is neither a user's nor a group's.
fn next_free_id() -> u32 {
    let taken = taken_ids();
    (1000..60_000).find(|id| !taken.contains(id)).expect("a free id")
}

/// The highest system id (999 down) that is neither a user's nor a group's.
fn free_system_id() -> u32 {
    let taken = taken_ids();
    (100..1000)
        .rev()
        .find(|id| !taken.contains(id))
        .expect("a free system id")
}

/// Every id a user or a group has.
fn taken_ids() -> Vec<u32> {
    ["/etc/passwd", "/etc/group"]
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .expect("user database")
                .lines()
                .filter_map(|line| line.split(':').nth(2)?.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn append(file: &str, line: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file system type mounted at `at` in this process's mount namespace.
    fn mounted_type(at: &str) -> Option<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines().rev().find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            (before.split(' ').nth(4)? == at).then(|| after.split(' ').next().unwrap_or_default().to_owned())
        })
    }

    #[test]
    fn the_runner_gives_the_test_binary_a_user_database_and_home_of_its_own() {
        assert_hermetic();
        assert_eq!(mounted_type("/etc").as_deref(), Some("overlay"));
        assert_eq!(mounted_type("/home").as_deref(), Some("tmpfs"));
        let names: Vec<String> = std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .filter_map(|line| line.split(':').next().map(str::to_owned))
            .filter(|name| !name.starts_with("pamtotp-"))
            .collect();
        assert_eq!(
            names,
            [
                "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
                "proxy", "www-data", "backup", "list", "irc", "_apt", "sshd", "postgres", "nobody"
            ]
        );
        let nsswitch = std::fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
        for line in nsswitch
            .lines()
            .filter(|l| l.starts_with("passwd:") || l.starts_with("group:"))
        {
            assert!(line.ends_with(": files"), "{line}");
        }
        let user = ensure_user("pamtotp-unit");
        assert!(user.uid.as_raw() >= 1000);
        assert_eq!(ensure_user("pamtotp-unit").uid, user.uid, "added once");
        assert!(Path::new("/home/pamtotp-unit").is_dir());
        let group = add_to_group("pamtotp-unit", "pamtotp-unit-grp");
        assert_eq!(group.mem, ["pamtotp-unit"]);
    }

    #[test]
    fn a_member_is_added_once_to_its_groups_line_only() {
        assert_eq!(with_member("grp:x:1002:", "grp", "alice"), "grp:x:1002:alice");
        assert_eq!(with_member("grp:!::bob", "grp", "alice"), "grp:!::bob,alice");
        assert_eq!(
            with_member("grp:x:1002:bob,alice", "grp", "alice"),
            "grp:x:1002:bob,alice"
        );
        assert_eq!(with_member("grp2:x:1003:", "grp", "alice"), "grp2:x:1003:");
        assert_eq!(with_member("gr:x:1004:", "grp", "alice"), "gr:x:1004:");
        // "alice" is not "alice2".
        assert_eq!(
            with_member("grp:x:1:alice2", "grp", "alice"),
            "grp:x:1:alice2,alice"
        );
    }
}
