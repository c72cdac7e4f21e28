//! A private mount namespace for one test, on a thread of its own: `/dev` is a fresh
//! tmpfs holding `null`, `zero`, `urandom`, `random` and `full` bound from the real
//! one, plus a `/dev/log` socket that collects what the module (and `totp-enroll`, a
//! child of that thread) send to syslog; there is no syslog daemon here or in CI.
//! Tests can also mount small tmpfs file systems (full disk, read-only). Every mount
//! lives only in that namespace and vanishes with the thread, even if the test fails.
//!
//! glibc keeps one syslog socket per process, so these tests take turns (a global lock)
//! and should live in a test binary of their own: logins on other threads of the same
//! binary would log into whichever namespace last connected.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The namespace a test runs in, with its syslog collector.
pub struct Namespace {
    collector: Arc<Collector>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// `/dev/log` and what came through it. Only the holder of `lines` reads the socket,
/// and it reads until the socket has been quiet for a moment, so a line sent before
/// [`Namespace::syslog`] is called is in what it returns. A reader thread keeps the
/// queue short meanwhile (Linux lets only `net.unix.max_dgram_qlen`, often 10, wait
/// before the sender blocks).
struct Collector {
    log: UnixDatagram,
    lines: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Collector {
    fn drain(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = self.log.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            // `<PRI>Mmm dd hh:mm:ss TAG: message` (TAG with or without `[pid]`).
            let message = match line.split_once(": ") {
                Some((header, message)) if header.starts_with('<') => message,
                _ => line.as_str(),
            };
            lines.push(message.trim_end().to_owned());
        }
        lines
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        self.collector.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Namespace {
    // `&self`: mounting is only safe inside the namespace, so only it offers these.
    /// Mounts a tmpfs of `size` (e.g. `"64k"`) with `mode` at `at`, creating `at`.
    #[allow(clippy::unused_self)]
    pub fn mount_tmpfs(&self, at: &Path, size: &str, mode: u32) {
        std::fs::create_dir_all(at).expect("mount point");
        mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(format!("size={size},mode={mode:o}").as_str()),
        )
        .expect("mount tmpfs");
    }

    /// Unmounts what was mounted at `at`, showing what was beneath again.
    #[allow(clippy::unused_self)]
    pub fn unmount(&self, at: &Path) {
        umount2(at, MntFlags::empty()).expect("unmount");
    }

    /// Makes the tmpfs at `at` read-only.
    #[allow(clippy::unused_self)]
    pub fn remount_read_only(&self, at: &Path) {
        mount(
            None::<&str>,
            at,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        )
        .expect("remount read-only");
    }

    /// The syslog lines holding every one of `needles`; fails the test, showing all the
    /// lines, if none does.
    // Also an assertion, so a caller may want only that.
    #[allow(clippy::must_use_candidate)]
    pub fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        let lines = self.syslog();
        let found: Vec<String> = lines
            .iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .cloned()
            .collect();
        assert!(
            !found.is_empty(),
            "no syslog line holds {needles:?}; lines: {lines:#?}"
        );
        found
    }

    /// Every syslog message received so far, without the `<PRI>date tag[pid]: `
    /// header (a pid could contain any six digits).
    #[must_use]
    pub fn syslog(&self) -> Vec<String> {
        self.collector.drain().clone()
    }
}

/// Runs `test` in a private mount namespace (see the module docs); a panic in `test`
/// is passed on once the namespace is gone.
pub fn in_private_namespace<T: Send>(test: impl FnOnce(&Namespace) -> T + Send) -> T {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let outcome = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = enter();
                test(&namespace)
            })
            .join()
    });
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn enter() -> Namespace {
    assert!(
        nix::unistd::geteuid().is_root(),
        "namespace tests must run as root"
    );
    unshare(CloneFlags::CLONE_NEWNS).expect("unshare the mount namespace");
    // Nothing mounted here may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make mounts private");
    let scratch = tempfile::tempdir().expect("tempdir");
    let old_dev = scratch.path().join("dev");
    std::fs::create_dir(&old_dev).expect("mkdir");
    mount(
        Some("/dev"),
        &old_dev,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .expect("keep the real /dev at hand");
    mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("size=1m,mode=755"),
    )
    .expect("a fresh /dev");
    for node in ["null", "zero", "urandom", "random", "full"] {
        let target = Path::new("/dev").join(node);
        std::fs::File::create(&target).expect("mount point");
        mount(
            Some(&old_dev.join(node)),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind a device node");
    }
    umount2(&old_dev, MntFlags::MNT_DETACH).expect("let go of the real /dev");
    let log = UnixDatagram::bind("/dev/log").expect("bind /dev/log");
    // Like a syslog daemon's socket: every user may send (a user's `totp-enroll` too).
    std::fs::set_permissions("/dev/log", std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod /dev/log");
    log.set_read_timeout(Some(Duration::from_millis(10)))
        .expect("read timeout");
    let collector = Arc::new(Collector {
        log,
        lines: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let reader = {
        let collector = Arc::clone(&collector);
        std::thread::spawn(move || {
            while !collector.stop.load(Ordering::Relaxed) {
                drop(collector.drain());
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    Namespace {
        collector,
        reader: Some(reader),
    }
}
