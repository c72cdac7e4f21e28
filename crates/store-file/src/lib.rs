//! `pam_totp_store_file`: records and login state in files on this host (`store =
//! "file"`), and the host key that opens sealed secrets.
//!
//! - [`record_store`]: reading records safely as root, atomic writes for the command;
//!   "not enrolled" only as a proof ([`NoRecord`](record_store::NoRecord));
//! - [`template`]: `secret_path` expansion for one account;
//! - [`state`]: the state file (A/B slots, flock): one durable write per login;
//! - [`seal`]: secrets sealed to the host key (`crypto_box` sealed box), key file checks;
//! - [`file_store`]: the login's [`LoginStore`](pam_totp_core::ports::LoginStore) over them;
//! - [`shortcuts`]: remembered keys and verified sessions (files of their own in
//!   `state_dir`);
//! - [`admin`]: `totp-enroll`'s [`AdminStore`](pam_totp_core::ports::AdminStore) over them;
//! - [`accounts`]: the login's [`Accounts`](pam_totp_core::ports::Accounts) over passwd
//!   and group (both modules' and the tests');
//! - [`clock_watch`]: the hourly warning that this host's clock is not synchronised.

#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod clock_watch;
pub mod file_store;
pub mod record_store;
pub mod seal;
pub mod shortcuts;
pub mod state;
pub mod template;

pub use accounts::SystemAccounts;
pub use file_store::FileStore;
