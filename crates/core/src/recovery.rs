//! Recovery codes: what a user types when the phone is gone.
//!
//! A code is 12 characters of Crockford's base32 (`0-9a-z` without `i l o u`), shown as
//! `xxxx-xxxx-xxxx`. The first character is the code's index in the record's list; the
//! other 11 are random (55 bits). Typing is forgiving: case, blanks and dashes do not
//! matter, and `o`, `i`, `l` are read as `0`, `1`, `1`.
//!
//! Why the index is in the code: the record keeps only salted argon2id hashes, and
//! each check costs tens of milliseconds by design. Without an index, a login would have
//! to try every unused hash (ten checks per wrong guess, all under the user's state
//! lock); with it, exactly one hash is checked. The index is no secret: the 55 random
//! bits are what a guesser must find, and the lock-out still applies to every guess.
//!
//! Only a reply shaped like a recovery code is hashed, so a wrong 6-digit code stays
//! as cheap as ever. Which codes are burnt lives in the login state (the module never
//! writes the record): one bit per index, valid for the record's `recovery_epoch`.

use zeroize::Zeroizing;

use crate::code_hash::{CodeKind, OneTimeCode, random};
pub use crate::code_hash::{
    HASH_LANES, HASH_MEMORY_KIB, HASH_PASSES, MAX_HASH_CHARS, RecoveryError, is_acceptable_hash, new_salt,
};
use crate::login_state::LoginState;
use crate::record::Record;
use crate::verify::MAX_REPLY_BYTES;

/// Crockford's base32 alphabet, lower case: no `i`, `l`, `o`, `u`.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of a code, index included.
pub const CODE_CHARS: usize = 12;
/// Random bits in a code (11 characters of 5 bits).
pub const RANDOM_BITS: usize = (CODE_CHARS - 1) * 5;
pub use crate::code_hash::MAX_CODES;
const _: () = assert!(ALPHABET.len() == MAX_CODES, "the index is one alphabet character");
/// How many codes `totp-enroll` issues.
pub const ISSUED_CODES: usize = 10;

/// The recovery kind of [`OneTimeCode`].
#[derive(Debug)]
pub enum Recovery {}

impl CodeKind for Recovery {
    const NAME: &'static str = "RecoveryCode";
}

/// A recovery code, normalised to 12 alphabet characters. Wiped on drop; `Debug` hides it.
pub type RecoveryCode = OneTimeCode<Recovery>;

impl OneTimeCode<Recovery> {
    /// Reads a reply as a recovery code: blanks and dashes dropped, case folded, the
    /// look-alikes `o`, `i`, `l` read as digits. Anything else is not a recovery code.
    #[must_use]
    pub fn parse(reply: &[u8]) -> Option<RecoveryCode> {
        if reply.len() > MAX_REPLY_BYTES {
            return None;
        }
        let mut code = Zeroizing::new(String::with_capacity(CODE_CHARS));
        for byte in reply {
            let c = match byte.to_ascii_lowercase() {
                b' ' | b'\t' | b'\r' | b'\n' | b'-' => continue,
                b'o' => b'0',
                b'i' | b'l' => b'1',
                other if ALPHABET.contains(&other) => other,
                _ => return None,
            };
            if code.len() == CODE_CHARS {
                return None;
            }
            code.push(char::from(c));
        }
        (code.len() == CODE_CHARS).then_some(RecoveryCode::new(code))
    }

    /// The code with index `index` made from `random` (at least 11 bytes; the low 5
    /// bits of each of the first 11 are used, so uniform bytes give uniform characters).
    ///
    /// # Errors
    /// Too few bytes or an index past [`MAX_CODES`].
    pub fn from_random(index: usize, random: &[u8]) -> Result<RecoveryCode, RecoveryError> {
        let first = *ALPHABET.get(index).ok_or(RecoveryError::BadInput)?;
        let random = random.get(..CODE_CHARS - 1).ok_or(RecoveryError::BadInput)?;
        let mut code = Zeroizing::new(String::with_capacity(CODE_CHARS));
        code.push(char::from(first));
        for byte in random {
            code.push(char::from(ALPHABET[usize::from(byte & 0x1f)]));
        }
        Ok(RecoveryCode::new(code))
    }

    /// Which entry of the record's list this code claims to be.
    #[must_use]
    pub fn index(&self) -> usize {
        self.as_str()
            .bytes()
            .next()
            .and_then(|first| ALPHABET.iter().position(|c| *c == first))
            .unwrap_or(MAX_CODES)
    }

