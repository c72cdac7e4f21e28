//! The enrollment record: what `totp-enroll` writes and the module only reads.
//!
//! A small versioned TOML file. Parsing never echoes file content in an error, because
//! the content is a secret: errors name the field or the line, nothing more.

#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::algorithm::Algorithm;
use crate::secret::{SecretError, SecretKey};

/// The only record version this build reads and writes.
pub const RECORD_VERSION: u32 = 1;

/// One user's enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub secret: SecretKey,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    /// When the record was made (RFC 3339, UTC); shown by `status`, never used to decide.
    pub created: String,
    /// Names the current set of recovery codes; the login state's burnt-code bits
    /// count only for the same epoch. 0 with no codes.
    pub recovery_epoch: u64,
    /// argon2id PHC strings of the recovery codes, in index order (see [`crate::recovery`]).
    pub recovery: Vec<String>,
    /// The recovery hashes are of google-authenticator scratch codes (8 digits, no
    /// index), imported by `totp-enroll import` (see [`crate::scratch`]).
    pub scratch_codes: bool,
}

/// The on-disk shape; kept private so the secret only leaves as a [`SecretKey`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    version: u32,
    secret: String,
    algorithm: Algorithm,
    digits: u8,
    period: u64,
    #[serde(default)]
    created: String,
    // Optional, so records written before recovery codes existed stay version 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    recovery_epoch: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recovery: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    scratch_codes: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_false(value: &bool) -> bool {
    !*value
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Drop for RecordFile {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// Why a record could not be read. Carries no content of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// Not TOML, a missing or unknown field, or a value of the wrong type.
    Malformed { line: Option<usize> },
    /// A `version` this build does not know.
    UnsupportedVersion(u32),
    /// The secret field is not a usable secret.
    Secret(SecretError),
    /// `digits` or `period` outside what any authenticator uses.
    Parameters,
    /// Too many recovery-code hashes, or one that is not a bounded argon2id hash.
    Recovery,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Malformed { line: Some(line) } => {
                write!(f, "record is malformed (line {line})")
            }
            RecordError::Malformed { line: None } => f.write_str("record is malformed"),
            RecordError::UnsupportedVersion(v) => write!(f, "record version {v} is not supported"),
            RecordError::Secret(e) => write!(f, "record secret is unusable: {e}"),
            RecordError::Parameters => {
                f.write_str("record digits or period out of range (6-8 digits, 1-300 s)")
            }
            RecordError::Recovery => f.write_str(
                "record recovery codes are unusable (at most 32 argon2id hashes); \
                 issue new ones with `totp-enroll recovery-codes`",
            ),
        }
    }
}

impl std::error::Error for RecordError {}

impl Record {
    /// A record with the given secret and parameters, made now.
    #[must_use]
    pub fn new(secret: SecretKey, algorithm: Algorithm, digits: u8, period: u64, created: String) -> Self {
        Record {
            secret,
            algorithm,
            digits,
            period,
            created,
            recovery_epoch: 0,
            recovery: Vec::new(),
            scratch_codes: false,
        }
    }

    /// The same record with a new set of recovery codes (`hashes` in index order).
    /// The epoch keeps 63 bits: TOML integers are signed 64-bit.
    #[must_use]
    pub fn with_recovery(self, epoch: u64, hashes: Vec<String>) -> Self {
        Record {
            recovery_epoch: epoch & (u64::MAX >> 1),
            recovery: hashes,
            scratch_codes: false,
            ..self
        }
    }

    /// The same record with imported google-authenticator scratch codes (`hashes` of
    /// the 8-digit codes) as its recovery codes.
    #[must_use]
    pub fn with_scratch_codes(self, epoch: u64, hashes: Vec<String>) -> Self {
        Record {
            scratch_codes: true,
            ..self.with_recovery(epoch, hashes)
        }
    }

