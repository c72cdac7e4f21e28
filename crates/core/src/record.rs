//! The enrollment record: what `totp-enroll` writes and the module only reads.
//!
//! A small versioned TOML file. Parsing never echoes file content in an error, because
//! the content is a secret: errors name the field or the line, nothing more.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::secret::{SecretError, SecretKey};
use pam_totp_config::algorithm::Algorithm;

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
    /// Unix time at which the step of the code that confirmed this enrollment (or
    /// proved the one it replaced) ends; the module refuses codes of steps starting
    /// before it, like the login state's `used_until`. Written by a user's
    /// `totp-enroll`, which cannot write the root-only login state. 0: none.
    pub confirmed_until: u64,
}

/// The on-disk shape; kept private so the secret only leaves as a [`SecretKey`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    version: u32,
    // Exactly one of `secret` (base32) and `sealed_secret` (sealed to the host key,
    // see `pam_totp_store_file::seal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_secret: Option<String>,
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
    #[serde(default, skip_serializing_if = "is_zero")]
    confirmed_until: u64,
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

/// A record as stored: ready to use, or with its secret sealed to a host key.
#[derive(Debug)]
pub enum StoredRecord {
    Plain(Record),
    Sealed(SealedRecord),
}

/// A parsed and checked record whose secret is still sealed (`pam_totp_store_file::seal` opens it).
pub struct SealedRecord(RecordFile);

impl fmt::Debug for SealedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedRecord")
    }
}

impl SealedRecord {
    /// The `sealed_secret` value (a box, not the secret).
    #[must_use]
    pub fn sealed_secret(&self) -> &str {
        self.0.sealed_secret.as_deref().unwrap_or_default()
    }

    /// What the record says besides the secret (for `totp-enroll status`, which may not
    /// be able to open the box).
    #[must_use]
    pub fn info(&self) -> RecordInfo {
        RecordInfo {
            algorithm: self.0.algorithm,
            digits: self.0.digits,
            period: self.0.period,
            created: self.0.created.clone(),
            recovery_codes: self.0.recovery.len(),
        }
    }

    /// The record, with the secret the box held (the rest was checked when parsed).
    #[must_use]
    pub fn open(&self, secret: SecretKey) -> Record {
        Record::from_file(&self.0, secret)
    }
}

