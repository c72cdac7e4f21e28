//! `pam_totp_os`: the operating system as root sees it during a login or an enrollment:
//! who a user is ([`account`]), acting with their file-system rights ([`privs`]), and
//! files root can trust, created new or replaced atomically ([`trusted_file`]), and the
//! SELinux type of a record written into a home ([`selinux_label`]), this process's
//! kernel audit session ([`audit_session`]), and whether the kernel keeps the clock
//! synchronised ([`clock_sync`]).

// `deny`, not `forbid`: `clock_sync` alone allows the one `adjtimex` call.
#![deny(unsafe_code)]

pub mod account;
pub mod audit_session;
pub mod clock_sync;
pub mod privs;
pub mod selinux_label;
pub mod trusted_file;
