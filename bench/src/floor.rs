//! The physical floor of a login and the module's footprint: the cost of one durable
//! write, the file sizes, the memory a loaded module adds, and whether loading and
//! unloading it many times leaks memory or file descriptors.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use pam_client::{Login, Transaction};

use crate::peers::Peer;
use crate::run::thread_minor_faults;

/// `pwrite` of 64 bytes + `fdatasync`: what pam_totp does once per login.
///
/// # Errors
/// The file could not be written.
pub fn pwrite_fdatasync(dir: &Path, count: usize) -> std::io::Result<Vec<Duration>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("floor.state"))?;
    file.write_all_at(&[0u8; 128], 0)?;
    file.sync_all()?;
    (0..count)
        .map(|i| {
            let start = Instant::now();
            file.write_all_at(&[u8::try_from(i % 251).unwrap_or(0); 64], (i as u64 % 2) * 64)?;
            file.sync_data()?;
            Ok(start.elapsed())
        })
        .collect()
}

/// Temp file + `fsync` + `rename` + directory `fsync`: what a whole-file rewrite costs.
///
/// # Errors
/// A file could not be written.
pub fn rewrite_rename(dir: &Path, count: usize) -> std::io::Result<Vec<Duration>> {
    let dir_handle = File::open(dir)?;
    (0..count)
        .map(|_| {
            let start = Instant::now();
            let temp = dir.join("floor.tmp");
            let mut file = File::create(&temp)?;
            file.write_all(&[b'x'; 200])?;
            file.sync_all()?;
            fs::rename(&temp, dir.join("floor.file"))?;
            dir_handle.sync_all()?;
            Ok(start.elapsed())
        })
        .collect()
}

/// Resident memory of this process, in KiB.
#[must_use]
pub fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Open file descriptors of this process.
#[must_use]
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// RSS with a transaction of `peer` started and one login run, minus RSS before, in a
/// process that has loaded nothing else yet (run it in a fresh process).
#[must_use]
pub fn memory_added(confdir: &Path, peer: Peer, user: &str) -> i64 {
    let before = rss_kib();
    let login = Login {
        confdir,
        service: peer.service(),
        user,
        rhost: None,
    };
    let Ok(mut transaction) = Transaction::start(&login, &[b"000000"]) else {
        return -1;
    };
    let _ = transaction.authenticate();
    let after = rss_kib();
    drop(transaction);
    i64::try_from(after).unwrap_or(0) - i64::try_from(before).unwrap_or(0)
}

/// Result of the load/unload cycle check.
#[derive(Debug)]
pub struct LeakCheck {
    pub cycles: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub fds_before: usize,
    pub fds_after: usize,
    pub elapsed: Duration,
    /// Minor page faults of the whole run (one thread).
    pub minor_faults: u64,
}

impl LeakCheck {
    /// Mean minor page faults per cycle.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn faults_per_cycle(&self) -> f64 {
        self.minor_faults as f64 / self.cycles.max(1) as f64
    }
}

/// `cycles` × (load, authenticate as `user`, unload) of `peer`, after a warm-up of as
/// many (at most 1000).
#[must_use]
pub fn load_unload_cycles(confdir: &Path, peer: Peer, user: &str, cycles: usize) -> LeakCheck {
    let login = Login {
        confdir,
        service: peer.service(),
        user,
        rhost: None,
    };
    let run = |n: usize| {
        for _ in 0..n {
            let _ = pam_client::authenticate(&login, &[b"000000"]);
        }
    };
    run(cycles.min(1000));
    let (rss_before_kib, fds_before) = (rss_kib(), open_fds());
    let faults = thread_minor_faults();
    let start = Instant::now();
    run(cycles);
    let elapsed = start.elapsed();
    let minor_faults = thread_minor_faults().saturating_sub(faults);
    LeakCheck {
        cycles,
        rss_before_kib,
        rss_after_kib: rss_kib(),
        fds_before,
        fds_after: open_fds(),
        elapsed,
        minor_faults,
    }
}
