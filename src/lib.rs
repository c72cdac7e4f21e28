//! `pam_totp_tests`: the package of the integration tests in `tests/` (through real
//! libpam, the built modules and `totp-enroll`). Its one module, [`access`], lists every
//! file and socket operation of the modules' crates for the SELinux policy test.

#![forbid(unsafe_code)]

pub mod access;
