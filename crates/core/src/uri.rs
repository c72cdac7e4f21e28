//! The `otpauth://` Key URI that authenticator apps scan.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

use crate::record::Record;
use pam_totp_config::CodeParameters;

/// RFC 3986 unreserved characters stay as they are; everything else is escaped
/// (spaces as `%20`, which every app decodes, unlike `+`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER`, plus `algorithm`,
/// `digits` and `period` only where they differ from SHA1, 6 and 30, the defaults of
/// every app: a shorter URI is a smaller QR code, which fits a 24-line terminal.
///
/// The URI holds the secret, so it is wiped when dropped.
#[must_use]
pub fn key_uri(record: &Record, issuer: &str, account: &str) -> Zeroizing<String> {
    let issuer = utf8_percent_encode(issuer, COMPONENT).to_string();
    let account = utf8_percent_encode(account, COMPONENT).to_string();
    let differing = |name: &str, value: String, default: &str| {
        if value == default {
            String::new()
        } else {
            format!("&{name}={value}")
        }
    };
    Zeroizing::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}{}{}{}",
        record.secret.to_base32().as_str(),
        differing("algorithm", record.algorithm.to_string(), "SHA1"),
        differing("digits", record.digits.to_string(), "6"),
        differing("period", record.period.to_string(), "30"),
    ))
}

/// The issuer (the config's, else `host`, this host's name) and account (`user@host`)
/// the app shows. The Key URI Format ends the issuer at `:`, so a host name's colons
/// become dashes; the config's issuer cannot hold one (`Config` refuses it).
#[must_use]
pub fn labels(codes: &CodeParameters<'_>, user: &str, host: &str) -> (String, String) {
    let issuer = if codes.issuer.is_empty() {
        host.replace(':', "-")
    } else {
        codes.issuer.to_owned()
    };
    (issuer, format!("{user}@{host}").replace(':', "-"))
}

/// A secret in groups of four (`JBSW Y3DP ...`): easier to type by hand. Wiped on drop.
#[must_use]
pub fn grouped(text: &str) -> Zeroizing<String> {
    Zeroizing::new(
        text.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;
    use pam_totp_config::Config;
    use pam_totp_config::algorithm::Algorithm;

    #[test]
    fn secrets_are_shown_in_groups_of_four() {
        assert_eq!(grouped("JBSWY3DPEHPK3PXP").as_str(), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(grouped("ABCDEF").as_str(), "ABCD EF");
    }

    #[test]
    fn labels_never_hold_a_colon() {
        let (issuer, account) = labels(&Config::default().codes(), "alice", "fe80::1");
        assert_eq!((issuer.as_str(), account.as_str()), ("fe80--1", "alice@fe80--1"));
        let named = Config {
            issuer: "Educloud".to_owned(),
            ..Config::default()
        };
        assert_eq!(labels(&named.codes(), "bob", "host1").0, "Educloud");
    }

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
            "otpauth://totp/Educloud:alice%40host1?secret=JBSWY3DPEHPK3PXP&issuer=Educloud"
        );
    }

    #[test]
    fn parameters_other_than_every_apps_defaults_are_kept() {
        let mut other = record();
        other.algorithm = Algorithm::Sha256;
        other.digits = 8;
        other.period = 60;
        assert_eq!(
            key_uri(&other, "E", "a").as_str(),
            "otpauth://totp/E:a?secret=JBSWY3DPEHPK3PXP&issuer=E&algorithm=SHA256&digits=8&period=60"
        );
        other.algorithm = Algorithm::Sha1;
        other.period = 30;
        assert!(key_uri(&other, "E", "a").ends_with("&issuer=E&digits=8"));
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
