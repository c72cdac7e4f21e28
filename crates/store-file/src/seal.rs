//! Secrets at rest sealed to a host key, so that a copied home directory, a backup or a
//! database dump of the records reveals no TOTP secret.
//!
//! The construction is libsodium's sealed box (`crypto_box_seal`: an ephemeral X25519
//! key agreed with the host's public key, XSalsa20-Poly1305), from the `crypto_box` crate
//! (`RustCrypto`); nothing here is home-made cryptography. `totp-enroll`, run by an
//! ordinary user, needs only the world-readable public key to seal; the module opens
//! the box with the root-only private key, and only when a record is sealed.
//!
//! What is sealed is `USER NUL SECRET-BYTES`: a box opens only for the account it was
//! made for, so a sealed record cannot be moved into another user's record.
//!
//! Formats (one line each; `#` lines and blank lines are ignored in key files):
//! - private key `/etc/security/pam_totp.key`: `pam_totp-host-key-x25519 BASE64`,
//!   root-owned, mode 0600 (or stricter), a regular file, not a symbolic link;
//! - public key `/etc/security/pam_totp.pub`: `pam_totp-public-key-x25519 BASE64`,
//!   root-owned, not group/world writable;
//! - in a record, `sealed_secret = "x25519-sealedbox:KEYID:BASE64"`, where KEYID (16 hex
//!   digits, the start of the public key) names the key pair the box was sealed to, so a
//!   record sealed to a retired key is recognised without trying every key.
//!
//! Errors name files, key ids and problems, never key or secret material.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};
use crypto_box::aead::rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use pam_totp_config::HostKeys;
use pam_totp_core::record::{Record, RecordError, SealedRecord};
use pam_totp_core::secret::{MAX_SECRET_BYTES, SecretKey};
use pam_totp_os::trusted_file::{self, Owner, Refused, Rules};

/// The first word of a private host key file.
pub const PRIVATE_KEY_TAG: &str = "pam_totp-host-key-x25519";
/// The first word of a public host key file.
pub const PUBLIC_KEY_TAG: &str = "pam_totp-public-key-x25519";
/// The scheme that starts a `sealed_secret` value.
pub const SEALED_SCHEME: &str = "x25519-sealedbox";
/// A key file larger than this is refused unread.
const MAX_KEY_FILE_BYTES: u64 = 4096;
/// Longest `sealed_secret` accepted: a box of the longest secret, base64, with room.
const MAX_SEALED_CHARS: usize = 1024;

/// Names a key pair: the first 8 bytes of its public key, in hex. Public, like the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId([u8; 8]);

impl KeyId {
    fn of(public: &crypto_box::PublicKey) -> KeyId {
        let mut id = [0u8; 8];
        id.copy_from_slice(&public.as_bytes()[..8]);
        KeyId(id)
    }

    fn parse(text: &str) -> Option<KeyId> {
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut id = [0u8; 8];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(KeyId(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Which key file a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Private,
    Public,
    /// A database credential (`passfile`, `sslkey`): root only, like the host key.
    DbSecret,
    /// A database certificate (`sslrootcert`, `sslcert`): root-owned, not writable by others.
    DbCertificate,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Private => "host key",
            KeyKind::Public => "host public key",
            KeyKind::DbSecret => "database credential file",
            KeyKind::DbCertificate => "database certificate file",
        })
    }
}

