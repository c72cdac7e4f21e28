//! `pam_totp_db.so`: the PAM module with the file store and the PostgreSQL store.

#![forbid(unsafe_code)]

use pam_totp_core::ports::Stores;
use pam_totp_store_file::{FileStore, SystemAccounts};
use pam_totp_store_pg::PgStore;

pam_totp_pam::pam_module!(Stores {
    file: &FileStore,
    postgres: Some(&PgStore),
    accounts: &SystemAccounts,
});
