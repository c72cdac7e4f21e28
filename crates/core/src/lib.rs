//! `pam_totp_core`: one login from module arguments to a verdict, over ports, and the
//! rules it applies. No file, database, passwd, group or PAM code is here: the login
//! reaches the world only through the traits of [`ports`] (`pam_totp_os` gives only the
//! `Account` data they exchange).
//!
//! - [`ports`]: `Conversation`, `Logger`, `Accounts`, `LoginStore`, `AdminStore` and what
//!   they exchange;
//! - [`authenticate`]: one login, start to verdict; [`forward_pass`], [`login_enroll`],
//!   [`decoy`] (unknown users cost what enrolled ones do), [`rollout`] (grace period,
//!   exemptions), [`lockout`] (the lock-out rule and its table of cases);
//! - [`remember`], [`step_up`]: when an earlier right code stands in for a new one
//!   (the same ssh key for a while; sudo in a verified session), over what
//!   [`proven`] holds (verified ssh keys, audit sessions, tickets);
//! - [`local_verdict`]: the verdict on an answer made on this host (the file store's);
//! - [`answer`]: what the user typed, sorted once; [`verify`] (TOTP codes),
//!   [`recovery`], [`scratch`] and their hashes ([`code_hash`]);
//! - [`record`], [`login_state`], [`secret`]: what is stored about a user;
//! - [`uri`], [`qr`]: the Key URI and its QR code (both sides: module and command).

#![forbid(unsafe_code)]

pub mod answer;
pub mod authenticate;
pub mod clock_hint;
pub mod code_hash;
pub mod decoy;
pub mod failed_report;
pub mod forward_pass;
pub mod local_verdict;
pub mod lockout;
pub mod login_enroll;
pub mod login_state;
pub mod ports;
pub mod proven;
pub mod qr;
pub mod record;
pub mod recovery;
pub mod remember;
pub mod rollout;
pub mod scratch;
pub mod secret;
pub mod self_enroll;
pub mod step_up;
pub mod uri;
pub mod verify;
