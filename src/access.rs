//! What pam_totp asks of the kernel, as SELinux sees it: every file, directory and
//! socket operation of the module (and of `totp-enroll` where its domain matters), with
//! the object class and permissions it needs and an example path whose label applies.
//!
//! The one list `tests/selinux_policy.rs` checks against the compiled RHEL targeted
//! policy with `packaging/selinux/pam_totp.te/.fc` built in. The unit test below scans
//! the sources of every crate under `crates/` (what the modules are made of) for
//! file-system and socket calls, so a new call in a file, or in a file with no entry,
//! fails until it is listed here (and the policy test then says whether the policy
//! allows it). It lives in the tests' package because it spans the crates.

#![forbid(unsafe_code)]

/// The kind of system call, as the source shows it ([`tests::MARKERS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `OpenOptions`, `File::open`, `open`, `openat` (files and directories, `O_CREAT`
    /// included).
    Open,
    /// `mkdir`: none, at login or in the command: the packages make the directories.
    Mkdir,
    /// `unlinkat`.
    Unlink,
    /// `renameat`.
    Rename,
    /// `flock` / `File::try_lock`.
    Lock,
    /// `read_dir`.
    List,
    /// `fsetxattr` (the SELinux label).
    Relabel,
    /// `dlopen`.
    Load,
    /// A connection: TCP, or a unix socket (tokio-postgres' `connect`, which picks one by
    /// the `host` it is given).
    Connect,
    /// A path looked at, not opened (`symlink_metadata`, `fs::metadata`, `fstatat`,
    /// `canonicalize`): `getattr` on what it names, `search` on the way there. The
    /// `metadata()` of an open file is an fstat and needs nothing new.
    Stat,
    /// An open file's mode or times changed (`fchmod`, `set_modified`): `setattr`.
    SetAttr,
}

/// Who performs an operation, i.e. in which SELinux domains it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domains {
    /// The module at every login: login programs (`login_pgm`) and sudo (`sudodomain`).
    LoginAndSudo,
    /// The module, for login programs only (enrollment at login writes a system store).
    Login,
    /// `totp-enroll` run by a user for themselves (or root for a user): user domains.
    Command,
    /// `totp-enroll` as root only (unlock, remove, reset).
    RootCommand,
}

/// Which store the operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Both stores.
    Any,
    /// `store = "files"` (the default).
    Files,
    /// `store = "postgres"`: at login, allowed only with [`Tunable::UsePostgresql`] on.
    Postgres,
}

/// A boolean of `packaging/selinux/pam_totp.te` (all off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunable {
    /// `pam_totp_use_postgresql`: the database over TCP or a PostgreSQL server's unix socket.
    UsePostgresql,
    /// `pam_totp_connect_pgbouncer`: with the first, any unconfined service's unix socket,
    /// for the host-local PgBouncer (RHEL runs it as `unconfined_service_t`).
    ConnectPgbouncer,
}

impl Tunable {
    pub const ALL: [Tunable; 2] = [Tunable::UsePostgresql, Tunable::ConnectPgbouncer];

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Tunable::UsePostgresql => "pam_totp_use_postgresql",
            Tunable::ConnectPgbouncer => "pam_totp_connect_pgbouncer",
        }
    }
}

/// The object of an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A file or directory; the path is an example whose label (from the `.fc` files) applies.
    Path(&'static str),
    /// A TCP port: its `portcon` type.
    TcpPort(u16),
    /// The domain's own: its socket, or its process's files in `/proc/self`.
    Own,
    /// An object of a type no path gives: the server domain a unix socket connects to
    /// (`connectto`), procfs (`proc_t`).
    Type(&'static str),
}

/// One permission check: object, class, permissions.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub object: Object,
    pub class: &'static str,
    pub perms: &'static [&'static str],
}

/// One operation of the code.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub what: &'static str,
    /// The file making the call, from the repository root.
    pub source: &'static str,
    pub calls: &'static [Call],
    pub by: Domains,
    pub store: Store,
    /// The booleans that, all on, must let the policy allow it (in the order README's
    /// table turns them on); none: always allowed.
    pub tunables: &'static [Tunable],
    pub needs: &'static [Need],
}

