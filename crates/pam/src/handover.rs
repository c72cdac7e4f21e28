//! `pam_totp.so`'s hand-over of a `store = "postgres"` login (ARCHITECTURE.md, "Two
//! modules"): kept so that one pam.d line serves both stores.
//!
//! `pam_totp.so` carries no database client, so that a file-store login does not pay
//! for loading one. When the config says `store = "postgres"`, the whole login goes to
//! `pam_totp_db.so` (the same entry points with the database store too), installed in this module's own
//! directory: it is loaded (`dlopen`), its `pam_sm_authenticate` called with the same
//! handle, flags and arguments, and unloaded; its result is this login's result. It
//! reads the config again and makes every decision itself, prompt included.
//!
//! The file is only loaded if it is a regular file owned by root and not writable by
//! group or others (a symlink, as Debian names things, is followed and its target
//! checked, as is the directory holding the target). Anything else fails closed:
//! syslog says why, the user sees the usual "cannot be checked" message.
//!
//! With `step_up_seconds`, the session hooks go the same way (the database keeps the
//! verified sessions); a failure there is logged and never fails the session.

use std::cell::Cell;
use std::ffi::{CStr, CString, OsStr, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use pam::constants::{PamFlag, PamResultCode};
use pam::module::PamHandle;

use super::{PamConversation, PamLogger};
use pam_totp_core::ports::{Conversation, Logger, Priority, UNAVAILABLE_MESSAGE};
use pam_totp_os::trusted_file::{Owner, Refused, Rules};

/// The database-store module's installed name, looked for beside this module.
pub(crate) const SIBLING: &str = "pam_totp_db.so";

/// `pam_sm_authenticate`, `pam_sm_open_session` and `pam_sm_close_session` as libpam
/// calls them (`<security/pam_modules.h>`: one signature for all three).
type Hook = unsafe extern "C" fn(*mut PamHandle, PamFlag, c_int, *const *const c_char) -> c_int;

thread_local! {
    /// Set while this thread is inside a hand-over from this copy of the module: a
    /// `pam_totp_db.so` that is in fact this file-store module would hand the login to itself
    /// for ever; the second hand-over is refused instead.
    static HANDING_OVER: Cell<bool> = const { Cell::new(false) };
}

/// Runs the login in `pam_totp_db.so`; on any failure to do so, fails closed.
pub(crate) fn authenticate(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag) -> PamResultCode {
    match guarded(pamh, args, flags, c"pam_sm_authenticate") {
        Ok(status) => status,
        Err(why) => refuse(pamh, &why),
    }
}

/// Runs a session hook (`hook`) in `pam_totp_db.so`, which keeps the verified sessions
/// of `store = "postgres"`. Never fails the session: a failure is logged, and sudo asks
/// for a code as always.
pub(crate) fn session(pamh: &mut PamHandle, args: &[&CStr], flags: PamFlag, hook: &CStr) -> PamResultCode {
    if let Err(why) = guarded(pamh, args, flags, hook) {
        PamLogger(pamh).log(
            Priority::Err,
            &format!(
                "store = \"postgres\" needs {SIBLING} beside pam_totp.so: {why}; sudo will ask for a code"
            ),
        );
    }
    PamResultCode::PAM_SUCCESS
}

fn guarded(
    pamh: &mut PamHandle,
    args: &[&CStr],
    flags: PamFlag,
    hook: &CStr,
) -> Result<PamResultCode, String> {
    if HANDING_OVER.with(|busy| busy.replace(true)) {
        return Err(format!("{SIBLING} is a build without the database client"));
    }
    let _clear = ClearOnDrop;
    hand_over(pamh, args, flags, hook)
}

/// Clears [`HANDING_OVER`] however the hand-over ends (an unwinding panic included), so
/// that a later login on this thread is not refused.
struct ClearOnDrop;

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        HANDING_OVER.with(|busy| busy.set(false));
    }
}

fn refuse(pamh: &PamHandle, why: &str) -> PamResultCode {
    PamLogger(pamh).log(
        Priority::Err,
        &format!("store = \"postgres\" needs {SIBLING} beside pam_totp.so: {why}"),
    );
    PamConversation(pamh).show_error(UNAVAILABLE_MESSAGE);
    PamResultCode::PAM_SYSTEM_ERR
}

