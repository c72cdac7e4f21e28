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
    /// `OpenOptions`, `open`, `openat` (files and directories, `O_CREAT` included).
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
    /// A TCP connection (tokio-postgres' `connect`).
    Connect,
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
    /// `store = "postgres"`: allowed only with the tunable `pam_totp_use_postgresql` on.
    Postgres,
}

/// The object of an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A file or directory; the path is an example whose label (from the `.fc` files) applies.
    Path(&'static str),
    /// A TCP port: its `portcon` type.
    TcpPort(u16),
    /// The domain's own socket.
    OwnSocket,
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

/// Every operation; see the module documentation.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        what: "read /etc/security/pam_totp.toml",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Any,
        needs: &[path("/etc/security/pam_totp.toml", "file", READ_FILE)],
    },
    Operation {
        what: "read the host key, database password or TLS files in /etc/security",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Any,
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
        needs: &[
            path("/home/alice", "dir", READ_DIR),
            path("/home/alice/.pam_totp", "file", READ_FILE),
        ],
    },
    Operation {
        what: "read /root/.pam_totp",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::LoginAndSudo,
        store: Store::Files,
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
            // The hourly warning that the host clock is not synchronised: its marker's
            // mtime (both stores).
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
        needs: &[
            path("/var/lib/pam_totp", "dir", &["search"]),
            path("/var/lib/pam_totp/.verified-sessions", "file", READ_FILE),
        ],
    },
    Operation {
        what: "lock .shortcuts.lock and replace .remembered-keys / .verified-sessions",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open, Call::Rename, Call::Unlink],
        by: Domains::LoginAndSudo,
        store: Store::Files,
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
        what: "write a record at login (enroll_at_login, system store)",
        source: "crates/store-file/src/record_store.rs",
        calls: &[Call::Unlink, Call::List],
        by: Domains::Login,
        store: Store::Files,
        needs: &[
            path("/var/lib/pam_totp/records", "dir", ADD_ENTRY),
            path(
                "/var/lib/pam_totp/records/.alice.tmp.4242",
                "file",
                &[
                    "create", "getattr", "open", "write", "setattr", "rename", "unlink",
                ],
            ),
            path("/var/lib/pam_totp/records/alice", "file", &["unlink"]),
        ],
    },
    Operation {
        what: "load pam_totp_db.so (store = \"postgres\" in pam_totp.so)",
        source: "crates/pam/src/handover.rs",
        calls: &[Call::Load],
        by: Domains::LoginAndSudo,
        store: Store::Postgres,
        needs: &[path(
            "/usr/lib64/security/pam_totp_db.so",
            "file",
            &["getattr", "open", "read", "map", "execute"],
        )],
    },
    Operation {
        what: "connect to PostgreSQL, tcp 5432",
        source: "crates/store-pg/src/client.rs",
        calls: &[Call::Connect],
        by: Domains::LoginAndSudo,
        store: Store::Postgres,
        needs: &[
            Need {
                object: Object::OwnSocket,
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
        what: "totp-enroll writes ~/.pam_totp (temporary file, then rename)",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open, Call::Rename, Call::Unlink],
        by: Domains::Command,
        store: Store::Files,
        needs: &[
            path("/home/alice", "dir", ADD_ENTRY),
            path(
                "/home/alice/.pam_totp.tmp.4242",
                "file",
                &["create", "getattr", "open", "write", "setattr"],
            ),
            // Renamed and replaced once labelled as the record (below).
            path("/home/alice/.pam_totp", "file", &["rename", "unlink"]),
        ],
    },
    Operation {
        what: "totp-enroll creates a file holding a secret (QR image) new, mode set",
        source: "crates/os/src/trusted_file.rs",
        calls: &[Call::Open],
        by: Domains::Command,
        store: Store::Files,
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
        what: "totp-enroll gives the temporary record the type of ~/.pam_totp",
        source: "crates/os/src/selinux_label.rs",
        calls: &[Call::Relabel],
        by: Domains::Command,
        store: Store::Files,
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
        sources(&root.join("crates"), &mut files);
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