    /// `xxxx-xxxx-xxxx`, for reading aloud and writing down.
    #[must_use]
    pub fn display(&self) -> Zeroizing<String> {
        let (a, rest) = self.as_str().split_at(4);
        let (b, c) = rest.split_at(4);
        Zeroizing::new(format!("{a}-{b}-{c}"))
    }
}

/// A fresh, non-zero epoch naming a new set of codes (0 names no set; the top bit stays
/// clear, as TOML integers are signed).
///
/// # Errors
/// No randomness from the operating system.
pub fn new_epoch() -> Result<u64, RecoveryError> {
    let bytes = random(8)?;
    let mut epoch = [0u8; 8];
    epoch.copy_from_slice(&bytes);
    Ok((u64::from_le_bytes(epoch) & (u64::MAX >> 1)).max(1))
}

/// `record` with a new set of [`ISSUED_CODES`] codes (a new epoch: the old codes die
/// with the old set), and the codes to show once.
///
/// # Errors
/// No randomness, or argon2 failed.
pub fn new_set(record: Record) -> Result<(Record, Vec<RecoveryCode>), RecoveryError> {
    let mut codes = Vec::with_capacity(ISSUED_CODES);
    let mut hashes = Vec::with_capacity(ISSUED_CODES);
    for index in 0..ISSUED_CODES {
        let code = RecoveryCode::from_random(index, &random(16)?)?;
        hashes.push(code.hash(&new_salt()?)?);
        codes.push(code);
    }
    Ok((record.with_recovery(new_epoch()?, hashes), codes))
}

/// A new set of [`ISSUED_CODES`] codes, unhashed: for a store that hashes them itself
/// (the database's `crypt()`), in index order.
///
/// # Errors
/// No randomness.
pub fn new_codes() -> Result<Vec<RecoveryCode>, RecoveryError> {
    (0..ISSUED_CODES)
        .map(|index| RecoveryCode::from_random(index, &random(16)?))
        .collect()
}

/// The result of checking a recovery code against a record and the login state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryVerdict {
    /// Right and unused: the burnt-codes mask to save, and how many are left after it.
    Accepted { used: u64, remaining: usize },
    /// Right, but burnt already.
    AlreadyUsed,
    /// Not one of the record's codes.
    Invalid,
}

/// The record's burnt-codes mask as the state knows it: a state of another set (another
/// epoch) knows nothing about this one.
#[must_use]
pub fn used_mask(record: &Record, state: &LoginState) -> u64 {
    if state.recovery_epoch == record.recovery_epoch {
        state.recovery_used & valid_mask(record.recovery.len())
    } else {
        0
    }
}

fn valid_mask(count: usize) -> u64 {
    match count {
        0 => 0,
        n if n >= 64 => u64::MAX,
        n => (1u64 << n) - 1,
    }
}

/// Unused codes of the record.
#[must_use]
pub fn remaining(record: &Record, state: &LoginState) -> usize {
    let used = used_mask(record, state).count_ones() as usize;
    record.recovery.len().saturating_sub(used)
}

/// Checks `code` (one argon2 verification, whatever the outcome) against the record
/// and the burnt codes in `state`.
#[must_use]
pub fn check(record: &Record, code: &RecoveryCode, state: &LoginState) -> RecoveryVerdict {
    let index = code.index();
    let Some(hash) = record.recovery.get(index) else {
        return RecoveryVerdict::Invalid;
    };
    if !code.verify(hash) {
        return RecoveryVerdict::Invalid;
    }
    burn(record, state, index)
}

