//! `pam_totp_os`: the operating system as root sees it during a login or an enrollment:
//! who a user is ([`account`]), acting with their file-system rights ([`privs`]), and
//! files root can trust, created new or replaced atomically ([`trusted_file`]).

#![forbid(unsafe_code)]

pub mod account;
pub mod privs;
pub mod trusted_file;