const fn path(path: &'static str, class: &'static str, perms: &'static [&'static str]) -> Need {
    Need {
        object: Object::Path(path),
        class,
        perms,
    }
}

const READ_DIR: &[&str] = &["getattr", "open", "read", "search"];
const READ_FILE: &[&str] = &["getattr", "open", "read", "ioctl"];
const ADD_ENTRY: &[&str] = &["search", "write", "add_name", "remove_name"];
/// The client's own unix socket, as tokio's `UnixStream::connect` uses it.
const UNIX_SOCKET: Need = Need {
    object: Object::Own,
    class: "unix_stream_socket",
    perms: &["create", "connect", "read", "write"],
};

/// Every operation; see the module documentation.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        what: "read /etc/security/pam_totp.toml",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Any,
        tunables: &[],
        needs: &[path("/etc/security/pam_totp.toml", "file", READ_FILE)],
    },
    Operation {
        what: "read the host key, database password or TLS files in /etc/security",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Any,
        tunables: &[],
        needs: &[
            path("/etc/security", "dir", READ_DIR),
            path("/etc/security/pam_totp.key", "file", READ_FILE),
        ],
    },
    Operation {
        what: "read ~/.pam_totp (home store)",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/home/alice", "dir", READ_DIR),
            path("/home/alice/.pam_totp", "file", READ_FILE),
        ],
    },
    Operation {
        what: "stat the home when a home store's record directory is missing (to name it)",
        source: "crates/store-file/src/record_store.rs",
        calls: &[Call::Stat],
        by: Domains::LoginAndSudo,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/home", "dir", &["search"]),
            path("/home/alice", "dir", &["getattr"]),
        ],
    },
    Operation {
        what: "read /root/.pam_totp",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/root", "dir", READ_DIR),
            path("/root/.pam_totp", "file", READ_FILE),
        ],
    },
    Operation {
        what: "read a record in /var/lib/pam_totp/records (system store)",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/var/lib/pam_totp", "dir", &["search"]),
            path("/var/lib/pam_totp/records", "dir", READ_DIR),
            path("/var/lib/pam_totp/records/alice", "file", READ_FILE),
        ],
    },
    Operation {
        what: "open, create, lock and write USER.state",
        source: "crates/store-file/src/state.rs",
        calls: &[Call::Open, Call::Lock],
        by: Domains::LoginAndSudo,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path(
                "/var/lib/pam_totp",
                "dir",
                &["getattr", "open", "read", "search", "write", "add_name"],
            ),
            path(
                "/var/lib/pam_totp/alice.state",
                "file",
                &["create", "getattr", "open", "read", "write", "lock"],
            ),
        ],
    },
    Operation {
        what: "create, read and touch .clock-warned (the hourly unsynchronised-clock warning)",
        source: "crates/store-file/src/state.rs",
        // The database store's logins too (clock_watch.rs): state_dir is on every host.
        calls: &[Call::Open, Call::SetAttr],
        by: Domains::LoginAndSudo,
        store: Store::Any,
        tunables: &[],
        needs: &[
            path(
                "/var/lib/pam_totp",
                "dir",
                &["getattr", "open", "read", "search", "write", "add_name"],
            ),
            // Its mtime says when the warning was last logged (set_modified: setattr).
            path(
                "/var/lib/pam_totp/.clock-warned",
                "file",
                &["create", "getattr", "open", "read", "write", "setattr"],
            ),
        ],
    },
    Operation {
        what: "read .remembered-keys and .verified-sessions (remember_key_seconds, step_up_seconds)",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/var/lib/pam_totp", "dir", &["search"]),
            path("/var/lib/pam_totp/.verified-sessions", "file", READ_FILE),
        ],
    },
    Operation {
        what: "lock .shortcuts.lock and replace .remembered-keys / .verified-sessions",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open, Call::SetAttr, Call::Rename, Call::Unlink],
        by: Domains::LoginAndSudo,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/var/lib/pam_totp", "dir", ADD_ENTRY),
            path(
                "/var/lib/pam_totp/.shortcuts.lock",
                "file",
                &["create", "getattr", "open", "read", "write", "lock"],
            ),
            path(
                "/var/lib/pam_totp/..verified-sessions.tmp.4242",
                "file",
                &[
                    "create", "getattr", "open", "write", "setattr", "rename", "unlink",
                ],
            ),
            path("/var/lib/pam_totp/.verified-sessions", "file", &["unlink"]),
        ],
    },
    Operation {
        what: "read this process's audit session id, /proc/self/sessionid (step_up_seconds)",
        source: "crates/os/src/audit_session.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Any,
        tunables: &[],
        needs: &[
            Need {
                object: Object::Type("proc_t"),
                class: "dir",
                perms: &["search"],
            },
            // fstatfs: only a procfs is believed.
            Need {
                object: Object::Type("proc_t"),
                class: "filesystem",
                perms: &["getattr"],
            },
            Need {
                object: Object::Own,
                class: "file",
                perms: &["getattr", "open", "read"],
            },
        ],
    },
    Operation {
        what: "write a record at login (enroll_at_login, system store)",
        source: "crates/store-file/src/record_store.rs",
        // Stat: whether a record appeared meanwhile (fstatat), before a secret is shown.
        calls: &[Call::Stat, Call::Unlink, Call::List],
        by: Domains::Login,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/var/lib/pam_totp/records", "dir", ADD_ENTRY),
            path(
                "/var/lib/pam_totp/records/.alice.tmp.4242",
                "file",
                &[
                    "create", "getattr", "open", "write", "setattr", "rename", "unlink",
                ],
            ),
            path("/var/lib/pam_totp/records/alice", "file", &["getattr", "unlink"]),
        ],
    },
    Operation {
        what: "load pam_totp_db.so (store = \"postgres\" in pam_totp.so)",
        source: "crates/pam/src/handover.rs",
        // Stat: its path resolved and checked (owner, mode; its directory's) before dlopen.
        calls: &[Call::Stat, Call::Load],
        by: Domains::LoginAndSudo,
        store: Store::Postgres,
        tunables: &[Tunable::UsePostgresql],
        needs: &[
            path("/usr/lib64/security", "dir", &["getattr", "search"]),
            path(
                "/usr/lib64/security/pam_totp_db.so",
                "file",
                &["getattr", "open", "read", "map", "execute"],
            ),
        ],
    },
    Operation {
        what: "connect to PostgreSQL, tcp 5432",
        source: "crates/store-pg/src/client.rs",
        calls: &[Call::Connect],
        by: Domains::LoginAndSudo,
        store: Store::Postgres,
        tunables: &[Tunable::UsePostgresql],
        needs: &[
            Need {
                object: Object::Own,
                class: "tcp_socket",
                perms: &["create", "connect", "getopt", "setopt", "read", "write"],
            },
            Need {
                object: Object::TcpPort(5432),
                class: "tcp_socket",
                perms: &["name_connect"],
            },
        ],
    },
    Operation {
        what: "connect to a PostgreSQL server's unix socket in /run/postgresql",
        source: "crates/store-pg/src/client.rs",
        calls: &[Call::Connect],
        by: Domains::LoginAndSudo,
        store: Store::Postgres,
        tunables: &[Tunable::UsePostgresql],
        needs: &[
            UNIX_SOCKET,
            path("/run", "dir", &["search"]),
            path("/run/postgresql", "dir", &["search"]),
            path("/run/postgresql/.s.PGSQL.5432", "sock_file", &["write"]),
            Need {
                object: Object::Type("postgresql_t"),
                class: "unix_stream_socket",
                perms: &["connectto"],
            },
        ],
    },
    Operation {
        what: "connect to a host-local PgBouncer's unix socket in /run/postgresql",
        source: "crates/store-pg/src/client.rs",
        calls: &[Call::Connect],
        by: Domains::LoginAndSudo,
        store: Store::Postgres,
        // Connecting to unconfined_service_t reaches every unconfined service's socket:
        // a boolean of its own.
        tunables: &[Tunable::UsePostgresql, Tunable::ConnectPgbouncer],
        needs: &[
            UNIX_SOCKET,
            path("/run", "dir", &["search"]),
            path("/run/postgresql", "dir", &["search"]),
            // packaging/pgbouncer/pgbouncer.ini's port.
            path("/run/postgresql/.s.PGSQL.6432", "sock_file", &["write"]),
            // RHEL has no policy module for PgBouncer: systemd runs /usr/bin/pgbouncer
            // (bin_t) as unconfined_service_t.
            Need {
                object: Object::Type("unconfined_service_t"),
                class: "unix_stream_socket",
                perms: &["connectto"],
            },
        ],
    },
    Operation {
        what: "enroll_at_login: stat ~/.pam_totp_change_request, with the user's rights, after an accepted code",
        source: "crates/store-pg/src/self_enroll.rs",
        calls: &[Call::Stat],
        by: Domains::LoginAndSudo,
        store: Store::Postgres,
        tunables: &[Tunable::UsePostgresql],
        needs: &[
            path("/home/alice", "dir", &["search"]),
            path("/home/alice/.pam_totp_change_request", "file", &["getattr"]),
        ],
    },
    Operation {
        what: "totp-enroll writes ~/.pam_totp (temporary file, then rename)",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open, Call::SetAttr, Call::Rename, Call::Unlink],
        by: Domains::Command,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/home/alice", "dir", ADD_ENTRY),
            path(
                "/home/alice/.pam_totp.tmp.4242",
                "file",
                &["create", "getattr", "open", "write", "setattr"],
            ),
            // Looked for first (record_store.rs: fstatat); renamed and replaced once
            // labelled as the record (below).
            path("/home/alice/.pam_totp", "file", &["getattr", "rename", "unlink"]),
        ],
    },
    Operation {
        what: "totp-enroll creates a file holding a secret (QR image) new, mode set",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open, Call::SetAttr],
        by: Domains::Command,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/home/alice", "dir", ADD_ENTRY),
            path(
                "/home/alice/alice.png",
                "file",
                &["create", "getattr", "open", "write", "setattr"],
            ),
        ],
    },
    Operation {
        what: "totp-enroll --force on a database host leaves ~/.pam_totp_change_request (a new file)",
        // enroll-cli/src/change_request.rs: remove_file, then trusted_file::create.
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open, Call::SetAttr],
        by: Domains::Command,
        store: Store::Postgres,
        tunables: &[],
        needs: &[
            path("/home/alice", "dir", ADD_ENTRY),
            path(
                "/home/alice/.pam_totp_change_request",
                "file",
                &["create", "getattr", "open", "write", "setattr", "unlink"],
            ),
        ],
    },
    Operation {
        what: "totp-enroll gives the temporary record the type of ~/.pam_totp",
        source: "crates/os/src/selinux_label.rs",
        calls: &[Call::Relabel],
        by: Domains::Command,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path(
                "/home/alice/.pam_totp.tmp.4242",
                "file",
                &["getattr", "relabelfrom"],
            ),
            path("/home/alice/.pam_totp", "file", &["relabelto"]),
        ],
    },
    Operation {
        what: "totp-enroll (root) writes /root/.pam_totp",
        source: "crates/os/src/selinux_label.rs",
        calls: &[Call::Relabel],
        by: Domains::RootCommand,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/root", "dir", ADD_ENTRY),
            path(
                "/root/.pam_totp.tmp.4242",
                "file",
                &["create", "getattr", "open", "write", "setattr", "relabelfrom"],
            ),
            path("/root/.pam_totp", "file", &["relabelto", "rename", "unlink"]),
        ],
    },
    Operation {
        what: "totp-enroll (root) lists the users with a state file or a system-store record",
        source: "crates/store-file/src/admin.rs",
        calls: &[Call::List],
        by: Domains::RootCommand,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/var/lib/pam_totp", "dir", READ_DIR),
            path("/var/lib/pam_totp/records", "dir", READ_DIR),
        ],
    },
    Operation {
        what: "totp-enroll (root) resets or removes a state file",
        source: "crates/store-file/src/state.rs",
        calls: &[Call::Unlink],
        by: Domains::RootCommand,
        store: Store::Files,
        tunables: &[],
        needs: &[
            path("/var/lib/pam_totp", "dir", ADD_ENTRY),
            path("/var/lib/pam_totp/alice.state", "file", &["unlink"]),
        ],
    },
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::{Call, OPERATIONS};

    /// How each kind of call shows in the source.
    pub const MARKERS: &[(&str, Call)] = &[
        ("OpenOptions", Call::Open),
        ("fcntl::open(", Call::Open),
        ("File::open(", Call::Open),
        ("File::create(", Call::Open),
        ("fs::read(", Call::Open),
        ("fs::read_to_string(", Call::Open),
        ("fs::write(", Call::Open),
        ("openat(", Call::Open),
        ("mkdir", Call::Mkdir),
        ("create_dir", Call::Mkdir),
        ("DirBuilder", Call::Mkdir),
        ("unlinkat(", Call::Unlink),
        ("renameat(", Call::Rename),
        ("flock(", Call::Lock),
        ("try_lock(", Call::Lock),
        ("read_dir(", Call::List),
        ("fsetxattr(", Call::Relabel),
        ("dlopen(", Call::Load),
        (".connect(", Call::Connect),
        ("TcpStream", Call::Connect),
        ("UnixStream", Call::Connect),
        // A path's stat. Not `.exists()`, `.is_dir()` or `.metadata()`: the ports'
        // `exists()`, `Metadata::is_dir` and `File::metadata` (an fstat) share those
        // names, so a `Path::exists` goes unseen (store-file's admin.rs asks it of the
        // state directory, whose getattr the command's entries for it hold).
        ("symlink_metadata(", Call::Stat),
        ("fs::metadata(", Call::Stat),
        ("fstatat(", Call::Stat),
        ("lstat(", Call::Stat),
        ("canonicalize(", Call::Stat),
        ("try_exists(", Call::Stat),
        ("set_modified(", Call::SetAttr),
        ("set_times(", Call::SetAttr),
        ("fchmod(", Call::SetAttr),
        ("set_permissions(", Call::SetAttr),
        ("fchown(", Call::SetAttr),
    ];

    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    /// The calls a file makes outside comments and its `#[cfg(test)]` module.
    fn calls_in(text: &str) -> BTreeSet<(&'static str, String)> {
        let mut calls = BTreeSet::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            // The unit tests at the end of a file; a `#[cfg(test)]` item elsewhere is code.
            if line == "#[cfg(test)]" && lines.peek().is_some_and(|next| next.starts_with("mod ")) {
                break;
            }
            let code = line.split("//").next().unwrap_or_default();
            for (marker, call) in MARKERS {
                if code.contains(marker) {
                    calls.insert((*marker, format!("{call:?}")));
                }
            }
        }
        calls
    }

    #[test]
    fn every_file_system_or_socket_call_in_the_crate_has_an_operation() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        // Each crate's src/: a build script (build.rs) runs in cargo, not in a login.
        for krate in std::fs::read_dir(root.join("crates")).unwrap() {
            let src = krate.unwrap().path().join("src");
            if src.is_dir() {
                sources(&src, &mut files);
            }
        }
        let mut missing = Vec::new();
        let mut seen = BTreeSet::new();
        for file in files {
            let name = file.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if name == "src/access.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (marker, call) in calls_in(&text) {
                let listed = OPERATIONS
                    .iter()
                    .any(|op| op.source == name && op.calls.iter().any(|c| format!("{c:?}") == call));
                if listed {
                    seen.insert((name.clone(), call));
                } else {
                    missing.push(format!("{name}: {marker} ({call})"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "calls with no entry in src/access.rs OPERATIONS (add one, then run \
             tests/selinux_policy.rs): {missing:#?}"
        );
        // And no entry for a call the file no longer makes.
        for op in OPERATIONS {
            for call in op.calls {
                assert!(
                    seen.contains(&(op.source.to_owned(), format!("{call:?}"))),
                    "{:?} lists {call:?} in {}, which makes no such call",
                    op.what,
                    op.source
                );
            }
        }
    }

    #[test]
    fn the_scan_sees_calls_and_skips_comments_and_tests() {
        let text = "fn f() {\n    let d = OpenOptions::new(); // openat( here is a comment\n}\n\
                    #[cfg(test)]\nmod tests { fn g() { unlinkat(x) } }\n";
        let calls: Vec<_> = calls_in(text).into_iter().map(|(m, _)| m).collect();
        assert_eq!(calls, ["OpenOptions"]);
    }
}
