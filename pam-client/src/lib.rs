//! The application side of PAM, for tests and benchmarks: starts a real libpam
//! transaction from a service file in a directory of our own (`pam_start_confdir`),
//! answers the module's prompts from a script, and records what the user was shown.
//!
//! This is what sshd or sudo do around a module; keeping it in its own small crate
//! keeps its `unsafe` away from the module's code.

// The application side of PAM is FFI by nature; every block carries a SAFETY note.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
const PAM_SUCCESS: c_int = 0;
const PAM_CONV_ERR: c_int = 19;
const PAM_BUF_ERR: c_int = 5;
const PAM_RHOST: c_int = 4;
const PAM_TTY: c_int = 3;

/// `PAM_SUCCESS`.
pub const SUCCESS: i32 = 0;
/// `PAM_SYSTEM_ERR`.
pub const SYSTEM_ERR: i32 = 4;
/// `PAM_AUTH_ERR`.
pub const AUTH_ERR: i32 = 7;
/// `PAM_CONV_ERR`.
pub const CONV_ERR: i32 = 19;
/// `PAM_IGNORE` (a stack of only ignoring modules ends in `PAM_PERM_DENIED`).
pub const IGNORE: i32 = 25;
/// `PAM_ABORT`.
pub const ABORT: i32 = 26;
/// `PAM_PERM_DENIED`.
pub const PERM_DENIED: i32 = 6;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    appdata_ptr: *mut c_void,
}

#[repr(C)]
struct PamHandle {
    _private: [u8; 0],
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
}

/// One message the module sent, as the user would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// A prompt with echo off (a code, a password).
    HiddenPrompt(String),
    /// A prompt with echo on.
    Prompt(String),
    /// An error line.
    Error(String),
    /// An information line.
    Info(String),
}

/// Computes the answer to the prompt just shown (the last entry) from everything shown
/// so far; `None` hangs up.
pub type Responder = fn(&[Shown]) -> Option<Vec<u8>>;

/// The scripted user at the other end of the conversation.
#[derive(Debug, Default)]
struct Script {
    answers: Vec<Vec<u8>>,
    next: usize,
    shown: Vec<Shown>,
    /// When set, answers come from here instead of `answers`.
    responder: Option<Responder>,
}

/// What one `pam_authenticate` returned and what the user saw.
#[derive(Debug)]
pub struct Transcript {
    pub status: i32,
    pub shown: Vec<Shown>,
}

