//! `store = "postgres"` against throwaway clusters (`testkit::postgres`): logins,
//! enrollment, many hosts (network namespaces, TLS), outages, the schema, TLS, a host-local
//! PgBouncer, and the slim `pam_totp.so` handing a login to `pam_totp_db.so`.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod at_rest;
mod clock_and_failures;
mod enrollment;
mod hostile_host;
mod hosts;
mod logins;
mod migration;
mod outage;
mod pgbouncer;
mod reset_status;
mod schema;
mod self_enrollment;
mod shortcuts;
mod slim_module;
mod sql_codes;
mod tls;
