//! `pam_totp`: a TOTP (RFC 6238) second factor for PAM, and the safe core shared with
//! `totp-enroll`.
//!
//! Map of the crate (see ARCHITECTURE.md for the path of a login and the invariants):
//! - `ffi` (private): the PAM entry points and the only `unsafe` code;
//! - [`authenticate`]: one login, start to verdict;
//! - [`config`]: the admin's policy file and module arguments;
//! - [`account`], [`template`]: who the user is and where their record lives;
//! - [`record`], [`record_store`]: the enrollment record and its safe file I/O;
//!   [`new_file`]: every file that holds a secret is created new, never opened over one;
//! - [`seal`]: secrets sealed to a host key, opened only by the module;
//! - [`state`]: replay protection and failure counters, one durable write per login;
//! - `db` (feature `postgres`, in the full build only): `store = "postgres"`: records
//!   and state shared by many hosts; the slim build hands such logins to the full one;
//! - [`verify`], [`secret`], [`algorithm`]: codes, secrets and their checking;
//! - [`forward_pass`]: password and code in one prompt, the password handed on;
//! - [`recovery`], [`scratch`]: recovery codes (format, argon2id hashes, burning) and
//!   imported google-authenticator scratch codes;
//! - [`rollout`], [`login_enroll`]: grace period, exempt accounts, enrollment at first login;
//! - [`uri`], [`qr`], [`clock`]: the Key URI, its QR code, timestamps and dates;
//! - [`privs`]: acting with a user's file-system rights.

pub mod access;
pub mod account;
pub mod algorithm;
pub mod authenticate;
pub mod clock;
pub mod config;
#[cfg(feature = "postgres")]
pub mod db;
mod decoy;
#[allow(unsafe_code)]
mod ffi;
pub mod forward_pass;
pub mod login_enroll;
mod login_store;
pub mod new_file;
pub mod privs;
pub mod qr;
pub mod record;
pub mod record_store;
pub mod recovery;
pub mod rollout;
pub mod scratch;
pub mod seal;
pub mod secret;
pub mod selinux_label;
pub mod state;
pub mod template;
pub mod uri;
pub mod verify;
