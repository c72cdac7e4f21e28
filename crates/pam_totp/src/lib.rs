//! `pam_totp.so`: the PAM module with the file store. A config naming the database store
//! is handed over to `pam_totp_db.so` (`pam_totp_pam`'s hand-over); this module links
//! no database client.

#![forbid(unsafe_code)]

use pam_totp_core::ports::Stores;
use pam_totp_store_file::{FileStore, SystemAccounts};

pam_totp_pam::pam_module!(Stores {
    file: &FileStore,
    postgres: None,
    accounts: &SystemAccounts,
});
