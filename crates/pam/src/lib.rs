//! The PAM boundary: the only `unsafe` code in the module.
//!
//! Entry points come from `pam-bindings` (pinned to 0.4.0, MIT). It was chosen over
//! `pam` / `pamsm` because its `pam_hooks!` wrapper catches a panic at each entry point
//! and turns it into `PAM_ABORT` (a panic must never unwind into sshd), and its
//! conversation replies are zeroized buffers. It does not wrap `pam_syslog`, nor let a
//! module set `PAM_AUTHTOK` from its own bytes, so those two functions are declared here.
//!
//! A module built without the database store (`pam_totp.so`) hands a `store =
//! "postgres"` login to `pam_totp_db.so`, installed beside it: [`handover`], the rest of
//! the unsafe code.
//!
//! Everything past this crate is safe Rust: `pam_totp_core::authenticate` decides,
//! through the [`Conversation`] and [`Logger`] ports implemented below, with the stores
//! the module (a cdylib of a few lines: [`pam_module!`]) was built with.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::time::{SystemTime, UNIX_EPOCH};

use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO, PamFlag, PamResultCode};
use pam::conv::Conv;
use pam::items::{RHost, Service, Tty};
use pam::module::PamHandle;
use zeroize::Zeroizing;

use pam_totp_core::authenticate;
use pam_totp_core::ports::{
    Conversation, ConversationError, Logger, Login, Outcome, Priority, Proofs, Stores,
};
use pam_totp_core::proven::{self, AuditSession};
use pam_totp_core::step_up::{self, SessionEvent};

/// pam-bindings, for [`pam_module!`]'s expansion.
pub use pam;

#[link(name = "pam")]
unsafe extern "C" {
    /// `void pam_syslog(const pam_handle_t *pamh, int priority, const char *fmt, ...)`:
    /// logs to authpriv with the `pam_totp(service:type): ` prefix admins grep for.
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
    /// `int pam_set_item(pam_handle_t *pamh, int item_type, const void *item)`: used for
    /// `PAM_AUTHTOK` only (`forward_pass`); pam-bindings' `AuthTok` cannot be built from
    /// our own bytes, so its `set_item_str` cannot set it. libpam copies the string.
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    /// `const char *pam_getenv(pam_handle_t *pamh, const char *name)`: the PAM
    /// environment (what modules and sshd put there), not the process's.
    fn pam_getenv(pamh: *const PamHandle, name: *const c_char) -> *const c_char;
    /// `int pam_putenv(pam_handle_t *pamh, const char *name_value)`: `NAME=value` sets,
    /// a bare `NAME` removes; libpam copies the string.
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
}

/// `PAM_AUTHTOK` from `<security/_pam_types.h>`.
const PAM_AUTHTOK: c_int = 6;

mod handover;

/// Defines a PAM module's entry points (`pam_sm_authenticate`, `pam_sm_setcred`, ...)
/// in the crate that invokes it, over the stores given as a
/// [`Stores`](pam_totp_core::ports::Stores) expression: the two cdylibs differ only there.
#[macro_export]
macro_rules! pam_module {
    ($stores:expr) => {
        /// The module, for pam-bindings' entry points.
        pub struct PamTotp;
        $crate::pam::pam_hooks!(PamTotp);

        impl $crate::pam::module::PamHooks for PamTotp {
            fn sm_authenticate(
                pamh: &mut $crate::pam::module::PamHandle,
                args: Vec<&std::ffi::CStr>,
                flags: $crate::pam::constants::PamFlag,
            ) -> $crate::pam::constants::PamResultCode {
                $crate::authenticate(pamh, &args, flags, $stores)
            }

            fn sm_open_session(
                pamh: &mut $crate::pam::module::PamHandle,
                args: Vec<&std::ffi::CStr>,
                flags: $crate::pam::constants::PamFlag,
            ) -> $crate::pam::constants::PamResultCode {
                $crate::open_session(pamh, &args, flags, $stores)
            }

            fn sm_close_session(
                pamh: &mut $crate::pam::module::PamHandle,
                args: Vec<&std::ffi::CStr>,
                flags: $crate::pam::constants::PamFlag,
            ) -> $crate::pam::constants::PamResultCode {
                $crate::close_session(pamh, &args, flags, $stores)
            }

            fn sm_setcred(
                _pamh: &mut $crate::pam::module::PamHandle,
                _args: Vec<&std::ffi::CStr>,
                _flags: $crate::pam::constants::PamFlag,
            ) -> $crate::pam::constants::PamResultCode {
                // A code grants no credentials; succeed so stacks with `required` work.
                $crate::pam::constants::PamResultCode::PAM_SUCCESS
            }
        }
    };
}

