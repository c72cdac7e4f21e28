//! Users without a record cost what enrolled users do, so that one try does not tell
//! who is enrolled.
//!
//! An enrolled user's wrong answer costs the window's HMACs (or one argon2 verification
//! for an answer shaped like a recovery code) and one durable write of the login state.
//! A login of an unknown or unenrolled user does the same work: the answer is checked,
//! with the same functions, against a throwaway record of the usual shape (a 160-bit key,
//! ten recovery-code hashes of the current parameters), and the one decoy file of the
//! state directory ([`crate::state::Decoy`]) is written. The verdict is thrown away: such
//! a login is refused whatever was typed.

#![forbid(unsafe_code)]

use std::hint::black_box;

use crate::config::{Config, Store};
use crate::record::Record;
use crate::recovery::{Answer, ISSUED_CODES};
use crate::scratch;
use crate::secret::SecretKey;
use crate::state::{self, LoginState, StateDir, StateError};
use crate::verify;

/// The argon2id hash (current parameters) of a recovery code nobody was given.
const THROWAWAY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$cGFtX3RvdHAtZGVjb3khIQ$CPLGwOLbj1rBKVYtEf3F7grU3oTAhqdUItZGIsjpfOs";

/// The decoy of one login, opened before the prompt as a state file is.
pub(crate) struct Decoy(Option<state::Decoy>);

/// Opens the decoy file; with the database store there is no state file to mirror.
///
/// # Errors
/// The state directory or the decoy file is unusable (an enrolled user's login would
/// fail on its state file too).
pub(crate) fn open(config: &Config) -> Result<Decoy, StateError> {
    match config.store {
        Store::File => StateDir::open(&config.state_dir)?.decoy().map(|d| Decoy(Some(d))),
        Store::Postgres => Ok(Decoy(None)),
    }
}

impl Decoy {
    /// Checks `reply` as an enrolled user's answer is checked, then writes the decoy.
    ///
    /// # Errors
    /// The durable write failed.
    pub(crate) fn spend(self, config: &Config, reply: &[u8], now: u64) -> Result<(), StateError> {
        if let Some(record) = throwaway(config) {
            let answer = Answer::parse(reply, &record);
            match &answer {
                Answer::Code(code) => {
                    black_box(verify::check(&record, code, now, config.window, 0));
                }
                Answer::Recovery(_) | Answer::Scratch(_) | Answer::Malformed => {
                    black_box(scratch::check_answer(&record, &answer, &LoginState::default()));
                }
            }
        }
        match self.0 {
            Some(file) => file.write(),
            None => Ok(()),
        }
    }
}

/// A record like an enrolled user's, with a key and recovery codes nobody has.
fn throwaway(config: &Config) -> Option<Record> {
    let key = SecretKey::from_bytes(vec![0x5a; 20]).ok()?;
    let record = Record::new(key, config.algorithm, config.digits, config.period, String::new());
    Some(record.with_recovery(0, vec![THROWAWAY_HASH.to_owned(); ISSUED_CODES]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::{RecoveryCode, is_acceptable_hash};
    use std::os::unix::fs::DirBuilderExt;

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

    #[test]
    fn the_decoy_is_one_checked_file_that_takes_no_name() {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            state_dir: tmp.path().join("state"),
            ..Config::default()
        };
        // The packages make the state directory; the module never does.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&config.state_dir)
            .unwrap();
        let recovery = RecoveryCode::from_random(3, &[1; 11]).unwrap().display();
        for reply in [&b"123456"[..], recovery.as_bytes(), b"nonsense"] {
            open(&config).unwrap().spend(&config, reply, 1_000_000).unwrap();
        }
        let names: Vec<_> = std::fs::read_dir(&config.state_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".decoy"]);
        let meta = std::fs::metadata(config.state_dir.join(".decoy")).unwrap();
        assert_eq!(meta.len(), 256, "a state file's size: two 128-byte slots");
        // A decoy someone linked elsewhere is refused like a state file.
        let linked = config.state_dir.join("linked");
        std::fs::hard_link(config.state_dir.join(".decoy"), &linked).unwrap();
        assert!(matches!(open(&config), Err(StateError::UnsafeFile { .. })));
    }
}
