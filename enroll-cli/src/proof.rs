//! Proving, before a change, that the person at the terminal has the enrolled phone
//! (or a recovery code): for `--force` re-enrollment and `recovery-codes`.
//!
//! The command runs as the user and cannot read the root-only login state, so a code
//! checked here is not recorded there: this is a guard against changing an enrollment
//! by mistake or from an unattended terminal, not a second lock-out. A wrong answer
//! costs a pause, and three end the command. The step of a right code is returned, so
//! that the record written next carries it (`confirmed_until`): it cannot log in again.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pam_totp_config::CodeParameters;
use pam_totp_core::answer::Answer;
use pam_totp_core::record::Record;
use pam_totp_core::recovery::{self, RecoveryVerdict};
use pam_totp_core::verify::{self, Verdict};
use pam_totp_store_file::state::LoginState;

use crate::error::{CliError, CliResult};
use crate::{audit, terminal};

const ATTEMPTS: u32 = 3;
const PAUSE_AFTER_WRONG: Duration = Duration::from_secs(1);

/// Asks for a current code (or, with `recovery_ok`, a recovery code) of `record`;
/// returns when the step of the code typed ends (0 for a recovery code).
pub fn ask(codes: &CodeParameters<'_>, user: &str, record: &Record, recovery_ok: bool) -> CliResult<u64> {
    let prompt = if recovery_ok && !record.recovery.is_empty() {
        "To change your enrollment, enter a current code from your app (or a recovery code): "
    } else {
        "To change your enrollment, enter a current code from your app: "
    };
    ask_with(codes, user, record, prompt, true, recovery_ok)
}

/// Asks for a recovery code only: for a record whose secret is sealed to the host key,
/// which the user cannot open (so no code from the app can be checked here). `record`
/// carries the real recovery-code hashes and a stand-in secret that is never used.
pub fn ask_recovery_only(codes: &CodeParameters<'_>, user: &str, record: &Record) -> CliResult<u64> {
    if record.recovery.is_empty() {
        return Err(CliError::WrongCode(format!(
            "{user}'s secret is sealed to the host key and there are no recovery codes, so \
             nothing can be checked here; ask your administrator (as root: totp-enroll --user \
             {user} --force)"
        )));
    }
    println!("The secret is sealed to the host key, so only a recovery code can be checked here.");
    let prompt = "To change your enrollment, enter a recovery code: ";
    ask_with(codes, user, record, prompt, false, true)
}

fn ask_with(
    codes: &CodeParameters<'_>,
    user: &str,
    record: &Record,
    prompt: &str,
    code_ok: bool,
    recovery_ok: bool,
) -> CliResult<u64> {
    for attempt in 1..=ATTEMPTS {
        let reply = terminal::ask(prompt)
            .map_err(|e| CliError::failed("cannot read the code", e))?
            .ok_or_else(|| CliError::WrongCode("no code entered; nothing was changed".to_owned()))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let right = match Answer::parse(&reply, record) {
            Answer::Code(code) if code_ok => {
                match verify::check(record, &code, now, codes.window, record.confirmed_until) {
                    Verdict::Accepted { step } => Some(verify::step_end(step, record.period)),
                    Verdict::Replayed | Verdict::Invalid => None,
                }
            }
            Answer::Recovery(code) if recovery_ok => matches!(
                recovery::check(record, &code, &LoginState::default()),
                RecoveryVerdict::Accepted { .. }
            )
            .then_some(0),
            Answer::Scratch(code) if recovery_ok => matches!(
                pam_totp_core::scratch::check(record, &code, &LoginState::default()),
                RecoveryVerdict::Accepted { .. }
            )
            .then_some(0),
            Answer::Code(_) | Answer::Recovery(_) | Answer::Scratch(_) | Answer::Malformed => None,
        };
        if let Some(used_until) = right {
            return Ok(used_until);
        }
        std::thread::sleep(PAUSE_AFTER_WRONG);
        if attempt < ATTEMPTS {
            eprintln!("That code does not match your current enrollment; try again.");
        }
    }
    audit::record(&format!(
        "user={user} proof of the current enrollment failed {ATTEMPTS} times; nothing was changed"
    ));
    Err(CliError::WrongCode(
        "the code did not match your current enrollment; nothing was changed. \
         If your phone and recovery codes are both lost, ask your administrator \
         (as root: totp-enroll remove --user NAME)."
            .to_owned(),
    ))
}