/// One `pam_sm_authenticate`: the PAM items read, the login run with `stores`, its
/// outcome as a PAM code (or the login handed to `pam_totp_db.so`).
pub fn authenticate(
    pamh: &mut PamHandle,
    raw_args: &[&CStr],
    flags: PamFlag,
    stores: Stores<'_>,
) -> PamResultCode {
    let args = text_args(raw_args);
    #[cfg(feature = "panic-test")]
    if args.iter().any(|a| a == "test_panic") {
        #[allow(clippy::panic)]
        {
            panic!("panic forced by the test_panic argument");
        }
    }
    let logger = PamLogger(pamh);
    let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
        logger.log(Priority::Err, "system clock is before 1970; refusing");
        return PamResultCode::PAM_SYSTEM_ERR;
    };
    let user = match pamh.get_user(None) {
        Ok(user) => user,
        Err(code) => {
            PamLogger(pamh).log(Priority::Err, "cannot determine the user name");
            return code;
        }
    };
    let rhost = match pamh.get_item::<RHost>() {
        Ok(Some(rhost)) => Some(rhost.0.to_string_lossy().into_owned()),
        _ => None,
    };
    // Tells the local console from elsewhere for lockout_exempt accounts.
    let tty = match pamh.get_item::<Tty>() {
        Ok(Some(tty)) => Some(tty.0.to_string_lossy().into_owned()),
        _ => None,
    };
    let login = Login {
        user: &user,
        rhost: rhost.as_deref(),
        tty: tty.as_deref(),
        args: &args,
        now: now.as_secs(),
    };
    let proofs = proofs(pamh);
    let mut conv = PamConversation(pamh);
    let outcome = authenticate::authenticate_with(&login, &proofs, stores, &mut conv, &PamLogger(pamh));
    match outcome {
        Outcome::Success => PamResultCode::PAM_SUCCESS,
        Outcome::Denied => PamResultCode::PAM_AUTH_ERR,
        Outcome::Ignore => PamResultCode::PAM_IGNORE,
        Outcome::ConversationFailed => PamResultCode::PAM_CONV_ERR,
        Outcome::SystemError => PamResultCode::PAM_SYSTEM_ERR,
        Outcome::HandOver => handover::authenticate(pamh, raw_args, flags),
    }
}

