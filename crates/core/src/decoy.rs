//! Users without a record cost what enrolled users do, so that one try does not tell
//! who is enrolled.
//!
//! An enrolled user's wrong answer costs the HMACs of every step within
//! [`crate::clock_hint::REACH_SECONDS`] of now (the window's, then the clock hint's; or one argon2 verification
//! for an answer shaped like a recovery code) and one durable write of the login state.
//! A login of an unknown or unenrolled user does the same work: the answer is checked,
//! with the same functions, against a throwaway record of the usual shape (a 160-bit key,
//! ten recovery-code hashes of the current parameters), and the one decoy file of the
//! state directory is written ([`DecoyWrite`], the store's part). The verdict is thrown away: such
//! a login is refused whatever was typed.

use std::hint::black_box;

use pam_totp_config::{CodeParameters, Config};

use crate::answer::{self, Answer};
use crate::login_state::LoginState;
use crate::ports::{DecoyWrite, StoreFailure};
use crate::record::Record;
use crate::recovery::ISSUED_CODES;
use crate::secret::SecretKey;
use crate::verify;

/// The argon2id hash (current parameters) of a recovery code nobody was given.
const THROWAWAY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$cGFtX3RvdHAtZGVjb3khIQ$CPLGwOLbj1rBKVYtEf3F7grU3oTAhqdUItZGIsjpfOs";

/// Checks `reply` as an enrolled user's answer is checked, then spends the store's
/// write (`write`, opened before the prompt as a state file is).
///
/// # Errors
/// The durable write failed.
pub fn spend(
    write: Box<dyn DecoyWrite>,
    config: &Config,
    reply: &[u8],
    now: u64,
) -> Result<(), StoreFailure> {
    let codes = config.codes();
    if let Some(record) = throwaway(codes) {
        let answer = Answer::parse(reply, &record);
        match &answer {
            Answer::Code(code) => {
                // The throwaway key never matches: an enrolled user's wrong code, whose
                // verdict also searches near the window (`clock_hint`).
                black_box(verify::check(&record, code, now, codes.window, 0));
                black_box(verify::clock_offset(
                    &record,
                    code,
                    now,
                    codes.window,
                    0,
                    crate::clock_hint::REACH_SECONDS,
                ));
            }
            Answer::Recovery(_) | Answer::Scratch(_) | Answer::Malformed => {
                black_box(answer::check_answer(&record, &answer, &LoginState::default()));
            }
        }
    }
    write.write()
}

/// A record like an enrolled user's, with a key and recovery codes nobody has.
fn throwaway(codes: CodeParameters<'_>) -> Option<Record> {
    let key = SecretKey::from_bytes(vec![0x5a; 20]).ok()?;
    let record = Record::new(key, codes.algorithm, codes.digits, codes.period, String::new());
    Some(record.with_recovery(0, vec![THROWAWAY_HASH.to_owned(); ISSUED_CODES]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::{RecoveryCode, is_acceptable_hash};

    #[test]
    fn the_throwaway_hash_has_the_parameters_of_new_hashes() {
        assert!(is_acceptable_hash(THROWAWAY_HASH));
        // The parameters of new hashes, so a verification costs what a real one does.
        let real = RecoveryCode::from_random(1, &[7; 11])
            .unwrap()
            .hash(&[1; 16])
            .unwrap();
        let params = |phc: &str| phc.split('$').nth(3).map(str::to_owned);
        assert_eq!(params(THROWAWAY_HASH), params(&real));
    }
}