/// Why a key could not be used or a secret not sealed or opened. No key material.
#[derive(Debug)]
pub enum SealError {
    /// The key file does not exist.
    Missing { kind: KeyKind, path: PathBuf },
    /// The key file is a symlink, not regular, wrongly owned or too open; or
    /// (`in_directory`) the directory it is in is wrongly owned or too open.
    Unsafe {
        kind: KeyKind,
        path: PathBuf,
        refused: Refused,
        in_directory: bool,
    },
    /// The key file's content is not a key of this format.
    Malformed { kind: KeyKind, path: PathBuf },
    /// Any other I/O failure on a key file.
    Io {
        kind: KeyKind,
        path: PathBuf,
        source: io::Error,
    },
    /// The record is sealed to a key that is neither `host_key` nor a retired key.
    NoMatchingKey { sealed_to: KeyId, host_key: KeyId },
    /// `sealed_secret` is not of the form this build writes.
    MalformedSealed,
    /// The box does not open with the key it names: corrupted or tampered with.
    DoesNotOpen { key: KeyId },
    /// The box opened but was made for another user.
    OtherUser,
    /// The opened secret or the rest of the record is unusable.
    Record(RecordError),
    /// The sealing itself failed (randomness).
    Seal,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Missing { kind, path } => write!(
                f,
                "{kind} {} is missing; a sealed record needs the host key pair \
                 (totp-enroll keygen, or copy it from the other hosts)",
                path.display()
            ),
            SealError::Unsafe {
                kind,
                path,
                refused,
                in_directory,
            } => {
                write!(f, "{kind} {} ", path.display())?;
                let parent = path.parent().unwrap_or(path).display();
                let mode = match refused {
                    Refused::Mode { mode } => mode & 0o7777,
                    _ => 0,
                };
                match (refused, kind) {
                    _ if *in_directory => write!(
                        f,
                        "is in {parent}, which must be owned by root and not group/world writable; refused"
                    ),
                    (Refused::NotDirectory, _) => {
                        write!(f, "is in {parent}, which is not a directory; refused")
                    }
                    (Refused::Owner { found }, _) => {
                        write!(f, "is owned by uid {found}, not root (chown root:root); refused")
                    }
                    (Refused::Mode { .. }, KeyKind::Private | KeyKind::DbSecret) => write!(
                        f,
                        "has mode {mode:04o}: a private key must be readable by root only (chmod 600); refused"
                    ),
                    (Refused::Mode { .. }, KeyKind::Public | KeyKind::DbCertificate) => write!(
                        f,
                        "has mode {mode:04o}: it must not be group/world writable (chmod 644); refused"
                    ),
                    (other, _) => write!(f, "{other}; refused"),
                }
            }
            SealError::Malformed {
                kind: kind @ (KeyKind::DbSecret | KeyKind::DbCertificate),
                path,
            } => write!(f, "{kind} {} is too large or not UTF-8 text", path.display()),
            SealError::Malformed { kind, path } => write!(
                f,
                "{kind} {} is not a pam_totp key (expected one line `{}` BASE64)",
                path.display(),
                if *kind == KeyKind::Public {
                    PUBLIC_KEY_TAG
                } else {
                    PRIVATE_KEY_TAG
                }
            ),
            SealError::Io { kind, path, source } => {
                write!(f, "cannot read {kind} {}: {source}", path.display())
            }
            SealError::NoMatchingKey { sealed_to, host_key } => write!(
                f,
                "record is sealed to key {sealed_to}, but host_key is key {host_key} and no \
                 retired_keys entry is key {sealed_to} (copied from another host, or its old \
                 key was not listed as retired)"
            ),
            SealError::MalformedSealed => f.write_str("record sealed_secret is malformed"),
            SealError::DoesNotOpen { key } => write!(
                f,
                "record sealed_secret does not open with key {key} (corrupted or tampered with)"
            ),
            SealError::OtherUser => f.write_str("record was sealed for another user; refused"),
            SealError::Record(e) => e.fmt(f),
            SealError::Seal => f.write_str("cannot seal the secret (no randomness)"),
        }
    }
}

impl std::error::Error for SealError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SealError::Io { source, .. } => Some(source),
            SealError::Unsafe { refused, .. } => Some(refused),
            SealError::Record(e) => Some(e),
            SealError::Missing { .. }
            | SealError::Malformed { .. }
            | SealError::NoMatchingKey { .. }
            | SealError::MalformedSealed
            | SealError::DoesNotOpen { .. }
            | SealError::OtherUser
            | SealError::Seal => None,
        }
    }
}

/// The host's private key (root only). Wiped on drop by `crypto_box`.
pub struct HostKey(crypto_box::SecretKey);

/// The host's public key (anyone): what new secrets are sealed to.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicHostKey(crypto_box::PublicKey);

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({}, redacted)", self.id())
    }
}

impl fmt::Debug for PublicHostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicHostKey({})", self.id())
    }
}

impl HostKey {
    /// A new key pair from `rng` (the command passes the OS's generator).
    pub fn generate(rng: &mut impl CryptoRngCore) -> HostKey {
        HostKey(crypto_box::SecretKey::generate(rng))
    }

    /// Reads a private key file: root-owned, no group/other bits, regular, no symlink.
    ///
    /// # Errors
    /// Missing, unsafe, unreadable or malformed file.
    pub fn read(path: &Path) -> Result<HostKey, SealError> {
        let text = read_key_file(KeyKind::Private, path)?;
        let bytes = decode_key(&text, PRIVATE_KEY_TAG).ok_or_else(|| SealError::Malformed {
            kind: KeyKind::Private,
            path: path.to_owned(),
        })?;
        Ok(HostKey(crypto_box::SecretKey::from_bytes(*bytes)))
    }

