//! TOTP secrets: parsing what people type or files hold, and keeping the bytes wiped.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// 80 bits: what google-authenticator-libpam has generated for years. Shorter is refused.
pub const MIN_SECRET_BYTES: usize = 10;
/// Far above any real secret; a bound so a hostile file cannot make us allocate much.
pub const MAX_SECRET_BYTES: usize = 128;

/// Bytes of a new secret: 160 bits.
pub const NEW_SECRET_BYTES: usize = 20;

const ALPHABET: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

/// Raw secret bytes, wiped from memory on drop and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Zeroizing<Vec<u8>>);

/// Why a secret was refused. Never carries the secret itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// Characters outside the base32 alphabet, or an impossible length.
    NotBase32,
    /// Fewer than [`MIN_SECRET_BYTES`] bytes.
    TooShort,
    /// More than [`MAX_SECRET_BYTES`] bytes.
    TooLong,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NotBase32 => f.write_str("the secret is not valid base32 (A-Z, 2-7)"),
            SecretError::TooShort => {
                write!(f, "the secret is shorter than {} bits", MIN_SECRET_BYTES * 8)
            }
            SecretError::TooLong => {
                write!(f, "the secret is longer than {} bits", MAX_SECRET_BYTES * 8)
            }
        }
    }
}

impl std::error::Error for SecretError {}

impl SecretKey {
    /// Wraps bytes from a CSPRNG or an import.
    ///
    /// # Errors
    /// Too short or too long.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SecretKey, SecretError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretError::TooShort);
        }
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError::TooLong);
        }
        Ok(SecretKey(bytes))
    }

    /// A new 160-bit secret (RFC 4226's recommendation) from the OS's CSPRNG.
    ///
    /// # Errors
    /// The operating system gave no random bytes.
    pub fn generate() -> Result<SecretKey, getrandom::Error> {
        let mut bytes = Zeroizing::new(vec![0u8; NEW_SECRET_BYTES]);
        getrandom::fill(&mut bytes)?;
        Ok(SecretKey(bytes))
    }

    /// Parses base32 as people type it: surrounding blanks, lower case, spaces between
    /// groups and `=` padding are all accepted.
    ///
    /// # Errors
    /// Not base32, or a length outside the accepted bounds.
    pub fn from_base32(text: &str) -> Result<SecretKey, SecretError> {
        let mut normalised: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '=')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        if normalised.len() > MAX_SECRET_BYTES * 2 {
            normalised.zeroize();
            return Err(SecretError::TooLong);
        }
        let decoded = base32::decode(ALPHABET, &normalised).ok_or(SecretError::NotBase32)?;
        // A length base32 cannot produce (1, 3 or 6 characters over a multiple of 8) is
        // decoded by dropping bits; re-encoding shows it, and such a secret is a typo.
        let reencoded = Zeroizing::new(base32::encode(ALPHABET, &decoded));
        let matches = *reencoded == *normalised;
        let key = SecretKey::from_bytes(decoded)?;
        if matches {
            Ok(key)
        } else {
            Err(SecretError::NotBase32)
        }
    }

    /// The canonical form: upper-case base32 without padding.
    #[must_use]
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32::encode(ALPHABET, &self.0))
    }

    /// The raw bytes, for the HMAC.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bits, for status output.
    #[must_use]
    pub fn bits(&self) -> usize {
        self.0.len() * 8
    }
}

/// The bytes are a `Zeroizing` buffer, so dropping a key wipes them.
impl zeroize::ZeroizeOnDrop for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({} bits, redacted)", self.bits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_secrets_are_normalised() {
        let canonical = SecretKey::from_base32("JBSWY3DPEHPK3PXP").ok();
        assert!(canonical.is_some());
        assert_eq!(SecretKey::from_base32("  jbsw y3dp ehpk 3pxp\n").ok(), canonical);
        assert_eq!(SecretKey::from_base32("JBSWY3DPEHPK3PXP====").ok(), canonical);
    }

    #[test]
    fn eighty_bit_secrets_are_accepted() {
        let key = SecretKey::from_base32("JBSWY3DPEHPK3PXP");
        assert_eq!(key.map(|k| k.bits()), Ok(80));
    }

    #[test]
    fn bad_secrets_are_refused() {
        assert_eq!(SecretKey::from_base32("JBSWY3DP"), Err(SecretError::TooShort));
        assert_eq!(
            SecretKey::from_base32("JBSWY3DPEHPK3PX1"),
            Err(SecretError::NotBase32)
        );
        assert_eq!(
            SecretKey::from_base32("JBSWY3DPEHPK3PXPA"),
            Err(SecretError::NotBase32)
        );
        assert_eq!(
            SecretKey::from_base32(&"A".repeat(5000)),
            Err(SecretError::TooLong)
        );
        assert_eq!(SecretKey::from_base32(""), Err(SecretError::TooShort));
    }

    #[test]
    fn secrets_are_wiped_on_drop() {
        // A compile-time guard: replacing the `Zeroizing` buffer breaks this test.
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<SecretKey>();
        wiped_on_drop::<Zeroizing<Vec<u8>>>();
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let key = SecretKey::from_base32("JBSWY3DPEHPK3PXP").ok();
        let shown = format!("{key:?}");
        assert!(!shown.contains("JBSW"), "{shown}");
        assert!(shown.contains("80 bits"));
    }

    #[test]
    fn round_trips_through_base32() {
        let key = SecretKey::from_bytes((0u8..20).collect()).ok();
        let text = key
            .as_ref()
            .map(|k| k.to_base32().to_string())
            .unwrap_or_default();
        assert_eq!(SecretKey::from_base32(&text).ok(), key);
    }
}
