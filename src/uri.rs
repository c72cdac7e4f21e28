//! The `otpauth://` Key URI that authenticator apps scan.

#![forbid(unsafe_code)]

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

use crate::record::Record;

/// RFC 3986 unreserved characters stay as they are; everything else is escaped
/// (spaces as `%20`, which every app decodes, unlike `+`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER&algorithm=...&digits=...&period=...`
///
/// The URI holds the secret, so it is wiped when dropped.
#[must_use]
pub fn key_uri(record: &Record, issuer: &str, account: &str) -> Zeroizing<String> {
    let issuer = utf8_percent_encode(issuer, COMPONENT).to_string();
    let account = utf8_percent_encode(account, COMPONENT).to_string();
    Zeroizing::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm={}&digits={}&period={}",
        record.secret.to_base32().as_str(),
        record.algorithm,
        record.digits,
        record.period
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Algorithm;
    use crate::secret::SecretKey;

    fn record() -> Record {
        Record::new(
            SecretKey::from_base32("JBSWY3DPEHPK3PXP").unwrap(),
            Algorithm::Sha1,
            6,
            30,
            String::new(),
        )
    }

    #[test]
    fn builds_the_key_uri_format() {
        assert_eq!(
            key_uri(&record(), "Educloud", "alice@host1").as_str(),
            "otpauth://totp/Educloud:alice%40host1?secret=JBSWY3DPEHPK3PXP&issuer=Educloud&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn escapes_spaces_colons_and_non_ascii() {
        let uri = key_uri(&record(), "UiO Educloud", "bjørn:x");
        assert!(
            uri.starts_with("otpauth://totp/UiO%20Educloud:bj%C3%B8rn%3Ax?"),
            "{}",
            uri.as_str()
        );
    }
}