    #[must_use]
    pub fn public(&self) -> PublicHostKey {
        PublicHostKey(self.0.public_key())
    }

    #[must_use]
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.0.public_key())
    }

    /// The private key file's text. Holds the key, so it is wiped when dropped.
    #[must_use]
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.0.to_bytes());
        let encoded = Zeroizing::new(Base64::encode_string(bytes.as_ref()));
        Zeroizing::new(format!(
            "# pam_totp host private key {}: root only (0600); see pam_totp.toml(5)\n\
             {PRIVATE_KEY_TAG} {}\n",
            self.id(),
            encoded.as_str()
        ))
    }

    /// Opens a sealed secret made for `user`.
    ///
    /// # Errors
    /// The box is not for this key, does not open, or is for another user.
    pub fn unseal(&self, sealed: &str, user: &str) -> Result<SecretKey, SealError> {
        let (key, boxed) = parse_sealed(sealed)?;
        if key != self.id() {
            return Err(SealError::NoMatchingKey {
                sealed_to: key,
                host_key: self.id(),
            });
        }
        let opened = Zeroizing::new(
            self.0
                .unseal(&boxed)
                .map_err(|_| SealError::DoesNotOpen { key })?,
        );
        let prefix_len = user.len() + 1;
        if opened.len() < prefix_len || &opened[..user.len()] != user.as_bytes() || opened[user.len()] != 0 {
            return Err(SealError::OtherUser);
        }
        SecretKey::from_bytes(opened[prefix_len..].to_vec())
            .map_err(|e| SealError::Record(RecordError::Secret(e)))
    }
}

impl PublicHostKey {
    /// Reads a public key file: root-owned, not group/world writable, regular, no symlink.
    ///
    /// # Errors
    /// Missing, unsafe, unreadable or malformed file.
    pub fn read(path: &Path) -> Result<PublicHostKey, SealError> {
        let text = read_key_file(KeyKind::Public, path)?;
        let bytes = decode_key(&text, PUBLIC_KEY_TAG).ok_or_else(|| SealError::Malformed {
            kind: KeyKind::Public,
            path: path.to_owned(),
        })?;
        Ok(PublicHostKey(crypto_box::PublicKey::from_bytes(*bytes)))
    }

    #[must_use]
    pub fn id(&self) -> KeyId {
        KeyId::of(&self.0)
    }

    /// The public key file's text.
    #[must_use]
    pub fn to_file_text(&self) -> String {
        format!(
            "# pam_totp host public key {}: world-readable; totp-enroll seals secrets to it\n\
             {PUBLIC_KEY_TAG} {}\n",
            self.id(),
            Base64::encode_string(self.0.as_bytes())
        )
    }

    /// Seals `secret` for `user`: the `sealed_secret` value of a record.
    ///
    /// # Errors
    /// The random generator failed.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        user: &str,
        secret: &SecretKey,
    ) -> Result<String, SealError> {
        let mut plain = Zeroizing::new(Vec::with_capacity(user.len() + 1 + secret.as_bytes().len()));
        plain.extend_from_slice(user.as_bytes());
        plain.push(0);
        plain.extend_from_slice(secret.as_bytes());
        let boxed = self.0.seal(rng, &plain).map_err(|_| SealError::Seal)?;
        Ok(format!(
            "{SEALED_SCHEME}:{}:{}",
            self.id(),
            Base64::encode_string(&boxed)
        ))
    }
}

/// The key a `sealed_secret` value names.
///
/// # Errors
/// Not a value of the form this build writes.
pub fn sealed_key_id(sealed: &str) -> Result<KeyId, SealError> {
    parse_sealed(sealed).map(|(id, _)| id)
}

fn parse_sealed(sealed: &str) -> Result<(KeyId, Vec<u8>), SealError> {
    if sealed.len() > MAX_SEALED_CHARS {
        return Err(SealError::MalformedSealed);
    }
    let mut parts = sealed.trim().splitn(3, ':');
    let (Some(SEALED_SCHEME), Some(id), Some(boxed)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SealError::MalformedSealed);
    };
    let id = KeyId::parse(id).ok_or(SealError::MalformedSealed)?;
    let boxed = Base64::decode_vec(boxed).map_err(|_| SealError::MalformedSealed)?;
    // A sealed box adds 48 bytes (ephemeral key and tag) to what it holds.
    if boxed.len() <= 48 || boxed.len() > 48 + 256 + 1 + MAX_SECRET_BYTES {
        return Err(SealError::MalformedSealed);
    }
    Ok((id, boxed))
}

