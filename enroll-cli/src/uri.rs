//! The `otpauth://` Key URI: built by the core library, which the module also uses to
//! show it at enrollment at first login.

pub use pam_totp_core::uri::{grouped, key_uri, labels};
