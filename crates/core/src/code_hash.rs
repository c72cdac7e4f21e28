//! Hashes of one-time codes (recovery codes, imported scratch codes): argon2id PHC
//! strings, their parameter bounds, and how many a record may hold. Owned here so that
//! the record's parser and both kinds of code share one rule and import nothing back.

use std::fmt;
use std::marker::PhantomData;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Argon2, Params, Version};
use zeroize::Zeroizing;

/// The most recovery codes one record can hold: the index is one alphabet character.
pub const MAX_CODES: usize = 32;
/// Scratch codes pam_google_authenticator issues at most (one set).
pub const MAX_SCRATCH_CODES: usize = 10;

/// argon2id parameters for new hashes: OWASP's minimum (19 MiB, 2 passes, 1 lane),
/// about 20-40 ms per check on a server core.
pub const HASH_MEMORY_KIB: u32 = 19 * 1024;
pub const HASH_PASSES: u32 = 2;
pub const HASH_LANES: u32 = 1;
/// A record's hashes may use other parameters, but never more than these: a user who
/// owns their record must not make the module (root, inside sshd) burn memory or time.
const MAX_MEMORY_KIB: u32 = 64 * 1024;
const MAX_PASSES: u32 = 8;
const MAX_LANES: u32 = 4;
/// Longest hash string accepted in a record.
pub const MAX_HASH_CHARS: usize = 256;

/// Why a code could not be hashed (never says anything about the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryError {
    /// Too few random bytes, an index past [`MAX_CODES`], or a salt argon2 refuses.
    BadInput,
    /// argon2 failed.
    Hash,
    /// The operating system gave no random bytes.
    NoRandomness,
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryError::BadInput => f.write_str("cannot make a recovery code from this input"),
            RecoveryError::Hash => f.write_str("cannot hash a recovery code"),
            RecoveryError::NoRandomness => f.write_str("no randomness from the operating system"),
        }
    }
}

impl std::error::Error for RecoveryError {}

/// The argon2id PHC string of a code with `salt`, with the parameters of new hashes.
fn hash_phc(code: &[u8], salt: &[u8]) -> Result<String, RecoveryError> {
    let salt = SaltString::encode_b64(salt).map_err(|_| RecoveryError::BadInput)?;
    let params =
        Params::new(HASH_MEMORY_KIB, HASH_PASSES, HASH_LANES, None).map_err(|_| RecoveryError::Hash)?;
    Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(code, &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| RecoveryError::Hash)
}

/// Which kind of one-time code a [`OneTimeCode`] is; `Debug` shows its name.
pub trait CodeKind {
    const NAME: &'static str;
}

/// A one-time code as typed and normalised, which a record keeps only as salted
/// argon2id hashes: a recovery code ([`crate::recovery::RecoveryCode`]) or an imported
/// scratch code ([`crate::scratch::ScratchCode`]); each kind parses its own shape, both
/// are hashed and verified here. Wiped on drop; `Debug` hides it.
pub struct OneTimeCode<K>(Zeroizing<String>, PhantomData<K>);

impl<K> OneTimeCode<K> {
    /// A code from its normalised text (for the kind's parser).
    pub(crate) fn new(text: Zeroizing<String>) -> OneTimeCode<K> {
        OneTimeCode(text, PhantomData)
    }

    /// The normalised text (for a store that hashes the codes itself: the database).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The argon2id PHC string of this code with `salt` (16 random bytes are right),
    /// with the parameters of new hashes.
    ///
    /// # Errors
    /// argon2 refused the salt or failed.
    pub fn hash(&self, salt: &[u8]) -> Result<String, RecoveryError> {
        hash_phc(self.0.as_bytes(), salt)
    }

    /// Whether `phc` (a hash a record may hold) is this code's. An unacceptable hash
    /// never matches.
    #[must_use]
    pub fn verify(&self, phc: &str) -> bool {
        verify_phc(self.0.as_bytes(), phc)
    }
}

impl<K: CodeKind> fmt::Debug for OneTimeCode<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(redacted)", K::NAME)
    }
}

// By hand: the derives would ask the same of the kind, a marker.
impl<K> Clone for OneTimeCode<K> {
    fn clone(&self) -> Self {
        OneTimeCode(self.0.clone(), PhantomData)
    }
}

impl<K> PartialEq for OneTimeCode<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K> Eq for OneTimeCode<K> {}

/// Whether `phc` is the hash of `code`. An unacceptable hash never matches.
fn verify_phc(code: &[u8], phc: &str) -> bool {
    acceptable_hash(phc).is_some_and(|hash| Argon2::default().verify_password(code, &hash).is_ok())
}

/// `len` bytes from the operating system's CSPRNG, wiped on drop.
pub(crate) fn random(len: usize) -> Result<Zeroizing<Vec<u8>>, RecoveryError> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut bytes).map_err(|_| RecoveryError::NoRandomness)?;
    Ok(bytes)
}

/// A fresh salt for [`OneTimeCode::hash`] (16 bytes, argon2's recommendation).
///
/// # Errors
/// No randomness from the operating system.
pub fn new_salt() -> Result<Zeroizing<Vec<u8>>, RecoveryError> {
    random(16)
}

/// Parses `phc` if it is an argon2id hash within the parameter bounds.
fn acceptable_hash(phc: &str) -> Option<PasswordHash<'_>> {
    if phc.len() > MAX_HASH_CHARS {
        return None;
    }
    let hash = PasswordHash::new(phc).ok()?;
    if hash.algorithm != argon2::Algorithm::Argon2id.ident() || hash.hash.is_none() {
        return None;
    }
    let params = Params::try_from(&hash).ok()?;
    let bounded =
        params.m_cost() <= MAX_MEMORY_KIB && params.t_cost() <= MAX_PASSES && params.p_cost() <= MAX_LANES;
    bounded.then_some(hash)
}

/// Whether a record may hold `phc` as a recovery-code hash.
#[must_use]
pub fn is_acceptable_hash(phc: &str) -> bool {
    acceptable_hash(phc).is_some()
}
