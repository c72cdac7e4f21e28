//! The module is loaded and unloaded with every PAM handle (`pam_start` dlopens it,
//! `pam_end` dlcloses it). With the database store each login also makes a runtime, a
//! connection and TLS state: 10 000 load/login/unload cycles in one process (and 2 000
//! through `pam_totp.so`, which loads and unloads `pam_totp_db.so` each time) must leave
//! no thread, no file descriptor and no memory behind, and never crash.
//!
//! A test binary of its own: the counts are the whole process's, so no other test may
//! run beside these.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use pam_client::{AUTH_ERR, SUCCESS};
use testkit::postgres::{Cluster, PgHost, enroll, set_policy, state};
use testkit::{ModuleBuild, SECRET, TEST_USER, oathtool, settle_in_step};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn fd_targets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some(format!("{} -> {}", e.file_name().display(), target.display()))
        })
        .collect()
}

/// Our sockets connected to `port` on this machine (a database connection left open).
fn connections_to(port: u16) -> Vec<String> {
    let tcp = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = fields.get(2)?.rsplit(':').next()?;
            let inode = fields.get(9)?;
            (u16::from_str_radix(remote_port, 16).ok()? == port).then(|| format!("socket:[{inode}]"))
        })
        .collect();
    fd_targets()
        .into_iter()
        .filter(|fd| inodes.iter().any(|i| fd.contains(i.as_str())))
        .collect()
}

/// Open descriptors other than sockets: glibc's syslog opens and closes its /dev/log
/// socket as sending succeeds or fails, so sockets are checked by [`connections_to`].
fn files() -> Vec<String> {
    fd_targets()
        .into_iter()
        .filter(|fd| !fd.contains("socket:"))
        .collect()
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .collect()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The release build when it is at least as new as the debug one (`make test` builds
/// both; the release build keeps this test well under a minute), else the debug build
/// (several times slower to load and run).
fn module() -> PathBuf {
    testkit::module(ModuleBuild::Freshest)
}

#[test]
fn ten_thousand_load_login_unload_cycles_leak_no_thread_fd_or_memory() {
    cycles_leave_nothing(10_000, |host| {
        let module = module();
        println!("module: {}", module.display());
        std::fs::copy(&module, host.fixture.path("pam_totp.so")).unwrap();
    });
}

/// The installed setup: `pam_totp.so` (file store) loads `pam_totp_db.so` at every login
/// and unloads it again (two dlopens and dlcloses a cycle).
#[test]
fn handed_over_logins_load_and_unload_both_modules_and_leak_nothing() {
    cycles_leave_nothing(2_000, |host| {
        let slim = testkit::module(ModuleBuild::FileStore);
        std::fs::copy(&slim, host.fixture.path("pam_totp.so")).unwrap();
        std::fs::copy(module(), host.fixture.path("pam_totp_db.so")).unwrap();
    });
}

/// `cycles` load/login/unload cycles on two threads, with the module(s) `install` puts
/// in the host's PAM directory: no thread, fd, connection or memory left behind.
fn cycles_leave_nothing(cycles: usize, install: impl Fn(&PgHost)) {
    // The counts are the whole process's: one such run at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cluster = Cluster::start();
    enroll(&cluster, TEST_USER, SECRET);
    // The database's policy (a host's lock-out keys are not used with it).
    set_policy(&cluster, |policy| {
        policy.max_failures = 1;
        policy.lockout_seconds = 3600;
        policy.lockout_max_seconds = 3600;
    });
    let host = PgHost::new(&cluster, "host_a", "");
    install(&host);
    // Warm up (libpam, NSS, the allocator's arenas) with a whole login: look up,
    // prompt, verify.
    settle_in_step(3);
    assert_eq!(host.fixture.login(&oathtool(SECRET, 0)).status, SUCCESS);
    // Then locked out: each cycle loads the module, connects, looks the user up,
    // refuses, disconnects and unloads, with no prompt to wait for.
    assert_eq!(host.fixture.login("000000").status, AUTH_ERR);
    assert!(state(&cluster, TEST_USER).locked_until > testkit::now());
    for _ in 0..200 {
        assert_eq!(host.fixture.login("000000").status, AUTH_ERR);
    }
    let (threads, fds, rss) = (count("/proc/self/task"), files().len(), rss_kib());
    // Two loading threads, as sshd's children would be many: the two cores stay busy
    // (each cycle mostly waits for the server) and dlopen/dlclose race each other.
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..2 {
            let (host, cluster) = (&host, &cluster);
            scope.spawn(move || {
                for i in 0..cycles / 2 {
                    let t = host.fixture.login("000000");
                    assert_eq!(
                        t.status,
                        AUTH_ERR,
                        "worker {worker} cycle {i}: {t:?}\n{}",
                        cluster.log()
                    );
                    // The two workers are the only threads added.
                    let now = count("/proc/self/task");
                    assert!(
                        now <= threads + 2,
                        "cycle {i}: {now} threads: one outlived a login"
                    );
                    if worker == 0 && i % 1000 == 999 {
                        println!("cycle {}: RSS {} KiB", 2 * (i + 1), rss_kib());
                    }
                }
            });
        }
    });
    let took = started.elapsed();
    // A joined thread's /proc entry can outlive the join by a moment.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (threads_after, fds_after, rss_after) = (count("/proc/self/task"), files().len(), rss_kib());
    println!(
        "{cycles} cycles in {took:?} ({:?} each): threads {threads} -> {threads_after}, \
         fds {fds} -> {fds_after}, RSS {rss} -> {rss_after} KiB",
        took / u32::try_from(cycles).unwrap()
    );
    assert_eq!(threads_after, threads, "threads: {:?}", thread_names());
    assert_eq!(fds_after, fds, "fds: {:?}", fd_targets());
    assert_eq!(
        connections_to(cluster.port),
        Vec::<String>::new(),
        "a database connection was left open"
    );
    assert!(rss_after <= rss + 2048, "RSS grew from {rss} to {rss_after} KiB");
}
