//! What the user typed at the prompt, sorted once: a TOTP code, a recovery code, an
//! imported scratch code, or nothing usable. The flow and the decoy take an [`Answer`];
//! the code kinds' own modules never import it back.

use crate::login_state::LoginState;
use crate::record::Record;
use crate::recovery::{self, RecoveryCode, RecoveryVerdict};
use crate::scratch::{self, ScratchCode};
use crate::verify::TypedCode;

/// What the user typed at the prompt.
#[derive(Debug)]
pub enum Answer {
    /// A TOTP code of the record's length.
    Code(TypedCode),
    /// Something shaped like a recovery code (only the record's own codes are checked).
    Recovery(RecoveryCode),
    /// Eight digits, for a record holding imported google-authenticator scratch codes.
    Scratch(ScratchCode),
    /// Neither.
    Malformed,
}

impl Answer {
    /// Sorts a reply; a recovery code is only considered if the record has any.
    #[must_use]
    pub fn parse(reply: &[u8], record: &Record) -> Answer {
        if let Some(code) = TypedCode::parse(reply, record.digits) {
            return Answer::Code(code);
        }
        if record.recovery.is_empty() {
            return Answer::Malformed;
        }
        if record.scratch_codes
            && let Some(code) = ScratchCode::parse(reply)
        {
            return Answer::Scratch(code);
        }
        RecoveryCode::parse(reply).map_or(Answer::Malformed, Answer::Recovery)
    }
}

/// Checks an answer that is a recovery or a scratch code; anything else is invalid.
#[must_use]
pub fn check_answer(record: &Record, answer: &Answer, state: &LoginState) -> RecoveryVerdict {
    match answer {
        Answer::Recovery(code) => recovery::check(record, code, state),
        Answer::Scratch(code) => scratch::check(record, code, state),
        Answer::Code(_) | Answer::Malformed => RecoveryVerdict::Invalid,
    }
}