/// A record without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
    pub created: String,
    /// How many recovery codes the record's set has.
    pub recovery_codes: usize,
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
    /// Neither or both of `secret` and `sealed_secret`.
    SecretFields,
    /// The secret is sealed to a host key, and this reader cannot open it.
    Sealed,
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
            RecordError::SecretFields => {
                f.write_str("record must have exactly one of `secret` and `sealed_secret`")
            }
            RecordError::Sealed => f.write_str("record secret is sealed to the host key"),
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordError::Secret(e) => Some(e),
            _ => None,
        }
    }
}

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
            confirmed_until: 0,
        }
    }

    /// The same record, with codes of steps starting before `until` (a Unix time) used
    /// up; never moved back.
    #[must_use]
    pub fn with_confirmed_until(self, until: u64) -> Self {
        Record {
            confirmed_until: self.confirmed_until.max(until),
            ..self
        }
    }

    /// What the record says besides the secret.
    #[must_use]
    pub fn info(&self) -> RecordInfo {
        RecordInfo {
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
            created: self.created.clone(),
            recovery_codes: self.recovery.len(),
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

    /// Parses a record file's text. A sealed record is [`RecordError::Sealed`]: use
    /// [`Record::parse_stored`] where sealed records can be opened.
    ///
    /// # Errors
    /// Malformed TOML, unknown version, unusable secret or parameters, or sealed.
    pub fn parse(text: &str) -> Result<Record, RecordError> {
        match Record::parse_stored(text)? {
            StoredRecord::Plain(record) => Ok(record),
            StoredRecord::Sealed(_) => Err(RecordError::Sealed),
        }
    }

    /// Parses a record file's text, plain or sealed.
    ///
    /// # Errors
    /// Malformed TOML, unknown version, unusable secret or parameters.
    pub fn parse_stored(text: &str) -> Result<StoredRecord, RecordError> {
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
        if file.recovery.len() > crate::code_hash::MAX_CODES
            || !file
                .recovery
                .iter()
                .all(|h| crate::code_hash::is_acceptable_hash(h))
            || (file.scratch_codes && file.recovery.len() > crate::code_hash::MAX_SCRATCH_CODES)
        {
            return Err(RecordError::Recovery);
        }
        match (&file.secret, &file.sealed_secret) {
            (Some(secret), None) => {
                let secret = SecretKey::from_base32(secret).map_err(RecordError::Secret)?;
                Ok(StoredRecord::Plain(Record::from_file(&file, secret)))
            }
            (None, Some(_)) => Ok(StoredRecord::Sealed(SealedRecord(file))),
            _ => Err(RecordError::SecretFields),
        }
    }

    /// Everything but the secret comes from the checked file.
    fn from_file(file: &RecordFile, secret: SecretKey) -> Record {
        Record {
            secret,
            algorithm: file.algorithm,
            digits: file.digits,
            period: file.period,
            created: file.created.clone(),
            recovery_epoch: file.recovery_epoch,
            recovery: file.recovery.clone(),
            scratch_codes: file.scratch_codes,
            confirmed_until: file.confirmed_until,
        }
    }

    fn to_file(&self, secret: Option<String>, sealed_secret: Option<String>) -> RecordFile {
        RecordFile {
            version: RECORD_VERSION,
            secret,
            sealed_secret,
            algorithm: self.algorithm,
            digits: self.digits,
            period: self.period,
            created: self.created.clone(),
            recovery_epoch: self.recovery_epoch,
            recovery: self.recovery.clone(),
            scratch_codes: self.scratch_codes,
            confirmed_until: self.confirmed_until,
        }
    }

    /// The file's text with the secret sealed: `sealed_secret` is what
    /// `pam_totp_store_file::seal::PublicHostKey::seal` made of this record's secret.
    #[must_use]
    pub fn to_sealed_toml(&self, sealed_secret: &str) -> Zeroizing<String> {
        let file = self.to_file(None, Some(sealed_secret.to_owned()));
        let header = "# pam_totp enrollment record, written by totp-enroll. The secret is sealed \
                      to the host key.\n";
        Zeroizing::new(format!("{header}{}", toml::to_string(&file).unwrap_or_default()))
    }

    /// The file's text. Holds the secret, so it is wiped when dropped.
    #[must_use]
    pub fn to_toml(&self) -> Zeroizing<String> {
        let file = self.to_file(Some(self.secret.to_base32().to_string()), None);
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
    fn a_sealed_record_keeps_its_box_and_needs_exactly_one_secret() {
        let plain = Record::parse(GOOD).unwrap();
        let sealed = plain.to_sealed_toml("x25519-sealedbox:0011223344556677:AAAA");
        assert!(!sealed.contains("JBSW"), "{}", sealed.as_str());
        assert_eq!(Record::parse(&sealed), Err(RecordError::Sealed));
        let Ok(StoredRecord::Sealed(stored)) = Record::parse_stored(&sealed) else {
            panic!("not read as sealed");
        };
        assert_eq!(stored.sealed_secret(), "x25519-sealedbox:0011223344556677:AAAA");
        assert_eq!(stored.open(plain.secret.clone()), plain);
        let both = format!("{GOOD}sealed_secret = \"x\"\n");
        assert_eq!(Record::parse(&both).err(), Some(RecordError::SecretFields));
        let neither = GOOD.replace("secret = \"JBSWY3DPEHPK3PXP\"\n", "");
        assert_eq!(Record::parse(&neither).err(), Some(RecordError::SecretFields));
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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // 256 cases in `cargo test`; `make fuzz` (run by `make test`) sets PROPTEST_CASES.
            #![proptest_config(ProptestConfig::default())]

            #[test]
            fn any_text_is_a_record_or_an_error_never_a_panic(text in "\\PC{0,300}") {
                let _ = Record::parse(&text);
            }

            #[test]
            fn any_bytes_spliced_into_a_good_record_never_panic(
                at in 0..GOOD.len(),
                cut in 0usize..20,
                junk in proptest::collection::vec(any::<u8>(), 0..40),
            ) {
                let mut bytes = GOOD.as_bytes().to_vec();
                let end = (at + cut).min(bytes.len());
                bytes.splice(at..end, junk);
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    let _ = Record::parse(text);
                }
            }

            #[test]
            fn every_valid_record_round_trips(
                secret in proptest::collection::vec(any::<u8>(), 10..=128),
                algorithm in prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
                digits in 6u8..=8,
                period in 1u64..=300,
            ) {
                let record = Record::new(
                    SecretKey::from_bytes(secret).map_err(|e| TestCaseError::fail(e.to_string()))?,
                    algorithm,
                    digits,
                    period,
                    "2026-11-25T10:00:00Z".to_owned(),
                );
                prop_assert_eq!(Record::parse(&record.to_toml()), Ok(record));
            }

            #[test]
            fn errors_never_quote_a_secret_wherever_it_is_put(
                secret in "[A-Z2-7]{16,40}",
                line in 0usize..7,
                quoted in any::<bool>(),
            ) {
                let value = if quoted { format!("\"{secret}\"") } else { secret.clone() };
                let mut lines: Vec<String> = GOOD.lines().map(str::to_owned).collect();
                let at = line % lines.len();
                let key = lines[at].split(" = ").next().unwrap_or("x").to_owned();
                lines[at] = format!("{key} = {value}");
                if let Err(e) = Record::parse(&lines.join("\n")) {
                    prop_assert!(!e.to_string().contains(&secret[..10]), "{}", e);
                }
            }
        }
    }
}