/// What sshd and the kernel proved before this call: the keys sshd verified (read from
/// the PAM environment of the `sshd` service only: sshd sets `SSH_AUTH_INFO_0` there
/// before the keyboard-interactive PAM stack runs, and the client cannot), and this
/// process's audit session.
fn proofs(pamh: &PamHandle) -> Proofs {
    let from_sshd =
        matches!(pamh.get_item::<Service>(), Ok(Some(service)) if service.0.to_bytes() == b"sshd");
    let ssh_keys = if from_sshd {
        get_env(pamh, "SSH_AUTH_INFO_0")
            .map(|info| proven::verified_keys(&info))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Proofs {
        ssh_keys,
        audit_session: audit_session(),
    }
}

fn audit_session() -> Option<AuditSession> {
    pam_totp_os::audit_session::session_id_text()
        .ok()
        .and_then(|text| AuditSession::parse(&text))
}

/// `name` in the PAM environment, if set and UTF-8.
fn get_env(pamh: &PamHandle, name: &str) -> Option<String> {
    let name = CString::new(name).ok()?;
    // SAFETY: `pamh` is the live handle PAM passed to this call and `name` a valid
    // NUL-terminated string; the result is NULL or a NUL-terminated string owned by
    // libpam, valid until the environment changes, and copied before anything else runs.
    let value = unsafe { pam_getenv(pamh, name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: non-NULL, NUL-terminated, alive for this statement (see above).
    let value = unsafe { CStr::from_ptr(value) };
    value.to_str().ok().map(str::to_owned)
}

/// Sets (`NAME=value`) or removes (`NAME`) a PAM environment variable.
fn put_env(pamh: &PamHandle, name_value: &str) -> Result<(), ConversationError> {
    let text = CString::new(name_value).map_err(|_| ConversationError)?;
    let handle = std::ptr::from_ref::<PamHandle>(pamh).cast_mut();
    // SAFETY: `handle` is the live handle PAM passed to this call (an opaque marker type:
    // libpam's writes touch no Rust-visible memory); `text` is NUL-terminated and lives
    // across the call; libpam copies it.
    let status = unsafe { pam_putenv(handle, text.as_ptr()) };
    if status == PamResultCode::PAM_SUCCESS as c_int {
        Ok(())
    } else {
        Err(ConversationError)
    }
}

/// One `pam_sm_open_session`: `step_up_seconds`' ticket taken out of the PAM
/// environment (the user's shell never gets it) and redeemed for this audit session.
/// Never fails the session.
pub fn open_session(
    pamh: &mut PamHandle,
    raw_args: &[&CStr],
    flags: PamFlag,
    stores: Stores<'_>,
) -> PamResultCode {
    if hands_over_sessions(raw_args, stores) {
        // The ticket stays in the PAM environment: pam_totp_db.so takes it out.
        return handover::session(pamh, raw_args, flags, c"pam_sm_open_session");
    }
    let ticket = get_env(pamh, step_up::TICKET_ENV);
    if ticket.is_some() {
        let _ = put_env(pamh, step_up::TICKET_ENV);
    }
    session_event(pamh, raw_args, |event, log| {
        step_up::open_session(event, ticket.as_deref(), stores, log);
    })
}

/// One `pam_sm_close_session`: this audit session is no longer verified.
pub fn close_session(
    pamh: &mut PamHandle,
    raw_args: &[&CStr],
    flags: PamFlag,
    stores: Stores<'_>,
) -> PamResultCode {
    if hands_over_sessions(raw_args, stores) {
        return handover::session(pamh, raw_args, flags, c"pam_sm_close_session");
    }
    session_event(pamh, raw_args, |event, log| {
        step_up::close_session(event, stores, log);
    })
}

/// `pam_totp.so` (no database store) with `store = "postgres"` and `step_up_seconds`:
/// the session hooks belong to `pam_totp_db.so`, as the login did.
fn hands_over_sessions(raw_args: &[&CStr], stores: Stores<'_>) -> bool {
    step_up::hands_over_sessions(&text_args(raw_args), stores)
}

/// The module arguments as text (a non-UTF-8 byte becomes U+FFFD: no such key exists).
fn text_args(raw_args: &[&CStr]) -> Vec<String> {
    raw_args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn session_event(
    pamh: &mut PamHandle,
    raw_args: &[&CStr],
    run: impl FnOnce(&SessionEvent<'_>, &dyn Logger),
) -> PamResultCode {
    let args = text_args(raw_args);
    let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
        return PamResultCode::PAM_SUCCESS;
    };
    let Ok(user) = pamh.get_user(None) else {
        return PamResultCode::PAM_SUCCESS;
    };
    let event = SessionEvent {
        user: &user,
        args: &args,
        now: now.as_secs(),
        session: audit_session(),
    };
    run(&event, &PamLogger(pamh));
    PamResultCode::PAM_SUCCESS
}

struct PamConversation<'a>(&'a PamHandle);

impl PamConversation<'_> {
    fn send(&self, style: c_int, text: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
        let Ok(Some(conv)) = self.0.get_item::<Conv>() else {
            return Err(ConversationError);
        };
        let reply = conv.send(style, text).map_err(|_| ConversationError)?;
        Ok(reply.map(|bytes| Zeroizing::new(bytes.as_bytes().to_vec())))
    }
}

impl Conversation for PamConversation<'_> {
    fn ask_hidden(&mut self, prompt: &str) -> Result<Option<Zeroizing<Vec<u8>>>, ConversationError> {
        self.send(PAM_PROMPT_ECHO_OFF, prompt)
    }

    fn show_error(&mut self, text: &str) {
        let _ = self.send(PAM_ERROR_MSG, text);
    }

    fn show_info(&mut self, text: &str) {
        let _ = self.send(PAM_TEXT_INFO, text);
    }

    fn set_authtok(&mut self, password: &[u8]) -> Result<(), ConversationError> {
        if password.contains(&0) {
            return Err(ConversationError);
        }
        // Built by hand (not CString::new) so no unzeroed copy of the password is left.
        let mut text = Zeroizing::new(Vec::with_capacity(password.len() + 1));
        text.extend_from_slice(password);
        text.push(0);
        let handle = std::ptr::from_ref::<PamHandle>(self.0).cast_mut();
        // SAFETY: `handle` is the live handle PAM passed to this call (the Rust type is an
        // opaque zero-sized marker, so libpam writing its own state through it touches no
        // Rust-visible memory); `text` is NUL-terminated, free of interior NULs, and lives
        // across the call; libpam copies it and does not keep the pointer.
        let status = unsafe { pam_set_item(handle, PAM_AUTHTOK, text.as_ptr().cast()) };
        if status == PamResultCode::PAM_SUCCESS as c_int {
            Ok(())
        } else {
            Err(ConversationError)
        }
    }

    fn set_env(&mut self, name: &str, value: &str) -> Result<(), ConversationError> {
        if name.contains('=') {
            return Err(ConversationError);
        }
        put_env(self.0, &format!("{name}={value}"))
    }
}

struct PamLogger<'a>(&'a PamHandle);

impl Logger for PamLogger<'_> {
    fn log(&self, priority: Priority, message: &str) {
        let priority = match priority {
            Priority::Err => libc::LOG_ERR,
            Priority::Warning => libc::LOG_WARNING,
            Priority::Notice => libc::LOG_NOTICE,
            Priority::Info => libc::LOG_INFO,
            Priority::Debug => libc::LOG_DEBUG,
        };
        let Ok(message) = CString::new(message.replace('\0', "?")) else {
            return;
        };
        // SAFETY: `self.0` is the live handle PAM passed to this call; the format is a
        // static "%s" and its one argument a valid NUL-terminated string, so the
        // variadic call reads exactly one `char *`.
        unsafe { pam_syslog(self.0, priority, c"%s".as_ptr(), message.as_ptr()) };
    }
}
