//! The library under test, as the integration tests see it: every item they use, and
//! nothing else, re-exported from one place, so that when the library's modules or
//! crates move only these lines change.

pub use pam_totp::algorithm::Algorithm;
pub use pam_totp::authenticate::{
    self, Conversation, ConversationError, Logger, Outcome, Priority, UNAVAILABLE_MESSAGE,
};
pub use pam_totp::clock::now_rfc3339;
pub use pam_totp::config::{Config, Store};
pub use pam_totp::db::{self, Client, ConnInfo, DbError, admin, login};
pub use pam_totp::record::Record;
pub use pam_totp::recovery::new_set;
pub use pam_totp::seal::HostKey;
pub use pam_totp::secret::SecretKey;
pub use pam_totp::state::{Channel, LoginState, StateDir};
