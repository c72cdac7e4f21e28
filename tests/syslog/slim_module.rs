//! What the admin reads when the slim `pam_totp.so` cannot hand a `store = "postgres"`
//! login to `pam_totp_db.so`: the reason, in syslog.

use std::os::unix::fs::PermissionsExt;

use pam_client::SYSTEM_ERR;
use testkit::namespace::in_private_namespace;
use testkit::{Fixture, ModuleBuild, SECRET, module, oathtool};

#[test]
fn a_missing_or_unsafe_pam_totp_db_is_named_in_syslog_with_the_reason() {
    let slim = module(ModuleBuild::FileStore);
    in_private_namespace(|ns| {
        let fixture = Fixture::new(
            "store = \"postgres\"\n\
             postgres = \"host=127.0.0.1 port=1 user=h dbname=totp sslmode=disable passfile=/nonexistent\"\n",
            "",
        );
        std::fs::copy(&slim, fixture.path("pam_totp.so")).unwrap();
        assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SYSTEM_ERR);
        let sibling = fixture.path("pam_totp_db.so");
        std::fs::copy(module(ModuleBuild::Workspace), &sibling).unwrap();
        std::fs::set_permissions(&sibling, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert_eq!(fixture.login(&oathtool(SECRET, 0)).status, SYSTEM_ERR);
        let lines = ns.syslog();
        let about = |why: &str| {
            lines.iter().any(|l| {
                l.contains("store = \"postgres\" needs pam_totp_db.so beside pam_totp.so: ")
                    && l.contains(why)
            })
        };
        assert!(about("No such file or directory"), "{lines:#?}");
        assert!(
            about("must be owned by root and not writable by group or others"),
            "{lines:#?}"
        );
    });
}
