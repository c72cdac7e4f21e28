//! google-authenticator's 8-digit scratch codes, imported as recovery codes.
//!
//! `totp-enroll import --google-authenticator` keeps a user's scratch codes working: it
//! stores their argon2id hashes in the record's recovery list, like `totp-enroll`'s own
//! recovery codes, and marks the record (`scratch_codes = true`). Those codes carry no
//! index, so a typed 8-digit reply is checked against each hash in turn: at most
//! [`MAX_SCRATCH_CODES`] argon2 checks, and only for records that were imported with
//! scratch codes and only for replies shaped like one (TOTP codes of such records have
//! 6 digits: google-authenticator makes no other). Burnt codes are the same bits of the
//! login state as for recovery codes.

use std::fmt;

use zeroize::Zeroizing;

pub use crate::code_hash::MAX_SCRATCH_CODES;
use crate::code_hash::{RecoveryError, hash_phc, verify_phc};
use crate::login_state::LoginState;
use crate::record::Record;
use crate::recovery::{self, RecoveryVerdict};

/// Digits of a google-authenticator scratch code.
pub const SCRATCH_DIGITS: usize = 8;

/// An 8-digit scratch code. Wiped on drop; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScratchCode(Zeroizing<String>);

impl fmt::Debug for ScratchCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScratchCode(redacted)")
    }
}

impl ScratchCode {
    /// Exactly eight ASCII digits, blanks around and between them ignored.
    #[must_use]
    pub fn parse(reply: &[u8]) -> Option<ScratchCode> {
        if reply.len() > crate::verify::MAX_REPLY_BYTES {
            return None;
        }
        let mut code = Zeroizing::new(String::with_capacity(SCRATCH_DIGITS));
        for byte in reply {
            match byte {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'0'..=b'9' if code.len() < SCRATCH_DIGITS => code.push(char::from(*byte)),
                _ => return None,
            }
        }
        (code.len() == SCRATCH_DIGITS).then_some(ScratchCode(code))
    }

    /// The argon2id PHC string of this code with `salt`, with the parameters of
    /// recovery codes.
    ///
    /// # Errors
    /// argon2 refused the salt or failed.
    pub fn hash(&self, salt: &[u8]) -> Result<String, RecoveryError> {
        hash_phc(self.0.as_bytes(), salt)
    }

    /// The eight digits, for a store that hashes the codes itself (the database).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `phc` (a hash a record may hold) is this code's.
    #[must_use]
    pub fn verify(&self, phc: &str) -> bool {
        verify_phc(self.0.as_bytes(), phc)
    }
}

/// Checks a scratch code against each hash of a record marked as holding scratch codes.
#[must_use]
pub fn check(record: &Record, code: &ScratchCode, state: &LoginState) -> RecoveryVerdict {
    if !record.scratch_codes || record.recovery.len() > MAX_SCRATCH_CODES {
        return RecoveryVerdict::Invalid;
    }
    let Some(index) = record.recovery.iter().position(|hash| code.verify(hash)) else {
        return RecoveryVerdict::Invalid;
    };
    recovery::burn(record, state, index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Answer;
    use crate::secret::SecretKey;
    use pam_totp_config::algorithm::Algorithm;

    fn imported(codes: &[&str]) -> Record {
        let hashes = codes
            .iter()
            .map(|c| {
                ScratchCode::parse(c.as_bytes())
                    .unwrap()
                    .hash(b"saltsaltsaltsalt")
                    .unwrap()
            })
            .collect();
        Record::new(
            SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap(),
            Algorithm::Sha1,
            6,
            30,
            String::new(),
        )
        .with_scratch_codes(5, hashes)
    }

    #[test]
    fn only_eight_digits_are_a_scratch_code() {
        assert!(ScratchCode::parse(b"12345678").is_some());
        assert!(ScratchCode::parse(b" 1234 5678\n").is_some());
        for bad in ["1234567", "123456789", "1234567a", "", "1234-5678"] {
            assert!(ScratchCode::parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn each_scratch_code_works_once() {
        let record = imported(&["11111111", "22222222"]);
        let code = ScratchCode::parse(b"22222222").unwrap();
        let fresh = LoginState::default();
        let RecoveryVerdict::Accepted { used, remaining } = check(&record, &code, &fresh) else {
            panic!("an imported scratch code must work");
        };
        assert_eq!((used, remaining), (0b10, 1));
        let after = LoginState {
            recovery_epoch: record.recovery_epoch,
            recovery_used: used,
            ..fresh
        };
        assert_eq!(check(&record, &code, &after), RecoveryVerdict::AlreadyUsed);
        let wrong = ScratchCode::parse(b"33333333").unwrap();
        assert_eq!(check(&record, &wrong, &fresh), RecoveryVerdict::Invalid);
    }

    #[test]
    fn records_not_marked_as_imported_take_no_scratch_codes() {
        let marked = imported(&["11111111"]);
        let unmarked = marked.clone().with_recovery(5, marked.recovery.clone());
        let code = ScratchCode::parse(b"11111111").unwrap();
        assert_eq!(
            check(&unmarked, &code, &LoginState::default()),
            RecoveryVerdict::Invalid
        );
        assert!(matches!(Answer::parse(b"11111111", &unmarked), Answer::Malformed));
        assert!(matches!(Answer::parse(b"11111111", &marked), Answer::Scratch(_)));
        assert!(matches!(Answer::parse(b"111111", &marked), Answer::Code(_)));
    }

    #[test]
    fn debug_hides_the_code() {
        let code = ScratchCode::parse(b"12345678").unwrap();
        assert_eq!(format!("{code:?}"), "ScratchCode(redacted)");
    }
}