impl Transcript {
    /// The prompts, in order.
    #[must_use]
    pub fn prompts(&self) -> Vec<&str> {
        self.shown
            .iter()
            .filter_map(|s| match s {
                Shown::HiddenPrompt(p) | Shown::Prompt(p) => Some(p.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The error and information lines, in order.
    #[must_use]
    pub fn messages(&self) -> Vec<&str> {
        self.shown
            .iter()
            .filter_map(|s| match s {
                Shown::Error(m) | Shown::Info(m) => Some(m.as_str()),
                _ => None,
            })
            .collect()
    }
}

extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let Ok(count) = usize::try_from(num_msg) else {
        return PAM_CONV_ERR;
    };
    if count == 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: `appdata` is the `Script` that `authenticate` passed in `PamConv`; it
    // outlives the transaction and only this callback touches it meanwhile.
    let script = unsafe { &mut *appdata.cast::<Script>() };
    // SAFETY: libpam allocates nothing here; calloc gives zeroed responses it will free.
    let responses = unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if responses.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..count {
        // SAFETY: Linux-PAM passes an array of `num_msg` pointers to valid messages.
        let message = unsafe { &**msg.add(i) };
        // SAFETY: each message text is a NUL-terminated string owned by the module.
        let text = unsafe { CStr::from_ptr(message.msg) }
            .to_string_lossy()
            .into_owned();
        let answer = match message.msg_style {
            PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => {
                script.shown.push(if message.msg_style == PAM_PROMPT_ECHO_OFF {
                    Shown::HiddenPrompt(text)
                } else {
                    Shown::Prompt(text)
                });
                let computed = script.responder.map(|respond| respond(&script.shown));
                let Some(answer) = computed.unwrap_or_else(|| script.answers.get(script.next).cloned())
                else {
                    // No more scripted answers: the user hung up.
                    // SAFETY: frees the array allocated above and the answers set so far.
                    unsafe { free_responses(responses, i) };
                    return PAM_CONV_ERR;
                };
                script.next += 1;
                Some(answer)
            }
            PAM_ERROR_MSG => {
                script.shown.push(Shown::Error(text));
                None
            }
            PAM_TEXT_INFO => {
                script.shown.push(Shown::Info(text));
                None
            }
            _ => None,
        };
        if let Some(answer) = answer {
            // SAFETY: malloc'd copy with a terminating NUL, as libpam will free() it.
            let copy = unsafe { libc::calloc(answer.len() + 1, 1) }.cast::<c_char>();
            if copy.is_null() {
                // SAFETY: as above.
                unsafe { free_responses(responses, i) };
                return PAM_BUF_ERR;
            }
            // SAFETY: `copy` has room for `answer.len()` bytes plus the zeroed NUL.
            unsafe { ptr::copy_nonoverlapping(answer.as_ptr().cast::<c_char>(), copy, answer.len()) };
            // SAFETY: `i < count`, inside the calloc'd array.
            unsafe { (*responses.add(i)).resp = copy };
        }
    }
    // SAFETY: `resp` is libpam's out-pointer for the response array.
    unsafe { *resp = responses };
    PAM_SUCCESS
}

/// Frees the first `filled` answers and the array itself.
///
/// # Safety
/// `responses` must come from `calloc` in `converse`, with `filled` entries set.
unsafe fn free_responses(responses: *mut PamResponse, filled: usize) {
    for i in 0..filled {
        // SAFETY: per the contract, entries below `filled` are calloc'd or null.
        unsafe { libc::free((*responses.add(i)).resp.cast()) };
    }
    // SAFETY: per the contract.
    unsafe { libc::free(responses.cast()) };
}

/// A login to run: service file directory, service name, user, remote host.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    pub confdir: &'a Path,
    pub service: &'a str,
    pub user: &'a str,
    pub rhost: Option<&'a str>,
}

/// An open PAM transaction: modules loaded by `pam_start_confdir`, ended (and unloaded)
/// by `pam_end` on drop.
pub struct Transaction {
    pamh: *mut PamHandle,
    status: c_int,
    // Boxed so their addresses, given to libpam, stay put while this moves.
    script: Box<Script>,
    _conv: Box<PamConv>,
}

impl Transaction {
    /// `pam_start_confdir` for `login`, with `answers` scripted for the prompts (bytes,
    /// so tests can send NULs and invalid UTF-8).
    ///
    /// # Errors
    /// The status `pam_start_confdir` returned.
    ///
    /// # Panics
    /// A path, service or user with an interior NUL (a bug in the caller).
    pub fn start(login: &Login<'_>, answers: &[&[u8]]) -> Result<Transaction, i32> {
        Self::start_with(login, answers, None)
    }

    /// As [`Transaction::start`], answering every prompt with `responder` instead.
    ///
    /// # Errors
    /// The status `pam_start_confdir` returned.
    pub fn start_responding(login: &Login<'_>, responder: Responder) -> Result<Transaction, i32> {
        Self::start_with(login, &[], Some(responder))
    }

    #[allow(clippy::expect_used)]
    fn start_with(
        login: &Login<'_>,
        answers: &[&[u8]],
        responder: Option<Responder>,
    ) -> Result<Transaction, i32> {
        let service = CString::new(login.service).expect("service without NUL");
        let user = CString::new(login.user).expect("user without NUL");
        let confdir =
            CString::new(login.confdir.as_os_str().as_encoded_bytes()).expect("confdir without NUL");
        let mut script = Box::new(Script {
            answers: answers.iter().map(|a| a.to_vec()).collect(),
            responder,
            ..Script::default()
        });
        let conv = Box::new(PamConv {
            conv: converse,
            appdata_ptr: ptr::from_mut(script.as_mut()).cast(),
        });
        let mut pamh: *mut PamHandle = ptr::null_mut();
        // SAFETY: the strings are NUL-terminated and live across the call (libpam copies
        // them); `conv` and `script` are boxed and owned by the returned Transaction,
        // which ends the transaction before dropping them.
        let started = unsafe {
            pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &raw const *conv,
                confdir.as_ptr(),
                &raw mut pamh,
            )
        };
        if started != PAM_SUCCESS {
            return Err(started);
        }
        let transaction = Transaction {
            pamh,
            status: PAM_SUCCESS,
            script,
            _conv: conv,
        };
        if let Some(rhost) = login.rhost {
            let rhost = CString::new(rhost).expect("rhost without NUL");
            // SAFETY: `pamh` is live; libpam copies the string.
            unsafe { pam_set_item(transaction.pamh, PAM_RHOST, rhost.as_ptr().cast()) };
        }
        Ok(transaction)
    }

    /// Sets `PAM_TTY` (as `login` does with `tty1`, or sudo with `/dev/pts/0`).
    ///
    /// # Panics
    /// A terminal name with an interior NUL (a bug in the caller).
    #[allow(clippy::expect_used)]
    pub fn set_tty(&mut self, tty: &str) {
        let tty = CString::new(tty).expect("tty without NUL");
        // SAFETY: `pamh` is live until drop; libpam copies the string.
        unsafe { pam_set_item(self.pamh, PAM_TTY, tty.as_ptr().cast()) };
    }

    /// `pam_putenv("NAME=value")` into the transaction's PAM environment, as sshd puts
    /// `SSH_AUTH_INFO_0` there before it calls the modules; whether libpam took it.
    ///
    /// # Panics
    /// An entry with an interior NUL (a bug in the caller).
    #[allow(clippy::expect_used)]
    pub fn set_env(&mut self, name_value: &str) -> bool {
        let entry = CString::new(name_value).expect("environment entry without NUL");
        // SAFETY: `pamh` is live until drop; libpam copies the string.
        unsafe { pam_putenv(self.pamh, entry.as_ptr()) == PAM_SUCCESS }
    }

    /// `pam_authenticate`; returns its status.
    pub fn authenticate(&mut self) -> i32 {
        // SAFETY: `pamh` is live until drop.
        self.status = unsafe { pam_authenticate(self.pamh, 0) };
        self.status
    }

    /// What the user has been shown so far.
    #[must_use]
    pub fn shown(&self) -> &[Shown] {
        &self.script.shown
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: ends the transaction started in `start`; `pamh` is not used again.
        unsafe { pam_end(self.pamh, self.status) };
    }
}

/// Runs `pam_start_confdir` → `pam_authenticate` → `pam_end`, answering the prompts in
/// order with `answers`.
#[must_use]
pub fn authenticate(login: &Login<'_>, answers: &[&[u8]]) -> Transcript {
    run(Transaction::start(login, answers))
}

/// As [`authenticate`], with `PAM_TTY` set to `tty`.
#[must_use]
pub fn authenticate_on_tty(login: &Login<'_>, tty: &str, answers: &[&[u8]]) -> Transcript {
    run(Transaction::start(login, answers).map(|mut transaction| {
        transaction.set_tty(tty);
        transaction
    }))
}

/// As [`authenticate`], with `env` (`NAME=value` entries) put in the PAM environment
/// first, as sshd does.
///
/// # Panics
/// libpam refused an entry (a bug in the caller).
#[must_use]
pub fn authenticate_with_env(login: &Login<'_>, env: &[&str], answers: &[&[u8]]) -> Transcript {
    run(Transaction::start(login, answers).map(|mut transaction| {
        for entry in env {
            assert!(transaction.set_env(entry), "pam_putenv refused {entry}");
        }
        transaction
    }))
}

/// As [`authenticate`], with each answer computed by `responder` from what was shown.
#[must_use]
pub fn authenticate_responding(login: &Login<'_>, responder: Responder) -> Transcript {
    run(Transaction::start_responding(login, responder))
}

fn run(started: Result<Transaction, i32>) -> Transcript {
    match started {
        Ok(mut transaction) => {
            let status = transaction.authenticate();
            let shown = transaction.shown().to_vec();
            drop(transaction);
            Transcript { status, shown }
        }
        Err(status) => Transcript {
            status,
            shown: Vec::new(),
        },
    }
}
