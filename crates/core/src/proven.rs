//! What others proved about a login before the module ran, as plain data: the public
//! keys sshd verified (from `SSH_AUTH_INFO_0`) and their fingerprints, the kernel audit
//! session of the calling process, and the one-time tickets that carry "this login
//! passed a code" from the auth stack to the session stack ([`crate::remember`],
//! [`crate::step_up`]).

use std::fmt::Write as _;

use base64ct::{Base64, Base64Unpadded, Encoding};
use sha2::{Digest, Sha256};

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
        KeyFingerprint(format!(
            "SHA256:{}",
            Base64Unpadded::encode_string(&Sha256::digest(blob))
        ))
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

/// The audit session id of a process without one.
const UNSET_SESSION: u32 = u32::MAX;

/// A kernel audit session id that is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSession(u32);

impl AuditSession {
    /// `/proc/self/sessionid`'s text; `None` when unset or not a number.
    #[must_use]
    pub fn parse(text: &str) -> Option<AuditSession> {
        let text = text.trim_end_matches('\n');
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id: u32 = text.parse().ok()?;
        (id != UNSET_SESSION).then_some(AuditSession(id))
    }

    #[must_use]
    pub fn id(self) -> u32 {
        self.0
    }
}

/// A one-time ticket: 128 random bits in hex. Stored only as its SHA-256.
pub struct Ticket(String);

impl Ticket {
    /// A new random ticket.
    ///
    /// # Errors
    /// The system's random source failed.
    pub fn new() -> Result<Ticket, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Ticket(hex(&bytes)))
    }

    /// A ticket as found in the PAM environment: 32 lowercase hex digits.
    #[must_use]
    pub fn parse(text: &str) -> Option<Ticket> {
        (text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Ticket(text.to_owned()))
    }

    /// What the store keeps: the hex SHA-256 of the ticket.
    #[must_use]
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket(..)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, b| {
            let _ = write!(text, "{b:02x}");
            text
        })
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
        assert_eq!(
            fingerprints(&format!(
                "publickey ssh-ed25519 {KEY_A}\npublickey ssh-ed25519 {KEY_A}"
            )),
            [FP_A]
        );
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
            format!(
                "publickey ssh-ed25519 {KEY_A}\n{}",
                "x".repeat(MAX_AUTH_INFO_BYTES)
            ),
        ] {
            assert!(verified_keys(&info).is_empty(), "{info:.80}");
        }
    }

    #[test]
    fn at_most_a_few_keys_are_taken() {
        let info = format!("publickey ssh-ed25519 {KEY_A}\n").repeat(100);
        assert_eq!(verified_keys(&info).len(), 1);
    }

    #[test]
    fn an_unset_or_malformed_session_id_is_never_believed() {
        assert_eq!(AuditSession::parse("42"), Some(AuditSession(42)));
        assert_eq!(AuditSession::parse("42\n"), Some(AuditSession(42)));
        for text in [
            "4294967295",
            "4294967295\n",
            "",
            "-1",
            "+3",
            " 3",
            "3 ",
            "99999999999",
            "0x10",
            "1\n2",
        ] {
            assert_eq!(AuditSession::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn tickets_are_random_hex_and_stored_hashed() {
        let ticket = Ticket::new().unwrap();
        assert!(Ticket::parse(ticket.as_str()).is_some());
        assert_ne!(ticket.as_str(), Ticket::new().unwrap().as_str());
        assert_eq!(ticket.digest().len(), 64);
        assert!(!ticket.digest().contains(ticket.as_str()));
        assert_eq!(format!("{ticket:?}"), "Ticket(..)");
        for text in ["", "0123", &"A".repeat(32), &"g".repeat(32), &"0".repeat(33)] {
            assert!(Ticket::parse(text).is_none(), "{text}");
        }
    }
}
