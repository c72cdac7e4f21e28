//! The HMAC algorithm of a TOTP secret, as written in configs and records.

use std::fmt;

use serde::{Deserialize, Serialize};

/// RFC 6238 allows three; Microsoft Authenticator and most phone apps honour only SHA1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

impl Algorithm {
    /// The name used in records, configs and `otpauth://` URIs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Holder {
        algorithm: Algorithm,
    }

    #[test]
    fn the_three_names_round_trip_and_match_display() {
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            let text = toml::to_string(&Holder { algorithm }).unwrap();
            assert_eq!(text.trim(), format!("algorithm = \"{algorithm}\""));
            assert_eq!(toml::from_str::<Holder>(&text).unwrap(), Holder { algorithm });
        }
    }

    #[test]
    fn other_spellings_and_algorithms_are_refused() {
        for name in ["sha1", "Sha256", "SHA-1", "MD5", "SHA384", "", " SHA1"] {
            let text = format!("algorithm = \"{name}\"");
            assert!(toml::from_str::<Holder>(&text).is_err(), "{name:?}");
        }
    }
}
