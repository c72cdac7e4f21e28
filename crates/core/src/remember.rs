//! `remember_key_seconds`: after a right code over ssh with a public key, the same user
//! with the same key passes without a code for a while.
//!
//! The key is only ever the one sshd verified: sshd puts the methods that already
//! succeeded into the PAM environment as `SSH_AUTH_INFO_0` (one line per method,
//! `publickey ssh-ed25519 AAAA...` for a key) before it runs the PAM stack of
//! keyboard-interactive. The PAM boundary reads it from the PAM environment of the
//! `sshd` service only, never from the process environment a client could fill.

use base64ct::{Base64, Base64Unpadded, Encoding};
use pam_totp_config::Config;
use sha2::{Digest, Sha256};

use crate::ports::{Login, LoginStore, Logger, Priority};

/// Longest `SSH_AUTH_INFO_0` looked at; sshd's holds a few keys and method names.
const MAX_AUTH_INFO_BYTES: usize = 64 * 1024;
/// Most verified keys taken from one login (`AuthenticationMethods publickey,publickey`
/// proves two).
const MAX_KEYS: usize = 8;

/// `SHA256:` and the unpadded base64 of the SHA-256 of a public key blob, as
/// `ssh-keygen -l` and sshd's log show it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyFingerprint(String);

impl KeyFingerprint {
    /// The fingerprint of the key blob (the SSH wire encoding of the public key).
    #[must_use]
    pub fn of_blob(blob: &[u8]) -> KeyFingerprint {
        KeyFingerprint(format!("SHA256:{}", Base64Unpadded::encode_string(&Sha256::digest(blob))))
    }

