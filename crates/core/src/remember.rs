//! `remember_key_seconds`: after a right code over ssh with a public key, the same user
//! with the same key passes without a code for a while.
//!
//! The key is only ever one sshd verified ([`crate::proven::verified_keys`]): sshd puts
//! the methods that already succeeded into the PAM environment as `SSH_AUTH_INFO_0`
//! before it runs the PAM stack of keyboard-interactive, and the PAM boundary reads it
//! from the PAM environment of the `sshd` service only, never from the process
//! environment a client could fill.

use pam_totp_config::Config;

use crate::ports::{Logger, Login, LoginStore, Priority};
use crate::proven::KeyFingerprint;

/// Before a prompt: whether one of the keys sshd verified in this login was remembered
/// for this user after a right code, until a time still to come. Logged when it was.
/// A store error is logged and means a prompt.
#[must_use]
pub fn remembered(
    config: &Config,
    login: &Login<'_>,
    keys: &[KeyFingerprint],
    store: &dyn LoginStore,
    log: &dyn Logger,
) -> bool {
    if config.shortcuts().remember_key_seconds == 0 || keys.is_empty() {
        return false;
    }
    let Some(shortcuts) = store.shortcuts() else {
        return false;
    };
    match shortcuts.remembered_key(config, login.user, keys, login.now) {
        Ok(Some((key, until))) => {
            log.log(
                Priority::Info,
                &format!(
                    "second factor remembered for key {} until {}; {}",
                    key.as_str(),
                    crate::step_up::utc(until),
                    login.who()
                ),
            );
            true
        }
        Ok(None) => false,
        Err(e) => {
            log.log(
                Priority::Err,
                &format!(
                    "cannot read remembered keys, asking for a code: {e}; {}",
                    login.who()
                ),
            );
            false
        }
    }
}

/// After a right code: remembers the keys sshd verified in this login. A failure only
/// costs a prompt next time: logged, the login stands.
pub fn after_code(
    config: &Config,
    login: &Login<'_>,
    keys: &[KeyFingerprint],
    store: &dyn LoginStore,
    log: &dyn Logger,
) {
    let seconds = config.shortcuts().remember_key_seconds;
    if seconds == 0 || keys.is_empty() {
        return;
    }
    let Some(shortcuts) = store.shortcuts() else {
        return;
    };
    let until = login.now.saturating_add(seconds);
    if let Err(e) = shortcuts.remember_keys(config, login.user, keys, until, login.now) {
        log.log(
            Priority::Err,
            &format!("cannot remember the key: {e}; {}", login.who()),
        );
    }
}