fn hand_over(
    handle: &mut PamHandle,
    arguments: &[&CStr],
    flags: PamFlag,
    hook: &CStr,
) -> Result<PamResultCode, String> {
    let module = checked(&sibling()?)?;
    let library = Library::open(&module)?;
    let function = library.hook(hook)?;
    // The same arguments libpam gave us, as the C array it gave them in; the strings
    // are libpam's, alive for this whole call, and `argv` outlives the call below.
    let argv: Vec<*const c_char> = arguments.iter().map(|arg| arg.as_ptr()).collect();
    let count = c_int::try_from(argv.len()).map_err(|_| "too many module arguments".to_owned())?;
    let handle = std::ptr::from_mut::<PamHandle>(handle);
    // SAFETY: `function` is the full module's `hook`, with the C signature `Hook` names, and `library` keeps it loaded until after the call. `handle`
    // is the live handle libpam passed to this call (held exclusively by us meanwhile);
    // `argv` holds `count` valid NUL-terminated strings and lives across the call. The
    // callee is a PAM module: it catches its own panics and does not unwind into us.
    let status = unsafe { function(handle, flags, count, argv.as_ptr()) };
    drop(argv);
    drop(library);
    Ok(PamResultCode::try_from(status).unwrap_or(PamResultCode::PAM_SYSTEM_ERR))
}

/// `<directory this module was loaded from>/pam_totp_db.so`.
fn sibling() -> Result<PathBuf, String> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let anchor = sibling as *const c_void;
    // SAFETY: `anchor` is the address of a function of this module, and `info` a valid,
    // writable `Dl_info` that dladdr fills in (it keeps no pointer to it).
    let found = unsafe { libc::dladdr(anchor, &raw mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return Err("cannot tell which file this module was loaded from".to_owned());
    }
    // SAFETY: dladdr succeeded and set `dli_fname` to the NUL-terminated path of the
    // loaded object, owned by the dynamic loader while this module stays loaded (it is:
    // we are running in it); it is copied out at once.
    let own = unsafe { CStr::from_ptr(info.dli_fname) };
    let own = Path::new(OsStr::from_bytes(own.to_bytes()));
    match own.parent() {
        Some(dir) if own.is_absolute() => Ok(dir.join(SIBLING)),
        _ => Err(format!(
            "this module was loaded as {}, not by an absolute path",
            own.display()
        )),
    }
}

/// The file to load, symlinks resolved, if root owns it and only root can change it.
fn checked(path: &Path) -> Result<PathBuf, String> {
    let target = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = std::fs::metadata(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let unsafe_at = |path: &Path| {
        format!(
            "{} must be owned by root and not writable by group or others",
            path.display()
        )
    };
    match SIBLING_RULES.check(&meta) {
        Ok(()) => {}
        Err(Refused::NotRegular) => return Err(format!("{} is not a regular file", target.display())),
        Err(_) => return Err(unsafe_at(&target)),
    }
    if let Some(dir) = target.parent() {
        let dir_meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        SIBLING_RULES.check_dir(&dir_meta).map_err(|_| unsafe_at(dir))?;
    }
    Ok(target)
}

/// The sibling module and its directory: root's, not writable by group or others (its
/// code runs as root inside sshd). Reached through symlinks (Debian's names).
const SIBLING_RULES: Rules = Rules {
    owner: Owner::Root,
    forbidden_mode: 0o022,
    single_link: false,
    max_bytes: None,
    follow_symlink: true,
};

/// A `dlopen`ed object, closed when dropped.
struct Library(*mut c_void);

impl Library {
    fn open(path: &Path) -> Result<Library, String> {
        let name =
            CString::new(path.as_os_str().as_bytes()).map_err(|_| "path holds a NUL byte".to_owned())?;
        // SAFETY: `name` is a NUL-terminated path that lives across the call. Loading
        // runs the object's initialisers: it is `pam_totp_db.so` (crates/pam_totp_db), which has
        // none beyond Rust's, and was checked above to be root's own file.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("cannot load {}: {}", path.display(), last_dl_error()));
        }
        Ok(Library(handle))
    }

    /// `name`: one of the hooks that [`Hook`] names.
    fn hook(&self, name: &CStr) -> Result<Hook, String> {
        // SAFETY: `self.0` is a live handle from dlopen; `name` is NUL-terminated and
        // lives across the call.
        let symbol = unsafe { libc::dlsym(self.0, name.as_ptr()) };
        if symbol.is_null() {
            return Err(format!(
                "no {} in it: {}",
                name.to_string_lossy(),
                last_dl_error()
            ));
        }
        // SAFETY: a PAM module's `pam_sm_authenticate`, `pam_sm_open_session` and
        // `pam_sm_close_session` have exactly the C signature `Hook` names
        // (`<security/pam_modules.h>`); a non-null data pointer from dlsym is the
        // function's address, valid while the object is loaded.
        Ok(unsafe { std::mem::transmute::<*mut c_void, Hook>(symbol) })
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from a successful dlopen and is closed once, here; no
        // pointer into the object (the function pointer) is used after this.
        unsafe { libc::dlclose(self.0) };
    }
}

/// The dynamic loader's last error text (a path and a reason; no secret).
fn last_dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl*
    // call on this thread; it is copied out at once.
    let text = unsafe { libc::dlerror() };
    if text.is_null() {
        return "unknown error".to_owned();
    }
    // SAFETY: non-null, NUL-terminated, see above.
    unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
}
