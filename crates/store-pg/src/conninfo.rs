//! The `postgres = "..."` connection string: libpq's `key=value` syntax, with the TLS
//! and credential keys taken out and handled here, the rest given to tokio-postgres.
//!
//! Why split it: tokio-postgres's own `sslmode` knows only disable/prefer/require and
//! reads no certificate files, while admins write libpq strings. `password=` is refused:
//! the config file is world-readable, so the password lives in a root-only `passfile`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use tokio_postgres::config::Host;

/// How the server is authenticated and the link encrypted (libpq's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS: only to the local host (loopback or a unix socket).
    Disable,
    /// TLS, server certificate checked against `sslrootcert`, host name not checked.
    /// (libpq's `require` with a root certificate behaves the same; without one it does
    /// not authenticate the server, which we refuse.)
    VerifyCa,
    /// TLS, certificate chain and host name checked (the default).
    VerifyFull,
}

/// The connection settings, split.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Everything tokio-postgres understands itself (host, port, dbname, user, ...).
    pub pg: tokio_postgres::Config,
    pub sslmode: SslMode,
    /// CA certificate(s), PEM: needed by every mode but `disable`.
    pub sslrootcert: Option<PathBuf>,
    /// Client certificate and key, PEM (both or neither).
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    /// A root-only file holding the password (one line).
    pub passfile: Option<PathBuf>,
}

/// Why a connection string is refused. Names keys, never values (a mistyped password
/// could be in one).
#[derive(Debug)]
pub enum ConnInfoError {
    /// Not `key=value` pairs (an unterminated quote, a key without `=`).
    Syntax(&'static str),
    /// `password=` in a world-readable file.
    PasswordInline,
    /// A key given twice.
    Repeated(String),
    /// A value we cannot use for a key we handle.
    BadValue { key: &'static str, why: &'static str },
    /// `sslmode=disable` towards a host that is not this one.
    PlaintextRemote,
    /// tokio-postgres refused the rest (an unknown key, a bad port, ...).
    Rejected(tokio_postgres::Error),
}

impl fmt::Display for ConnInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnInfoError::Syntax(why) => write!(f, "postgres connection string: {why}"),
            ConnInfoError::PasswordInline => f.write_str(
                "postgres connection string must not hold password=; put the password in a \
                 root-only file named by passfile=, or use a client certificate",
            ),
            ConnInfoError::Repeated(key) => {
                write!(f, "postgres connection string: `{key}` is given twice")
            }
            ConnInfoError::BadValue { key, why } => {
                write!(f, "postgres connection string: bad value for `{key}`: {why}")
            }
            ConnInfoError::PlaintextRemote => f.write_str(
                "postgres connection string: sslmode=disable is allowed only for 127.0.0.1, \
                 ::1, localhost or a unix socket directory",
            ),
            ConnInfoError::Rejected(why) => write!(f, "postgres connection string: {why}"),
        }
    }
}

impl std::error::Error for ConnInfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnInfoError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

/// Splits `key=value` pairs: values may be single-quoted, `\` escapes the next character.
fn pairs(text: &str) -> Result<Vec<(String, String)>, ConnInfoError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') || key.is_empty() {
            return Err(ConnInfoError::Syntax("expected key=value pairs"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(ConnInfoError::Syntax("unterminated quoted value")),
                    Some('\'') => break,
                    Some('\\') => value.push(chars.next().ok_or(ConnInfoError::Syntax("dangling \\"))?),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(chars.next().ok_or(ConnInfoError::Syntax("dangling \\"))?);
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

fn absolute(key: &'static str, value: &str) -> Result<PathBuf, ConnInfoError> {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(ConnInfoError::BadValue {
            key,
            why: "must be an absolute path",
        })
    }
}

/// Whether every host named is this machine, so that a plaintext link never leaves it.
fn all_local(pg: &tokio_postgres::Config) -> bool {
    let host_ok = pg.get_hosts().iter().all(|host| match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    });
    host_ok && pg.get_hostaddrs().iter().all(IpAddr::is_loopback)
}

impl FromStr for ConnInfo {
    type Err = ConnInfoError;