/// Burns code `index` of the record's set (a verified one): refused if already burnt,
/// else the new burnt-code bits and how many codes are left.
pub(crate) fn burn(record: &Record, state: &LoginState, index: usize) -> RecoveryVerdict {
    let bit = 1u64 << index;
    let used = used_mask(record, state);
    if used & bit != 0 {
        return RecoveryVerdict::AlreadyUsed;
    }
    let used = used | bit;
    let remaining = record.recovery.len().saturating_sub(used.count_ones() as usize);
    RecoveryVerdict::Accepted { used, remaining }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Answer;
    use crate::secret::SecretKey;
    use pam_totp_config::algorithm::Algorithm;

    fn code(index: usize, fill: u8) -> RecoveryCode {
        RecoveryCode::from_random(index, &[fill; 11]).unwrap()
    }

    fn record_with(codes: &[RecoveryCode], epoch: u64) -> Record {
        let hashes = codes
            .iter()
            .map(|c| c.hash(b"saltsaltsaltsalt").unwrap())
            .collect();
        Record::new(
            SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap(),
            Algorithm::Sha1,
            6,
            30,
            String::new(),
        )
        .with_recovery(epoch, hashes)
    }

    #[test]
    fn codes_carry_their_index_and_at_least_fifty_bits() {
        const { assert!(RANDOM_BITS >= 50) };
        let c = code(3, 0x21);
        assert_eq!(c.index(), 3);
        assert_eq!(c.display().as_str(), "3111-1111-1111");
    }

    #[test]
    fn typing_is_forgiving_about_case_blanks_dashes_and_look_alikes() {
        let c = RecoveryCode::from_random(2, &[0, 1, 2, 3, 10, 11, 12, 13, 30, 31, 0]).unwrap();
        assert_eq!(c.display().as_str(), "2012-3abc-dyz0");
        for typed in [
            "2012-3abc-dyz0",
            "2O12 3ABC DYZO\n",
            " 2ol2-3abc-dyzo ",
            "20123abcdyz0",
        ] {
            assert_eq!(RecoveryCode::parse(typed.as_bytes()), Some(c.clone()), "{typed}");
        }
        for bad in [
            "2012-3abc-dyz",
            "2012-3abc-dyz00",
            "2012-3abu-dyz0",
            "123456",
            "",
            "2012_3abc_dyz0",
        ] {
            assert_eq!(RecoveryCode::parse(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(RecoveryCode::parse(&[b'a'; 10_000]), None);
    }

    #[test]
    fn a_six_digit_reply_is_a_code_never_a_recovery_code() {
        let record = record_with(&[code(0, 1)], 7);
        assert!(matches!(Answer::parse(b"123 456", &record), Answer::Code(_)));
        assert!(matches!(
            Answer::parse(b"0111-1111-1111", &record),
            Answer::Recovery(_)
        ));
        assert!(matches!(Answer::parse(b"12345", &record), Answer::Malformed));
        let without = Record::new(record.secret.clone(), Algorithm::Sha1, 6, 30, String::new());
        assert!(matches!(
            Answer::parse(b"0111-1111-1111", &without),
            Answer::Malformed
        ));
    }

    #[test]
    fn a_code_works_once_per_set() {
        let codes = [code(0, 5), code(1, 6)];
        let record = record_with(&codes, 42);
        let fresh = LoginState::default();
        let RecoveryVerdict::Accepted {
            used,
            remaining: left,
        } = check(&record, &codes[1], &fresh)
        else {
            panic!("the right code must be accepted");
        };
        assert_eq!((used, left), (0b10, 1));
        let after = LoginState {
            recovery_epoch: 42,
            recovery_used: used,
            ..fresh
        };
        assert_eq!(check(&record, &codes[1], &after), RecoveryVerdict::AlreadyUsed);
        assert_eq!(remaining(&record, &after), 1);
        // A new set (another epoch) starts with every code unused.
        let newer = record_with(&codes, 43);
        assert!(matches!(
            check(&newer, &codes[1], &after),
            RecoveryVerdict::Accepted { .. }
        ));
        assert_eq!(remaining(&newer, &after), 2);
    }

    #[test]
    fn wrong_codes_and_wrong_indexes_are_invalid() {
        let codes = [code(0, 5), code(1, 6)];
        let record = record_with(&codes, 1);
        let state = LoginState::default();
        assert_eq!(check(&record, &code(0, 6), &state), RecoveryVerdict::Invalid);
        assert_eq!(check(&record, &code(5, 5), &state), RecoveryVerdict::Invalid);
    }

    #[test]
    fn only_bounded_argon2id_hashes_are_acceptable() {
        let c = code(0, 9);
        let good = c.hash(b"0123456789abcdef").unwrap();
        assert!(good.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{good}");
        assert!(is_acceptable_hash(&good));
        assert!(c.verify(&good));
        let greedy = good.replace("m=19456", "m=4000000");
        assert!(!is_acceptable_hash(&greedy));
        assert!(!c.verify(&greedy));
        assert!(!is_acceptable_hash(&good.replace("argon2id", "argon2i")));
        assert!(!is_acceptable_hash("plain text"));
    }

    #[test]
    fn debug_hides_the_code() {
        assert_eq!(format!("{:?}", code(0, 1)), "RecoveryCode(redacted)");
    }
}