    /// Parses a record file's text.
    ///
    /// # Errors
    /// Malformed TOML, unknown version, unusable secret or parameters.
    pub fn parse(text: &str) -> Result<Record, RecordError> {
        let file: RecordFile = toml::from_str(text).map_err(|e| RecordError::Malformed {
            line: e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1)),
        })?;
        if file.version != RECORD_VERSION {
            return Err(RecordError::UnsupportedVersion(file.version));
        }
        if !(6..=8).contains(&file.digits) || !(1..=300).contains(&file.period) {
            return Err(RecordError::Parameters);
        }
        if file.recovery.len() > crate::recovery::MAX_CODES
            || !file
                .recovery
                .iter()
                .all(|h| crate::recovery::is_acceptable_hash(h))
            || (file.scratch_codes && file.recovery.len() > crate::scratch::MAX_SCRATCH_CODES)
        {
            return Err(RecordError::Recovery);
        }
        let secret = SecretKey::from_base32(&file.secret).map_err(RecordError::Secret)?;
        Ok(Record {
            secret,
            algorithm: file.algorithm,
            digits: file.digits,
            period: file.period,
            created: file.created.clone(),
            recovery_epoch: file.recovery_epoch,
            recovery: file.recovery.clone(),
            scratch_codes: file.scratch_codes,
        })
    }

    /// The file's text. Holds the secret, so it is wiped when dropped.
    #[must_use]
    pub fn to_toml(&self) -> Zeroizing<String> {
        let file = RecordFile {
            version: RECORD_VERSION,
            secret: self.secret.to_base32().to_string(),
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
            created: self.created.clone(),
            recovery_epoch: self.recovery_epoch,
            recovery: self.recovery.clone(),
            scratch_codes: self.scratch_codes,
        };
        let header = "# pam_totp enrollment record, written by totp-enroll. Keep it private.\n";
        Zeroizing::new(format!("{header}{}", toml::to_string(&file).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version = 1\nsecret = \"JBSWY3DPEHPK3PXP\"\nalgorithm = \"SHA1\"\n\
                        digits = 6\nperiod = 30\ncreated = \"2026-11-25T10:00:00Z\"\n";

    #[test]
    fn reads_a_good_record() {
        let record = Record::parse(GOOD);
        assert_eq!(record.as_ref().map(|r| (r.digits, r.period)), Ok((6, 30)));
    }

    #[test]
    fn writes_what_it_reads() {
        let record = Record::parse(GOOD);
        let again = record.as_ref().map(|r| Record::parse(&r.to_toml()));
        assert_eq!(again, Ok(record.clone()));
    }

    #[test]
    fn recovery_hashes_round_trip_and_old_records_have_none() {
        let record = Record::parse(GOOD).unwrap();
        assert!(record.recovery.is_empty());
        assert!(!record.to_toml().contains("recovery"));
        let code = crate::recovery::RecoveryCode::from_random(0, &[7; 11]).unwrap();
        let hash = code.hash(b"0123456789abcdef").unwrap();
        let with = record.with_recovery(1 << 40, vec![hash.clone()]);
        let again = Record::parse(&with.to_toml()).unwrap();
        assert_eq!((again.recovery_epoch, again.recovery), (1 << 40, vec![hash]));
    }

    #[test]
    fn refuses_unusable_recovery_hashes_without_quoting_them() {
        let text = format!("{GOOD}recovery_epoch = 3\nrecovery = [\"$argon2id$JBSWY3DP\"]\n");
        let err = Record::parse(&text);
        assert_eq!(err, Err(RecordError::Recovery));
        assert!(
            !err.err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("JBSW")
        );
    }

    #[test]
    fn refuses_other_versions() {
        let text = GOOD.replace("version = 1", "version = 2");
        assert_eq!(Record::parse(&text), Err(RecordError::UnsupportedVersion(2)));
    }

    #[test]
    fn refuses_absurd_parameters() {
        assert_eq!(
            Record::parse(&GOOD.replace("digits = 6", "digits = 10")),
            Err(RecordError::Parameters)
        );
        assert_eq!(
            Record::parse(&GOOD.replace("period = 30", "period = 0")),
            Err(RecordError::Parameters)
        );
    }

    #[test]
    fn errors_never_quote_the_secret() {
        let broken = GOOD.replace("\"JBSWY3DPEHPK3PXP\"", "JBSWY3DPEHPK3PXP");
        let err = Record::parse(&broken)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("JBSW"), "{err}");
        let typed = GOOD.replace("digits = 6", "digits = \"JBSWY3DPEHPK3PXP\"");
        let err = Record::parse(&typed)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("JBSW"), "{err}");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for text in ["", "\u{0}\u{0}", "version = 1", "[[[", &"a".repeat(70_000)] {
            assert!(Record::parse(text).is_err());
        }
    }
}