    /// A fingerprint read back from the store: `SHA256:` and 43 base64 characters.
    #[must_use]
    pub fn parse(text: &str) -> Option<KeyFingerprint> {
        let digest = text.strip_prefix("SHA256:")?;
        let bytes = Base64Unpadded::decode_vec(digest).ok()?;
        (bytes.len() == 32).then(|| KeyFingerprint(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fingerprints of the public keys sshd verified in this connection, from
/// `SSH_AUTH_INFO_0`: only `publickey` lines count, and only a well-formed key whose
/// blob names the same type as the line. Anything else (other methods, garbage,
/// truncated or oversized text) adds nothing.
#[must_use]
pub fn verified_keys(auth_info: &str) -> Vec<KeyFingerprint> {
    if auth_info.len() > MAX_AUTH_INFO_BYTES {
        return Vec::new();
    }
    let mut keys: Vec<KeyFingerprint> = auth_info
        .split('\n')
        .filter_map(publickey_line)
        .take(MAX_KEYS)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// `publickey TYPE BASE64 [info]` -> the key's fingerprint.
fn publickey_line(line: &str) -> Option<KeyFingerprint> {
    let mut words = line.split(' ');
    if words.next()? != "publickey" {
        return None;
    }
    let key_type = words.next()?;
    let blob = Base64::decode_vec(words.next()?).ok()?;
    (blob_type(&blob)? == key_type.as_bytes()).then(|| KeyFingerprint::of_blob(&blob))
}

/// The first SSH string of a key blob: its type name. A plain key (not a certificate,
/// whose fields include fixed-size integers) must be SSH strings to its last byte, so
/// a cut blob is no key.
fn blob_type(blob: &[u8]) -> Option<&[u8]> {
    let (name, mut rest) = ssh_string(blob)?;
    if name.is_empty() || rest.is_empty() {
        return None;
    }
    if !name.ends_with(b"-cert-v01@openssh.com") {
        while !rest.is_empty() {
            rest = ssh_string(rest)?.1;
        }
    }
    Some(name)
}

/// One SSH string (u32 length, bytes) and what follows it.
fn ssh_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::try_from(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?)).ok()?;
    let end = len.checked_add(4)?;
    Some((bytes.get(4..end)?, bytes.get(end..)?))
}

/// Before a prompt: whether one of the keys sshd verified in this login was remembered
/// for this user after a right code, until a time still to come. Logged when it was.
/// A store error is logged and means a prompt.
#[must_use]
pub fn remembered(
    config: &Config,
    login: &Login<'_>,
    keys: &[KeyFingerprint],
    store: &dyn LoginStore,
    log: &dyn Logger,
) -> bool {
    if config.shortcuts().remember_key_seconds == 0 || keys.is_empty() {
        return false;
    }
    let Some(shortcuts) = store.shortcuts() else {
        return false;
    };
    match shortcuts.remembered_key(config, login.user, keys, login.now) {
        Ok(Some((key, until))) => {
            log.log(
                Priority::Info,
                &format!(
                    "second factor remembered for key {} until {}; {}",
                    key.as_str(),
                    crate::step_up::utc(until),
                    login.who()
                ),
            );
            true
        }
        Ok(None) => false,
        Err(e) => {
            log.log(
                Priority::Err,
                &format!("cannot read remembered keys, asking for a code: {e}; {}", login.who()),
            );
            false
        }
    }
}

/// After a right code: remembers the keys sshd verified in this login. A failure only
/// costs a prompt next time: logged, the login stands.
pub fn after_code(
    config: &Config,
    login: &Login<'_>,
    keys: &[KeyFingerprint],
    store: &dyn LoginStore,
    log: &dyn Logger,
) {
    let seconds = config.shortcuts().remember_key_seconds;
    if seconds == 0 || keys.is_empty() {
        return;
    }
    let Some(shortcuts) = store.shortcuts() else {
        return;
    };
    let until = login.now.saturating_add(seconds);
    if let Err(e) = shortcuts.remember_keys(config, login.user, keys, until, login.now) {
        log.log(
            Priority::Err,
            &format!("cannot remember the key: {e}; {}", login.who()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGqkRoJxzTUdhr6K2tLTrr5IBqQIksXSR1P2XCMs4rzi";
    const FP_A: &str = "SHA256:0H3SJIXyQpr7QDJsfXpS/J05A2K3xOSeXkzcvK/2P8Y";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIIlqdKrYDDdt9uIfRGwD/Xk4vTQsjRJoSD1ndlHL9nUI";
    const FP_B: &str = "SHA256:TUdC/NmQVrOJ6ElMnIWo6WEE12CzXN3HEXvkRM0to1k";

    fn fingerprints(info: &str) -> Vec<String> {
        verified_keys(info).into_iter().map(|k| k.0).collect()
    }

    #[test]
    fn the_fingerprint_is_the_one_ssh_keygen_shows() {
        assert_eq!(fingerprints(&format!("publickey ssh-ed25519 {KEY_A}\n")), [FP_A]);
        assert!(KeyFingerprint::parse(FP_A).is_some());
        assert!(KeyFingerprint::parse("SHA256:short").is_none());
        assert!(KeyFingerprint::parse(&FP_A.replace("SHA256", "MD5")).is_none());
    }

    #[test]
    fn only_the_publickey_methods_keys_count() {
        let info = format!(
            "publickey ssh-ed25519 {KEY_A}\nkeyboard-interactive/pam\npassword\n\
             publickey ssh-ed25519 {KEY_B} cert-id\n"
        );
        assert_eq!(fingerprints(&info), [FP_A, FP_B]);
        // The same key twice is one key.
        assert_eq!(fingerprints(&format!("publickey ssh-ed25519 {KEY_A}\npublickey ssh-ed25519 {KEY_A}")), [FP_A]);
    }

    #[test]
    fn hostile_lines_add_no_key() {
        for info in [
            String::new(),
            format!("password ssh-ed25519 {KEY_A}"),
            format!("keyboard-interactive ssh-ed25519 {KEY_A}"),
            format!(" publickey ssh-ed25519 {KEY_A}"),
            format!("publickey  ssh-ed25519 {KEY_A}"),
            format!("publickeyx ssh-ed25519 {KEY_A}"),
            format!("publickey ssh-rsa {KEY_A}"),
            format!("publickey ssh-ed25519 {}", &KEY_A[..40]),
            "publickey ssh-ed25519 !!!notbase64".to_owned(),
            "publickey ssh-ed25519 AAAA".to_owned(),
            "publickey ssh-ed25519 /////w==".to_owned(),
            format!("publickey ssh-ed25519\0 {KEY_A}"),
            "publickey".to_owned(),
            format!("publickey ssh-ed25519 {KEY_A}\n{}", "x".repeat(MAX_AUTH_INFO_BYTES)),
        ] {
            assert!(verified_keys(&info).is_empty(), "{info:.80}");
        }
    }

    #[test]
    fn at_most_a_few_keys_are_taken() {
        let info = format!("publickey ssh-ed25519 {KEY_A}\n").repeat(100);
        assert_eq!(verified_keys(&info).len(), 1);
    }
}