/// Opens a sealed record for `user` with the host key or, for a record sealed to an
/// older key, the retired key of the same id. Reads key files only here, when needed.
///
/// # Errors
/// Any key problem (fail closed), a box that does not open, or an unusable record.
pub fn open_record(keys: HostKeys<'_>, user: &str, sealed: &SealedRecord) -> Result<Record, SealError> {
    let wanted = sealed_key_id(sealed.sealed_secret())?;
    let host = HostKey::read(keys.host_key)?;
    let key = if host.id() == wanted {
        host
    } else {
        find_retired(keys, wanted)?.ok_or(SealError::NoMatchingKey {
            sealed_to: wanted,
            host_key: host.id(),
        })?
    };
    let secret = key.unseal(sealed.sealed_secret(), user)?;
    Ok(sealed.open(secret))
}

/// The retired key with id `wanted`, if one is listed. Every listed file read on the way
/// must be safe: a world-readable retired key is refused like a host key.
///
/// # Errors
/// A listed key file that is unsafe or unreadable.
pub fn find_retired(keys: HostKeys<'_>, wanted: KeyId) -> Result<Option<HostKey>, SealError> {
    for path in keys.retired_keys {
        let key = HostKey::read(path)?;
        if key.id() == wanted {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

fn decode_key(text: &str, tag: &str) -> Option<Zeroizing<[u8; 32]>> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    let (found, encoded) = line.split_once(' ')?;
    if found != tag {
        return None;
    }
    let mut key = Zeroizing::new([0u8; 32]);
    let decoded = Base64::decode(encoded.trim(), key.as_mut()).ok()?;
    (decoded.len() == 32).then_some(key)
}

/// Reads a root-owned file under the host key's rules: directory root-owned and not
/// writable by others, no symlink, regular, owned by root; a secret kind readable by
/// root only, a public kind not writable by others. Also used for the database's
/// passfile, client key and certificates (`pam_totp_store_pg`).
///
/// # Errors
/// Missing, unsafe (by the rules above), unreadable or not UTF-8.
pub fn read_key_file(kind: KeyKind, path: &Path) -> Result<Zeroizing<String>, SealError> {
    // Certificates (chains) are larger than our one-line keys.
    let max_bytes = match kind {
        KeyKind::Private | KeyKind::Public => MAX_KEY_FILE_BYTES,
        KeyKind::DbSecret | KeyKind::DbCertificate => 64 * 1024,
    };
    let forbidden_mode = match kind {
        KeyKind::Private | KeyKind::DbSecret => 0o077,
        KeyKind::Public | KeyKind::DbCertificate => 0o022,
    };
    let rules = Rules {
        owner: Owner::Root,
        forbidden_mode,
        single_link: false,
        max_bytes: Some(max_bytes),
        follow_symlink: false,
    };
    // The directory first: whoever can write it can swap the key (or, for the public
    // key, make users seal to a key of their own). Then the file relative to it.
    let directory = Rules {
        forbidden_mode: 0o022,
        follow_symlink: true,
        max_bytes: None,
        ..rules
    };
    let unsafe_file = |refused: Refused, in_directory: bool| SealError::Unsafe {
        kind,
        path: path.to_owned(),
        refused,
        in_directory,
    };
    let refused = |refused: Refused| match refused {
        Refused::Missing => SealError::Missing {
            kind,
            path: path.to_owned(),
        },
        unsafe_file_refusal @ (Refused::Symlink
        | Refused::NotRegular
        | Refused::NotDirectory
        | Refused::Owner { .. }
        | Refused::Mode { .. }) => unsafe_file(unsafe_file_refusal, false),
        Refused::TooLarge { .. } | Refused::Links { .. } => SealError::Malformed {
            kind,
            path: path.to_owned(),
        },
        Refused::Io { source, .. } => SealError::Io {
            kind,
            path: path.to_owned(),
            source,
        },
    };
    let (Some(dir_path), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(SealError::Missing {
            kind,
            path: path.to_owned(),
        });
    };
    let dir = trusted_file::open_dir(dir_path, Some(&directory)).map_err(|e| match e {
        unsafe_directory @ (Refused::Owner { .. } | Refused::Mode { .. }) => {
            unsafe_file(unsafe_directory, true)
        }
        other => refused(other),
    })?;
    let (file, len) = trusted_file::open_in(&dir, Path::new(name), &rules).map_err(refused)?;
    let bytes = trusted_file::read_all(file, len, max_bytes).map_err(refused)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| SealError::Malformed {
        kind,
        path: path.to_owned(),
    })?;
    Ok(Zeroizing::new(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A deterministic generator for tests only: sealing needs one, tests need no OS.
    struct Counter(u64);
    impl crypto_box::aead::rand_core::RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            u32::try_from(self.next_u64() & 0xffff_ffff).unwrap_or_default()
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                *b = self.next_u64().to_le_bytes()[7];
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), crypto_box::aead::rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl crypto_box::aead::rand_core::CryptoRng for Counter {}

    fn secret() -> SecretKey {
        SecretKey::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_sealed_secret_opens_for_its_user_only() {
        let key = HostKey::generate(&mut Counter(1));
        let sealed = key.public().seal(&mut Counter(2), "alice", &secret()).unwrap();
        assert!(sealed.starts_with(&format!("{SEALED_SCHEME}:{}:", key.id())));
        assert_eq!(key.unseal(&sealed, "alice").ok(), Some(secret()));
        assert!(matches!(key.unseal(&sealed, "bob"), Err(SealError::OtherUser)));
        assert!(matches!(key.unseal(&sealed, "alic"), Err(SealError::OtherUser)));
    }

    #[test]
    fn another_key_or_a_changed_box_does_not_open() {
        let key = HostKey::generate(&mut Counter(1));
        let other = HostKey::generate(&mut Counter(3));
        let sealed = key.public().seal(&mut Counter(2), "alice", &secret()).unwrap();
        assert!(matches!(
            other.unseal(&sealed, "alice"),
            Err(SealError::NoMatchingKey { .. })
        ));
        // The same box relabelled with the other key's id still does not open.
        let relabelled = sealed.replace(&key.id().to_string(), &other.id().to_string());
        assert!(matches!(
            other.unseal(&relabelled, "alice"),
            Err(SealError::DoesNotOpen { .. })
        ));
        let (_, mut boxed) = parse_sealed(&sealed).unwrap();
        boxed[60] ^= 1;
        let tampered = format!("{SEALED_SCHEME}:{}:{}", key.id(), Base64::encode_string(&boxed));
        assert!(matches!(
            key.unseal(&tampered, "alice"),
            Err(SealError::DoesNotOpen { .. })
        ));
        for bad in [
            "",
            "x25519-sealedbox:zz:AAAA",
            "other:0011223344556677:AAAA",
            "x25519-sealedbox:0011223344556677:!!",
        ] {
            assert!(
                matches!(key.unseal(bad, "alice"), Err(SealError::MalformedSealed)),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_files_round_trip_and_errors_never_show_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = HostKey::generate(&mut Counter(7));
        let private = write(dir.path(), "k", &key.to_file_text(), 0o600);
        let public = write(dir.path(), "p", &key.public().to_file_text(), 0o644);
        assert_eq!(HostKey::read(&private).map(|k| k.id()).ok(), Some(key.id()));
        assert_eq!(PublicHostKey::read(&public).ok(), Some(key.public()));
        assert!(!format!("{key:?}").contains(&Base64::encode_string(&key.0.to_bytes())));

        let text = key.to_file_text().replace(PRIVATE_KEY_TAG, "ssh-ed25519");
        let wrong = write(dir.path(), "w", &text, 0o600);
        let err = HostKey::read(&wrong)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("is not a pam_totp key"), "{err}");
        assert!(!err.contains(&Base64::encode_string(&key.0.to_bytes())), "{err}");
        // A public key where the private one should be is refused, not misread.
        let swapped = write(dir.path(), "s", &key.public().to_file_text(), 0o600);
        assert!(matches!(
            HostKey::read(&swapped),
            Err(SealError::Malformed { .. })
        ));
    }

    #[test]
    fn unsafe_private_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let text = HostKey::generate(&mut Counter(7)).to_file_text();
        let open = write(dir.path(), "open", &text, 0o644);
        let err = HostKey::read(&open)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("mode 0644") && err.contains("chmod 600"), "{err}");
        let good = write(dir.path(), "good", &text, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        let err = HostKey::read(&link)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(matches!(
            HostKey::read(dir.path()),
            Err(SealError::Unsafe { .. } | SealError::Io { .. })
        ));
        assert!(matches!(
            HostKey::read(&dir.path().join("none")),
            Err(SealError::Missing { .. })
        ));
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&good, Some(nix::unistd::Uid::from_raw(1)), None).unwrap();
            let err = HostKey::read(&good)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("not root"), "{err}");
            nix::unistd::chown(&good, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
            assert!(HostKey::read(&good).is_ok());
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = HostKey::read(&good)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not group/world writable"), "{err}");
    }
}
