//! The integration tests' fixtures, compiled once for all of them: a test user, a PAM
//! service directory with the freshly built module, `totp-enroll` runs, codes from
//! `oathtool`, private namespaces (syslog, sshd, network), throwaway PostgreSQL clusters.
//!
//! Tests need root (the module reads records with the user's file rights), `oathtool`,
//! and `cargo build --workspace` first; each missing piece fails the test with a message
//! saying so. Users exist only in the private user database cargo's runner gives each
//! test binary (`testkit/run-hermetic`, [`users`]).
//!
//! Tests reach the library under test only through [`product`], so that a move of its
//! items changes that one module.

#![forbid(unsafe_code)]
// Test fixtures: a failed setup step should stop the test loudly, so nearly every
// function here may panic, by design; saying so on each would be noise.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::missing_panics_doc
)]

pub mod namespace;
pub mod netns;
pub mod postgres;
pub mod product;
pub mod sshd;
pub mod users;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

pub use pam_client::{Login, Transcript};

/// The system user the tests log in as; created on first use.
pub const TEST_USER: &str = "pamtotp-test";
/// A 160-bit secret, as an admin would provision it.
pub const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// `target/debug` (or release), found from the running test binary.
#[must_use]
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_owned()
}

/// The builds of the PAM module the tests load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleBuild {
    /// `cargo build --workspace`'s `pam_totp_db.so`, in this profile (both stores).
    Workspace,
    /// The release build when it is at least as new as this profile's (`make test` builds
    /// both; much faster to load and run), else this profile's.
    Freshest,
    /// `pam_totp.so`, the file-store module without the database client (its crate links
    /// none), as `cargo build --workspace` makes it.
    FileStore,
    /// The module with its test-only panic switch (`target/panic-test`).
    PanicTest,
}

/// Where `build` of the module is; fails the test, saying how to build it, if it is not.
#[must_use]
pub fn module(build: ModuleBuild) -> PathBuf {
    let profile = build_dir();
    let target = profile.parent().expect("target");
    let variant = |dir: &str| {
        target
            .join(dir)
            .join(profile.file_name().expect("profile"))
            .join("libpam_totp.so")
    };
    let (path, how) = match build {
        ModuleBuild::Workspace => (profile.join("libpam_totp_db.so"), "cargo build --workspace"),
        ModuleBuild::Freshest => {
            let debug = module(ModuleBuild::Workspace);
            let release = target.join("release").join("libpam_totp_db.so");
            let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            return match (modified(&release), modified(&debug)) {
                (Some(r), Some(d)) if r >= d => release,
                _ => debug,
            };
        }
        ModuleBuild::FileStore => (profile.join("libpam_totp.so"), "cargo build --workspace"),
        ModuleBuild::PanicTest => (
            variant("panic-test"),
            "cargo build -p pam_totp --features panic-test --target-dir target/panic-test",
        ),
    };
    assert!(
        path.exists(),
        "{} is missing: `make test` builds it ({how})",
        path.display()
    );
    path
}

/// The repository root (where `pam.d/`, `man/` and the Makefile are).
#[must_use]
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ is in the repository")
        .to_owned()
}

