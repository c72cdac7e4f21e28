//! `forward_pass`: one prompt for the password immediately followed by the code, for
//! clients that can show only one prompt (some file-transfer clients, sshd's own
//! password method). The last `digits` characters are the code; the rest is handed on
//! to the next module as `PAM_AUTHTOK`, so a later `pam_unix.so use_first_pass` checks
//! the password without asking again.
//!
//! The password is handed on whatever the code turns out to be, and for unenrolled
//! users too: the next module then answers as usual, and the user sees the same single
//! prompt whichever part was wrong.

use zeroize::Zeroizing;

use crate::ports::{Conversation, ConversationError};
use pam_totp_config::{Config, PromptSettings};

/// The prompt with `forward_pass`, unless the admin set `prompt`.
pub const PROMPT: &str = "Password & verification code: ";

/// The prompt to show: [`PROMPT`] with `forward_pass` and the default `prompt`,
/// else the configured one.
#[must_use]
pub fn prompt(settings: PromptSettings<'_>) -> &str {
    if settings.forward_pass && settings.prompt == Config::default().prompt {
        PROMPT
    } else {
        settings.prompt
    }
}

/// Splits `reply` into the password and the code (its last `digits` bytes). A reply
/// shorter than a code is all code (and will not verify), with an empty password.
#[must_use]
pub fn split(reply: &[u8], digits: u8) -> (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>) {
    let at = reply.len().saturating_sub(usize::from(digits));
    (
        Zeroizing::new(reply[..at].to_vec()),
        Zeroizing::new(reply[at..].to_vec()),
    )
}

/// Hands the password part of `reply` on as `PAM_AUTHTOK` and returns the code part.
///
/// # Errors
/// PAM refused to store the password.
pub fn hand_on(
    conv: &mut dyn Conversation,
    reply: &[u8],
    digits: u8,
) -> Result<Zeroizing<Vec<u8>>, ConversationError> {
    let (password, code) = split(reply, digits);
    conv.set_authtok(&password)?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        authtok: Option<Vec<u8>>,
    }

    impl Conversation for Recorder {
        fn ask_hidden(&mut self, _prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
            Err(ConversationError)
        }
        fn show_error(&mut self, _text: &str) {}
        fn set_authtok(&mut self, password: &[u8]) -> Result<(), ConversationError> {
            self.authtok = Some(password.to_vec());
            Ok(())
        }
    }

    #[test]
    fn the_last_digits_are_the_code_and_the_rest_the_password() {
        let (password, code) = split(b"hunter2 with spaces123456", 6);
        assert_eq!(password.as_slice(), b"hunter2 with spaces");
        assert_eq!(code.as_slice(), b"123456");
        let (password, code) = split(b"pw12345678", 8);
        assert_eq!(
            (password.as_slice(), code.as_slice()),
            (&b"pw"[..], &b"12345678"[..])
        );
    }

    #[test]
    fn a_reply_shorter_than_a_code_has_no_password() {
        let (password, code) = split(b"1234", 6);
        assert!(password.is_empty());
        assert_eq!(code.as_slice(), b"1234");
        let (password, code) = split(b"", 6);
        assert!(password.is_empty() && code.is_empty());
    }

    #[test]
    fn the_password_is_handed_on_and_the_code_returned() {
        let mut conv = Recorder::default();
        let code = hand_on(&mut conv, b"secret-pw654321", 6);
        assert_eq!(code.ok().as_deref().map(Vec::as_slice), Some(&b"654321"[..]));
        assert_eq!(conv.authtok.as_deref(), Some(&b"secret-pw"[..]));
    }

    #[test]
    fn a_conversation_that_cannot_hand_on_fails() {
        struct Plain;
        impl Conversation for Plain {
            fn ask_hidden(&mut self, _: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
                Ok(None)
            }
            fn show_error(&mut self, _: &str) {}
        }
        assert!(hand_on(&mut Plain, b"pw123456", 6).is_err());
    }

    #[test]
    fn the_one_prompt_is_used_only_with_forward_pass_and_the_default_prompt() {
        let plain = Config::default();
        assert_eq!(prompt(plain.prompt_settings()), "Verification code: ");
        let forward = Config {
            forward_pass: true,
            ..Config::default()
        };
        assert_eq!(prompt(forward.prompt_settings()), PROMPT);
        let custom = Config {
            forward_pass: true,
            prompt: "Passwort und Code: ".to_owned(),
            ..Config::default()
        };
        assert_eq!(prompt(custom.prompt_settings()), "Passwort und Code: ");
    }
}
