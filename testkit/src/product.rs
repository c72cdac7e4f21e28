//! The library under test, as the integration tests see it: every item they use, and
//! nothing else, re-exported from one place, so that when the library's modules or
//! crates move only these lines change.

pub use pam_totp_config::algorithm::Algorithm;
pub use pam_totp_config::clock::now_rfc3339;
pub use pam_totp_config::{Config, Store};
pub use pam_totp_core::authenticate;
pub use pam_totp_core::lockout;
pub use pam_totp_core::ports::{
    Conversation, ConversationError, Logger, Login, Outcome, Priority, Stores, UNAVAILABLE_MESSAGE,
};
pub use pam_totp_core::record::Record;
pub use pam_totp_core::recovery::new_set;
pub use pam_totp_core::secret::SecretKey;
pub use pam_totp_store_file::clock_watch;
pub use pam_totp_store_file::seal::HostKey;
pub use pam_totp_store_file::state::{Channel, LoginState, StateDir};
pub use pam_totp_store_file::{FileStore, SystemAccounts};
pub use pam_totp_store_pg::{self as db, Client, ConnInfo, DbError, admin, login};