/// The built `totp-enroll`.
#[must_use]
pub fn enroll_bin() -> PathBuf {
    let bin = build_dir().join("totp-enroll");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` first",
        bin.display()
    );
    bin
}

/// Creates [`TEST_USER`] with a home directory (in the private user database).
pub fn ensure_test_user() {
    let _ = users::ensure_user(TEST_USER);
}

/// A PAM service directory with its own config, state directory and module copy.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub service: String,
    /// `~/.pam_totp-<tag>`: each fixture its own record, so tests do not share one.
    pub secret_path: String,
}

impl Fixture {
    /// A service `totp` whose single auth line is our module with `args`, and a config
    /// file holding `config` plus this fixture's record path and state directory.
    #[must_use]
    pub fn new(config: &str, args: &str) -> Fixture {
        ensure_test_user();
        let dir = tempfile::Builder::new()
            .prefix("pam_totp-test")
            .tempdir()
            .expect("tempdir");
        let tag = dir
            .path()
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let secret_path = format!("~/.pam_totp-{tag}");
        let fixture = Fixture {
            dir,
            service: "totp".to_owned(),
            secret_path,
        };
        let module = fixture.path("pam_totp.so");
        std::fs::copy(crate::module(ModuleBuild::Workspace), &module).expect("copy the module");
        // As the packages do: the module never creates it.
        make_state_dir(&fixture.state_dir());
        fixture.write_config(config);
        fixture.set_args(args);
        fixture
    }

    /// Rewrites the service file with other module arguments.
    pub fn set_args(&self, args: &str) {
        let line = format!(
            "auth required {} config={} {args}\n",
            self.path("pam_totp.so").display(),
            self.config_path().display()
        );
        std::fs::write(self.path("totp"), line).expect("service file");
    }

    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.path("pam_totp.toml")
    }

    #[must_use]
    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Rewrites the config (the record path and state directory stay this fixture's).
    pub fn write_config(&self, config: &str) {
        let text = format!(
            "secret_path = \"{}\"\nstate_dir = \"{}\"\n{config}\n",
            self.secret_path,
            self.state_dir().display()
        );
        std::fs::write(self.config_path(), text).expect("config file");
    }

    /// Ends the stack with pam_permit, as the shipped sshd snippets do: `PAM_IGNORE` (no
    /// verdict from pam_totp) lets the earlier factor decide, so a user let through
    /// without a code logs in. Again after each [`Fixture::set_args`].
    pub fn with_permit(&self) {
        let path = self.path(&self.service);
        let mut stack = std::fs::read_to_string(&path).expect("service file");
        stack.push_str("auth required pam_permit.so\n");
        std::fs::write(path, stack).expect("service file");
    }

    /// Points the config at a system store `store/${USER}` (records kept by root).
    pub fn point_at_system_store(&self, store: &Path) {
        let text = format!(
            "secret_path = \"{}/${{USER}}\"\nstate_dir = \"{}\"\n",
            store.display(),
            self.state_dir().display()
        );
        std::fs::write(self.config_path(), text).expect("config file");
    }

    /// Makes a root-only directory `records` in the fixture and points the config at it.
    #[must_use]
    pub fn make_system_store(&self) -> PathBuf {
        let records = self.path("records");
        std::fs::create_dir(&records).expect("mkdir");
        std::fs::set_permissions(&records, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod");
        self.point_at_system_store(&records);
        records
    }

    /// The record file of [`TEST_USER`] for this fixture.
    #[must_use]
    pub fn record_path(&self) -> PathBuf {
        let home = nix::unistd::User::from_name(TEST_USER)
            .ok()
            .flatten()
            .expect("test user")
            .dir;
        home.join(self.secret_path.trim_start_matches("~/"))
    }

    /// Runs `totp-enroll --config <ours> ARGS`.
    #[must_use]
    pub fn enroll(&self, args: &[&str]) -> Output {
        Command::new(enroll_bin())
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .output()
            .expect("run totp-enroll")
    }

    /// Provisions [`TEST_USER`] with `secret` the way an admin migrates a user.
    pub fn provision(&self, secret: &str) {
        let out = self.enroll(&["--user", TEST_USER, "--secret", secret, "--no-confirm"]);
        assert!(
            out.status.success(),
            "totp-enroll failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One `pam_authenticate` for `user`, answering the prompts with `answers`.
    #[must_use]
    pub fn login_as(&self, user: &str, answers: &[&[u8]]) -> Transcript {
        let login = Login {
            confdir: self.dir.path(),
            service: &self.service,
            user,
            rhost: Some("192.0.2.7"),
        };
        pam_client::authenticate(&login, answers)
    }

    /// One `pam_authenticate` for `user` from `rhost` (none: a local login) on the
    /// terminal `tty` (`PAM_TTY`), answering `code`.
    #[must_use]
    pub fn login_on(&self, user: &str, rhost: Option<&str>, tty: &str, code: &str) -> Transcript {
        let login = Login {
            confdir: self.dir.path(),
            service: &self.service,
            user,
            rhost,
        };
        pam_client::authenticate_on_tty(&login, tty, &[code.as_bytes()])
    }

    /// One `pam_authenticate` for [`TEST_USER`] answering `code`.
    #[must_use]
    pub fn login(&self, code: &str) -> Transcript {
        self.login_as(TEST_USER, &[code.as_bytes()])
    }

    /// Like [`Fixture::login`], but fails the test if the module has not answered within
    /// `limit` (a hostile file must never hang a login).
    #[must_use]
    pub fn login_within(&self, code: &str, limit: std::time::Duration) -> Transcript {
        let confdir = self.dir.path().to_owned();
        let service = self.service.clone();
        let code = code.to_owned();
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let login = Login {
                confdir: &confdir,
                service: &service,
                user: TEST_USER,
                rhost: Some("192.0.2.7"),
            };
            let _ = send.send(pam_client::authenticate(&login, &[code.as_bytes()]));
        });
        receive
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("the login did not finish within {limit:?}"))
    }

    /// [`TEST_USER`]'s login state as the module left it (read under the state lock).
    #[must_use]
    pub fn state(&self) -> product::LoginState {
        product::StateDir::open(&self.state_dir())
            .and_then(|dir| dir.lock(TEST_USER))
            .map(|locked| locked.state())
            .expect("state file readable")
    }

    /// Replaces [`TEST_USER`]'s login state, as if time had passed or a crash left it.
    pub fn set_state(&self, state: product::LoginState) {
        product::StateDir::open(&self.state_dir())
            .and_then(|dir| dir.lock(TEST_USER).and_then(|mut locked| locked.save(state)))
            .expect("state file writable");
    }
}

/// A state directory as the packages make it: root's, mode 0700.
pub fn make_state_dir(path: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .expect("state directory");
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let record = self.record_path();
        let _ = std::fs::remove_file(&record);
        let _ = std::fs::remove_dir(&record);
    }
}

/// Removes a file, symlink or empty directory a test planted, even when the test fails.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// [`TEST_USER`]'s passwd entry.
#[must_use]
pub fn test_user() -> nix::unistd::User {
    users::ensure_user(TEST_USER)
}

/// A finished command's exit code and output, for a failure message.
#[must_use]
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The recovery codes an enrollment printed (`  1. xxxx-xxxx-xxxx`).
#[must_use]
pub fn recovery_codes(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let (number, code) = line.trim().split_once(". ")?;
            let shaped = number.parse::<u32>().is_ok()
                && code.len() == 14
                && code
                    .split('-')
                    .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_alphanumeric()));
            shaped.then(|| code.to_owned())
        })
        .collect()
}

/// Unix time now.
#[must_use]
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Waits, if needed, so that at least `margin` seconds remain in the current 30 s step;
/// tests that compare steps then cannot straddle a boundary.
pub fn settle_in_step(margin: u64) {
    let into = now() % 30;
    if into + margin >= 30 {
        std::thread::sleep(std::time::Duration::from_secs(30 - into));
    }
}

/// The code `oathtool` (an independent implementation) gives for `secret` at `time`.
#[must_use]
pub fn oathtool_at(secret: &str, time: u64) -> String {
    Params::DEFAULT.code_at(secret, time)
}

/// `oathtool`'s code for `secret` in the step `offset` steps from now.
#[must_use]
pub fn oathtool(secret: &str, offset: i64) -> String {
    let time = now().checked_add_signed(offset * 30).expect("time in range");
    oathtool_at(secret, time)
}

/// The key the module showed during enrollment at login, from its "Or add it by hand" line.
#[must_use]
pub fn shown_key(shown: &[pam_client::Shown]) -> Option<String> {
    shown.iter().find_map(|s| match s {
        pam_client::Shown::Info(m) => m
            .strip_prefix("Or add it by hand")
            .and_then(|rest| rest.rsplit_once(": "))
            .map(|(_, key)| key.replace(' ', "")),
        _ => None,
    })
}

/// The person with the phone during enrollment at login: types the code for the key
/// shown, then Enter at the recovery codes.
#[must_use]
pub fn phone_user(shown: &[pam_client::Shown]) -> Option<Vec<u8>> {
    match shown.last()? {
        pam_client::Shown::HiddenPrompt(p) if p.starts_with("Code shown by your app") => {
            Some(oathtool(&shown_key(shown)?, 0).into_bytes())
        }
        pam_client::Shown::HiddenPrompt(p) if p.starts_with("Press Enter") => Some(Vec::new()),
        _ => None,
    }
}

/// A code that is certainly wrong now (the right one with its last digit changed).
#[must_use]
pub fn wrong_code(secret: &str) -> String {
    let right = oathtool(secret, 0);
    let mut bytes = right.into_bytes();
    if let Some(last) = bytes.last_mut() {
        *last = if *last == b'9' { b'0' } else { *last + 1 };
    }
    String::from_utf8(bytes).expect("digits")
}

/// Lines of a terminal QR code (half blocks `█ ▀ ▄`, anything else light) as a PGM
/// image, 4 pixels per module and a white margin, so that `zbarimg` reads what a phone
/// would see on the screen. False when there is nothing to draw.
#[must_use]
pub fn half_blocks_as_pgm(lines: &[&str], path: &Path) -> bool {
    const MARGIN: usize = 4;
    const SCALE: usize = 4;
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    if width == 0 {
        return false;
    }
    let white_row = vec![255u8; width + 2 * MARGIN];
    let mut rows = vec![white_row.clone(); MARGIN];
    for line in lines {
        let mut top = vec![255u8; MARGIN];
        let mut bottom = top.clone();
        let padded = line.chars().chain(std::iter::repeat(' ')).take(width);
        for c in padded {
            let (t, b) = match c {
                '\u{2588}' => (0, 0),
                '\u{2580}' => (0, 255),
                '\u{2584}' => (255, 0),
                _ => (255, 255),
            };
            top.push(t);
            bottom.push(b);
        }
        top.extend([255; MARGIN]);
        bottom.extend([255; MARGIN]);
        rows.extend([top, bottom]);
    }
    rows.extend(vec![white_row; MARGIN]);
    let mut pgm = format!(
        "P2\n{} {}\n255\n",
        (width + 2 * MARGIN) * SCALE,
        rows.len() * SCALE
    );
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .flat_map(|v| std::iter::repeat_n(v.to_string(), SCALE))
            .collect();
        for _ in 0..SCALE {
            pgm.push_str(&line.join(" "));
            pgm.push('\n');
        }
    }
    std::fs::write(path, pgm).expect("pgm");
    true
}

/// An enrollment's parameters, as `totp-enroll` takes them (`--algorithm sha256`).
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub algorithm: &'static str,
    pub digits: u8,
    pub period: u64,
}

impl Params {
    pub const DEFAULT: Params = Params {
        algorithm: "sha1",
        digits: 6,
        period: 30,
    };

    /// `oathtool`'s code for `secret` with these parameters at `time`.
    #[must_use]
    pub fn code_at(self, secret: &str, time: u64) -> String {
        let out = Command::new("oathtool")
            .arg(format!("--totp={}", self.algorithm.to_uppercase()))
            .arg(format!("--digits={}", self.digits))
            .arg(format!("--time-step-size={}s", self.period))
            .arg(format!("--now=@{time}"))
            .args(["--base32", secret])
            .output()
            .expect("oathtool is not installed (apt-get install oathtool)");
        assert!(
            out.status.success(),
            "oathtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
    }

    /// `totp-enroll` arguments that provision [`TEST_USER`] with `secret` and these.
    #[must_use]
    pub fn provisioning(self, secret: &str) -> Vec<String> {
        [
            "--user",
            TEST_USER,
            "--secret",
            secret,
            "--no-confirm",
            "--force",
            "--algorithm",
            self.algorithm,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([
            "--digits".to_owned(),
            self.digits.to_string(),
            "--period".to_owned(),
            self.period.to_string(),
        ])
        .collect()
    }
}

/// Logs in with `from`, re-enrolls (same secret) with `to`, and checks that replay
/// protection survives the change without locking the user out: the new enrollment's
/// code of a step that began before the used step ended is a replay, the next step's
/// code (reachable now, in the window) is accepted, and its replay refused.
/// `admin` runs `totp-enroll`; `host` logs in through libpam.
pub fn reenroll_keeps_replay_protection_without_locking_out(
    admin: &Fixture,
    host: &Fixture,
    from: Params,
    to: Params,
) {
    let enroll = |params: Params| {
        let args = params.provisioning(SECRET);
        let out = admin.enroll(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    enroll(from);
    // Both logins in the last `to.period` seconds of one `from` step, with a margin: the
    // new enrollment's next step then starts where the used one ends.
    let (old, new) = (from.period, to.period);
    loop {
        let into = now() % old;
        if into >= old.saturating_sub(new) && into + 4 < old {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let first_at = now();
    let first = host.login(&from.code_at(SECRET, first_at));
    assert_eq!(first.status, pam_client::SUCCESS, "{from:?}: {first:?}");

    enroll(to);
    // The new step of the first login's moment (not of now: a slow enrollment on a busy
    // machine may reach the next step, which is rightly accepted).
    let same_moment = host.login(&to.code_at(SECRET, first_at));
    let t = now();
    assert_eq!(
        same_moment.status,
        pam_client::AUTH_ERR,
        "{to:?}: a step begun before the used one ended: {same_moment:?}"
    );
    let next = to.code_at(SECRET, t + new);
    let accepted = host.login(&next);
    assert_eq!(
        accepted.status,
        pam_client::SUCCESS,
        "{from:?} -> {to:?}: the next step is accepted: {accepted:?}"
    );
    let replayed = host.login(&next);
    assert_eq!(
        replayed.status,
        pam_client::AUTH_ERR,
        "{to:?}: a replay: {replayed:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_read_from_the_numbered_lines_only() {
        let printed = b"Recovery codes (each works once):\n  1. ab12-cd34-ef56\n  2. GH78-JK90-MN12\n\
                        3. not-a-code\n 10. ab12-cd34-ef5\nx. ab12-cd34-ef56\n";
        assert_eq!(recovery_codes(printed), ["ab12-cd34-ef56", "GH78-JK90-MN12"]);
    }
}
