//! The modules compared, each with its store written the way its own tools write it.
//!
//! Every peer gets the same users, the same 160-bit secret, the same step and a window
//! of one step either side, and is configured so that a correct login writes its state
//! (replay protection): pam_totp always does, google-authenticator with
//! `DISALLOW_REUSE`, pam_oath always rewrites its users file.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use pam_totp_config::algorithm::Algorithm;
use pam_totp_core::record::Record;
use pam_totp_core::secret::SecretKey;

/// The shared secret: RFC 6238's SHA1 test seed.
pub const SECRET: &[u8] = b"12345678901234567890";

/// Where Debian installs PAM modules.
const SYSTEM_MODULES: &str = "/usr/lib/x86_64-linux-gnu/security";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// `pam_permit.so`: the cost of the harness itself (load, start, end).
    Permit,
    Totp,
    Google,
    Oath,
}

pub const ALL: [Peer; 4] = [Peer::Permit, Peer::Totp, Peer::Google, Peer::Oath];

impl Peer {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Peer::Permit => "pam_permit",
            Peer::Totp => "pam_totp",
            Peer::Google => "pam_google_authenticator",
            Peer::Oath => "pam_oath",
        }
    }

    /// The PAM service name of this peer in the benchmark's confdir.
    #[must_use]
    pub fn service(self) -> &'static str {
        match self {
            Peer::Permit => "permit",
            Peer::Totp => "totp",
            Peer::Google => "google",
            Peer::Oath => "oath",
        }
    }

    /// Whether a login with a right code is expected to succeed, and with a wrong one fail.
    #[must_use]
    pub fn checks_codes(self) -> bool {
        self != Peer::Permit
    }

    #[must_use]
    pub fn module(self, totp_module: &Path) -> PathBuf {
        match self {
            Peer::Totp => totp_module.to_owned(),
            Peer::Permit => Path::new(SYSTEM_MODULES).join("pam_permit.so"),
            Peer::Google => Path::new(SYSTEM_MODULES).join("pam_google_authenticator.so"),
            Peer::Oath => Path::new(SYSTEM_MODULES).join("pam_oath.so"),
        }
    }

    fn args(self, work: &Path) -> String {
        match self {
            Peer::Permit => String::new(),
            Peer::Totp => format!("config={}", work.join("totp/pam_totp.toml").display()),
            Peer::Google => format!("secret={}/google/${{USER}} user=root", work.display()),
            Peer::Oath => format!(
                "usersfile={} window=1 digits=6",
                work.join("oath/users.oath").display()
            ),
        }
    }

    /// Writes the service file `confdir/<service>`.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn write_service(self, confdir: &Path, work: &Path, totp_module: &Path) -> io::Result<()> {
        let line = format!(
            "auth required {} {}\n",
            self.module(totp_module).display(),
            self.args(work)
        );
        fs::write(confdir.join(self.service()), line)
    }

    /// Replaces this peer's store with one enrolling `users`.
    ///
    /// # Errors
    /// A file could not be written.
    pub fn populate(self, work: &Path, users: &[String], period: u64) -> io::Result<()> {
        match self {
            Peer::Permit => Ok(()),
            Peer::Totp => populate_totp(&work.join("totp"), users, period),
            Peer::Google => populate_google(&work.join("google"), users, period),
            Peer::Oath => populate_oath(&work.join("oath"), users, period),
        }
    }
}

fn fresh_dir(dir: &Path) -> io::Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use io::Write as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(contents)
}

fn populate_totp(dir: &Path, users: &[String], period: u64) -> io::Result<()> {
    fresh_dir(dir)?;
    fresh_dir(&dir.join("records"))?;
    fresh_dir(&dir.join("state"))?;
    let config = format!(
        "secret_path = \"{}/records/${{USER}}\"\nstate_dir = \"{}/state\"\n\
         window = 1\nmax_failures = 4294967295\n",
        dir.display(),
        dir.display()
    );
    fs::write(dir.join("pam_totp.toml"), config)?;
    let secret = SecretKey::from_bytes(SECRET.to_vec()).map_err(|e| io::Error::other(e.to_string()))?;
    let record = Record::new(
        secret,
        Algorithm::Sha1,
        6,
        period,
        "2026-11-25T00:00:00Z".to_owned(),
    );
    let text = record.to_toml();
    for user in users {
        write_private(&dir.join("records").join(user), text.as_bytes())?;
    }
    Ok(())
}

fn populate_google(dir: &Path, users: &[String], period: u64) -> io::Result<()> {
    fresh_dir(dir)?;
    let secret = base32::encode(base32::Alphabet::Rfc4648 { padding: false }, SECRET);
    let text =
        format!("{secret}\n\" STEP_SIZE {period}\n\" WINDOW_SIZE 3\n\" DISALLOW_REUSE\n\" TOTP_AUTH\n");
    for user in users {
        write_private(&dir.join(user), text.as_bytes())?;
    }
    Ok(())
}

fn populate_oath(dir: &Path, users: &[String], period: u64) -> io::Result<()> {
    fresh_dir(dir)?;
    let hex: String = SECRET.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    let mut text = String::new();
    for user in users {
        let _ = writeln!(text, "HOTP/T{period}/6\t{user}\t-\t{hex}");
    }
    write_private(&dir.join("users.oath"), text.as_bytes())
}