    fn from_str(text: &str) -> Result<ConnInfo, ConnInfoError> {
        if text.contains("://") {
            return Err(ConnInfoError::Syntax(
                "use key=value pairs, not a postgresql:// URL",
            ));
        }
        let mut rest = Vec::new();
        let mut sslmode = None;
        let (mut sslrootcert, mut sslcert, mut sslkey, mut passfile) = (None, None, None, None);
        let mut seen = Vec::new();
        for (key, value) in pairs(text)? {
            if seen.contains(&key) {
                return Err(ConnInfoError::Repeated(key));
            }
            seen.push(key.clone());
            match key.as_str() {
                "password" => return Err(ConnInfoError::PasswordInline),
                "sslmode" => {
                    sslmode = Some(match value.as_str() {
                        "disable" => SslMode::Disable,
                        "require" | "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        _ => {
                            return Err(ConnInfoError::BadValue {
                                key: "sslmode",
                                why: "must be disable, require, verify-ca or verify-full",
                            });
                        }
                    });
                }
                "sslrootcert" => sslrootcert = Some(absolute("sslrootcert", &value)?),
                "sslcert" => sslcert = Some(absolute("sslcert", &value)?),
                "sslkey" => sslkey = Some(absolute("sslkey", &value)?),
                "passfile" => passfile = Some(absolute("passfile", &value)?),
                // Set by us from postgres_timeout_ms; two sources would be confusing.
                "connect_timeout" => {
                    return Err(ConnInfoError::BadValue {
                        key: "connect_timeout",
                        why: "set postgres_timeout_ms in the config instead",
                    });
                }
                _ => rest.push(format!("{key}={}", quote(&value))),
            }
        }
        let pg = tokio_postgres::Config::from_str(&rest.join(" ")).map_err(ConnInfoError::Rejected)?;
        let sslmode = sslmode.unwrap_or(SslMode::VerifyFull);
        if sslmode == SslMode::Disable && !all_local(&pg) {
            return Err(ConnInfoError::PlaintextRemote);
        }
        if sslmode != SslMode::Disable && sslrootcert.is_none() {
            return Err(ConnInfoError::BadValue {
                key: "sslrootcert",
                why: "TLS needs the CA certificate that signed the server's (a PEM file)",
            });
        }
        if sslcert.is_some() != sslkey.is_some() {
            return Err(ConnInfoError::BadValue {
                key: "sslcert",
                why: "sslcert and sslkey go together",
            });
        }
        if pg.get_user().is_none() {
            return Err(ConnInfoError::BadValue {
                key: "user",
                why: "name the database role (user=...)",
            });
        }
        Ok(ConnInfo {
            pg,
            sslmode,
            sslrootcert,
            sslcert,
            sslkey,
            passfile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConnInfo, ConnInfoError> {
        text.parse()
    }

    #[test]
    fn tls_and_credential_keys_are_taken_out_and_the_rest_passed_on() {
        let info = parse(
            "host=db.example.org port=5433 dbname=otp user=host_a sslmode=verify-full \
             sslrootcert=/etc/ssl/db-ca.pem passfile=/etc/security/pam_totp.pgpass",
        )
        .unwrap();
        assert_eq!(info.sslmode, SslMode::VerifyFull);
        assert_eq!(info.sslrootcert, Some(PathBuf::from("/etc/ssl/db-ca.pem")));
        assert_eq!(
            info.passfile,
            Some(PathBuf::from("/etc/security/pam_totp.pgpass"))
        );
        assert_eq!(info.pg.get_dbname(), Some("otp"));
        assert_eq!(info.pg.get_ports(), &[5433]);
        assert_eq!(info.pg.get_hosts(), &[Host::Tcp("db.example.org".to_owned())]);
    }

    #[test]
    fn verify_full_is_the_default_and_needs_a_root_certificate() {
        let err = parse("host=db.example.org user=a").err();
        assert!(matches!(
            err,
            Some(ConnInfoError::BadValue {
                key: "sslrootcert",
                ..
            })
        ));
        let info = parse("host=db.example.org user=a sslrootcert=/ca.pem").ok();
        assert_eq!(info.map(|i| i.sslmode), Some(SslMode::VerifyFull));
    }

    #[test]
    fn an_inline_password_is_refused_without_echoing_it() {
        let err = parse("host=127.0.0.1 user=a password='hunter2' sslmode=disable").err();
        assert!(matches!(err, Some(ConnInfoError::PasswordInline)), "{err:?}");
        assert!(!err.map(|e| e.to_string()).unwrap_or_default().contains("hunter2"));
    }

    #[test]
    fn plaintext_is_only_for_this_machine() {
        for local in [
            "host=127.0.0.1",
            "host=::1",
            "host=localhost",
            "host=/run/postgresql",
        ] {
            assert!(
                parse(&format!("{local} user=a sslmode=disable")).is_ok(),
                "{local}"
            );
        }
        for remote in [
            "host=10.0.0.5",
            "host=db.example.org",
            "host=localhost hostaddr=10.0.0.5",
        ] {
            let err = parse(&format!("{remote} user=a sslmode=disable")).err();
            assert!(
                matches!(err, Some(ConnInfoError::PlaintextRemote)),
                "{remote}: {err:?}"
            );
        }
    }

    #[test]
    fn a_local_poolers_socket_directory_is_a_unix_host_without_tls() {
        // docs/guide.md's PgBouncer line: the socket /run/postgresql/.s.PGSQL.6432.
        let info = parse("host=/run/postgresql port=6432 dbname=totp user=root sslmode=disable").unwrap();
        assert_eq!(
            info.pg.get_hosts(),
            &[Host::Unix(PathBuf::from("/run/postgresql"))]
        );
        assert_eq!(info.pg.get_ports(), &[6432]);
        assert_eq!(info.sslmode, SslMode::Disable);
        // Without its leading slash the directory is a host name: no plaintext to it.
        let err = parse("host=run/postgresql port=6432 user=root sslmode=disable").err();
        assert!(matches!(err, Some(ConnInfoError::PlaintextRemote)), "{err:?}");
    }

    #[test]
    fn quoted_values_and_escapes_survive_the_split() {
        let info =
            parse(r"host=127.0.0.1 user=a sslmode=disable dbname='my \'otp\' db' application_name = x\ y")
                .unwrap();
        assert_eq!(info.pg.get_dbname(), Some("my 'otp' db"));
        assert_eq!(info.pg.get_application_name(), Some("x y"));
    }

    #[test]
    fn malformed_strings_are_errors() {
        for bad in [
            "host",
            "host=127.0.0.1 dbname='open",
            "=x",
            "postgresql://a@b/c",
            "host=127.0.0.1 user=a sslmode=prefer",
            "host=127.0.0.1 user=a sslmode=disable sslmode=disable",
            "host=127.0.0.1 user=a sslmode=disable passfile=relative",
            "host=127.0.0.1 user=a sslmode=disable connect_timeout=9",
            "host=127.0.0.1 user=a sslmode=disable no_such_key=1",
            "host=127.0.0.1 sslmode=disable",
            "host=x user=a sslrootcert=/ca sslcert=/c",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
