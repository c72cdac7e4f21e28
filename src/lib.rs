//! `pam_totp_tests`: the package of the integration tests in `tests/` (through real
//! libpam, the built modules and `totp-enroll`). It has no code of its own.

#![forbid(unsafe_code)]
