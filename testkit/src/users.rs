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
        let lines: Vec<String> = text
            .lines()
            .map(
                |line| match line.strip_prefix(group).and_then(|rest| rest.strip_prefix(':')) {
                    Some(_)
                        if line
                            .rsplit(':')
                            .next()
                            .is_some_and(|members| members.split(',').any(|member| member == user)) =>
                    {
                        line.to_owned()
                    }
                    Some(_) if line.ends_with(':') => format!("{line}{user}"),
                    Some(_) => format!("{line},{user}"),
                    None => line.to_owned(),
                },
            )
            .collect();
        std::fs::write(file, lines.join("\n") + "\n").expect("write the group database");
    }
    Group::from_name(group)
        .ok()
        .flatten()
        .expect("the group just made")
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
    let taken: Vec<u32> = ["/etc/passwd", "/etc/group"]
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .expect("user database")
                .lines()
                .filter_map(|line| line.split(':').nth(2)?.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    (1000..60_000).find(|id| !taken.contains(id)).expect("a free id")
}

fn append(file: &str, line: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
}
