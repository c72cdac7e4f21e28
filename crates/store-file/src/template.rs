//! `secret_path` templates: `${USER}`, `${HOME}` and a leading `~`.

use std::fmt;
use std::path::PathBuf;

pub use pam_totp_config::{StoreKind, store_kind};
use pam_totp_os::account::Account;

/// A template that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `${NAME}` other than USER or HOME, or an unclosed `${`.
    UnknownVariable(String),
    /// The expansion is not an absolute path to a file.
    NotAbsolute,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::UnknownVariable(v) => {
                write!(
                    f,
                    "secret_path: unknown variable `{v}` (use ${{USER}}, ${{HOME}} or ~)"
                )
            }
            TemplateError::NotAbsolute => {
                f.write_str("secret_path must expand to an absolute path to a file")
            }
        }
    }
}

impl std::error::Error for TemplateError {}

/// Expands a template for one user.
///
/// # Errors
/// An unknown variable, or a result that is not an absolute file path.
pub fn expand(template: &str, account: &Account) -> Result<PathBuf, TemplateError> {
    let home = account.home.to_string_lossy();
    let mut out = String::new();
    let mut rest = template;
    if let Some(after) = rest.strip_prefix('~') {
        if !(after.is_empty() || after.starts_with('/')) {
            return Err(TemplateError::UnknownVariable(template.to_owned()));
        }
        out.push_str(&home);
        rest = after;
    }
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(TemplateError::UnknownVariable(rest[start..].to_owned()));
        };
        match &after[..end] {
            "USER" => out.push_str(&account.name),
            "HOME" => out.push_str(&home),
            other => return Err(TemplateError::UnknownVariable(other.to_owned())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let path = PathBuf::from(out);
    if !path.is_absolute() || path.file_name().is_none() || out_ends_in_slash(&path) {
        return Err(TemplateError::NotAbsolute);
    }
    Ok(path)
}

fn out_ends_in_slash(path: &std::path::Path) -> bool {
    path.as_os_str().to_string_lossy().ends_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd::{Gid, Uid};

    fn alice() -> Account {
        Account {
            name: "alice".to_owned(),
            uid: Uid::from_raw(1000),
            gid: Gid::from_raw(1000),
            home: PathBuf::from("/home/alice"),
        }
    }

    #[test]
    fn expands_home_and_user() {
        assert_eq!(
            expand("~/.pam_totp", &alice()),
            Ok(PathBuf::from("/home/alice/.pam_totp"))
        );
        assert_eq!(
            expand("${HOME}/.config/${USER}.totp", &alice()),
            Ok(PathBuf::from("/home/alice/.config/alice.totp"))
        );
        assert_eq!(
            expand("/var/lib/pam_totp/${USER}", &alice()),
            Ok(PathBuf::from("/var/lib/pam_totp/alice"))
        );
    }

    #[test]
    fn classifies_stores() {
        assert_eq!(store_kind("~/.pam_totp"), StoreKind::Home);
        assert_eq!(store_kind("${HOME}/x"), StoreKind::Home);
        assert_eq!(store_kind("/var/lib/pam_totp/${USER}"), StoreKind::System);
    }

    #[test]
    fn refuses_unknown_variables_and_relative_paths() {
        assert!(matches!(
            expand("/x/${SHELL}", &alice()),
            Err(TemplateError::UnknownVariable(_))
        ));
        assert!(matches!(
            expand("/x/${USER", &alice()),
            Err(TemplateError::UnknownVariable(_))
        ));
        assert!(matches!(
            expand("~bob/x", &alice()),
            Err(TemplateError::UnknownVariable(_))
        ));
        assert_eq!(
            expand("records/${USER}", &alice()),
            Err(TemplateError::NotAbsolute)
        );
        assert_eq!(expand("/var/lib/", &alice()), Err(TemplateError::NotAbsolute));
    }
}
